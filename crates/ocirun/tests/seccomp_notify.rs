//! SCMP_ACT_NOTIFY end to end: the runtime hands the notify fd and the container state to the
//! agent at `listenerPath`, and the agent answers the container's syscalls.

mod support;

use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;

use serde_json::{Value, json};
use support::{Sandbox, stderr};

#[repr(C)]
#[derive(Default)]
struct SeccompData {
    nr: i32,
    arch: u32,
    instruction_pointer: u64,
    args: [u64; 6],
}

#[repr(C)]
#[derive(Default)]
struct Notif {
    id: u64,
    pid: u32,
    flags: u32,
    data: SeccompData,
}

#[repr(C)]
#[derive(Default)]
struct NotifResp {
    id: u64,
    val: i64,
    error: i32,
    flags: u32,
}

const NOTIF_RECV: libc::c_ulong = 0xc050_2100;
const NOTIF_SEND: libc::c_ulong = 0xc018_2101;

/// Receives the agent message: the JSON payload and the fd attached to it.
fn recv_message(conn: RawFd) -> (Value, OwnedFd) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut cmsg = [0u64; 8];
    // SAFETY: msghdr is plain data; zeroed is a valid initial state.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov.as_mut_ptr().cast();
    msg.msg_iovlen = 1;
    msg.msg_control = cmsg.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&cmsg) as _;
    // SAFETY: `msg` points to live buffers.
    let n = unsafe { libc::recvmsg(conn, &mut msg, 0) };
    assert!(n > 0, "agent: recvmsg failed");
    // SAFETY: the kernel filled msg_control; the first header carries SCM_RIGHTS with one fd.
    let fd = unsafe {
        let c = libc::CMSG_FIRSTHDR(&msg);
        assert!(!c.is_null(), "agent: no fd in the message");
        assert_eq!((*c).cmsg_type, libc::SCM_RIGHTS);
        std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<RawFd>())
    };
    let json = serde_json::from_slice(&buf[..n as usize]).expect("agent: JSON payload");
    // SAFETY: the fd arrived with the message and is ours now.
    (json, unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Answers every notification on `fd` with ENAMETOOLONG until the filter goes away.
fn answer(fd: &OwnedFd) -> usize {
    let mut answered = 0;
    loop {
        let mut req = Notif::default();
        // SAFETY: `req` is a zeroed seccomp_notif of the size the ioctl encodes.
        if unsafe { libc::ioctl(fd.as_raw_fd(), NOTIF_RECV, &mut req) } != 0 {
            return answered;
        }
        let resp = NotifResp {
            id: req.id,
            val: 0,
            error: -libc::ENAMETOOLONG,
            flags: 0,
        };
        // SAFETY: `resp` is a seccomp_notif_resp of the size the ioctl encodes.
        if unsafe { libc::ioctl(fd.as_raw_fd(), NOTIF_SEND, &resp) } == 0 {
            answered += 1;
        }
    }
}

#[test]
fn the_agent_gets_the_state_and_answers_syscalls() {
    let sb = Sandbox::new("notify");
    let sock = sb.dir.join("agent.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let agent = std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        let (msg, fd) = recv_message(conn.as_raw_fd());
        drop(conn);
        (msg, answer(&fd))
    });

    let mut cfg = sb.config(&[
        "sh",
        "-c",
        "mkdir /made-here; test ! -e /made-here && echo denied",
    ]);
    cfg["root"]["readonly"] = json!(false);
    cfg["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": sock,
        "listenerMetadata": "agent-meta",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
    });
    sb.write_config(&cfg);
    let id = sb.id("c");
    let (status, out, err) = sb.run(&id);
    assert_eq!(status, 0, "stdout {out:?} stderr {err:?}");
    assert!(
        err.contains("File name too long"),
        "the agent's answer: {err}"
    );
    assert_eq!(out.trim(), "denied");

    let (msg, answered) = agent.join().unwrap();
    assert!(answered >= 1, "the agent answered nothing");
    assert_eq!(msg["fds"], json!(["seccompFd"]));
    assert_eq!(msg["metadata"], "agent-meta");
    assert_eq!(msg["state"]["id"], id);
    assert!(msg["pid"].as_i64().unwrap() > 0);
    assert_eq!(msg["state"]["pid"], msg["pid"]);
    sb.assert_clean(&id);
}

#[test]
fn notify_without_a_listener_path_is_an_error() {
    let sb = Sandbox::new("notifynopath");
    let mut cfg = sb.config(&["true"]);
    cfg["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]
    });
    sb.write_config(&cfg);
    let id = sb.id("c");
    let out = sb.ocirun(&["create", &id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("listenerPath"), "{}", stderr(&out));
    sb.assert_clean(&id);
}
