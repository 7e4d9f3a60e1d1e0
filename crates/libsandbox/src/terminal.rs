//! `process.terminal`: a pty from the container's own devpts, its master sent to the caller's
//! console socket, its peer as the process's stdio, controlling terminal and `/dev/console`.
//!
//! The peer is obtained from the master with `TIOCGPTPEER` instead of opening `/dev/pts/N` by
//! name, so a container that swaps `/dev/pts/N` cannot make us bind something else over
//! `/dev/console` (CVE-2025-52565).

use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::Path;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::errno::{Errno, check};
use crate::safepath;
use crate::sys::mount_api;

const DEVPTS_SUPER_MAGIC: i64 = 0x1cd1;

/// A terminal step that failed.
#[derive(Debug, Error, Serialize, Deserialize)]
pub enum TerminalError {
    #[error("open the container's /dev/pts/ptmx: {errno}")]
    OpenPtmx { errno: Errno },
    #[error("the container's /dev/pts/ptmx is not on a devpts filesystem")]
    NotDevpts,
    #[error("set up the pty ({step}): {errno}")]
    Pty { step: String, errno: Errno },
    #[error("send the pty master to the console socket: {errno}")]
    Send { errno: Errno },
    #[error("bind the pty on /dev/console: {errno}")]
    Console { errno: Errno },
}

/// A new pty pair.
pub struct Pty {
    pub master: OwnedFd,
    pub peer: OwnedFd,
}

/// Opens a pty in the container's devpts instance (under `root`).
pub fn open(root: BorrowedFd<'_>, size: Option<(u16, u16)>) -> Result<Pty, TerminalError> {
    let master = safepath::open_in_root(
        root,
        Path::new("/dev/pts/ptmx"),
        libc::O_RDWR | libc::O_NOCTTY,
    )
    .map_err(|errno| TerminalError::OpenPtmx { errno })?;
    if crate::sys::fs_magic(master.as_fd()).map_err(|errno| TerminalError::OpenPtmx { errno })?
        != DEVPTS_SUPER_MAGIC
    {
        return Err(TerminalError::NotDevpts);
    }
    let pty_err = |step: &str| {
        let step = step.to_owned();
        move |errno| TerminalError::Pty { step, errno }
    };
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads one int from the pointer.
    check(unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) })
        .map_err(pty_err("unlock"))?;
    // SAFETY: TIOCGPTPEER takes open flags and returns a new fd for the peer.
    let peer = check(unsafe {
        libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    })
    .map_err(pty_err("open peer"))?;
    // SAFETY: `peer` is a new fd that we own.
    let peer = unsafe { OwnedFd::from_raw_fd(peer) };
    if let Some((height, width)) = size {
        let ws = libc::winsize {
            ws_row: height,
            ws_col: width,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads one winsize from the pointer.
        check(unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) })
            .map_err(pty_err("set size"))?;
    }
    Ok(Pty { master, peer })
}

/// Binds the pty peer over `/dev/console` in the rootfs.
pub fn bind_console(root: BorrowedFd<'_>, peer: &OwnedFd) -> Result<(), TerminalError> {
    let err = |errno| TerminalError::Console { errno };
    let target = safepath::ensure_file(root, Path::new("/dev/console"), 0o600).map_err(err)?;
    let tree = mount_api::clone_tree(peer.as_fd(), Path::new(""), false).map_err(err)?;
    mount_api::move_mount(tree.as_fd(), target.as_fd()).map_err(err)
}

/// Sends `master` over the connected console socket, the way runc does (SCM_RIGHTS with the
/// terminal's name as the payload).
pub fn send_master(socket: BorrowedFd<'_>, master: &OwnedFd) -> Result<(), TerminalError> {
    send_fd(socket, b"/dev/ptmx", master.as_fd()).map_err(|errno| TerminalError::Send { errno })
}

/// Sends one fd with `payload` over a unix socket.
pub fn send_fd(socket: BorrowedFd<'_>, payload: &[u8], fd: BorrowedFd<'_>) -> Result<(), Errno> {
    crate::channel::send_with_fds(socket, &[IoSlice::new(payload)], &[fd])
}

/// Makes the peer the controlling terminal and stdin/stdout/stderr of the calling process.
pub fn become_controlling(peer: &OwnedFd) -> Result<(), TerminalError> {
    let err = |step: &str| {
        let step = step.to_owned();
        move |errno| TerminalError::Pty { step, errno }
    };
    // SAFETY: TIOCSCTTY takes an int argument; we are a session leader (setsid was called).
    check(unsafe { libc::ioctl(peer.as_raw_fd(), libc::TIOCSCTTY, 0) })
        .map_err(err("make controlling terminal"))?;
    for target in 0..3 {
        // SAFETY: dup2 onto the standard descriptors, which we intend to replace.
        check(unsafe { libc::dup2(peer.as_raw_fd(), target) }).map_err(err("dup to stdio"))?;
    }
    Ok(())
}
