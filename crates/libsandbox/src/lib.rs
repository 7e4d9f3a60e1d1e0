//! libsandbox turns an OCI bundle (`config.json` and a root filesystem) into an isolated process
//! tree: namespaces, pivot_root, mounts, devices, capabilities, cgroup limits, seccomp and hooks.
//! It is the core of the `ocirun` runtime, and usable on its own:
//!
//! ```no_run
//! use libsandbox::{CreateOptions, Runtime};
//!
//! let rt = Runtime::new("/run/my-runtime");
//! let opts = CreateOptions {
//!     id: "c1".into(),
//!     bundle: "/path/to/bundle".into(),
//!     ..Default::default()
//! };
//! rt.create(&opts)?;
//! rt.start("c1")?;
//! println!("{}", rt.state("c1")?.status);
//! rt.kill("c1", libc::SIGKILL, false)?;
//! rt.delete("c1", true)?;
//! # Ok::<(), libsandbox::Error>(())
//! ```
//!
//! The library never prints and keeps no global state; every operation returns a typed error
//! naming the step that failed. Operations that create processes must be called from a
//! single-threaded program: the container's init is a fork of the caller.

mod caps;
mod cgroupfs;
mod channel;
mod clone;
mod container;
mod copyup;
mod cpus;
mod devices;
mod errno;
mod error;
mod exe;
mod exec;
mod fds;
mod hooks;
mod id;
mod identity;
mod init;
mod launch;
mod lsm;
mod masked;
mod mountopts;
mod mounts;
mod namespaces;
mod process;
mod procfs;
mod resources;
mod rlimits;
mod rootfs;
mod safepath;
mod sockaddr;
pub mod spec;
mod state;
mod store;
mod sys;
mod sysctl;
mod terminal;
mod timefmt;
mod tty;

use std::path::{Path, PathBuf};

pub use container::Warnings;
pub use errno::Errno;
pub use error::{Error, Result};
pub use exe::{ExeError, ensure_protected as protect_executable};
pub use exec::{ExecError, ExecOptions};
pub use hooks::HookError;
pub use id::{IdError, validate as validate_id};
pub use init::InitError;
pub use launch::CreateOptions;
pub use lsm::Lsm;
pub use state::{OCI_VERSION, OciState, Status};
pub use store::StoreError;
pub use timefmt::now_rfc3339;
/// Every capability name the kernel knows, by number.
pub const CAPABILITY_NAMES: [&str; 41] = caps::NAMES;

/// A runtime instance: the state root where it keeps its containers.
#[derive(Clone, Debug)]
pub struct Runtime {
    store: store::Store,
}

impl Runtime {
    /// A runtime keeping container state under `root` (runc's `--root`).
    pub fn new(root: impl Into<PathBuf>) -> Runtime {
        Runtime {
            store: store::Store::new(root),
        }
    }

    /// The state root.
    pub fn root(&self) -> &Path {
        self.store.root()
    }

    /// Creates a container whose init waits for [`Runtime::start`].
    pub fn create(&self, opts: &CreateOptions) -> Result<()> {
        launch::create(&self.store, opts, launch::Mode::Create).map(|_| ())
    }

    /// Creates and starts a container. With `detach`, returns once it runs (status 0);
    /// otherwise waits for it, relaying signals, deletes it, and returns its exit status.
    pub fn run(&self, opts: &CreateOptions, detach: bool) -> Result<(i32, Warnings)> {
        container::run(&self.store, opts, detach)
    }

    /// Starts a created container. Failed poststart hooks come back as warnings.
    pub fn start(&self, id: &str) -> Result<Warnings> {
        container::start(&self.store, id)
    }

    /// The OCI state of a container.
    pub fn state(&self, id: &str) -> Result<OciState> {
        container::state(&self.store, id)
    }

    /// The states of all containers.
    pub fn list(&self) -> Result<Vec<OciState>> {
        container::list(&self.store)
    }

    /// Runs a process in a running container; returns its exit status (0 at once with
    /// `detach`).
    pub fn exec(&self, id: &str, opts: &ExecOptions) -> Result<i32> {
        exec::exec(&self.store, id, opts)
    }

    /// The container's config as it was at create time (the base of an `exec` process).
    pub fn config(&self, id: &str) -> Result<oci_spec::runtime::Spec> {
        let dir = self.store.open(id, false)?;
        let bytes = dir.load_config()?;
        Ok(spec::parse(&dir.file("config.json"), &bytes)?)
    }

    /// Freezes a running container.
    pub fn pause(&self, id: &str) -> Result<()> {
        resources::pause(&self.store, id)
    }

    /// Thaws a paused container.
    pub fn resume(&self, id: &str) -> Result<()> {
        resources::resume(&self.store, id)
    }

    /// Changes a container's resource limits.
    pub fn update(&self, id: &str, resources: &oci_spec::runtime::LinuxResources) -> Result<()> {
        resources::update(&self.store, id, resources)
    }

    /// Host pids of the container's processes.
    pub fn pids(&self, id: &str) -> Result<Vec<i32>> {
        resources::pids(&self.store, id)
    }

    /// The container's resource usage, as runc's `events --stats` prints it.
    pub fn stats(&self, id: &str) -> Result<cgroups::Event> {
        resources::stats(&self.store, id)
    }

    /// OOM notifications for the container.
    pub fn oom_events(&self, id: &str) -> Result<cgroups::OomEvents> {
        resources::oom_events(&self.store, id)
    }

    /// Sends a signal to the container's init (or, with `all`, to all its processes).
    pub fn kill(&self, id: &str, signal: i32, all: bool) -> Result<()> {
        container::kill(&self.store, id, signal, all)
    }

    /// Deletes a container (`force` kills a running one first). Failed poststop hooks come back
    /// as warnings.
    pub fn delete(&self, id: &str, force: bool) -> Result<Warnings> {
        container::delete(&self.store, id, force)
    }
}
