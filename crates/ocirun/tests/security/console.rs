//! The caller's end of `--console-socket`: receives the pty master the runtime sends, learns its
//! pty number, and drains it until every peer is closed.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

/// What came over the socket: the master's pty number (`/dev/pts/N`) and what the container
/// wrote to its terminal.
#[derive(Debug)]
pub struct Console {
    pub pty: u32,
    pub output: Vec<u8>,
}

pub struct ConsoleSocket {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Option<Console>>>,
}

impl ConsoleSocket {
    pub fn new(path: &Path) -> ConsoleSocket {
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::spawn(move || {
            let (stream, _) = listener.accept().ok()?;
            let master = recv_fd(&stream)?;
            let pty = pty_number(&master);
            let output = drain(&master, &s);
            Some(Console { pty, output })
        });
        ConsoleSocket {
            path: path.to_owned(),
            stop,
            thread: Some(thread),
        }
    }

    pub fn path(&self) -> &str {
        self.path.to_str().unwrap()
    }

    /// Call once the runtime has returned: collects the console, or `None` when the runtime
    /// never sent one.
    pub fn finish(mut self) -> Option<Console> {
        self.stop_thread()
    }

    fn stop_thread(&mut self) -> Option<Console> {
        self.stop.store(true, Ordering::Relaxed);
        let t = self.thread.take()?;
        if !t.is_finished() {
            // Wake an accept that never got a connection; a real connection already taken is
            // not affected.
            let _ = UnixStream::connect(&self.path);
        }
        t.join().ok().flatten()
    }
}

impl Drop for ConsoleSocket {
    fn drop(&mut self) {
        let _ = self.stop_thread();
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Receives one fd (SCM_RIGHTS) from `stream`.
fn recv_fd(stream: &UnixStream) -> Option<OwnedFd> {
    let mut payload = [0u8; 4096];
    let mut iov = libc::iovec {
        iov_base: payload.as_mut_ptr().cast(),
        iov_len: payload.len(),
    };
    // SAFETY: CMSG_SPACE only computes a size.
    let space = unsafe { libc::CMSG_SPACE(std::mem::size_of::<libc::c_int>() as u32) } as usize;
    let mut control = vec![0u8; space];
    // SAFETY: msghdr is plain data; every pointer set below outlives the recvmsg call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = space;
    // SAFETY: `msg` describes valid buffers of the lengths given.
    let n = unsafe { libc::recvmsg(stream.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
    if n < 0 {
        return None;
    }
    // SAFETY: `msg` was filled by recvmsg; the macros walk its control buffer within bounds.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        if cmsg.is_null()
            || (*cmsg).cmsg_level != libc::SOL_SOCKET
            || (*cmsg).cmsg_type != libc::SCM_RIGHTS
        {
            return None;
        }
        let fd = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg) as *const libc::c_int);
        Some(OwnedFd::from_raw_fd(fd))
    }
}

fn pty_number(master: &OwnedFd) -> u32 {
    let mut n: libc::c_uint = 0;
    // SAFETY: TIOCGPTN writes one unsigned int through the pointer.
    let r = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTN, &mut n) };
    assert_eq!(r, 0, "TIOCGPTN on the received master");
    n
}

/// Reads the master until every peer is closed (EIO). Once `stop` is set (the runtime returned),
/// a quiet second ends it too.
fn drain(master: &OwnedFd, stop: &AtomicBool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut quiet = 0;
    loop {
        let mut pfd = libc::pollfd {
            fd: master.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let r = unsafe { libc::poll(&mut pfd, 1, 100) };
        if r < 0 {
            continue;
        }
        if r == 0 {
            if stop.load(Ordering::Relaxed) {
                quiet += 1;
                if quiet >= 10 {
                    return out;
                }
            }
            continue;
        }
        let mut buf = [0u8; 4096];
        // SAFETY: reading into a local buffer of the size given.
        let n = unsafe { libc::read(master.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            return out;
        }
        out.extend_from_slice(&buf[..n as usize]);
    }
}
