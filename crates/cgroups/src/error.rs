//! The crate's one error type. Every message names what was touched (file, value) and the errno,
//! so the user sees e.g. `write "max" to /sys/fs/cgroup/pids/foo/pids.max: invalid argument`.

use std::fmt;
use std::path::PathBuf;

/// An errno with a lower-case message, without Rust's "(os error N)" suffix.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Errno(pub i32);

impl Errno {
    /// The errno of the last failed libc call.
    pub fn last() -> Self {
        Errno(
            std::io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EIO),
        )
    }

    pub(crate) fn from_io(err: &std::io::Error) -> Self {
        Errno(err.raw_os_error().unwrap_or(libc::EIO))
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = std::io::Error::from_raw_os_error(self.0).to_string();
        // std renders "Invalid argument (os error 22)"; keep only the text, lower-cased like strerror
        // output in runc's messages.
        let text = text.split(" (os error").next().unwrap_or(&text);
        let mut chars = text.chars();
        match chars.next() {
            Some(first) => write!(f, "{}{}", first.to_lowercase(), chars.as_str()),
            None => write!(f, "errno {}", self.0),
        }
    }
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Errno({}: {self})", self.0)
    }
}

impl std::error::Error for Errno {}

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("write {value:?} to {}: {errno}", path.display())]
    Write {
        path: PathBuf,
        value: String,
        errno: Errno,
    },
    #[error("read {}: {errno}", path.display())]
    Read { path: PathBuf, errno: Errno },
    #[error("parse {}: unexpected content {content:?}", path.display())]
    Parse { path: PathBuf, content: String },
    #[error("create cgroup {}: {errno}", path.display())]
    Mkdir { path: PathBuf, errno: Errno },
    #[error("remove cgroup {}: {errno}", path.display())]
    Remove { path: PathBuf, errno: Errno },
    #[error("open {}: {errno}", path.display())]
    Open { path: PathBuf, errno: Errno },
    #[error("no cgroup filesystem is mounted at /sys/fs/cgroup")]
    NoCgroupFs,
    #[error("invalid cgroupsPath {path:?}: {reason}")]
    InvalidPath { path: String, reason: &'static str },
    #[error("linux.resources.{field}: {reason}")]
    InvalidResource { field: &'static str, reason: String },
    #[error(
        "linux.resources.{field} needs the {controller} cgroup controller, which this host does not have"
    )]
    ControllerMissing {
        field: &'static str,
        controller: &'static str,
    },
    #[error(
        "linux.resources.unified is only supported on cgroup v2 (this host uses cgroup v1 for {key:?})"
    )]
    UnifiedOnV1 { key: String },
    #[error(
        "--systemd-cgroup: systemd is not running as PID 1 on this host; use the cgroupfs driver (drop --systemd-cgroup)"
    )]
    SystemdNotRunning,
    #[error("--systemd-cgroup: {0}")]
    Systemd(#[from] crate::systemd::SystemdError),
    #[error("bpf {op}: {errno}{}", if log.is_empty() { String::new() } else { format!(" (verifier: {log})") })]
    Bpf {
        op: &'static str,
        errno: Errno,
        log: String,
    },
    #[error("{what}: {errno}")]
    Sys { what: String, errno: Errno },
    #[error("cgroup {} still has processes after {attempts} attempts to remove it", path.display())]
    Busy { path: PathBuf, attempts: u32 },
    #[error("cgroup {} did not reach state {state} (it reads {current:?})", path.display())]
    Freeze {
        path: PathBuf,
        state: &'static str,
        current: String,
    },
}

/// Short alias used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The errno behind this error, when there is one (lets callers react to EBUSY, ENOENT, ...).
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Write { errno, .. }
            | Error::Read { errno, .. }
            | Error::Mkdir { errno, .. }
            | Error::Remove { errno, .. }
            | Error::Open { errno, .. }
            | Error::Bpf { errno, .. }
            | Error::Sys { errno, .. } => Some(errno.0),
            _ => None,
        }
    }

    /// Whether the error says the cgroup is gone: ENOENT when a file is opened after the
    /// cgroup was removed, ENODEV when it is read or written through a descriptor opened
    /// before (systemd prunes a dead scope's cgroup at any moment).
    pub fn cgroup_gone(&self) -> bool {
        matches!(self.errno(), Some(libc::ENOENT | libc::ENODEV))
    }
}
