//! SCMP_ACT_NOTIFY end to end: a child installs a filter that notifies on
//! getpgid, hands the notify fd to a listener with `send_to_listener`, and
//! the listener (this test) answers the syscall with a made-up value.

mod support;

use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;

use oci_spec::runtime::{ContainerState, State};
use support::{TempDir, profile};

/// struct seccomp_notif (linux/seccomp.h).
#[repr(C)]
#[derive(Default)]
struct Notif {
    id: u64,
    pid: u32,
    flags: u32,
    nr: i32,
    arch: u32,
    instruction_pointer: u64,
    args: [u64; 6],
}

/// struct seccomp_notif_resp.
#[repr(C)]
struct NotifResp {
    id: u64,
    val: i64,
    error: i32,
    flags: u32,
}

const SECCOMP_IOCTL_NOTIF_RECV: libc::c_ulong = 0xc050_2100; // _IOWR('!', 0, struct seccomp_notif)
const SECCOMP_IOCTL_NOTIF_SEND: libc::c_ulong = 0xc018_2101; // _IOWR('!', 1, struct seccomp_notif_resp)
const ANSWER: i64 = 4242;

/// Receives one message with one fd over SCM_RIGHTS.
fn recv_with_fd(socket: &std::os::unix::net::UnixStream) -> (Vec<u8>, OwnedFd) {
    let mut data = vec![0u8; 64 * 1024];
    let mut control = [0u64; 8];
    let mut iov = [IoSliceMut::new(&mut data)];
    // SAFETY: an all-zero msghdr is valid; the pointers set below outlive recvmsg.
    let mut header: libc::msghdr = unsafe { std::mem::zeroed() };
    header.msg_iov = iov.as_mut_ptr().cast();
    header.msg_iovlen = 1;
    header.msg_control = control.as_mut_ptr().cast();
    header.msg_controllen = std::mem::size_of_val(&control) as _;
    // SAFETY: a blocking recvmsg into the buffers above.
    let n = unsafe { libc::recvmsg(socket.as_raw_fd(), &mut header, libc::MSG_CMSG_CLOEXEC) };
    assert!(n > 0, "recvmsg: {}", std::io::Error::last_os_error());
    // SAFETY: the kernel filled the control buffer; we read the first header.
    let fd = unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&header);
        assert!(!cmsg.is_null(), "no SCM_RIGHTS received");
        assert_eq!(
            ((*cmsg).cmsg_level, (*cmsg).cmsg_type),
            (libc::SOL_SOCKET, libc::SCM_RIGHTS)
        );
        OwnedFd::from_raw_fd(std::ptr::read_unaligned(
            libc::CMSG_DATA(cmsg).cast::<i32>(),
        ))
    };
    let mut message = data[..n as usize].to_vec();
    // The rest of a long message may follow without the fd.
    let mut rest = Vec::new();
    let _ = std::io::Read::read_to_end(&mut &*socket, &mut rest);
    message.extend(rest);
    (message, fd)
}

#[test]
fn a_listener_answers_a_notified_syscall() {
    let dir = TempDir::new("notify");
    let socket_path = dir.path().join("agent.sock");
    let listener = UnixListener::bind(&socket_path).unwrap();
    let filter = seccomp::compile(&profile(
        r#"{"defaultAction":"SCMP_ACT_ALLOW",
            "flags":["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
            "listenerPath":"/unused/here",
            "syscalls":[{"names":["getpgid"],"action":"SCMP_ACT_NOTIFY"}]}"#,
    ))
    .unwrap();
    assert!(filter.uses_notify());

    // SAFETY: the child installs the filter, sends its fd and makes one call.
    let child = unsafe { libc::fork() };
    assert!(child >= 0);
    if child == 0 {
        let code = (|| {
            // SAFETY: prctl with integer arguments.
            unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
            let Ok(Some(notify_fd)) = seccomp::install(&filter) else {
                return 10;
            };
            let mut state = State::default();
            state
                .set_version("1.0.2".into())
                .set_id("c1".into())
                .set_status(ContainerState::Running);
            // SAFETY: getpid has no arguments.
            state.set_pid(Some(unsafe { libc::getpid() }));
            // SAFETY: see above.
            let pid = unsafe { libc::getpid() };
            let fd = notify_fd.as_raw_fd();
            // SAFETY: the fd is open for the duration of the call.
            let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
            if seccomp::send_to_listener(
                &socket_path,
                &state,
                pid,
                Some("agent-metadata"),
                borrowed,
            )
            .is_err()
            {
                return 11;
            }
            drop(notify_fd);
            // SAFETY: getpgid(0) is harmless; here the listener answers it.
            let answer = unsafe { libc::syscall(libc::SYS_getpgid, 0) };
            if answer == ANSWER { 0 } else { 12 }
        })();
        // SAFETY: leave the child.
        unsafe { libc::_exit(code) };
    }

    let (stream, _) = listener.accept().unwrap();
    let (message, notify_fd) = recv_with_fd(&stream);
    let state: serde_json::Value = serde_json::from_slice(&message).unwrap();
    assert_eq!(state["fds"], serde_json::json!(["seccompFd"]));
    assert_eq!(state["pid"], serde_json::json!(child));
    assert_eq!(state["metadata"], "agent-metadata");
    assert_eq!(state["state"]["id"], "c1");
    assert_eq!(state["state"]["status"], "running");
    assert!(
        state["ociVersion"]
            .as_str()
            .is_some_and(|v| v.starts_with('1'))
    );

    let mut notif = Notif::default();
    // SAFETY: NOTIF_RECV fills a zeroed struct seccomp_notif.
    let rc = unsafe { libc::ioctl(notify_fd.as_raw_fd(), SECCOMP_IOCTL_NOTIF_RECV, &mut notif) };
    assert_eq!(rc, 0, "NOTIF_RECV: {}", std::io::Error::last_os_error());
    assert_eq!(i64::from(notif.nr), libc::SYS_getpgid);
    assert_eq!(notif.pid as i32, child);
    let mut resp = NotifResp {
        id: notif.id,
        val: ANSWER,
        error: 0,
        flags: 0,
    };
    // SAFETY: NOTIF_SEND reads the response.
    let rc = unsafe { libc::ioctl(notify_fd.as_raw_fd(), SECCOMP_IOCTL_NOTIF_SEND, &mut resp) };
    assert_eq!(rc, 0, "NOTIF_SEND: {}", std::io::Error::last_os_error());

    let mut status = 0;
    // SAFETY: waiting for our child.
    assert_eq!(unsafe { libc::waitpid(child, &mut status, 0) }, child);
    assert!(libc::WIFEXITED(status), "child status {status:#x}");
    assert_eq!(libc::WEXITSTATUS(status), 0);
}

#[test]
fn a_missing_listener_is_a_clear_error() {
    let dir = TempDir::new("notify-missing");
    let path = dir.path().join("nobody.sock");
    let fd = std::fs::File::open("/dev/null").unwrap();
    let err = seccomp::send_to_listener(&path, &State::default(), 1, None, fd.as_fd_borrowed())
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("nobody.sock") && text.contains("connect"),
        "{text}"
    );
}

trait AsFdBorrowed {
    fn as_fd_borrowed(&self) -> BorrowedFd<'_>;
}

impl AsFdBorrowed for std::fs::File {
    fn as_fd_borrowed(&self) -> BorrowedFd<'_> {
        std::os::fd::AsFd::as_fd(self)
    }
}
