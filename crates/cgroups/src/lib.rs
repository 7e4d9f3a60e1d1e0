//! cgroup management for the ocirun runtime: cgroup v1, v2 and hybrid hosts, every
//! `linux.resources` field, freezing, process listing, statistics in runc's `events` shape,
//! OOM notification, and device control (v1 lists, v2 eBPF emitted from Rust).
//!
//! The runtime's flow:
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let resources = oci_spec::runtime::LinuxResources::default();
//! let mut cg = cgroups::Manager::new(Some("/docker/c1"), "c1", false)?;
//! cg.create()?;
//! // pure v2: clone3(CLONE_INTO_CGROUP) with this fd; otherwise add_process after the fork.
//! let _fd = cg.open_cgroup_dir()?;
//! # let pid = 1;
//! cg.add_process(pid)?;
//! cg.apply(&resources)?;
//! let state = serde_json::to_string(&cg)?;
//! // later commands:
//! let cg: cgroups::Manager = serde_json::from_str(&state)?;
//! cg.destroy()?;
//! # Ok(()) }
//! ```
//! No threads, no global state, no printing.

mod controllers;
mod devices;
mod error;
mod features;
mod fs;
mod layout;
mod manager;
mod oom;
mod path;
pub mod stats;
mod systemd;

pub use controllers::blkio::blkio_weight_to_io_weight;
pub use controllers::cpu::shares_to_weight;
pub use devices::default_device_rules;
pub use error::{Errno, Error, Result};
pub use features::{HostFeatures, host_features};
pub use layout::{Layout, Version, detect as detect_layout};
pub use manager::{FreezerState, Joiner, Manager, join_self};
pub use oom::OomEvents;
pub use stats::{Event, Stats};
pub use systemd::SystemdError;
