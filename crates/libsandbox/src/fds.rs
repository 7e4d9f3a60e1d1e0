//! File descriptors and signals at the boundary into the container process.
//!
//! Nothing the runtime opened may reach the container (CVE-2024-21626): every fd above the ones
//! passed on purpose is made close-on-exec right before `execve`. Signal dispositions and the
//! signal mask survive `execve`, so they are reset to what a fresh process expects.

use crate::errno::{Errno, check};
use crate::sys;

/// The fds passed into the container on purpose: stdio, then `LISTEN_FDS` socket-activation fds,
/// then `--preserve-fds` ones, all numbered from 3 up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Passed {
    pub listen_fds: u32,
    pub preserve_fds: u32,
}

impl Passed {
    /// Reads `LISTEN_FDS` from the runtime's environment (systemd socket activation), as runc
    /// does, and adds `preserve_fds`.
    pub fn from_env(preserve_fds: u32) -> Passed {
        let listen_fds = std::env::var("LISTEN_FDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        Passed {
            listen_fds,
            preserve_fds,
        }
    }

    /// The first fd that is not passed.
    pub fn end(&self) -> u32 {
        3 + self.listen_fds + self.preserve_fds
    }

    /// Environment additions for the container process.
    pub fn env(&self) -> Vec<String> {
        if self.listen_fds == 0 {
            return Vec::new();
        }
        vec![
            format!("LISTEN_FDS={}", self.listen_fds),
            "LISTEN_PID=1".to_owned(),
        ]
    }
}

/// Makes the passed fds inheritable and every other fd above stdio close-on-exec.
pub fn seal(passed: Passed) -> Result<(), Errno> {
    for fd in 3..passed.end() {
        // SAFETY: F_GETFD/F_SETFD on an fd number; a closed fd just fails with EBADF.
        let flags = unsafe { libc::fcntl(fd as i32, libc::F_GETFD) };
        if flags >= 0 {
            // SAFETY: as above.
            check(unsafe { libc::fcntl(fd as i32, libc::F_SETFD, flags & !libc::FD_CLOEXEC) })?;
        }
    }
    sys::cloexec_from(passed.end())
}

/// Resets every signal disposition to the default and unblocks all signals.
pub fn reset_signals() {
    for sig in 1..libc::SIGRTMAX() {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: restoring the default disposition has no memory effects.
        unsafe { libc::signal(sig, libc::SIG_DFL) };
    }
    // SAFETY: an empty, initialised mask.
    unsafe {
        let mut set = std::mem::zeroed::<libc::sigset_t>();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
}
