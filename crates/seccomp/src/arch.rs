//! Architectures a filter can cover and their kernel (`AUDIT_ARCH_*`) values.

use oci_spec::runtime::Arch;

/// `AUDIT_ARCH_X86_64`: x86_64 and x32 syscalls both report it.
pub(crate) const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
/// `AUDIT_ARCH_I386`.
pub(crate) const AUDIT_ARCH_I386: u32 = 0x4000_0003;
/// `AUDIT_ARCH_AARCH64`.
pub(crate) const AUDIT_ARCH_AARCH64: u32 = 0xc000_00b7;
/// `AUDIT_ARCH_ARM` (EABI, little endian).
pub(crate) const AUDIT_ARCH_ARM: u32 = 0x4000_0028;

/// x32 syscalls are x86_64 syscalls with this bit set in the number.
pub(crate) const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// A syscall ABI a filter can cover: the native one of a kernel and the
/// compat ABIs that kernel also runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TargetArch {
    /// x86_64 (64-bit).
    X86_64,
    /// i386, run by x86_64 kernels as a compat ABI.
    X86,
    /// x32 (ILP32 on x86_64), numbers carry `__X32_SYSCALL_BIT`.
    X32,
    /// AArch64.
    Aarch64,
    /// 32-bit ARM EABI, run by arm64 kernels as a compat ABI.
    Arm,
}

impl TargetArch {
    /// Every ABI this crate has a syscall table for.
    pub const ALL: [TargetArch; 5] = [
        TargetArch::X86_64,
        TargetArch::X86,
        TargetArch::X32,
        TargetArch::Aarch64,
        TargetArch::Arm,
    ];

    /// The ABI of the machine this code was built for, if a filter can be built for it.
    pub fn native() -> Option<TargetArch> {
        if cfg!(target_arch = "x86_64") {
            Some(TargetArch::X86_64)
        } else if cfg!(target_arch = "aarch64") {
            Some(TargetArch::Aarch64)
        } else if cfg!(target_arch = "x86") {
            Some(TargetArch::X86)
        } else if cfg!(target_arch = "arm") {
            Some(TargetArch::Arm)
        } else {
            None
        }
    }

    /// The OCI / libseccomp name, e.g. `SCMP_ARCH_X86_64`.
    pub fn oci_name(self) -> &'static str {
        match self {
            TargetArch::X86_64 => "SCMP_ARCH_X86_64",
            TargetArch::X86 => "SCMP_ARCH_X86",
            TargetArch::X32 => "SCMP_ARCH_X32",
            TargetArch::Aarch64 => "SCMP_ARCH_AARCH64",
            TargetArch::Arm => "SCMP_ARCH_ARM",
        }
    }

    /// The oci-spec enum value for this ABI.
    pub(crate) fn to_oci(self) -> Arch {
        match self {
            TargetArch::X86_64 => Arch::ScmpArchX86_64,
            TargetArch::X86 => Arch::ScmpArchX86,
            TargetArch::X32 => Arch::ScmpArchX32,
            TargetArch::Aarch64 => Arch::ScmpArchAarch64,
            TargetArch::Arm => Arch::ScmpArchArm,
        }
    }

    /// Maps an OCI arch onto one of ours; `SCMP_ARCH_NATIVE` means `native`.
    pub(crate) fn from_oci(arch: Arch, native: TargetArch) -> Option<TargetArch> {
        match arch {
            Arch::ScmpArchNative => Some(native),
            Arch::ScmpArchX86_64 => Some(TargetArch::X86_64),
            Arch::ScmpArchX86 => Some(TargetArch::X86),
            Arch::ScmpArchX32 => Some(TargetArch::X32),
            Arch::ScmpArchAarch64 => Some(TargetArch::Aarch64),
            Arch::ScmpArchArm => Some(TargetArch::Arm),
            _ => None,
        }
    }

    /// The value the kernel puts in `seccomp_data.arch` for this ABI.
    pub(crate) fn audit_arch(self) -> u32 {
        match self {
            TargetArch::X86_64 | TargetArch::X32 => AUDIT_ARCH_X86_64,
            TargetArch::X86 => AUDIT_ARCH_I386,
            TargetArch::Aarch64 => AUDIT_ARCH_AARCH64,
            TargetArch::Arm => AUDIT_ARCH_ARM,
        }
    }

    /// Whether syscall arguments are compared as 64-bit values. libseccomp
    /// treats x32 as a 32-bit ABI (only the low word is compared), and so do we.
    pub(crate) fn has_64bit_args(self) -> bool {
        matches!(self, TargetArch::X86_64 | TargetArch::Aarch64)
    }

    /// ABIs a kernel of this native arch also runs, so a filter must be able to cover them.
    pub(crate) fn compat(self) -> &'static [TargetArch] {
        match self {
            TargetArch::X86_64 => &[TargetArch::X86, TargetArch::X32],
            TargetArch::Aarch64 => &[TargetArch::Arm],
            TargetArch::X86 | TargetArch::X32 | TargetArch::Arm => &[],
        }
    }

    /// Whether this ABI can be the native one of a kernel.
    pub(crate) fn can_be_native(self) -> bool {
        self != TargetArch::X32
    }
}
