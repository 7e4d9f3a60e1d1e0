//! OCI actions -> the `SECCOMP_RET_*` values a filter returns.

use oci_spec::runtime::LinuxSeccompAction;

use crate::error::{Result, invalid};

pub(crate) const RET_KILL_PROCESS: u32 = 0x8000_0000;
pub(crate) const RET_KILL_THREAD: u32 = 0x0000_0000;
pub(crate) const RET_TRAP: u32 = 0x0003_0000;
pub(crate) const RET_ERRNO: u32 = 0x0005_0000;
pub(crate) const RET_USER_NOTIF: u32 = 0x7fc0_0000;
pub(crate) const RET_TRACE: u32 = 0x7ff0_0000;
pub(crate) const RET_LOG: u32 = 0x7ffc_0000;
pub(crate) const RET_ALLOW: u32 = 0x7fff_0000;

/// What an unknown architecture gets: libseccomp's default bad-arch action
/// (`SCMP_ACT_KILL`, i.e. kill the thread).
pub(crate) const RET_BAD_ARCH: u32 = RET_KILL_THREAD;

/// `SECCOMP_RET_ERRNO | ENOSYS`: what runc returns for syscalls newer than the profile.
pub(crate) const RET_ENOSYS: u32 = RET_ERRNO | libc::ENOSYS as u32;

/// The errno ERRNO and TRACE carry when the profile gives none (runc uses EPERM).
const DEFAULT_ERRNO: u32 = libc::EPERM as u32;

/// The filter return value for `action` with its optional `errnoRet`
/// (`field` names the errnoRet field for error messages).
///
/// As in runc, `errnoRet` only matters for ERRNO and TRACE; other actions ignore it.
pub(crate) fn ret_value(
    action: LinuxSeccompAction,
    errno_ret: Option<u32>,
    field: impl FnOnce() -> String,
) -> Result<u32> {
    let data = |base: u32| -> Result<u32> {
        let errno = errno_ret.unwrap_or(DEFAULT_ERRNO);
        // SECCOMP_RET_DATA is 16 bits wide; anything larger would be silently cut.
        if errno > 0xffff {
            return Err(invalid(
                field(),
                format!("{errno} does not fit in the 16-bit SECCOMP_RET_DATA field"),
            ));
        }
        Ok(base | errno)
    };
    Ok(match action {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => RET_KILL_THREAD,
        LinuxSeccompAction::ScmpActKillProcess => RET_KILL_PROCESS,
        LinuxSeccompAction::ScmpActTrap => RET_TRAP,
        LinuxSeccompAction::ScmpActErrno => data(RET_ERRNO)?,
        LinuxSeccompAction::ScmpActTrace => data(RET_TRACE)?,
        LinuxSeccompAction::ScmpActNotify => RET_USER_NOTIF,
        LinuxSeccompAction::ScmpActLog => RET_LOG,
        LinuxSeccompAction::ScmpActAllow => RET_ALLOW,
    })
}

/// runc adds its ENOSYS stub only when the default action is not
/// permissive: a tracer is expected to handle new syscalls itself.
pub(crate) fn is_permissive(ret: u32) -> bool {
    matches!(ret & 0xffff_0000, RET_ALLOW | RET_LOG | RET_TRACE)
}

/// The kernel action value without its data, as `SECCOMP_GET_ACTION_AVAIL` takes it.
pub(crate) fn kernel_action(action: LinuxSeccompAction) -> u32 {
    match action {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => RET_KILL_THREAD,
        LinuxSeccompAction::ScmpActKillProcess => RET_KILL_PROCESS,
        LinuxSeccompAction::ScmpActTrap => RET_TRAP,
        LinuxSeccompAction::ScmpActErrno => RET_ERRNO,
        LinuxSeccompAction::ScmpActTrace => RET_TRACE,
        LinuxSeccompAction::ScmpActNotify => RET_USER_NOTIF,
        LinuxSeccompAction::ScmpActLog => RET_LOG,
        LinuxSeccompAction::ScmpActAllow => RET_ALLOW,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values() {
        let f = || "f".to_string();
        assert_eq!(
            ret_value(LinuxSeccompAction::ScmpActErrno, None, f).unwrap(),
            0x0005_0001
        );
        assert_eq!(
            ret_value(LinuxSeccompAction::ScmpActErrno, Some(38), f).unwrap(),
            0x0005_0026
        );
        assert_eq!(
            ret_value(LinuxSeccompAction::ScmpActTrace, None, f).unwrap(),
            0x7ff0_0001
        );
        assert_eq!(
            ret_value(LinuxSeccompAction::ScmpActKill, None, f).unwrap(),
            0
        );
        assert_eq!(
            ret_value(LinuxSeccompAction::ScmpActAllow, Some(5), f).unwrap(),
            RET_ALLOW
        );
        let err = ret_value(LinuxSeccompAction::ScmpActErrno, Some(70000), f).unwrap_err();
        assert!(err.to_string().starts_with("f: 70000"), "{err}");
        assert!(is_permissive(RET_TRACE | 3));
        assert!(!is_permissive(RET_ERRNO | 1));
    }
}
