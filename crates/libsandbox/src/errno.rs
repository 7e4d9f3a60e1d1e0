//! `Errno`: an OS error number that survives serialization.
//!
//! Errors raised inside the container's init travel back to the runtime over a socket, so the
//! errno is kept as a number (not an `io::Error`) and rendered the way runc renders it: the C
//! library's message with a lower-case first letter ("permission denied").

use std::ffi::CStr;
use std::fmt;
use std::io;

use serde::{Deserialize, Serialize};

/// An `errno` value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Errno(pub i32);

impl Errno {
    /// The calling thread's current `errno`.
    pub fn last() -> Errno {
        Errno(
            io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EIO),
        )
    }

    /// The errno of an `io::Error`, `EIO` when it carries none.
    pub fn from_io(err: &io::Error) -> Errno {
        Errno(err.raw_os_error().unwrap_or(libc::EIO))
    }

    /// The raw number.
    pub fn raw(self) -> i32 {
        self.0
    }
}

impl From<io::Error> for Errno {
    fn from(err: io::Error) -> Self {
        Errno::from_io(&err)
    }
}

impl From<Errno> for io::Error {
    fn from(errno: Errno) -> Self {
        io::Error::from_raw_os_error(errno.0)
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0 as libc::c_char; 128];
        let msg = strerror(self.0, &mut buf);
        let mut chars = msg.chars();
        match chars.next() {
            Some(first) => {
                write!(f, "{}{}", first.to_ascii_lowercase(), chars.as_str())
            }
            None => write!(f, "errno {}", self.0),
        }
    }
}

/// The message for `errno`, as the C library words it.
fn strerror(errno: i32, buf: &mut [libc::c_char; 128]) -> String {
    // SAFETY: `buf` is writable for the length passed; the XSI strerror_r (which the libc crate
    // binds on both glibc and musl) writes a NUL-terminated message into it on success.
    let failed = unsafe { libc::strerror_r(errno, buf.as_mut_ptr(), buf.len()) } != 0;
    if failed {
        return format!("errno {errno}");
    }
    // SAFETY: strerror_r succeeded, so `buf` holds a NUL-terminated string.
    unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

/// Retries a system call while it fails with `EINTR`; maps `-1` to the current errno.
pub(crate) fn retry<T, F>(mut call: F) -> Result<T, Errno>
where
    T: PartialEq + From<i8>,
    F: FnMut() -> T,
{
    loop {
        let ret = call();
        if ret != T::from(-1) {
            return Ok(ret);
        }
        let errno = Errno::last();
        if errno.0 != libc::EINTR {
            return Err(errno);
        }
    }
}

/// Maps a `-1` return to the current errno, without retrying.
pub(crate) fn check<T>(ret: T) -> Result<T, Errno>
where
    T: PartialEq + From<i8>,
{
    if ret == T::from(-1) {
        Err(Errno::last())
    } else {
        Ok(ret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_lower_case_like_runc() {
        assert_eq!(Errno(libc::EPERM).to_string(), "operation not permitted");
        assert_eq!(Errno(libc::ENOENT).to_string(), "no such file or directory");
    }

    #[test]
    fn round_trips_through_json() {
        let json = serde_json::to_string(&Errno(libc::EACCES)).unwrap();
        assert_eq!(json, "13");
        assert_eq!(
            serde_json::from_str::<Errno>(&json).unwrap(),
            Errno(libc::EACCES)
        );
    }
}
