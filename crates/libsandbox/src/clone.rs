//! `clone3(2)`: the one fork of the runtime that becomes the container's init.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use crate::errno::Errno;

#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

const CLONE_PIDFD: u64 = 0x1000;
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// Which side of the fork we are on.
pub enum Forked {
    /// In the parent: the child's pid and a pidfd for it.
    Parent { pid: i32, pidfd: OwnedFd },
    /// In the child.
    Child,
}

/// Forks with `flags` (namespace flags), optionally straight into the cgroup `cgroup` (v2), and
/// always with a pidfd for the child.
///
/// # Safety
/// The caller must be single-threaded: the child is a copy of this one thread, and anything
/// another thread held (a lock, say) would stay held forever in the child. The child must leave
/// through `execve` or `_exit`, never by returning into the parent's frames.
pub unsafe fn clone3(flags: u64, cgroup: Option<BorrowedFd<'_>>) -> Result<Forked, Errno> {
    let mut pidfd: libc::c_int = -1;
    let mut args = CloneArgs {
        flags: flags | CLONE_PIDFD,
        pidfd: &mut pidfd as *mut libc::c_int as u64,
        exit_signal: libc::SIGCHLD as u64,
        ..Default::default()
    };
    if let Some(cg) = cgroup {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = cg.as_raw_fd() as u64;
    }
    // SAFETY: `args` is a valid clone_args of the size passed; with no CLONE_VM and no stack the
    // child runs on a copy of our address space, like fork(2). The caller upholds the
    // single-thread requirement.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match ret {
        -1 => Err(Errno::last()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent {
            pid: pid as i32,
            // SAFETY: with CLONE_PIDFD the kernel stored a new fd that we now own.
            pidfd: unsafe { OwnedFd::from_raw_fd(pidfd) },
        }),
    }
}

/// Waits for the child behind `pidfd` and returns its wait status (exit code or 128+signal).
pub fn wait(pidfd: &OwnedFd) -> Result<i32, Errno> {
    loop {
        // SAFETY: siginfo_t is plain data; zeroed is a valid initial state.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: waitid with P_PIDFD and a valid out-pointer.
        let ret = unsafe {
            libc::waitid(
                libc::P_PIDFD,
                pidfd.as_raw_fd() as libc::id_t,
                &mut info,
                libc::WEXITED,
            )
        };
        if ret == 0 {
            // SAFETY: waitid filled `info` for an exited child.
            let (code, status) = unsafe { (info.si_code, info.si_status()) };
            return Ok(if code == libc::CLD_EXITED {
                status
            } else {
                128 + status
            });
        }
        let e = Errno::last();
        if e.0 != libc::EINTR {
            return Err(e);
        }
    }
}
