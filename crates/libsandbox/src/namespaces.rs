//! Namespaces: which to create, which to join by path, id maps, and time offsets.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType, Spec};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::errno::{Errno, check};
use crate::procfs::ProcFs;
use crate::sys;

/// A namespace step that failed.
#[derive(Debug, Error, Serialize, Deserialize)]
pub enum NamespaceError {
    #[error("open {kind} namespace {path:?}: {errno}")]
    Open {
        kind: String,
        path: String,
        errno: Errno,
    },
    #[error("join {kind} namespace {path:?}: {errno}")]
    Join {
        kind: String,
        path: String,
        errno: Errno,
    },
    #[error("create {kinds} namespace: {errno}")]
    Unshare { kinds: String, errno: Errno },
    #[error("write {file} of pid {pid}: {errno}")]
    IdMap {
        file: String,
        pid: i32,
        errno: Errno,
    },
    #[error("set time namespace offsets: {errno}")]
    TimeOffsets { errno: Errno },
}

/// The `clone(2)` flag of a namespace type.
pub fn flag(t: LinuxNamespaceType) -> u64 {
    (match t {
        LinuxNamespaceType::Mount => libc::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => libc::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => libc::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => libc::CLONE_NEWIPC,
        LinuxNamespaceType::User => libc::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => libc::CLONE_NEWPID,
        LinuxNamespaceType::Network => libc::CLONE_NEWNET,
        LinuxNamespaceType::Time => libc::CLONE_NEWTIME,
    }) as u64
}

/// The `/proc/<pid>/ns/` name of a namespace type.
pub fn proc_name(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Time => "time",
    }
}

/// What the config asks for, split by how each namespace comes to be.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    /// Namespaces to create (a set of `CLONE_NEW*` flags).
    pub new: u64,
    /// Namespaces to join by path, user first (it decides what the others may do).
    pub join: Vec<(LinuxNamespaceType, PathBuf)>,
}

impl Plan {
    pub fn from_spec(spec: &Spec) -> Plan {
        let mut plan = Plan::default();
        let namespaces = spec
            .linux()
            .as_ref()
            .and_then(|l| l.namespaces().clone())
            .unwrap_or_default();
        for ns in namespaces {
            match ns.path() {
                Some(path) if !path.as_os_str().is_empty() => {
                    plan.join.push((ns.typ(), path.clone()))
                }
                _ => plan.new |= flag(ns.typ()),
            }
        }
        plan.join
            .sort_by_key(|(t, _)| if *t == LinuxNamespaceType::User { 0 } else { 1 });
        plan
    }

    pub fn creates(&self, t: LinuxNamespaceType) -> bool {
        self.new & flag(t) != 0
    }

    pub fn joins(&self, t: LinuxNamespaceType) -> Option<&Path> {
        self.join
            .iter()
            .find(|(k, _)| *k == t)
            .map(|(_, p)| p.as_path())
    }

    /// Whether the container has its own namespace of this type (new or joined).
    pub fn has(&self, t: LinuxNamespaceType) -> bool {
        self.creates(t) || self.joins(t).is_some()
    }
}

/// Opens a namespace file for `setns`.
pub fn open(t: LinuxNamespaceType, path: &Path) -> Result<OwnedFd, NamespaceError> {
    sys::openat(sys::cwd(), path, libc::O_RDONLY, 0).map_err(|errno| NamespaceError::Open {
        kind: crate::spec::ns_name(t).to_owned(),
        path: path.display().to_string(),
        errno,
    })
}

/// Joins the namespace `fd` refers to.
pub fn join(t: LinuxNamespaceType, fd: &OwnedFd, path: &Path) -> Result<(), NamespaceError> {
    // SAFETY: setns with a valid fd and a namespace type flag.
    check(unsafe { libc::setns(fd.as_raw_fd(), flag(t) as libc::c_int) })
        .map(|_| ())
        .map_err(|errno| NamespaceError::Join {
            kind: crate::spec::ns_name(t).to_owned(),
            path: path.display().to_string(),
            errno,
        })
}

/// `unshare(2)` of the given `CLONE_NEW*` flags.
pub fn unshare(flags: u64) -> Result<(), NamespaceError> {
    // SAFETY: unshare with namespace flags only.
    check(unsafe { libc::unshare(flags as libc::c_int) })
        .map(|_| ())
        .map_err(|errno| NamespaceError::Unshare {
            kinds: describe_flags(flags),
            errno,
        })
}

fn describe_flags(flags: u64) -> String {
    use LinuxNamespaceType::*;
    [User, Mount, Pid, Network, Ipc, Uts, Cgroup, Time]
        .into_iter()
        .filter(|t| flags & flag(*t) != 0)
        .map(crate::spec::ns_name)
        .collect::<Vec<_>>()
        .join("+")
}

fn map_text(maps: &[LinuxIdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}

/// Writes `uid_map` and `gid_map` of `pid` (a process in a new user namespace), from the
/// runtime's side through the host's verified procfs.
pub fn write_id_maps(
    proc: &ProcFs,
    pid: i32,
    uids: &[LinuxIdMapping],
    gids: &[LinuxIdMapping],
) -> Result<(), NamespaceError> {
    for (file, maps) in [("uid_map", uids), ("gid_map", gids)] {
        let rel = PathBuf::from(pid.to_string()).join(file);
        proc.write(&rel, map_text(maps).as_bytes())
            .map_err(|errno| NamespaceError::IdMap {
                file: file.to_owned(),
                pid,
                errno,
            })?;
    }
    Ok(())
}

/// Writes this process's `timens_offsets` (after `unshare(CLONE_NEWTIME)`, before any process
/// enters the new time namespace).
pub fn write_time_offsets(proc: &ProcFs, spec: &Spec) -> Result<(), NamespaceError> {
    let Some(offsets) = spec
        .linux()
        .as_ref()
        .and_then(|l| l.time_offsets().as_ref())
    else {
        return Ok(());
    };
    let mut text = String::new();
    for (clock, off) in offsets {
        text.push_str(&format!(
            "{clock} {} {}\n",
            off.secs().unwrap_or(0),
            off.nanosecs().unwrap_or(0)
        ));
    }
    if text.is_empty() {
        return Ok(());
    }
    let rel = PathBuf::from(std::process::id().to_string()).join("timens_offsets");
    proc.write(&rel, text.as_bytes())
        .map_err(|errno| NamespaceError::TimeOffsets { errno })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_splits_new_and_joined() {
        let spec: Spec = serde_json::from_str(
            r#"{"ociVersion":"1.0.2","linux":{"namespaces":[
                {"type":"pid"},{"type":"network","path":"/var/run/netns/x"},
                {"type":"mount"},{"type":"user","path":"/proc/1/ns/user"}]}}"#,
        )
        .unwrap();
        let plan = Plan::from_spec(&spec);
        assert_eq!(plan.new, (libc::CLONE_NEWPID | libc::CLONE_NEWNS) as u64);
        assert_eq!(plan.join[0].0, LinuxNamespaceType::User);
        assert!(plan.has(LinuxNamespaceType::Network));
        assert!(!plan.has(LinuxNamespaceType::Ipc));
    }

    #[test]
    fn id_maps_render_one_line_each() {
        let m: Vec<LinuxIdMapping> =
            serde_json::from_str(r#"[{"containerID":0,"hostID":1000,"size":1},{"containerID":1,"hostID":100000,"size":65536}]"#)
                .unwrap();
        assert_eq!(map_text(&m), "0 1000 1\n1 100000 65536\n");
    }
}
