//! The library's error type: one variant per kind of failure, each saying which step failed,
//! on what, and why. Errors from the container's init arrive as typed values (`InitError`).

use std::path::PathBuf;

use thiserror::Error;

use crate::errno::Errno;
use crate::hooks::HookError;
use crate::init::InitError;
use crate::namespaces::NamespaceError;
use crate::spec::SpecError;
use crate::store::StoreError;

/// Any failure of a libsandbox operation.
#[derive(Debug, Error)]
pub enum Error {
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Init(#[from] InitError),
    #[error(transparent)]
    Exec(crate::exec::ExecError),
    #[error(transparent)]
    Hook(#[from] HookError),
    #[error(transparent)]
    Namespace(#[from] NamespaceError),
    #[error(transparent)]
    Cgroup(cgroups::Error),
    #[error(transparent)]
    Seccomp(seccomp::Error),
    #[error("{op} {path}: {errno}")]
    Io {
        op: &'static str,
        path: PathBuf,
        errno: Errno,
    },
    #[error("{step}: {errno}")]
    Sys { step: String, errno: Errno },
    #[error("{}", describe_death(*.status, .cause))]
    InitDied { status: Option<i32>, cause: String },
    #[error("{0}")]
    Usage(String),
    /// The container is not in a state that allows the operation (message names both).
    #[error("{0}")]
    State(String),
}

fn describe_death(status: Option<i32>, cause: &str) -> String {
    match status {
        Some(s) if s > 128 => format!(
            "the container's init was killed by signal {} during setup ({cause})",
            s - 128
        ),
        Some(s) => format!("the container's init exited with status {s} during setup ({cause})"),
        None => format!("the container's init went away during setup ({cause})"),
    }
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
