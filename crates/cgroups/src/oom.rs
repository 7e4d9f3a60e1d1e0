//! OOM-kill notification. v1: an eventfd registered on memory.oom_control through
//! cgroup.event_control (the kernel counts OOMs into it). v2: inotify on memory.events, whose
//! `oom_kill` counter is compared with the last value seen.
//!
//! Both expose one file descriptor that becomes readable when something happened, so the
//! caller can poll it together with its other fds (no threads).

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::controllers::Target;
use crate::error::{Errno, Error, Result};
use crate::fs;
use crate::layout::Version;

/// A watch on a container's OOM kills.
#[derive(Debug)]
pub struct OomEvents {
    fd: OwnedFd,
    dir: PathBuf,
    version: Version,
    /// v1: keeps memory.oom_control open while registered. v2: unused.
    _control: Option<OwnedFd>,
    /// v2: the `oom_kill` count already reported.
    seen: u64,
}

fn sys(what: String) -> Error {
    Error::Sys {
        what,
        errno: Errno::last(),
    }
}

fn own(fd: i32) -> OwnedFd {
    // SAFETY: callers pass a descriptor just returned by a successful syscall, owned by no one.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

fn cpath(path: &Path) -> Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| Error::Open {
        path: path.to_path_buf(),
        errno: Errno(libc::EINVAL),
    })
}

impl OomEvents {
    pub(crate) fn new(t: &Target<'_>) -> Result<Self> {
        let (dir, version) = t.get("memory (OOM events)")?;
        match version {
            Version::V1 => {
                // SAFETY: eventfd takes no pointers.
                let efd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
                if efd < 0 {
                    return Err(sys("eventfd".into()));
                }
                let efd = own(efd);
                let control_path = dir.join("memory.oom_control");
                let c = cpath(&control_path)?;
                // SAFETY: c is NUL-terminated.
                let cfd = unsafe { libc::open(c.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
                if cfd < 0 {
                    return Err(Error::Open {
                        path: control_path,
                        errno: Errno::last(),
                    });
                }
                let cfd = own(cfd);
                let line = format!("{} {}", efd.as_raw_fd(), cfd.as_raw_fd());
                fs::write(dir, "cgroup.event_control", &line)?;
                Ok(OomEvents {
                    fd: efd,
                    dir: dir.to_path_buf(),
                    version,
                    _control: Some(cfd),
                    seen: 0,
                })
            }
            Version::V2 => {
                // SAFETY: inotify_init1 takes no pointers.
                let ifd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC | libc::IN_NONBLOCK) };
                if ifd < 0 {
                    return Err(sys("inotify_init1".into()));
                }
                let ifd = own(ifd);
                let events = dir.join("memory.events");
                let c = cpath(&events)?;
                // SAFETY: ifd is a live inotify fd and c is NUL-terminated.
                let wd = unsafe {
                    libc::inotify_add_watch(ifd.as_raw_fd(), c.as_ptr(), libc::IN_MODIFY)
                };
                if wd < 0 {
                    return Err(sys(format!("inotify_add_watch {}", events.display())));
                }
                let seen = oom_kills(dir)?;
                Ok(OomEvents {
                    fd: ifd,
                    dir: dir.to_path_buf(),
                    version,
                    _control: None,
                    seen,
                })
            }
        }
    }

    /// Takes the notifications that are ready, without blocking (poll the fd for readability
    /// first), and returns how many OOM kills the container had since the last call: 0 when the
    /// notification was about something else (on v2 `memory.events` also changes when the limit
    /// is merely hit), `None` once the cgroup is gone (no more events can come).
    pub fn take(&mut self) -> Result<Option<u64>> {
        let mut count = 0u64;
        loop {
            let mut buf = [0u8; 4096];
            // SAFETY: buf is writable for its whole length.
            let n = unsafe {
                libc::read(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr() as *mut libc::c_void,
                    buf.len(),
                )
            };
            if n < 0 {
                match Errno::last().0 {
                    libc::EINTR => continue,
                    libc::EAGAIN => break,
                    _ => return Err(sys("read OOM notification".into())),
                }
            }
            if self.version == Version::V1 && n >= 8 {
                count += u64::from_ne_bytes(buf[..8].try_into().unwrap_or([0; 8]));
            }
        }
        if !self.dir.exists() {
            return Ok(None);
        }
        if self.version == Version::V2 {
            let now = match oom_kills(&self.dir) {
                Ok(n) => n,
                Err(e) if e.cgroup_gone() => return Ok(None),
                Err(e) => return Err(e),
            };
            count = now.saturating_sub(self.seen);
            self.seen = self.seen.max(now);
        }
        Ok(Some(count))
    }
}

impl AsFd for OomEvents {
    /// Readable when [`OomEvents::wait`] has something to look at.
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

fn oom_kills(dir: &Path) -> Result<u64> {
    let text = fs::read(dir, "memory.events")?;
    Ok(fs::parse_flat_keyed(&text)
        .get("oom_kill")
        .copied()
        .unwrap_or(0))
}
