//! Writing `linux.resources` into cgroup files, one module per controller. Each module handles
//! v1 and v2 side by side, writes only the fields that are present, and asks for its
//! controller only when it has something to write (so a missing controller is an error only
//! when the spec needs it).

pub(crate) mod blkio;
pub(crate) mod cpu;
pub(crate) mod cpuset;
pub(crate) mod freezer;
pub(crate) mod hugetlb;
pub(crate) mod memory;
pub(crate) mod network;
pub(crate) mod pids;
pub(crate) mod rdma;
pub(crate) mod unified;

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use crate::error::{Error, Result};
use crate::fs;
use crate::layout::Version;
use crate::manager::Manager;

/// Where one controller's files are for this container, if the host has it.
pub(crate) struct Target<'a> {
    controller: &'static str,
    at: Option<(&'a Path, Version)>,
    mount: &'a Path,
}

impl<'a> Target<'a> {
    pub(crate) fn new(
        controller: &'static str,
        at: Option<(&'a Path, Version)>,
        mount: &'a Path,
    ) -> Self {
        Target {
            controller,
            at,
            mount,
        }
    }

    pub(crate) fn available(&self) -> bool {
        self.at.is_some()
    }

    /// The directory and version, or an error naming the spec field that needed it.
    pub(crate) fn get(&self, field: &'static str) -> Result<(&'a Path, Version)> {
        self.at.ok_or(Error::ControllerMissing {
            field,
            controller: self.controller,
        })
    }

    /// The hierarchy's mount point (to walk ancestors).
    pub(crate) fn mount(&self) -> &'a Path {
        self.mount
    }
}

/// Applies (or updates) every resource that is present, in runc's order.
pub(crate) fn set(m: &Manager, r: &LinuxResources, update: bool) -> Result<()> {
    if let Some(cpu) = r.cpu() {
        cpuset::set(&m.target("cpuset"), cpu)?;
        cpu::set(&m.target("cpu"), cpu)?;
    }
    if let Some(mem) = r.memory() {
        memory::set(&m.target("memory"), mem, update)?;
    }
    if let Some(p) = r.pids() {
        pids::set(&m.target("pids"), p)?;
    }
    if let Some(b) = r.block_io() {
        blkio::set(&m.target("blkio"), b)?;
    }
    if let Some(h) = r.hugepage_limits() {
        hugetlb::set(&m.target("hugetlb"), h)?;
    }
    if let Some(n) = r.network() {
        network::set(&m.target("net_cls"), &m.target("net_prio"), n)?;
    }
    if let Some(rdma) = r.rdma() {
        rdma::set(&m.target("rdma"), rdma)?;
    }
    if let Some(rules) = r.devices() {
        crate::devices::set(&m.target("devices"), rules)?;
    }
    // Last, so raw unified keys override anything above (as in runc).
    if let Some(u) = r.unified() {
        unified::set(m, u)?;
    }
    Ok(())
}

/// Enables `controllers` ("+a +b") for the children of `dir` (v2). All at once first (one
/// write); if the kernel refuses one, each alone, ignoring those it refuses: a controller the
/// container does not use must not fail creation, and one it uses fails later with the file
/// it needs.
pub(crate) fn enable_subtree(dir: &Path, all: &str, controllers: &[String]) {
    if fs::write(dir, "cgroup.subtree_control", all).is_ok() {
        return;
    }
    for c in controllers {
        let _ = fs::write(dir, "cgroup.subtree_control", &format!("+{c}"));
    }
}

/// Enables one controller on the path from the hierarchy's mount to `leaf`'s parent, so the
/// leaf gets its files (used on hybrid hosts, where creation enables nothing).
pub(crate) fn enable_for_leaf(mount: &Path, leaf: &Path, controller: &str) -> Result<()> {
    let Ok(rel) = leaf.strip_prefix(mount) else {
        return Ok(());
    };
    let value = format!("+{controller}");
    let mut dir = mount.to_path_buf();
    let parts: Vec<_> = rel.components().collect();
    for part in parts {
        fs::write(&dir, "cgroup.subtree_control", &value)?;
        dir.push(part);
    }
    Ok(())
}
