//! seccomp(2) filter flags.

use oci_spec::runtime::LinuxSeccompFilterFlag;

pub(crate) const TSYNC: u32 = 1 << 0;
pub(crate) const LOG: u32 = 1 << 1;
pub(crate) const SPEC_ALLOW: u32 = 1 << 2;
pub(crate) const NEW_LISTENER: u32 = 1 << 3;
pub(crate) const TSYNC_ESRCH: u32 = 1 << 4;
pub(crate) const WAIT_KILLABLE_RECV: u32 = 1 << 5;

/// Every flag a filter may carry.
pub(crate) const ALL: u32 =
    TSYNC | LOG | SPEC_ALLOW | NEW_LISTENER | TSYNC_ESRCH | WAIT_KILLABLE_RECV;

/// The flags an OCI profile can ask for, with their spec names.
pub(crate) const OCI_FLAGS: [(LinuxSeccompFilterFlag, u32, &str); 4] = [
    (
        LinuxSeccompFilterFlag::SeccompFilterFlagTsync,
        TSYNC,
        "SECCOMP_FILTER_FLAG_TSYNC",
    ),
    (
        LinuxSeccompFilterFlag::SeccompFilterFlagLog,
        LOG,
        "SECCOMP_FILTER_FLAG_LOG",
    ),
    (
        LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow,
        SPEC_ALLOW,
        "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
    ),
    (
        LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv,
        WAIT_KILLABLE_RECV,
        "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
    ),
];

/// The seccomp(2) bits for the profile's `flags`.
pub(crate) fn from_spec(flags: &[LinuxSeccompFilterFlag]) -> u32 {
    flags
        .iter()
        .filter_map(|flag| OCI_FLAGS.iter().find(|(f, _, _)| f == flag))
        .fold(0, |bits, (_, bit, _)| bits | bit)
}

/// Makes a flag set the kernel accepts:
/// - TSYNC with NEW_LISTENER needs TSYNC_ESRCH (else the kernel could not
///   return both a thread id and an fd), as libseccomp does;
/// - WAIT_KILLABLE_RECV only means something with a listener, and the kernel
///   rejects it without one, so it is dropped then.
pub(crate) fn normalize(mut flags: u32) -> u32 {
    if flags & NEW_LISTENER == 0 {
        flags &= !WAIT_KILLABLE_RECV;
    } else if flags & TSYNC != 0 {
        flags |= TSYNC_ESRCH;
    }
    flags
}

/// The name of one flag bit, for error messages.
pub(crate) fn name(bit: u32) -> &'static str {
    match bit {
        TSYNC => "SECCOMP_FILTER_FLAG_TSYNC",
        LOG => "SECCOMP_FILTER_FLAG_LOG",
        SPEC_ALLOW => "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
        NEW_LISTENER => "SECCOMP_FILTER_FLAG_NEW_LISTENER",
        TSYNC_ESRCH => "SECCOMP_FILTER_FLAG_TSYNC_ESRCH",
        WAIT_KILLABLE_RECV => "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
        _ => "unknown seccomp flag",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalization() {
        assert_eq!(normalize(WAIT_KILLABLE_RECV | LOG), LOG);
        assert_eq!(
            normalize(TSYNC | NEW_LISTENER),
            TSYNC | NEW_LISTENER | TSYNC_ESRCH
        );
        assert_eq!(
            from_spec(&[
                LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow,
                LinuxSeccompFilterFlag::SeccompFilterFlagLog
            ]),
            SPEC_ALLOW | LOG
        );
    }
}
