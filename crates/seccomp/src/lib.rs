//! OCI seccomp profiles (`linux.seccomp`) compiled to seccomp BPF in pure
//! Rust, with the semantics runc gets from libseccomp, and installed with
//! seccomp(2).
//!
//! ```no_run
//! # fn demo(spec: &oci_spec::runtime::LinuxSeccomp) -> seccomp::Result<()> {
//! let filter = seccomp::compile(spec)?;          // at create time; cacheable
//! let bytes = filter.to_bytes();                  // e.g. into the state dir for exec
//! let filter = seccomp::Filter::from_bytes(&bytes)?;
//! // ... in the container process, right before execve:
//! let notify_fd = seccomp::install(&filter)?;     // Some(fd) with SCMP_ACT_NOTIFY
//! # let _ = notify_fd; Ok(()) }
//! ```
//!
//! The program is generated here rather than by `seccompiler`: that crate
//! has one match action per filter, one architecture, and no NOTIFY, while
//! OCI profiles need per-rule actions and errnos, several ABIs and
//! libseccomp's rule semantics. See `rules` and `codegen` for what exactly
//! is matched.

mod action;
mod arch;
mod bpf;
mod codegen;
mod error;
mod features;
mod filter;
mod flags;
mod install;
mod notify;
mod rules;
mod syscalls;

use oci_spec::runtime::LinuxSeccomp;

pub use arch::TargetArch;
pub use error::{Error, Result};
pub use features::features;
pub use filter::Filter;
pub use install::install;
pub use notify::send_to_listener;
pub use syscalls::syscall_number;

/// Compiles `spec` for the architecture this code runs on.
pub fn compile(spec: &LinuxSeccomp) -> Result<Filter> {
    let native = TargetArch::native()
        .ok_or_else(|| Error::UnsupportedArch(std::env::consts::ARCH.to_string()))?;
    compile_for(spec, native)
}

/// Compiles `spec` for a kernel whose native ABI is `native`; the filter
/// also covers the compat ABIs the profile lists (x86 and x32 on x86_64,
/// arm on aarch64).
pub fn compile_for(spec: &LinuxSeccomp, native: TargetArch) -> Result<Filter> {
    if !native.can_be_native() {
        return Err(Error::UnsupportedArch(native.oci_name().to_string()));
    }
    let profile = rules::resolve(spec, native)?;
    let program = codegen::generate(&profile, native)?;
    Ok(Filter {
        program,
        flags: profile.flags,
        arch: native,
        unknown_syscalls: profile.unknown_names,
    })
}
