//! `sockaddr_un` for paths of any length.
//!
//! A unix socket path is limited to 107 bytes, but state directories under a long `--root` with
//! a long container id exceed that. A longer path is reached through `/proc/self/fd/<dir fd>/`,
//! which the kernel resolves like any other path.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::errno::Errno;
use crate::sys;

/// An address for `bind`/`connect`; keeps the directory fd alive when it needs one.
pub struct UnixAddr {
    addr: libc::sockaddr_un,
    len: libc::socklen_t,
    _dir: Option<OwnedFd>,
}

impl UnixAddr {
    pub fn new(path: &Path) -> Result<UnixAddr, Errno> {
        // SAFETY: sockaddr_un is plain data; zeroed is a valid initial state.
        let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
        addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
        let (bytes, dir) = if path.as_os_str().len() < addr.sun_path.len() {
            (path.as_os_str().as_bytes().to_vec(), None)
        } else {
            let parent = path.parent().ok_or(Errno(libc::ENAMETOOLONG))?;
            let name = path.file_name().ok_or(Errno(libc::ENAMETOOLONG))?;
            let dir = sys::openat(sys::cwd(), parent, libc::O_PATH | libc::O_DIRECTORY, 0)?;
            let short = format!("/proc/self/fd/{}/", dir.as_raw_fd());
            let mut b = short.into_bytes();
            b.extend_from_slice(name.as_bytes());
            (b, Some(dir))
        };
        if bytes.len() >= addr.sun_path.len() {
            return Err(Errno(libc::ENAMETOOLONG));
        }
        for (dst, src) in addr.sun_path.iter_mut().zip(&bytes) {
            *dst = *src as libc::c_char;
        }
        let len = (std::mem::size_of::<libc::sa_family_t>() + bytes.len() + 1) as libc::socklen_t;
        Ok(UnixAddr {
            addr,
            len,
            _dir: dir,
        })
    }

    pub fn as_ptr(&self) -> *const libc::sockaddr {
        (&self.addr as *const libc::sockaddr_un).cast()
    }

    pub fn len(&self) -> libc::socklen_t {
        self.len
    }
}
