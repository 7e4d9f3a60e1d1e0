//! A foreground container with a terminal and no console socket (`ocirun run` from a shell, like
//! `runc run`): the runtime holds the pty master and relays it to its own stdin and stdout,
//! with the caller's terminal in raw mode and its window size passed on.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use crate::errno::Errno;
use crate::error::{Error, Result};

/// Where the pty master of a process with a terminal goes: the caller's console socket, or (in
/// the foreground, without one) a socket pair whose other end the runtime keeps to relay it.
pub struct Console {
    /// The socket the process sends its master over (passed into the child).
    pub for_child: Option<OwnedFd>,
    /// The runtime's end of the pair, when it relays the terminal itself.
    relay: Option<OwnedFd>,
}

impl Console {
    /// Connects to `socket` if given; otherwise, with `relay`, makes a pair to relay through.
    pub fn open(socket: Option<&Path>, relay: bool) -> Result<Console> {
        if let Some(path) = socket {
            let stream = UnixStream::connect(path).map_err(|e| Error::Io {
                op: "connect to console socket",
                path: path.to_owned(),
                errno: Errno::from(e),
            })?;
            return Ok(Console {
                for_child: Some(stream.into()),
                relay: None,
            });
        }
        if !relay {
            return Ok(Console {
                for_child: None,
                relay: None,
            });
        }
        let (ours, theirs) = UnixStream::pair().map_err(|e| Error::Sys {
            step: "create console socket pair".into(),
            errno: Errno::from(e),
        })?;
        Ok(Console {
            for_child: Some(theirs.into()),
            relay: Some(ours.into()),
        })
    }

    /// The master the process sent, when the runtime relays the terminal.
    pub fn receive_master(&self) -> Result<Option<OwnedFd>> {
        let Some(sock) = &self.relay else {
            return Ok(None);
        };
        let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 64];
        let (_, mut fds) =
            crate::channel::recv_with_fds(sock.as_fd(), &mut buf).map_err(|errno| Error::Sys {
                step: "receive the pty master".into(),
                errno,
            })?;
        Ok(fds.pop())
    }
}

/// The relay between the caller's stdio and the container's pty.
pub struct TtyProxy {
    master: OwnedFd,
    saved: Option<libc::termios>,
    stdin_open: bool,
}

impl TtyProxy {
    /// Takes the pty master; puts the caller's terminal (if stdin is one) in raw mode.
    pub fn new(master: OwnedFd) -> TtyProxy {
        // SAFETY: termios is plain data; tcgetattr fills it when stdin is a terminal.
        let saved = unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            (libc::tcgetattr(0, &mut t) == 0).then_some(t)
        };
        if let Some(mut raw) = saved {
            // SAFETY: cfmakeraw edits the local copy; tcsetattr applies it to stdin.
            unsafe {
                libc::cfmakeraw(&mut raw);
                libc::tcsetattr(0, libc::TCSANOW, &raw);
            }
        }
        let proxy = TtyProxy {
            master,
            saved,
            stdin_open: true,
        };
        proxy.resize();
        proxy
    }

    /// Copies the caller's window size to the container's terminal.
    pub fn resize(&self) {
        // SAFETY: winsize is plain data; the ioctls read/write exactly one.
        unsafe {
            let mut ws: libc::winsize = std::mem::zeroed();
            if libc::ioctl(0, libc::TIOCGWINSZ, &mut ws) == 0 {
                libc::ioctl(self.master.as_raw_fd(), libc::TIOCSWINSZ, &ws);
            }
        }
    }

    /// The fds to poll: stdin (while open) and the master.
    pub fn poll_fds(&self) -> [libc::pollfd; 2] {
        [
            libc::pollfd {
                fd: if self.stdin_open { 0 } else { -1 },
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: self.master.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ]
    }

    /// Moves what is ready: stdin to the master, the master to stdout. Returns false once the
    /// master is closed (the container's side of the terminal went away).
    pub fn pump(&mut self, fds: &[libc::pollfd; 2]) -> bool {
        if fds[0].revents != 0 && !copy(0, self.master.as_raw_fd()) {
            self.stdin_open = false;
        }
        if fds[1].revents != 0 {
            return copy(self.master.as_raw_fd(), 1);
        }
        true
    }

    /// Relays whatever output is left once the process has exited.
    pub fn drain(&mut self) {
        loop {
            let mut pfd = libc::pollfd {
                fd: self.master.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd; no waiting.
            if unsafe { libc::poll(&mut pfd, 1, 0) } <= 0 || !copy(self.master.as_raw_fd(), 1) {
                return;
            }
        }
    }
}

impl Drop for TtyProxy {
    fn drop(&mut self) {
        if let Some(t) = self.saved {
            // SAFETY: restores the attributes saved in new().
            unsafe { libc::tcsetattr(0, libc::TCSANOW, &t) };
        }
    }
}

/// One read from `from` written fully to `to`; false on end-of-file or error.
fn copy(from: i32, to: i32) -> bool {
    let mut buf = [0u8; 8192];
    // SAFETY: `buf` is writable for its length.
    let n = unsafe { libc::read(from, buf.as_mut_ptr().cast(), buf.len()) };
    if n <= 0 {
        return false;
    }
    let mut done = 0usize;
    while done < n as usize {
        // SAFETY: the slice [done, n) of `buf` is initialised.
        let w = unsafe { libc::write(to, buf[done..].as_ptr().cast(), n as usize - done) };
        if w <= 0 {
            return false;
        }
        done += w as usize;
    }
    true
}
