//! The systemd cgroup driver (`--systemd-cgroup`): the container's cgroup is a transient scope
//! unit that systemd creates around the init's pid, with `Delegate=yes` so that the runtime
//! then writes every resource file itself, as with the cgroupfs driver. The limits systemd knows
//! about are also given as unit properties, so that systemd, which rewrites its units' cgroup
//! files on reloads, keeps the same values.
//!
//! `linux.cgroupsPath` is `slice:prefix:name` as runc reads it: the scope is `prefix-name.scope`
//! (`name.scope` without prefix) in `slice` (default `system.slice`; `-` is the root slice).
//! An empty path means `:ocirun:<id>`. On v1 and hybrid hosts the scope has the same path in
//! every hierarchy; the runtime makes it and moves the init there in the v1 hierarchies systemd
//! does not manage.

mod dbus;
mod properties;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::Errno;
use dbus::{Connection, Value};

pub(crate) use properties::{annotation_properties, resource_properties};

/// Errors of the systemd driver.
#[derive(Debug, thiserror::Error)]
pub enum SystemdError {
    #[error("{step} {}: {errno}", path.display())]
    Io {
        step: &'static str,
        path: PathBuf,
        errno: Errno,
    },
    #[error("{0}")]
    Protocol(String),
    #[error("systemd {member}: {message} ({name})")]
    Call {
        member: String,
        name: String,
        message: String,
    },
    #[error("scope {unit} already exists: another container (or unit) has this cgroupsPath")]
    UnitExists { unit: String },
    #[error("systemd did not answer within {0} s")]
    Timeout(u64),
    #[error("systemd could not start {unit}: the job ended with {result:?}")]
    JobFailed { unit: String, result: String },
    #[error("invalid cgroupsPath {path:?} for the systemd driver: {reason}")]
    InvalidPath { path: String, reason: String },
    #[error("annotation {key}: {reason}")]
    InvalidProperty { key: String, reason: String },
}

/// systemd's private socket: PID 1 itself answers there, for root only, no D-Bus daemon needed.
const PRIVATE_SOCKET: &str = "/run/systemd/private";
const DESTINATION: &str = "org.freedesktop.systemd1";
const OBJECT: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";
/// How long a start or stop job may take.
const JOB_TIMEOUT: Duration = Duration::from_secs(30);

/// A container's scope unit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scope {
    /// The unit's name, `prefix-name.scope`.
    pub unit: String,
    /// The slice it is in, `system.slice`.
    pub slice: String,
}

impl Scope {
    /// Reads `cgroups_path` (`slice:prefix:name`, or empty) for container `id`.
    pub fn parse(cgroups_path: Option<&str>, id: &str) -> Result<Self, SystemdError> {
        let given = cgroups_path.unwrap_or("");
        let owned;
        let path = if given.is_empty() {
            owned = format!(":ocirun:{id}");
            owned.as_str()
        } else {
            given
        };
        let invalid = |reason: &str| SystemdError::InvalidPath {
            path: given.to_string(),
            reason: reason.to_string(),
        };
        let parts: Vec<&str> = path.split(':').collect();
        let [slice, prefix, name] = parts[..] else {
            return Err(invalid("expected \"slice:prefix:name\""));
        };
        let slice = match slice {
            "" => "system.slice",
            "-" => "-.slice",
            s => s,
        };
        if slice.contains('/') || !slice.ends_with(".slice") {
            return Err(invalid(
                "the slice must be a unit name ending in .slice, without '/'",
            ));
        }
        if name.is_empty() {
            return Err(invalid("the name part is empty"));
        }
        if name.ends_with(".slice") {
            return Err(invalid(
                "the name is a slice; this runtime puts containers in scopes only",
            ));
        }
        let unit = if prefix.is_empty() {
            format!("{name}.scope")
        } else {
            format!("{prefix}-{name}.scope")
        };
        let valid_char = |c: char| c.is_ascii_alphanumeric() || ":-_.\\@".contains(c);
        if unit.len() > 255 || !unit.chars().all(valid_char) {
            return Err(invalid(&format!("{unit:?} is not a valid unit name")));
        }
        slice_path(slice).map_err(|r| invalid(&r))?;
        Ok(Scope {
            unit,
            slice: slice.to_string(),
        })
    }

    /// The scope's cgroup below the v2 mount point: `system.slice/x.scope`,
    /// `a.slice/a-b.slice/x.scope`.
    pub fn cgroup(&self) -> PathBuf {
        let mut p = slice_path(&self.slice).unwrap_or_default();
        p.push(&self.unit);
        p
    }

    /// Asks systemd to create the scope with `pid` in it and `properties`, and waits until
    /// the job is done. `in_use` tells whether the scope's cgroup exists: a unit of the same
    /// name without one is a dead scope systemd has not collected yet (a container id used
    /// again at once), which is waited for; with one, the name belongs to someone else.
    pub fn start(
        &self,
        pid: i32,
        properties: Vec<(String, Value)>,
        in_use: impl Fn() -> bool,
    ) -> Result<(), SystemdError> {
        let mut props = vec![
            prop(
                "Description",
                Value::Str(format!("ocirun container {}", self.unit)),
            ),
            prop("Slice", Value::Str(self.slice.clone())),
            prop("Delegate", Value::Bool(true)),
            prop("DefaultDependencies", Value::Bool(false)),
            prop(
                "PIDs",
                Value::Array("u".into(), vec![Value::U32(pid as u32)]),
            ),
        ];
        for accounting in [
            "MemoryAccounting",
            "CPUAccounting",
            "IOAccounting",
            "TasksAccounting",
        ] {
            props.push(prop(accounting, Value::Bool(true)));
        }
        // Later ones win: annotations may override what the runtime chose.
        props.extend(properties.into_iter().map(|(k, v)| prop(&k, v)));

        let mut conn = connect()?;
        subscribe(&mut conn)?;
        // A failed unit of the same name (an earlier container) would block the name.
        let _ = manager_call(
            &mut conn,
            "ResetFailedUnit",
            &[Value::Str(self.unit.clone())],
        );
        let args = [
            Value::Str(self.unit.clone()),
            Value::Str("replace".into()),
            Value::Array("(sv)".into(), props),
            Value::Array("(sa(sv))".into(), Vec::new()),
        ];
        let deadline = Instant::now() + JOB_TIMEOUT;
        let mut pause = Duration::from_millis(5);
        loop {
            match manager_call(&mut conn, "StartTransientUnit", &args) {
                Ok(_) => break,
                Err(SystemdError::Call { name, .. })
                    if name == "org.freedesktop.systemd1.UnitExists" =>
                {
                    if in_use() || Instant::now() >= deadline {
                        return Err(SystemdError::UnitExists {
                            unit: self.unit.clone(),
                        });
                    }
                    let _ = manager_call(
                        &mut conn,
                        "ResetFailedUnit",
                        &[Value::Str(self.unit.clone())],
                    );
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(200));
                }
                Err(e) => return Err(e),
            }
        }
        let result = wait_job(&mut conn, &self.unit)?;
        if result != "done" {
            return Err(SystemdError::JobFailed {
                unit: self.unit.clone(),
                result,
            });
        }
        Ok(())
    }

    /// Changes the unit's properties (runtime only, as `systemctl set-property --runtime`).
    pub fn set_properties(&self, properties: Vec<(String, Value)>) -> Result<(), SystemdError> {
        if properties.is_empty() {
            return Ok(());
        }
        let mut conn = connect()?;
        manager_call(
            &mut conn,
            "SetUnitProperties",
            &[
                Value::Str(self.unit.clone()),
                Value::Bool(true),
                Value::Array(
                    "(sv)".into(),
                    properties.into_iter().map(|(k, v)| prop(&k, v)).collect(),
                ),
            ],
        )?;
        Ok(())
    }

    /// Stops the scope (systemd kills what is left in it and removes its cgroup) and waits for
    /// that. A unit that is already gone is not an error.
    pub fn stop(&self) -> Result<(), SystemdError> {
        let mut conn = connect()?;
        subscribe(&mut conn)?;
        match manager_call(
            &mut conn,
            "StopUnit",
            &[Value::Str(self.unit.clone()), Value::Str("replace".into())],
        ) {
            Ok(_) => {
                wait_job(&mut conn, &self.unit)?;
            }
            Err(SystemdError::Call { name, .. })
                if name == "org.freedesktop.systemd1.NoSuchUnit" => {}
            Err(e) => return Err(e),
        }
        // Forget a failed state, so the name is free again.
        let _ = manager_call(
            &mut conn,
            "ResetFailedUnit",
            &[Value::Str(self.unit.clone())],
        );
        Ok(())
    }
}

/// `a-b-c.slice` -> `a.slice/a-b.slice/a-b-c.slice` (systemd's nesting of slices by dashes);
/// the root slice `-.slice` is the root cgroup.
fn slice_path(slice: &str) -> Result<PathBuf, String> {
    if slice == "-.slice" {
        return Ok(PathBuf::new());
    }
    let stem = slice
        .strip_suffix(".slice")
        .ok_or_else(|| format!("{slice:?} does not end in .slice"))?;
    if stem.is_empty() || stem.starts_with('-') || stem.ends_with('-') || stem.contains("--") {
        return Err(format!("{slice:?} is not a valid slice name"));
    }
    let mut path = PathBuf::new();
    let mut prefix = String::new();
    for part in stem.split('-') {
        if !prefix.is_empty() {
            prefix.push('-');
        }
        prefix.push_str(part);
        path.push(format!("{prefix}.slice"));
    }
    Ok(path)
}

fn prop(name: &str, value: Value) -> Value {
    Value::Struct(vec![
        Value::Str(name.to_string()),
        Value::Variant(Box::new(value)),
    ])
}

fn connect() -> Result<Connection, SystemdError> {
    Connection::connect(Path::new(PRIVATE_SOCKET))
}

fn manager_call(
    conn: &mut Connection,
    member: &str,
    args: &[Value],
) -> Result<Vec<Value>, SystemdError> {
    conn.call(DESTINATION, OBJECT, MANAGER, member, args)
}

/// Asks for the manager's signals (JobRemoved) on this connection.
fn subscribe(conn: &mut Connection) -> Result<(), SystemdError> {
    manager_call(conn, "Subscribe", &[]).map(drop)
}

/// Waits for the JobRemoved signal of `unit`'s job; returns its result ("done", "failed", ...).
fn wait_job(conn: &mut Connection, unit: &str) -> Result<String, SystemdError> {
    let deadline = Instant::now() + JOB_TIMEOUT;
    let m = conn.wait_signal(deadline, |m| {
        m.interface.as_deref() == Some(MANAGER)
            && m.member.as_deref() == Some("JobRemoved")
            && m.body.get(2).and_then(Value::as_str) == Some(unit)
    })?;
    Ok(m.body
        .get(3)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string())
}

/// Whether systemd's private socket is there to talk to.
pub(crate) fn reachable() -> bool {
    Path::new(PRIVATE_SOCKET).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(p: &str) -> Result<Scope, String> {
        Scope::parse(Some(p), "c1").map_err(|e| e.to_string())
    }

    #[test]
    fn cgroups_path_to_scope() {
        let s = Scope::parse(None, "c1").ok();
        assert_eq!(
            s,
            Some(Scope {
                unit: "ocirun-c1.scope".into(),
                slice: "system.slice".into()
            })
        );
        let s = scope("system.slice:docker:abc").ok();
        assert_eq!(
            s.as_ref().map(Scope::cgroup),
            Some(PathBuf::from("system.slice/docker-abc.scope"))
        );
        let s = scope("kubepods-besteffort-pod1.slice:cri-containerd:x").ok();
        assert_eq!(
            s.as_ref().map(Scope::cgroup),
            Some(PathBuf::from(
                "kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1.slice/cri-containerd-x.scope"
            ))
        );
        let s = scope("-::x").ok();
        assert_eq!(
            s.as_ref().map(Scope::cgroup),
            Some(PathBuf::from("x.scope"))
        );
    }

    #[test]
    fn bad_cgroups_paths_say_why() {
        for (p, why) in [
            ("/docker/abc", "slice:prefix:name"),
            ("a:b", "slice:prefix:name"),
            ("system.slice:docker:", "name part is empty"),
            ("user.slice/x.slice:p:n", "ending in .slice"),
            ("system:p:n", "ending in .slice"),
            ("a--b.slice:p:n", "not a valid slice name"),
            ("system.slice:p:pod.slice", "scopes only"),
            ("system.slice:p:a/b", "not a valid unit name"),
        ] {
            let err = scope(p).err().unwrap_or_default();
            assert!(err.contains(why), "{p}: {err}");
        }
    }
}
