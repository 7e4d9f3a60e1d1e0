//! The typed channel between the runtime and the processes it forks.
//!
//! A `SOCK_SEQPACKET` socket pair keeps message boundaries, so each message is one JSON value in
//! one packet, optionally with file descriptors attached (`SCM_RIGHTS`). Both ends are
//! close-on-exec: when the container process execs, the runtime's end reads end-of-file, which is
//! how "the process started" is observed without any extra message.

use std::io::IoSlice;
use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use serde::Serialize;
use serde::de::DeserializeOwned;
use thiserror::Error;

use crate::errno::{Errno, check, retry};

/// Largest message: error reports and hook states are far below this.
const MAX_MESSAGE: usize = 64 * 1024;
/// Most fds one message carries (the v1 cgroup `tasks` files: one per hierarchy).
const MAX_FDS: usize = 32;

/// A channel failure.
#[derive(Debug, Error)]
pub enum ChannelError {
    #[error("the other side closed the channel")]
    Closed,
    #[error("channel I/O: {0}")]
    Io(Errno),
    #[error("malformed message: {0}")]
    Malformed(String),
}

/// One end of a channel that sends `S` and receives `R`.
#[derive(Debug)]
pub struct Channel<S, R> {
    fd: OwnedFd,
    _types: PhantomData<fn(S) -> R>,
}

/// Both ends of a channel: the first sends `A` and receives `B`, the second the reverse.
pub type Pair<A, B> = (Channel<A, B>, Channel<B, A>);

/// A connected pair of channel ends.
pub fn pair<A, B>() -> Result<Pair<A, B>, Errno> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: `fds` has room for the two descriptors socketpair writes.
    check(unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    })?;
    // SAFETY: socketpair succeeded; both fds are new and owned by us.
    let (a, b) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    Ok((Channel::from_fd(a), Channel::from_fd(b)))
}

impl<S, R> Channel<S, R> {
    /// Wraps a connected `SOCK_SEQPACKET` socket.
    pub fn from_fd(fd: OwnedFd) -> Self {
        Channel {
            fd,
            _types: PhantomData,
        }
    }

    /// The socket.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Gives up the socket.
    pub fn into_fd(self) -> OwnedFd {
        self.fd
    }
}

impl<S: Serialize, R: DeserializeOwned> Channel<S, R> {
    /// Sends one message with `fds` attached.
    pub fn send_with(&self, msg: &S, fds: &[BorrowedFd<'_>]) -> Result<(), ChannelError> {
        let bytes = serde_json::to_vec(msg).map_err(|e| ChannelError::Malformed(e.to_string()))?;
        send_with_fds(self.fd.as_fd(), &[IoSlice::new(&bytes)], fds).map_err(|e| match e.0 {
            libc::EPIPE | libc::ECONNRESET => ChannelError::Closed,
            _ => ChannelError::Io(e),
        })
    }

    /// Sends one message.
    pub fn send(&self, msg: &S) -> Result<(), ChannelError> {
        self.send_with(msg, &[])
    }

    /// Receives one message and the fds attached to it.
    pub fn recv_with_fds(&self) -> Result<(R, Vec<OwnedFd>), ChannelError> {
        // Not zeroed: the kernel writes the message, and only the pages it writes are touched.
        let mut buf: Vec<u8> = Vec::with_capacity(MAX_MESSAGE);
        let mut received = recv_with_fds(self.fd.as_fd(), buf.spare_capacity_mut());
        if matches!(received, Err(Errno(libc::ECONNRESET))) {
            // The peer closed its end with messages of ours unread. The kernel reports that
            // once (the error is cleared as it is returned) and ahead of what the peer sent
            // before it went, such as the init's own error: read on. The peer is gone, so this
            // returns at once (a message, or 0 for the end).
            received = recv_with_fds(self.fd.as_fd(), buf.spare_capacity_mut());
        }
        let (n, fds) = received.map_err(|e| match e.0 {
            libc::ECONNRESET => ChannelError::Closed,
            _ => ChannelError::Io(e),
        })?;
        if n == 0 {
            return Err(ChannelError::Closed);
        }
        // SAFETY: recvmsg initialised the first `n` bytes of the spare capacity (n <= capacity).
        unsafe { buf.set_len(n) };
        let msg =
            serde_json::from_slice(&buf).map_err(|e| ChannelError::Malformed(e.to_string()))?;
        Ok((msg, fds))
    }

    /// Receives one message.
    pub fn recv(&self) -> Result<R, ChannelError> {
        self.recv_with_fds().map(|(msg, _)| msg)
    }
}

/// `sendmsg` of `iov` with `fds` as `SCM_RIGHTS`. Never raises `SIGPIPE`.
pub fn send_with_fds(
    socket: BorrowedFd<'_>,
    iov: &[IoSlice<'_>],
    fds: &[BorrowedFd<'_>],
) -> Result<(), Errno> {
    let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
    let fd_bytes = std::mem::size_of_val(raw.as_slice());
    let space = if raw.is_empty() {
        0
    } else {
        // SAFETY: CMSG_SPACE is a pure computation.
        (unsafe { libc::CMSG_SPACE(fd_bytes as u32) }) as usize
    };
    let mut cmsg_buf = vec![0u64; space.div_ceil(8)];
    // SAFETY: msghdr is plain data; zeroed is a valid initial state.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov.as_ptr() as *mut libc::iovec;
    msg.msg_iovlen = iov.len() as _;
    if !raw.is_empty() {
        msg.msg_control = cmsg_buf.as_mut_ptr().cast();
        msg.msg_controllen = space as _;
        // SAFETY: msg_control points to a buffer of CMSG_SPACE(fd_bytes) bytes, so the first
        // header and its data fit; we write exactly fd_bytes of data.
        unsafe {
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(fd_bytes as u32) as _;
            std::ptr::copy_nonoverlapping(
                raw.as_ptr().cast::<u8>(),
                libc::CMSG_DATA(cmsg),
                fd_bytes,
            );
        }
    }
    if raw.is_empty() && iov.len() == 1 {
        // A plain write(2) when no fd travels: a seccomp profile may send sendmsg(2) to its
        // agent, but the runtime refuses NOTIFY on write(2), so this cannot block on the agent.
        // SIGPIPE cannot happen: the process ignores it or has a handler until execve.
        // SAFETY: the buffer is valid for its length.
        retry(|| unsafe { libc::write(socket.as_raw_fd(), iov[0].as_ptr().cast(), iov[0].len()) })?;
        return Ok(());
    }
    // SAFETY: `msg` references live buffers for the duration of the call.
    retry(|| unsafe { libc::sendmsg(socket.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) })?;
    Ok(())
}

/// `recvmsg` into `buf`, returning the byte count and any fds received (close-on-exec).
pub fn recv_with_fds(
    socket: BorrowedFd<'_>,
    buf: &mut [MaybeUninit<u8>],
) -> Result<(usize, Vec<OwnedFd>), Errno> {
    let mut iov = [libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    }];
    // SAFETY: CMSG_SPACE is a pure computation.
    let space =
        unsafe { libc::CMSG_SPACE((MAX_FDS * std::mem::size_of::<RawFd>()) as u32) } as usize;
    let mut cmsg_buf = vec![0u64; space.div_ceil(8)];
    // SAFETY: msghdr is plain data; zeroed is a valid initial state.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov.as_mut_ptr().cast();
    msg.msg_iovlen = 1;
    msg.msg_control = cmsg_buf.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    // SAFETY: `msg` references live, writable buffers for the duration of the call.
    let n =
        retry(|| unsafe { libc::recvmsg(socket.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) })?;
    let mut fds = Vec::new();
    // SAFETY: the kernel filled msg_control; CMSG_FIRSTHDR/NXTHDR walk it within msg_controllen.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(cmsg);
                let len = (*cmsg).cmsg_len as usize - libc::CMSG_LEN(0) as usize;
                for i in 0..len / std::mem::size_of::<RawFd>() {
                    let fd = std::ptr::read_unaligned(data.cast::<RawFd>().add(i));
                    fds.push(OwnedFd::from_raw_fd(fd));
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    Ok((n as usize, fds))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    enum Msg {
        Hello(u32),
        Bye,
    }

    #[test]
    fn messages_and_fds_cross() {
        let (a, b) = pair::<Msg, Msg>().unwrap();
        let file = std::fs::File::open("/dev/null").unwrap();
        a.send_with(&Msg::Hello(7), &[file.as_fd()]).unwrap();
        let (msg, fds) = b.recv_with_fds().unwrap();
        assert_eq!(msg, Msg::Hello(7));
        assert_eq!(fds.len(), 1);
        b.send(&Msg::Bye).unwrap();
        assert_eq!(a.recv().unwrap(), Msg::Bye);
        drop(b);
        assert!(matches!(a.recv(), Err(ChannelError::Closed)));
    }

    #[test]
    fn what_a_peer_sent_before_closing_with_our_message_unread_still_arrives() {
        // The init fails and exits while the runtime's message waits unread in its socket:
        // the kernel then flags the runtime's end with ECONNRESET, ahead of the init's error.
        let (a, b) = pair::<Msg, Msg>().unwrap();
        a.send(&Msg::Hello(1)).unwrap();
        b.send(&Msg::Bye).unwrap();
        drop(b);
        assert_eq!(a.recv().unwrap(), Msg::Bye);
        assert!(matches!(a.recv(), Err(ChannelError::Closed)));
        assert!(matches!(a.recv(), Err(ChannelError::Closed)));
    }
}
