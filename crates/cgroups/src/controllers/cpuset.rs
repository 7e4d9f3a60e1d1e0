//! cpuset: cpus and mems. On v1 a new cpuset cgroup starts empty and cannot hold a process, so
//! `inherit_v1` copies the parent's values when the directory is made.

use std::path::Path;

use oci_spec::runtime::LinuxCpu;

use super::Target;
use crate::error::Result;
use crate::fs;

pub(crate) fn set(t: &Target<'_>, c: &LinuxCpu) -> Result<()> {
    let cpus = c.cpus().as_deref().filter(|s| !s.is_empty());
    let mems = c.mems().as_deref().filter(|s| !s.is_empty());
    if cpus.is_none() && mems.is_none() {
        return Ok(());
    }
    let (dir, _) = t.get("cpu.cpus")?;
    // Same file names on v1 and v2.
    if let Some(cpus) = cpus {
        fs::write(dir, "cpuset.cpus", cpus)?;
    }
    if let Some(mems) = mems {
        fs::write(dir, "cpuset.mems", mems)?;
    }
    Ok(())
}

/// Copies cpuset.cpus and cpuset.mems from `parent` into the new cgroup `dir` when empty.
pub(crate) fn inherit_v1(parent: &Path, dir: &Path) -> Result<()> {
    for file in ["cpuset.cpus", "cpuset.mems"] {
        if fs::read(dir, file)?.trim().is_empty() {
            let value = fs::read(parent, file)?;
            let value = value.trim();
            if !value.is_empty() {
                fs::write(dir, file, value)?;
            }
        }
    }
    Ok(())
}
