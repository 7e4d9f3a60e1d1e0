//! A container's record: what the runtime remembers between commands, and the OCI state it
//! reports.

use std::collections::HashMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::sys;

/// The OCI runtime spec version this runtime implements.
pub const OCI_VERSION: &str = "1.0.2-dev";

/// A container's status, as `state` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the runtime stores in `<root>/<id>/state.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    /// The container's init, as seen from the runtime's pid namespace.
    pub pid: i32,
    /// The init's start time (field 22 of `/proc/<pid>/stat`): with the pid it identifies the
    /// process, so a recycled pid is never mistaken for the container.
    pub pid_start_time: u64,
    /// `created` until `start` succeeds, then `running`. Whether the init still lives is checked
    /// on every read.
    pub status: Status,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub owner: String,
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    /// The cgroup manager's description, opaque to this module.
    #[serde(default)]
    pub cgroup: Option<serde_json::Value>,
    /// Whether the container shares the runtime's pid namespace (then `kill --all` and `delete`
    /// must reach every process through the cgroup).
    #[serde(default)]
    pub shared_pid_ns: bool,
}

/// The OCI state (`state` output and hook stdin), in runc's field order.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OciState {
    #[serde(rename = "ociVersion")]
    pub oci_version: String,
    pub id: String,
    pub pid: i32,
    pub status: Status,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub owner: String,
    #[serde(default, skip_serializing_if = "HashMap::is_empty")]
    pub annotations: HashMap<String, String>,
}

impl OciState {
    /// The same state as oci-spec's type (for the seccomp agent message).
    pub fn to_spec_state(&self) -> oci_spec::runtime::State {
        serde_json::to_value(self)
            .and_then(serde_json::from_value)
            .unwrap_or_default()
    }
}

impl Record {
    /// The OCI view of this record with `status` (pid 0 once stopped, as runc reports).
    pub fn oci_state(&self, status: Status) -> OciState {
        OciState {
            oci_version: OCI_VERSION.to_owned(),
            id: self.id.clone(),
            pid: if status == Status::Stopped {
                0
            } else {
                self.pid
            },
            status,
            bundle: self.bundle.clone(),
            rootfs: self.rootfs.clone(),
            created: self.created.clone(),
            owner: self.owner.clone(),
            annotations: self.annotations.clone(),
        }
    }

    /// Whether the recorded init still exists (and is not a zombie).
    pub fn init_alive(&self) -> bool {
        self.pid > 0
            && match process_start_time(self.pid) {
                Some((start, state)) => {
                    start == self.pid_start_time && state != 'Z' && state != 'X'
                }
                None => false,
            }
    }
}

/// The start time and state letter of `pid` from `/proc/<pid>/stat`.
pub fn process_start_time(pid: i32) -> Option<(u64, char)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    let rest = &text[text.rfind(')')? + 2..];
    let mut fields = rest.split(' ');
    let state = fields.next()?.chars().next()?;
    // `rest` starts at field 3; the start time is field 22.
    let start = fields.nth(18)?.parse().ok()?;
    Some((start, state))
}

/// The current user's name for the `owner` field: runc leaves it empty for root-run containers.
pub fn owner() -> String {
    String::new()
}

/// Opens a pidfd for the recorded init, checking that the pid was not recycled.
pub fn pidfd(record: &Record) -> Option<std::os::fd::OwnedFd> {
    let fd = sys::pidfd_open(record.pid).ok()?;
    // The pidfd pins the process: if the start time still matches now, the fd refers to our init.
    match process_start_time(record.pid) {
        Some((start, _)) if start == record.pid_start_time => Some(fd),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_start_time() {
        let (start, state) = process_start_time(std::process::id() as i32).unwrap();
        assert!(start > 0);
        assert!(state == 'R' || state == 'S');
    }

    #[test]
    fn state_json_has_runc_fields() {
        let r = Record {
            id: "c1".into(),
            pid: 42,
            pid_start_time: 1,
            status: Status::Running,
            bundle: "/b".into(),
            rootfs: "/b/rootfs".into(),
            created: "2026-01-01T00:00:00.000000000Z".into(),
            owner: String::new(),
            annotations: HashMap::new(),
            cgroup: None,
            shared_pid_ns: false,
        };
        let v = serde_json::to_value(r.oci_state(Status::Stopped)).unwrap();
        assert_eq!(v["pid"], 0);
        assert_eq!(v["status"], "stopped");
        assert_eq!(v["ociVersion"], OCI_VERSION);
        assert!(v.get("annotations").is_none());
    }
}
