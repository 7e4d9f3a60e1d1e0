//! Loading a filter into the kernel with seccomp(2).

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

use crate::error::{Error, Result};
use crate::filter::Filter;
use crate::flags;

const SECCOMP_SET_MODE_FILTER: libc::c_uint = 1;
const SECCOMP_GET_ACTION_AVAIL: libc::c_uint = 2;

/// Installs `filter` on the calling thread (all threads with TSYNC) and
/// returns the notify fd when the filter uses SCMP_ACT_NOTIFY.
///
/// Call it as the last step before execve: every later syscall of the
/// process goes through the filter. The caller decides about no_new_privs;
/// without it the process needs CAP_SYS_ADMIN, and
/// [`Error::NeedsNoNewPrivsOrCapSysAdmin`] says so otherwise.
pub fn install(filter: &Filter) -> Result<Option<OwnedFd>> {
    let program = libc::sock_fprog {
        len: u16::try_from(filter.program.len())
            .map_err(|_| Error::ProgramTooLarge(filter.program.len()))?,
        // The kernel only reads the program; `Instruction` has the layout of `sock_filter`.
        filter: filter
            .program
            .as_ptr()
            .cast::<libc::sock_filter>()
            .cast_mut(),
    };
    // SAFETY: `program` points at `filter.program`, which outlives the call;
    // the kernel copies the program and does not keep the pointer.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_SET_MODE_FILTER,
            filter.flags,
            &program as *const libc::sock_fprog,
        )
    };
    if rc < 0 {
        let err = io::Error::last_os_error();
        return Err(match err.raw_os_error() {
            Some(libc::EACCES) => Error::NeedsNoNewPrivsOrCapSysAdmin,
            Some(libc::EINVAL) => match first_unsupported_flag(filter.flags) {
                Some(flag) => Error::FlagUnsupported(flags::name(flag)),
                None => Error::Install {
                    flags: filter.flags,
                    source: err,
                },
            },
            _ => Error::Install {
                flags: filter.flags,
                source: err,
            },
        });
    }
    if filter.flags & flags::NEW_LISTENER != 0 {
        let fd = i32::try_from(rc).map_err(|_| Error::Install {
            flags: filter.flags,
            source: io::Error::other("seccomp returned an fd out of range"),
        })?;
        // SAFETY: with NEW_LISTENER, a successful seccomp(2) returns a new fd that we now own.
        return Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) }));
    }
    if rc > 0 && filter.flags & flags::TSYNC != 0 {
        // Without TSYNC_ESRCH, TSYNC reports the thread it could not move as the return value.
        return Err(Error::TsyncFailed(rc));
    }
    Ok(None)
}

/// Whether the kernel knows seccomp(2) filter flag(s) `bits`: with a NULL
/// program a known flag set fails with EFAULT, an unknown one with EINVAL
/// (the probe libseccomp uses; nothing is installed either way).
pub(crate) fn kernel_knows_flags(bits: u32) -> bool {
    // WAIT_KILLABLE_RECV is only valid together with NEW_LISTENER.
    let bits = if bits & flags::WAIT_KILLABLE_RECV != 0 {
        bits | flags::NEW_LISTENER
    } else {
        bits
    };
    // SAFETY: a NULL program makes the kernel fail before it installs anything.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_SET_MODE_FILTER,
            bits,
            std::ptr::null::<libc::sock_fprog>(),
        )
    };
    rc < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EFAULT)
}

fn first_unsupported_flag(bits: u32) -> Option<u32> {
    (0..32)
        .map(|shift| 1u32 << shift)
        .filter(|bit| bits & bit != 0)
        .find(|bit| !kernel_knows_flags(*bit))
}

/// Whether the kernel implements filter return action `action` (`SECCOMP_RET_*`).
pub(crate) fn kernel_knows_action(action: u32) -> bool {
    // SAFETY: the kernel reads one u32 from the pointer, which is valid for the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_GET_ACTION_AVAIL,
            0,
            &action as *const u32,
        )
    };
    rc == 0
}
