//! Handing the notify fd to the seccomp agent at `listenerPath`.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use oci_spec::runtime::{ContainerProcessState, SECCOMP_FD_NAME, State};

use crate::error::{Error, Result};

/// Sends the runtime spec's container process state to the agent listening
/// at `listener_path`: one connection, one JSON message whose first bytes
/// carry `notify_fd` as SCM_RIGHTS (named `seccompFd` in `fds`), then close.
///
/// `state` is the container's state (as `ocirun state` prints it), `pid`
/// the process the filter was installed in as the runtime sees it (for
/// `exec`, the exec'd process), `metadata` the profile's `listenerMetadata`.
pub fn send_to_listener(
    listener_path: &Path,
    state: &State,
    pid: i32,
    metadata: Option<&str>,
    notify_fd: BorrowedFd<'_>,
) -> Result<()> {
    let error = |op: &'static str| {
        move |source: io::Error| Error::Listener {
            path: listener_path.to_path_buf(),
            op,
            source,
        }
    };
    let mut message = ContainerProcessState::default();
    message
        .set_version(oci_spec::runtime::VERSION.to_string())
        .set_fds(vec![SECCOMP_FD_NAME.to_string()])
        .set_pid(pid)
        .set_metadata(metadata.map(str::to_string))
        .set_state(state.clone());
    let json = serde_json::to_vec(&message)?;

    let stream = UnixStream::connect(listener_path).map_err(error("connect"))?;
    let mut sent = send_with_fd(&stream, &json, notify_fd).map_err(error("sendmsg"))?;
    // A stream socket may take the message in parts; the fd went with the first.
    while sent < json.len() {
        sent += io::Write::write(&mut &stream, &json[sent..]).map_err(error("write"))?;
    }
    Ok(())
}

/// One sendmsg(2) of `data` with `fd` attached; returns the bytes sent.
fn send_with_fd(stream: &UnixStream, data: &[u8], fd: BorrowedFd<'_>) -> io::Result<usize> {
    let raw_fd = fd.as_raw_fd();
    // Room for one cmsghdr carrying one fd, aligned for cmsghdr.
    let mut control = [0u64; 4];
    // SAFETY: CMSG_SPACE only computes a size.
    let control_len =
        unsafe { libc::CMSG_SPACE(std::mem::size_of::<libc::c_int>() as u32) } as usize;
    debug_assert!(control_len <= std::mem::size_of_val(&control));
    let mut iov = libc::iovec {
        iov_base: data.as_ptr().cast_mut().cast(),
        iov_len: data.len(),
    };
    // SAFETY: an all-zero msghdr is a valid empty header.
    let mut header: libc::msghdr = unsafe { std::mem::zeroed() };
    header.msg_iov = &mut iov;
    header.msg_iovlen = 1;
    header.msg_control = control.as_mut_ptr().cast();
    header.msg_controllen = control_len as _;
    // SAFETY: msg_control points at `control`, which is large enough for one
    // cmsghdr with one int (checked above), so CMSG_FIRSTHDR is non-null and
    // CMSG_DATA stays inside it.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&header);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<libc::c_int>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::c_int>(), raw_fd);
    }
    loop {
        // SAFETY: `header` and everything it points to live across the call.
        let sent = unsafe { libc::sendmsg(stream.as_raw_fd(), &header, libc::MSG_NOSIGNAL) };
        if sent >= 0 {
            return Ok(sent as usize);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}
