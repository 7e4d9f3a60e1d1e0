//! The crate's single error type.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong while compiling, loading or installing a
/// seccomp filter, or handing its notify fd to a listener.
///
/// Profile errors name the offending field the way the OCI runtime spec
/// spells it (`linux.seccomp.syscalls[3].args[0].index`), so a user can find
/// it in their `config.json`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A field of `linux.seccomp` has a value the runtime cannot use.
    #[error("{field}: {reason}")]
    InvalidProfile { field: String, reason: String },

    /// Two rules for the same syscall match the same arguments with
    /// different actions (libseccomp refuses these with EEXIST, so runc fails too).
    #[error("linux.seccomp.syscalls[{rule}]: syscall {syscall}: {reason}")]
    ConflictingRules {
        rule: usize,
        syscall: String,
        reason: String,
    },

    /// The compiled program does not fit in one kernel filter.
    #[error("the seccomp program has {0} instructions, more than the kernel's limit of 4096")]
    ProgramTooLarge(usize),

    /// The filter cannot be built for this architecture.
    #[error("seccomp filters cannot be built for architecture {0}")]
    UnsupportedArch(String),

    /// `Filter::from_bytes` was given something that is not a serialized filter.
    #[error("invalid serialized seccomp filter: {0}")]
    InvalidSerializedFilter(&'static str),

    /// The filter asks for a seccomp(2) flag the running kernel does not know.
    #[error("seccomp filter flag {0} is not supported by this kernel")]
    FlagUnsupported(&'static str),

    /// The kernel refuses filters from a process that has neither
    /// no_new_privs set nor CAP_SYS_ADMIN.
    #[error(
        "installing the seccomp filter requires no_new_privs or CAP_SYS_ADMIN \
         (process.noNewPrivileges is false and the process lacks CAP_SYS_ADMIN)"
    )]
    NeedsNoNewPrivsOrCapSysAdmin,

    /// TSYNC could not move another thread of the process onto the filter.
    #[error("seccomp TSYNC: thread {0} could not be synchronized to the new filter")]
    TsyncFailed(i64),

    /// seccomp(2) failed for another reason.
    #[error("seccomp(SECCOMP_SET_MODE_FILTER, flags {flags:#x}): {source}")]
    Install { flags: u32, source: io::Error },

    /// Talking to the seccomp agent at `listenerPath` failed.
    #[error("seccomp listener {path}: {op}: {source}")]
    Listener {
        path: PathBuf,
        op: &'static str,
        source: io::Error,
    },

    /// The container process state could not be serialized.
    #[error("serializing the container process state for the seccomp listener: {0}")]
    StateJson(#[from] serde_json::Error),
}

/// Shorthand used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Builds an [`Error::InvalidProfile`] for `field`.
pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Error {
    Error::InvalidProfile {
        field: field.into(),
        reason: reason.into(),
    }
}
