//! The container's cgroup: where it lives in each hierarchy, creating it, joining it, setting
//! its resources, and removing it. A `Manager` is plain data (serde) so the runtime can store it
//! in state.json and rebuild it later without detecting anything again.

use std::ffi::CString;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};

use crate::controllers::{self, Target};
use crate::error::{Errno, Error, Result};
use crate::fs;
use crate::layout::{self, CGROUP_ROOT, HYBRID_UNIFIED, Layout, Version};
use crate::path::{InnerPath, inner_path};
use crate::systemd::{self, Scope};

/// One hierarchy the container has a cgroup in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Hierarchy {
    pub version: Version,
    /// v1: controllers bound to this hierarchy ("cpu", "name=systemd"); v2: controllers the
    /// hierarchy's root offers (cgroup.controllers).
    pub controllers: Vec<String>,
    /// Mount point of the hierarchy.
    pub mount: PathBuf,
    /// The container's cgroup directory.
    pub path: PathBuf,
    /// The shallowest directory `create` made, so `destroy` removes what it added and no more.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_from: Option<PathBuf>,
}

/// A container's cgroup across all hierarchies of the host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manager {
    layout: Layout,
    hierarchies: Vec<Hierarchy>,
    /// The container's scope unit, with the systemd driver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    systemd: Option<Scope>,
}

/// State of the container's freezer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FreezerState {
    Thawed,
    Freezing,
    Frozen,
}

/// Controllers that only exist on v1 (no v2 files to fall back to).
const V1_ONLY: &[&str] = &["net_cls", "net_prio", "perf_event"];

/// Named v1 hierarchies that runc also joins; other named ones belong to someone else.
const JOINED_NAMED: &[&str] = &["name=systemd"];

impl Manager {
    /// Resolves the container's cgroup for `cgroups_path` (linux.cgroupsPath) and container
    /// `id` with runc's semantics, on the layout this host has. Nothing is created yet.
    ///
    /// `systemd` selects the systemd driver (`--systemd-cgroup`).
    pub fn new(cgroups_path: Option<&str>, id: &str, systemd: bool) -> Result<Self> {
        if systemd {
            return Self::systemd(cgroups_path, id);
        }
        let layout = layout::detect()?;
        let inner = inner_path(cgroups_path, id)?;
        Self::resolve(layout, &inner)
    }

    /// The systemd driver: a scope unit that [`Manager::start_scope`] asks systemd for once the
    /// init exists; until then nothing is created.
    fn systemd(cgroups_path: Option<&str>, id: &str) -> Result<Self> {
        if !layout::systemd_booted() || !systemd::reachable() {
            return Err(Error::SystemdNotRunning);
        }
        let layout = layout::detect()?;
        let scope = Scope::parse(cgroups_path, id)?;
        // The scope's cgroup has the same path in every hierarchy; systemd makes it in the
        // ones it manages, the runtime in the others (v1 controllers systemd leaves alone).
        let inner = InnerPath::Absolute(format!("/{}", scope.cgroup().display()));
        let mut m = Self::resolve(layout, &inner)?;
        m.systemd = Some(scope);
        Ok(m)
    }

    /// Whether this is the systemd driver: the cgroup only exists once [`Manager::start_scope`]
    /// has put the init in it.
    pub fn uses_systemd(&self) -> bool {
        self.systemd.is_some()
    }

    /// systemd driver: asks systemd for the container's scope with process `pid` in it, with
    /// `resources` as unit properties and the `org.systemd.property.*` annotations, then
    /// enables the host's controllers down to it (as for the cgroupfs driver). Nothing to do
    /// for the cgroupfs driver.
    pub fn start_scope(
        &self,
        pid: i32,
        resources: &LinuxResources,
        annotations: &std::collections::HashMap<String, String>,
    ) -> Result<()> {
        let Some(scope) = &self.systemd else {
            return Ok(());
        };
        let mut properties = systemd::resource_properties(resources)?;
        properties.extend(systemd::annotation_properties(annotations)?);
        scope.start(pid, properties, || {
            self.hierarchies.iter().any(|h| h.path.exists())
        })?;
        // From here the scope is ours: a failure stops it again.
        let joined = || -> Result<()> {
            for h in &self.hierarchies {
                mkdir_all(h, self.layout == Layout::V2)?;
                if h.version == Version::V1 {
                    // Hierarchies systemd does not manage (v1 controllers without accounting
                    // in systemd): the init joins them here, before it goes on.
                    fs::write(&h.path, "cgroup.procs", &pid.to_string())?;
                }
            }
            Ok(())
        };
        if let Err(e) = joined() {
            let _ = scope.stop();
            return Err(e);
        }
        Ok(())
    }

    fn resolve(layout: Layout, inner: &InnerPath) -> Result<Self> {
        let mut hierarchies = Vec::new();
        // /proc/self/cgroup is needed for v1 (to list hierarchies) and for relative paths.
        let own = if layout != Layout::V2 || inner.is_relative() {
            layout::read_own_cgroups()?
        } else {
            Vec::new()
        };
        if layout != Layout::V2 {
            for entry in own
                .iter()
                .filter(|e| e.id != 0 && !e.controllers.is_empty())
            {
                let named = entry.controllers.iter().any(|c| c.starts_with("name="));
                if named
                    && !entry
                        .controllers
                        .iter()
                        .any(|c| JOINED_NAMED.contains(&c.as_str()))
                {
                    continue;
                }
                let Some(mount) = layout::v1_mountpoint(&entry.controllers)? else {
                    continue;
                };
                let path = join_cgroup(&mount, &inner.within(&entry.path));
                hierarchies.push(Hierarchy {
                    version: Version::V1,
                    controllers: entry.controllers.clone(),
                    mount,
                    path,
                    created_from: None,
                });
            }
        }
        if layout != Layout::V1 {
            let mount = PathBuf::from(if layout == Layout::V2 {
                CGROUP_ROOT
            } else {
                HYBRID_UNIFIED
            });
            let own_path = own
                .iter()
                .find(|e| e.id == 0)
                .map(|e| e.path.as_str())
                .unwrap_or("/");
            let path = join_cgroup(&mount, &inner.within(own_path));
            let controllers = layout::v2_controllers(&mount)?;
            hierarchies.push(Hierarchy {
                version: Version::V2,
                controllers,
                mount,
                path,
                created_from: None,
            });
        }
        Ok(Manager {
            layout,
            hierarchies,
            systemd: None,
        })
    }

    /// The host layout this manager was built for.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// The container's cgroup directory: the v2 one on pure v2, else the v1 `pids` (or first)
    /// hierarchy's. For messages and for callers that need one path.
    pub fn path(&self) -> &Path {
        &self.primary().path
    }

    /// The directory holding `controller`'s files for this container ("memory", "cpu",
    /// "blkio", "freezer", "devices", ...), if the host has that controller.
    pub fn path_of(&self, controller: &str) -> Option<&Path> {
        let controller = match controller {
            "io" => "blkio",
            other => other,
        };
        for known in [
            "cpu", "cpuacct", "cpuset", "memory", "pids", "blkio", "hugetlb", "net_cls",
            "net_prio", "rdma", "freezer", "devices", "misc",
        ] {
            if known == controller {
                return self.target(known).get("").ok().map(|(p, _)| p);
            }
        }
        None
    }

    /// Every cgroup directory of the container (one per hierarchy).
    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        self.hierarchies.iter().map(|h| h.path.as_path())
    }

    /// The hierarchy used to list and signal processes.
    fn primary(&self) -> &Hierarchy {
        ["pids", "freezer", "memory", "cpu", "devices"]
            .iter()
            .find_map(|c| self.v1(c))
            .or_else(|| self.hierarchies.iter().find(|h| h.version == Version::V2))
            .unwrap_or(&self.hierarchies[0])
    }

    fn v1(&self, controller: &str) -> Option<&Hierarchy> {
        self.hierarchies
            .iter()
            .find(|h| h.version == Version::V1 && h.controllers.iter().any(|c| c == controller))
    }

    fn v2(&self) -> Option<&Hierarchy> {
        self.hierarchies.iter().find(|h| h.version == Version::V2)
    }

    /// Where `controller`'s files are: its v1 hierarchy, else the v2 hierarchy when it has the
    /// controller (pure v2: always, the files tell if it is enabled).
    pub(crate) fn target(&self, controller: &'static str) -> Target<'_> {
        if let Some(h) = self.v1(controller) {
            return Target::new(controller, Some((&h.path, Version::V1)), &h.mount);
        }
        match self.v2() {
            Some(h)
                if (self.layout == Layout::V2 && !V1_ONLY.contains(&controller))
                    || h.controllers.iter().any(|c| c == v2_name(controller)) =>
            {
                Target::new(controller, Some((&h.path, Version::V2)), &h.mount)
            }
            _ => Target::new(controller, None, Path::new(CGROUP_ROOT)),
        }
    }

    /// Creates the container's cgroup directories (parents too). On pure v2 it enables the
    /// root's controllers in every ancestor; on v1 it fills cpuset.cpus/mems of new cpuset
    /// cgroups from their parent, since an empty cpuset cannot hold a process.
    pub fn create(&mut self) -> Result<()> {
        self.create_in(None)
    }

    /// [`Manager::create`] in the hierarchies of one cgroup version only (the rest can follow
    /// later): a hybrid host's unified hierarchy before the clone, its v1 ones after it.
    pub fn create_version(&mut self, version: Version) -> Result<()> {
        self.create_in(Some(version))
    }

    fn create_in(&mut self, version: Option<Version>) -> Result<()> {
        if self.systemd.is_some() {
            return Ok(()); // systemd makes the scope, around the init
        }
        let enable_all = self.layout == Layout::V2;
        for h in &mut self.hierarchies {
            if version.is_some_and(|v| v != h.version) {
                continue;
            }
            let created = mkdir_all(h, enable_all)?;
            if h.created_from.is_none() {
                h.created_from = created;
            }
        }
        Ok(())
    }

    /// Opens the container's cgroup directory for `clone3(CLONE_INTO_CGROUP)`. `None` unless
    /// the host is pure v2 (elsewhere the process has to join v1 hierarchies with
    /// [`Manager::add_process`] anyway).
    pub fn open_cgroup_dir(&self) -> Result<Option<OwnedFd>> {
        if self.layout != Layout::V2 {
            return Ok(None);
        }
        let Some(h) = self.v2() else { return Ok(None) };
        open_dir(&h.path).map(Some)
    }

    /// How a new process joins this cgroup without the cost of a move by pid: a v2 directory
    /// for `clone3(CLONE_INTO_CGROUP)` (pure v2, and the unified hierarchy of a hybrid host), and
    /// the v1 `tasks` files the process itself writes "0" to (see [`join_self`]).
    pub fn joiner(&self) -> Result<Joiner> {
        self.joiner_for(None)
    }

    /// [`Manager::joiner`] for the hierarchies of one cgroup version only.
    pub fn joiner_for(&self, version: Option<Version>) -> Result<Joiner> {
        let wanted = |v: Version| version.is_none_or(|w| w == v);
        let clone_into = match self.v2().filter(|_| wanted(Version::V2)) {
            Some(h) => Some(open_dir(&h.path)?),
            None => None,
        };
        let mut tasks = Vec::new();
        if wanted(Version::V1) {
            for h in self.hierarchies.iter().filter(|h| h.version == Version::V1) {
                tasks.push(open_write(&h.path.join("tasks"))?);
            }
        }
        Ok(Joiner { clone_into, tasks })
    }

    /// Moves process `pid` into the container's cgroup in every hierarchy (on hybrid hosts the
    /// unified one too, as runc does).
    pub fn add_process(&self, pid: i32) -> Result<()> {
        let value = pid.to_string();
        for h in &self.hierarchies {
            fs::write(&h.path, "cgroup.procs", &value)?;
        }
        Ok(())
    }

    /// Applies `resources` to the new cgroup: only the fields present are written. Device rules
    /// are applied exactly as given, default-deny (append runc's defaults with
    /// [`crate::default_device_rules`] and the spec's `linux.devices` to match runc).
    pub fn apply(&self, resources: &LinuxResources) -> Result<()> {
        controllers::set(self, resources, false)
    }

    /// Changes the resources of a running container: the fields present are written, with
    /// runc's ordering rules for memory and swap and `checkBeforeUpdate`.
    pub fn update(&self, resources: &LinuxResources) -> Result<()> {
        if let Some(scope) = &self.systemd {
            scope.set_properties(systemd::resource_properties(resources)?)?;
        }
        controllers::set(self, resources, true)
    }

    /// Freezes every process of the container and waits until the kernel reports it frozen.
    pub fn freeze(&self) -> Result<()> {
        controllers::freezer::freeze(&self.target("freezer"))
    }

    /// Thaws the container.
    pub fn thaw(&self) -> Result<()> {
        controllers::freezer::thaw(&self.target("freezer"))
    }

    /// The freezer state.
    pub fn freezer_state(&self) -> Result<FreezerState> {
        controllers::freezer::state(&self.target("freezer"))
    }

    /// All processes in the container's cgroup and its descendants (host pids).
    pub fn pids(&self) -> Result<Vec<i32>> {
        let mut out = Vec::new();
        collect_pids(&self.primary().path, &mut out)?;
        Ok(out)
    }

    /// Resource usage in the shape of `runc events --stats` (`data` of the event).
    pub fn stats(&self) -> Result<crate::stats::Stats> {
        crate::stats::collect(self)
    }

    /// Starts watching for OOM kills in the container's cgroup.
    pub fn oom_events(&self) -> Result<crate::oom::OomEvents> {
        crate::oom::OomEvents::new(&self.target("memory"))
    }

    /// Kills what is left in the cgroup, then removes the container's cgroup (with any child
    /// cgroups, and the parents `create` made when they are empty) from every hierarchy,
    /// retrying while the kernel says it is busy. Already-removed cgroups are not an error.
    pub fn destroy(&self) -> Result<()> {
        // Usually the container's processes are gone by now (its init was reaped, and with it
        // its pid namespace): then the rmdirs succeed at once and nothing needs listing. A
        // cgroup with processes refuses its rmdir (EBUSY) already in the first hierarchy, as
        // every hierarchy holds the processes; then they are killed first.
        if self.systemd.is_none() {
            match self.remove_all() {
                Ok(()) => return Ok(()),
                Err(e) if e.errno() == Some(libc::EBUSY) => {}
                Err(e) => return Err(e),
            }
        }
        const ATTEMPTS: u32 = 100;
        let mut delay_ms = 1;
        for attempt in 1..=ATTEMPTS {
            if attempt > 1 {
                // Processes were signalled; give the kernel time to let them exit.
                std::thread::sleep(std::time::Duration::from_millis(delay_ms));
                delay_ms = (delay_ms * 2).min(100);
            }
            self.kill_all()?;
            // systemd prunes a scope's cgroup when the scope dies: with the cgroup gone there
            // is no unit to stop.
            if attempt == 1 && self.primary().path.exists() {
                if let Some(scope) = &self.systemd {
                    scope.stop()?;
                }
            }
            match self.remove_all() {
                Ok(()) => return Ok(()),
                Err(e) if e.errno() == Some(libc::EBUSY) && attempt < ATTEMPTS => continue,
                Err(e) if e.errno() == Some(libc::EBUSY) => {
                    return Err(Error::Busy {
                        path: self.primary().path.clone(),
                        attempts: ATTEMPTS,
                    });
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// SIGKILLs every process in the cgroup (recursively). Uses cgroup.kill when the kernel
    /// has it; otherwise freezes first so nothing forks between listing and killing.
    fn kill_all(&self) -> Result<()> {
        let primary = self.primary();
        if !primary.path.exists() {
            return Ok(());
        }
        if primary.version == Version::V2 && fs::exists(&primary.path, "cgroup.kill") {
            // The cgroup can vanish in between (systemd prunes a dead scope's cgroup).
            return match fs::write(&primary.path, "cgroup.kill", "1") {
                Err(e) if e.cgroup_gone() => Ok(()),
                other => other,
            };
        }
        // Without cgroup.kill (v1, or v2 before 5.14), or when the cgroup went between the
        // checks above: a cgroup that is gone has nothing left to kill.
        let gone = Error::cgroup_gone;
        match self.pids() {
            Ok(pids) if pids.is_empty() => return Ok(()),
            Ok(_) => {}
            Err(e) if gone(&e) => return Ok(()),
            Err(e) => return Err(e),
        }
        let freezer = self.target("freezer");
        let frozen = freezer.available() && controllers::freezer::freeze(&freezer).is_ok();
        let pids = self.pids();
        for &pid in pids.as_deref().unwrap_or_default() {
            // SAFETY: kill(2) with a pid read from the cgroup; ESRCH (already gone) is fine.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        if frozen {
            match controllers::freezer::thaw(&freezer) {
                Err(e) if !gone(&e) => return Err(e),
                _ => {}
            }
        }
        match pids {
            Err(e) if !gone(&e) => Err(e),
            _ => Ok(()),
        }
    }

    fn remove_all(&self) -> Result<()> {
        for h in &self.hierarchies {
            remove_tree(&h.path)?;
            // Remove the empty parents this manager created, deepest first; a parent that
            // another container uses stays.
            if let Some(top) = &h.created_from {
                let mut dir = h.path.parent();
                while let Some(d) = dir {
                    if !d.starts_with(top) {
                        break;
                    }
                    if std::fs::remove_dir(d).is_err() {
                        break;
                    }
                    dir = d.parent();
                }
            }
        }
        Ok(())
    }

    #[cfg(test)]
    pub(crate) fn for_test(layout: Layout, hierarchies: Vec<Hierarchy>) -> Self {
        Manager {
            layout,
            hierarchies,
            systemd: None,
        }
    }

    pub(crate) fn hierarchies(&self) -> &[Hierarchy] {
        &self.hierarchies
    }
}

/// The v2 name of a v1 controller.
fn v2_name(controller: &str) -> &str {
    match controller {
        "blkio" => "io",
        other => other,
    }
}

/// Appends a cgroup path ("/a/b") to a mount point.
fn join_cgroup(mount: &Path, cgroup: &str) -> PathBuf {
    let rel = cgroup.trim_start_matches('/');
    if rel.is_empty() {
        mount.to_path_buf()
    } else {
        mount.join(rel)
    }
}

/// What a process needs to join a container's cgroup as it starts.
#[derive(Debug)]
pub struct Joiner {
    /// The v2 cgroup directory, for `clone3(CLONE_INTO_CGROUP)`.
    pub clone_into: Option<OwnedFd>,
    /// The v1 `tasks` files, opened for writing.
    pub tasks: Vec<OwnedFd>,
}

/// Moves the calling thread into each v1 cgroup whose `tasks` file is given, by writing "0".
///
/// Moving a process by pid takes the kernel's global thread-group lock, whose writer waits for an
/// RCU grace period (milliseconds, per hierarchy, on a busy host); a single-threaded process
/// moving itself does not need it. Call it from the new process, before it has other threads.
pub fn join_self(tasks: &[OwnedFd]) -> Result<()> {
    use std::os::fd::AsRawFd;
    for fd in tasks {
        // SAFETY: writes one byte from a static buffer to a valid fd.
        let n = unsafe { libc::write(fd.as_raw_fd(), b"0".as_ptr().cast(), 1) };
        if n != 1 {
            let errno = Errno::last();
            let path =
                std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap_or_default();
            return Err(Error::Write {
                path,
                value: "0".into(),
                errno,
            });
        }
    }
    Ok(())
}

fn open_write(path: &Path) -> Result<OwnedFd> {
    let cpath = CString::new(path.as_os_str().as_bytes()).map_err(|_| Error::Open {
        path: path.to_path_buf(),
        errno: Errno(libc::EINVAL),
    })?;
    // SAFETY: cpath is NUL-terminated.
    let fd = unsafe { libc::open(cpath.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(Error::Open {
            path: path.to_path_buf(),
            errno: Errno::last(),
        });
    }
    // SAFETY: a new fd that we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn open_dir(path: &Path) -> Result<OwnedFd> {
    let cpath = CString::new(path.as_os_str().as_bytes()).map_err(|_| Error::Open {
        path: path.to_path_buf(),
        errno: Errno(libc::EINVAL),
    })?;
    // SAFETY: cpath is NUL-terminated; the flags open a directory read-only.
    let fd = unsafe {
        libc::open(
            cpath.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(Error::Open {
            path: path.to_path_buf(),
            errno: Errno::last(),
        });
    }
    // SAFETY: fd was just returned by open(2) and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

pub(crate) fn open_cgroup_dir_fd(path: &Path) -> Result<OwnedFd> {
    open_dir(path)
}

/// mkdir -p of the container's cgroup below the hierarchy's mount. Returns the shallowest
/// directory it made.
fn mkdir_all(h: &Hierarchy, enable_all: bool) -> Result<Option<PathBuf>> {
    let Ok(rel) = h.path.strip_prefix(&h.mount) else {
        return Err(Error::InvalidPath {
            path: h.path.display().to_string(),
            reason: "is not below its hierarchy's mount point",
        });
    };
    let is_cpuset = h.version == Version::V1 && h.controllers.iter().any(|c| c == "cpuset");
    let subtree = if enable_all && !h.controllers.is_empty() {
        Some(
            h.controllers
                .iter()
                .map(|c| format!("+{c}"))
                .collect::<Vec<_>>()
                .join(" "),
        )
    } else {
        None
    };
    let mut created = None;
    let mut dir = h.mount.clone();
    for part in rel.components() {
        if let Some(s) = &subtree {
            controllers::enable_subtree(&dir, s, &h.controllers);
        }
        let parent = dir.clone();
        dir.push(part);
        match std::fs::create_dir(&dir) {
            Ok(()) => {
                if created.is_none() {
                    created = Some(dir.clone());
                }
                if is_cpuset {
                    controllers::cpuset::inherit_v1(&parent, &dir)?;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                let err = Error::Mkdir {
                    path: dir.clone(),
                    errno: Errno::from_io(&e),
                };
                if let Some(top) = &created {
                    let _ = remove_upwards(&parent, top);
                }
                return Err(err);
            }
        }
    }
    Ok(created)
}

/// Removes `from` and its parents up to and including `top` (cleanup after a failed mkdir -p).
fn remove_upwards(from: &Path, top: &Path) -> std::io::Result<()> {
    let mut dir = Some(from);
    while let Some(d) = dir {
        if !d.starts_with(top) {
            break;
        }
        std::fs::remove_dir(d)?;
        dir = d.parent();
    }
    Ok(())
}

/// rmdir of a cgroup and its child cgroups, deepest first. A missing directory is success.
fn remove_tree(dir: &Path) -> Result<()> {
    let fail = |e: &std::io::Error| Error::Remove {
        path: dir.to_path_buf(),
        errno: Errno::from_io(e),
    };
    // Usually there is no child cgroup: try the rmdir before listing the directory. The kernel
    // refuses a cgroup with children (EBUSY); then the children go first.
    match std::fs::remove_dir(dir) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EBUSY | libc::ENOTEMPTY)) => {}
        Err(e) => return Err(fail(&e)),
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(fail(&e)),
    };
    for entry in entries.flatten() {
        if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            remove_tree(&entry.path())?;
        }
    }
    match std::fs::remove_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(fail(&e)),
    }
}

/// Lists the pids of `dir` and its child cgroups. A child cgroup removed during the walk is
/// skipped; `dir` itself missing is an error (ENOENT) for the caller to judge.
fn collect_pids(dir: &Path, out: &mut Vec<i32>) -> Result<()> {
    out.extend(fs::read_procs(dir)?);
    let entries = std::fs::read_dir(dir).map_err(|e| Error::Read {
        path: dir.to_path_buf(),
        errno: Errno::from_io(&e),
    })?;
    for entry in entries.flatten() {
        if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            match collect_pids(&entry.path(), out) {
                Err(e) if e.cgroup_gone() => {}
                other => other?,
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_cgroup_removed_during_the_pid_walk_is_skipped() {
        // A plain directory tree stands in for a cgroup: `child` has no cgroup.procs, as when
        // the kernel removed it between the listing and the read.
        let dir = std::env::temp_dir().join(format!("ocirun-pidwalk-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("child")).unwrap();
        std::fs::write(dir.join("cgroup.procs"), "7\n9\n").unwrap();
        let mut pids = Vec::new();
        let walked = collect_pids(&dir, &mut pids);
        let missing_top = collect_pids(&dir.join("gone"), &mut Vec::new());
        std::fs::remove_dir_all(&dir).unwrap();
        walked.unwrap();
        assert_eq!(pids, vec![7, 9]);
        assert_eq!(missing_top.unwrap_err().errno(), Some(libc::ENOENT));
    }

    #[test]
    fn joins_cgroup_paths() {
        assert_eq!(
            join_cgroup(Path::new("/sys/fs/cgroup/memory"), "/a/b"),
            PathBuf::from("/sys/fs/cgroup/memory/a/b")
        );
        assert_eq!(
            join_cgroup(Path::new("/sys/fs/cgroup"), "/"),
            PathBuf::from("/sys/fs/cgroup")
        );
    }

    #[test]
    fn manager_round_trips_through_json() {
        let m = Manager::for_test(
            Layout::Hybrid,
            vec![Hierarchy {
                version: Version::V1,
                controllers: vec!["pids".into()],
                mount: "/sys/fs/cgroup/pids".into(),
                path: "/sys/fs/cgroup/pids/x".into(),
                created_from: Some("/sys/fs/cgroup/pids/x".into()),
            }],
        );
        let text = serde_json::to_string(&m).unwrap_or_default();
        let back: Option<Manager> = serde_json::from_str(&text).ok();
        assert_eq!(back.as_ref(), Some(&m));
    }

    #[test]
    fn systemd_without_systemd_is_one_clear_error() {
        if layout::systemd_booted() {
            println!("SKIP: systemd is running here; this checks hosts without it");
            return;
        }
        let err = Manager::new(None, "x", true).err().map(|e| e.to_string());
        assert!(
            err.as_deref()
                .is_some_and(|e| e.contains("systemd is not running as PID 1")),
            "{err:?}"
        );
    }
}
