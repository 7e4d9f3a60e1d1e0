//! What the host really supports, for the `features` command.

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::layout::{self, CGROUP_ROOT, HYBRID_UNIFIED, Layout};

/// cgroup support on this host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostFeatures {
    pub layout: Layout,
    /// v1 controllers can be used.
    pub v1: bool,
    /// A v2 hierarchy can be used (pure or, on hybrid hosts, for its controllers).
    pub v2: bool,
    /// systemd runs as PID 1.
    pub systemd_running: bool,
    /// The systemd cgroup driver works here: systemd is PID 1 and its private socket is there.
    pub systemd_driver: bool,
    /// The rdma controller exists.
    pub rdma: bool,
    /// Controllers available, v1 and v2 together, sorted ("cpu", "memory", ...).
    pub controllers: Vec<String>,
}

/// Looks at the host: one statfs or two, /proc/self/cgroup, and the v2 cgroup.controllers.
pub fn host_features() -> Result<HostFeatures> {
    let layout = layout::detect()?;
    let mut controllers = Vec::new();
    if layout != Layout::V2 {
        for entry in layout::read_own_cgroups()? {
            if entry.id != 0 {
                controllers.extend(
                    entry
                        .controllers
                        .into_iter()
                        .filter(|c| !c.starts_with("name=")),
                );
            }
        }
    }
    if layout != Layout::V1 {
        let root = if layout == Layout::V2 {
            CGROUP_ROOT
        } else {
            HYBRID_UNIFIED
        };
        controllers.extend(layout::v2_controllers(std::path::Path::new(root))?);
        if layout == Layout::V2 {
            // Always there on v2, and not listed in cgroup.controllers.
            controllers.extend(["freezer".to_string(), "devices".to_string()]);
        }
    }
    controllers.sort();
    controllers.dedup();
    Ok(HostFeatures {
        layout,
        v1: layout != Layout::V2,
        v2: layout != Layout::V1,
        systemd_running: layout::systemd_booted(),
        systemd_driver: layout::systemd_booted() && crate::systemd::reachable(),
        rdma: controllers.iter().any(|c| c == "rdma"),
        controllers,
    })
}
