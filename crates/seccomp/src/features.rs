//! What `ocirun features` reports under `linux.seccomp`.

use oci_spec::runtime::{LinuxSeccompAction, Seccomp};

use crate::action::kernel_action;
use crate::arch::TargetArch;
use crate::flags::OCI_FLAGS;
use crate::install::{kernel_knows_action, kernel_knows_flags};

/// Every action an OCI profile can name.
const ACTIONS: [LinuxSeccompAction; 9] = [
    LinuxSeccompAction::ScmpActAllow,
    LinuxSeccompAction::ScmpActErrno,
    LinuxSeccompAction::ScmpActKill,
    LinuxSeccompAction::ScmpActKillProcess,
    LinuxSeccompAction::ScmpActKillThread,
    LinuxSeccompAction::ScmpActLog,
    LinuxSeccompAction::ScmpActNotify,
    LinuxSeccompAction::ScmpActTrace,
    LinuxSeccompAction::ScmpActTrap,
];

/// Every operator, all of them implemented.
const OPERATORS: [&str; 7] = [
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_LE",
    "SCMP_CMP_LT",
    "SCMP_CMP_MASKED_EQ",
    "SCMP_CMP_NE",
];

/// The seccomp support of this build on this kernel: actions the kernel
/// implements, all operators, the ABIs a filter built here covers (native
/// plus compat), the flags we know, and the subset the kernel supports.
pub fn features() -> Seccomp {
    let mut seccomp = Seccomp::default();
    let Some(native) = TargetArch::native() else {
        seccomp.set_enabled(Some(false));
        return seccomp;
    };
    let archs = std::iter::once(native)
        .chain(native.compat().iter().copied())
        .map(TargetArch::to_oci)
        .collect();
    seccomp
        .set_enabled(Some(true))
        .set_actions(Some(
            ACTIONS
                .into_iter()
                .filter(|action| kernel_knows_action(kernel_action(*action)))
                .collect(),
        ))
        .set_operators(Some(OPERATORS.iter().map(|op| op.to_string()).collect()))
        .set_archs(Some(archs))
        .set_known_flags(Some(
            OCI_FLAGS
                .iter()
                .map(|(_, _, name)| name.to_string())
                .collect(),
        ))
        .set_supported_flags(Some(
            OCI_FLAGS
                .iter()
                .filter(|(_, bit, _)| kernel_knows_flags(*bit))
                .map(|(_, _, name)| name.to_string())
                .collect(),
        ));
    seccomp
}
