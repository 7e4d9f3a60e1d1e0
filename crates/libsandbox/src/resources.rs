//! Commands on a container's cgroup: pause, resume, update, the process list, and stats.

use oci_spec::runtime::LinuxResources;

use crate::container::{cgroup_of, live_status};
use crate::error::{Error, Result};
use crate::state::Status;
use crate::store::Store;

fn manager(store: &Store, id: &str) -> Result<(cgroups::Manager, Status)> {
    let dir = store.open(id, false)?;
    let record = dir.load()?;
    let status = live_status(&record);
    let cg =
        cgroup_of(&record).ok_or_else(|| Error::State(format!("container {id} has no cgroup")))?;
    Ok((cg, status))
}

/// Freezes every process of a running container.
pub fn pause(store: &Store, id: &str) -> Result<()> {
    let (cg, status) = manager(store, id)?;
    match status {
        Status::Running | Status::Created => cg.freeze().map_err(Error::Cgroup),
        Status::Paused => Err(Error::State("container is already paused".to_string())),
        _ => Err(Error::State("container not running".to_string())),
    }
}

/// Thaws a paused container.
pub fn resume(store: &Store, id: &str) -> Result<()> {
    let (cg, status) = manager(store, id)?;
    match status {
        Status::Paused => cg.thaw().map_err(Error::Cgroup),
        Status::Stopped => Err(Error::State("container not running".to_string())),
        _ => Err(Error::State("container not paused".to_string())),
    }
}

/// Applies new limits to a container and records them in its stored config.
pub fn update(store: &Store, id: &str, resources: &LinuxResources) -> Result<()> {
    let dir = store.open(id, true)?;
    let record = dir.load()?;
    if live_status(&record) == Status::Stopped {
        return Err(Error::State("container not running".to_string()));
    }
    let cg =
        cgroup_of(&record).ok_or_else(|| Error::State(format!("container {id} has no cgroup")))?;
    cg.update(resources).map_err(Error::Cgroup)?;
    // Keep the stored config in step, merging field by field as runc does.
    let bytes = dir.load_config()?;
    if let Ok(mut config) = serde_json::from_slice::<serde_json::Value>(&bytes) {
        let new = serde_json::to_value(resources).unwrap_or_default();
        let current = &mut config["linux"]["resources"];
        merge(current, &new);
        if let Ok(out) = serde_json::to_vec(&config) {
            dir.save_config(&out)?;
        }
    }
    Ok(())
}

fn merge(into: &mut serde_json::Value, from: &serde_json::Value) {
    match (into, from) {
        (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
            for (k, v) in b {
                if v.is_null() {
                    continue;
                }
                merge(a.entry(k.clone()).or_insert(serde_json::Value::Null), v);
            }
        }
        (slot, v) => *slot = v.clone(),
    }
}

/// Host pids of every process in the container.
pub fn pids(store: &Store, id: &str) -> Result<Vec<i32>> {
    let (cg, _) = manager(store, id)?;
    cg.pids().map_err(Error::Cgroup)
}

/// One stats event (`events --stats`).
pub fn stats(store: &Store, id: &str) -> Result<cgroups::Event> {
    let (cg, status) = manager(store, id)?;
    if status == Status::Stopped {
        return Err(Error::State("container not running".to_string()));
    }
    Ok(cgroups::Event::stats(
        id,
        cg.stats().map_err(Error::Cgroup)?,
    ))
}

/// A source of OOM events for the container's cgroup.
pub fn oom_events(store: &Store, id: &str) -> Result<cgroups::OomEvents> {
    let (cg, _) = manager(store, id)?;
    cg.oom_events().map_err(Error::Cgroup)
}

#[cfg(test)]
mod tests {
    use super::merge;
    use serde_json::json;

    #[test]
    fn merge_keeps_fields_not_updated() {
        let mut a = json!({"memory": {"limit": 1, "swap": 2}, "pids": {"limit": 5}});
        merge(
            &mut a,
            &json!({"memory": {"limit": 10}, "cpu": {"shares": 3}}),
        );
        assert_eq!(
            a,
            json!({"memory": {"limit": 10, "swap": 2}, "pids": {"limit": 5}, "cpu": {"shares": 3}})
        );
    }
}
