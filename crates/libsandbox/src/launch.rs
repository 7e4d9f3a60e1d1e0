//! Creating a container, runtime side: `create`, and the first half of `run`.
//!
//! The runtime validates the config, makes the state directory and the cgroup, forks the init
//! with `clone3` (new namespaces and, on cgroup v2, straight into its cgroup), writes id maps,
//! runs the runtime-namespace hooks when the init asks, applies resource limits once the init is
//! set up, and records the container. If any step fails, everything made so far is undone.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::channel::{self, Channel, ChannelError};
use crate::clone::{self, Forked};
use crate::errno::{Errno, check};
use crate::error::{Error, Result};
use crate::fds::Passed;
use crate::hooks::{self, HookKind};
use crate::init::{self, FromInit, InitContext, StartGate, ToInit};
use crate::namespaces::{self, Plan};
use crate::procfs::ProcFs;
use crate::spec;
use crate::state::{self, Record, Status};
use crate::store::{ContainerDir, Store};
use crate::timefmt;

/// Options of `create` (and `run`), as the runc CLI spells them.
#[derive(Clone, Debug, Default)]
pub struct CreateOptions {
    pub id: String,
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: u32,
    pub systemd_cgroup: bool,
}

/// The file in the state directory on which a created init waits for `start`.
pub const START_SOCKET: &str = "start.sock";

/// A container whose init is set up and waiting to start.
pub struct Launched {
    pub dir: ContainerDir,
    pub record: Record,
    pub spec: Spec,
    /// The init's channel (only for `run`, which starts it over this channel).
    pub(crate) chan: Option<Channel<ToInit, FromInit>>,
    /// The pty master, for a foreground `run` with a terminal and no console socket.
    pub(crate) pty_master: Option<OwnedFd>,
    /// The config bytes `run` still has to store (after starting the process).
    pub(crate) unsaved_config: Option<Vec<u8>>,
    pub(crate) pidfd: OwnedFd,
}

/// Undoes a half-made container unless disarmed.
struct Undo {
    dir: Option<ContainerDir>,
    cgroup: Option<cgroups::Manager>,
    child: Option<OwnedFd>,
}

impl Drop for Undo {
    fn drop(&mut self) {
        if let Some(pidfd) = self.child.take() {
            let _ = crate::sys::pidfd_send_signal(pidfd.as_fd(), libc::SIGKILL);
            let _ = clone::wait(&pidfd);
        }
        if let Some(cg) = self.cgroup.take() {
            let _ = cg.destroy();
        }
        if let Some(dir) = self.dir.take() {
            let _ = dir.remove();
        }
    }
}

/// How the init is started: by `start` over a socket (`create`), or by this process (`run`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Create,
    Run,
    RunDetached,
}

/// Creates the container; returns once its init waits for start.
pub fn create(store: &Store, opts: &CreateOptions, mode: Mode) -> Result<Launched> {
    let bundle = std::path::absolute(&opts.bundle).map_err(|e| Error::Io {
        op: "resolve bundle path",
        path: opts.bundle.clone(),
        errno: Errno::from(e),
    })?;
    let (spec, config_bytes) = spec::load(&bundle)?;
    spec::validate(&spec, &bundle)?;
    let rootfs = init::rootfs_path(&bundle, &spec);
    let rootfs = std::fs::canonicalize(&rootfs).map_err(|e| Error::Io {
        op: "resolve rootfs",
        path: rootfs.clone(),
        errno: Errno::from(e),
    })?;
    let plan = Plan::from_spec(&spec);
    let lsm = crate::lsm::Lsm::detect();
    if lsm.selinux
        && spec
            .linux()
            .as_ref()
            .and_then(|l| l.mount_label().as_ref())
            .is_some_and(|l| !l.is_empty())
    {
        return Err(Error::Usage(
            "config.json: linux.mountLabel: SELinux mount labels are not supported by this runtime"
                .into(),
        ));
    }
    let filter = match spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
        Some(profile) => Some(seccomp::compile(profile).map_err(Error::Seccomp)?),
        None => None,
    };

    let dir = store.create(&opts.id)?;
    let mut undo = Undo {
        dir: Some(dir),
        cgroup: None,
        child: None,
    };
    let dir = undo.dir.as_ref().expect("just set");

    let linux = spec.linux().as_ref();
    let cgroups_path = linux
        .and_then(|l| l.cgroups_path().as_ref())
        .map(|p| p.to_string_lossy().into_owned());
    let mut cgroup = cgroups::Manager::new(cgroups_path.as_deref(), &opts.id, opts.systemd_cgroup)
        .map_err(Error::Cgroup)?;
    // The init joins v1 hierarchies by writing to their `tasks` files, so on pure v1 and hybrid
    // hosts they can be made after the clone: the runtime makes them while the init makes its
    // network namespace, the costliest part of the clone (about a millisecond each). A v2 cgroup
    // (pure v2, or a hybrid host's unified hierarchy) is made first, for CLONE_INTO_CGROUP. With
    // a new user namespace the init waits for its id maps anyway.
    let cgroups_later = !cgroup.uses_systemd()
        && matches!(
            cgroup.layout(),
            cgroups::Layout::V1 | cgroups::Layout::Hybrid
        )
        && plan.creates(LinuxNamespaceType::Network)
        && !plan.creates(LinuxNamespaceType::User);
    // With the systemd driver the scope is made around the init after the clone;
    // until then there is nothing to join, and a scope name already taken is another
    // container's, which an undo must not touch.
    let joiner = if cgroup.uses_systemd() {
        None
    } else if !cgroups_later {
        cgroup.create().map_err(Error::Cgroup)?;
        undo.cgroup = Some(cgroup.clone());
        Some(cgroup.joiner().map_err(Error::Cgroup)?)
    } else if cgroup.layout() == cgroups::Layout::Hybrid {
        // Only the unified hierarchy now; the v1 ones after the clone.
        cgroup
            .create_version(cgroups::Version::V2)
            .map_err(Error::Cgroup)?;
        undo.cgroup = Some(cgroup.clone());
        let unified = cgroup.joiner_for(Some(cgroups::Version::V2));
        Some(unified.map_err(Error::Cgroup)?)
    } else {
        None
    };
    let cgroup_paths: Vec<PathBuf> = cgroup.paths().map(Path::to_path_buf).collect();

    let terminal = spec.process().as_ref().and_then(|p| p.terminal()) == Some(true);
    // A foreground `run` with a terminal and no console socket relays the pty itself.
    let mut console = crate::tty::Console::open(
        opts.console_socket.as_deref(),
        terminal && mode == Mode::Run,
    )?;
    let console_socket = console.for_child.take();
    if terminal && console_socket.is_none() {
        return Err(Error::Usage(
            "process.terminal is true: --console-socket is required (unless run in the foreground)"
                .into(),
        ));
    }
    if !terminal && console_socket.is_some() {
        return Err(Error::Usage(
            "--console-socket given but process.terminal is false".into(),
        ));
    }

    let gate = match mode {
        Mode::Create => StartGate::Listener(listen(&dir.file(START_SOCKET))?),
        Mode::Run | Mode::RunDetached => StartGate::Channel,
    };

    let hook_list = spec.hooks().as_ref();
    let runtime_hooks = !hooks::of_kind(hook_list, HookKind::Prestart).is_empty()
        || !hooks::of_kind(hook_list, HookKind::CreateRuntime).is_empty();
    let container_hooks = !hooks::of_kind(hook_list, HookKind::CreateContainer).is_empty()
        || !hooks::of_kind(hook_list, HookKind::StartContainer).is_empty();
    let mut record = Record {
        id: opts.id.clone(),
        pid: 0,
        pid_start_time: 0,
        status: Status::Creating,
        bundle: bundle.clone(),
        rootfs: rootfs.clone(),
        created: timefmt::now_rfc3339(),
        owner: state::owner(),
        annotations: spec.annotations().clone().unwrap_or_default(),
        cgroup: (!cgroup.uses_systemd())
            .then(|| serde_json::to_value(&cgroup).ok())
            .flatten(),
        shared_pid_ns: !plan.has(LinuxNamespaceType::Pid),
    };
    // Recorded before anything runs: if this process is killed mid-way, `delete --force` still
    // finds the cgroup to remove (the init, losing its channel, exits by itself).
    dir.save(&record)?;

    // A cgroup namespace must be rooted at the container's cgroup: on pure v2 the clone does it
    // (CLONE_INTO_CGROUP); with v1 hierarchies the init unshares it after joining them, and with
    // the systemd driver after systemd has moved it into its scope.
    let mut clone_flags = plan.new & !(libc::CLONE_NEWTIME as u64);
    let mut late_unshare = 0;
    let joins_late = cgroups_later
        || cgroup.uses_systemd()
        || joiner.as_ref().is_some_and(|j| !j.tasks.is_empty());
    if joins_late && plan.creates(LinuxNamespaceType::Cgroup) {
        clone_flags &= !(libc::CLONE_NEWCGROUP as u64);
        late_unshare |= libc::CLONE_NEWCGROUP as u64;
    }
    let mut early_unshare = 0;
    if cgroups_later {
        clone_flags &= !(libc::CLONE_NEWNET as u64);
        early_unshare |= libc::CLONE_NEWNET as u64;
    }
    let userns_new = plan.creates(LinuxNamespaceType::User);
    let wait_for_go = userns_new || container_hooks || cgroup.uses_systemd();

    let host_proc = ProcFs::host().map_err(|errno| Error::Sys {
        step: "open host /proc".into(),
        errno,
    })?;
    let restore = enter_for_children(&spec, &plan, &host_proc)?;

    let (to_init, from_runtime) =
        channel::pair::<ToInit, FromInit>().map_err(|errno| Error::Sys {
            step: "create init channel".into(),
            errno,
        })?;
    let passed = Passed::from_env(opts.preserve_fds);
    let ctx = InitContext {
        spec: &spec,
        plan: &plan,
        bundle: &bundle,
        rootfs: &rootfs,
        no_pivot: opts.no_pivot,
        wait_for_go,
        late_unshare,
        early_unshare,
        cgroups_later,
        console_socket,
        gate,
        passed,
        close_fds: [
            dir.lock_fd(),
            to_init.fd().as_raw_fd(),
            host_proc.root().as_raw_fd(),
        ]
        .into_iter()
        .chain(crate::exe::protected_copy_fd())
        .collect(),
        hook_state: record.oci_state(Status::Creating),
        runtime_hooks,
        keyring: (!opts.no_new_keyring).then(|| opts.id.clone()),
        seccomp: filter.as_ref(),
        cgroup_paths: &cgroup_paths,
        cgroup_tasks: joiner.as_ref().map_or(&[], |j| &j.tasks),
        lsm,
    };

    // SAFETY: the runtime is single-threaded (nothing in it spawns threads); the child leaves
    // only through init::main, which ends in execve or _exit.
    let forked = unsafe {
        clone::clone3(
            clone_flags,
            joiner
                .as_ref()
                .and_then(|j| j.clone_into.as_ref())
                .map(|f| f.as_fd()),
        )
    };
    let forked = match forked {
        Ok(f) => f,
        Err(errno) => {
            restore.undo();
            return Err(Error::Sys {
                step: "create the container's init (clone3 with namespaces)".into(),
                errno,
            });
        }
    };
    let (pid, pidfd) = match forked {
        Forked::Child => {
            std::panic::set_hook(Box::new(|info| {
                eprintln!("ocirun: container init: {info}");
                // SAFETY: leave the child at once; nothing of the parent's must run here.
                unsafe { libc::_exit(255) }
            }));
            drop(to_init);
            init::main(ctx, Channel::from_fd(from_runtime.into_fd()))
        }
        Forked::Parent { pid, pidfd } => (pid, pidfd),
    };
    restore.undo();
    drop(ctx);
    drop(from_runtime);
    // The child has its copies of the tasks files; close ours now, not while the init waits.
    drop(joiner);
    let pidfd_dup = pidfd.try_clone().map_err(|e| Error::Sys {
        step: "duplicate pidfd".into(),
        errno: Errno::from(e),
    })?;
    undo.child = Some(pidfd_dup);
    record.pid = pid;
    // The init makes its network namespace (and its first mounts) while the runtime makes the
    // v1 cgroups: on another CPU, if it can (its affinity is restored before it gets them).
    let kept_off = cgroups_later
        .then(|| crate::cpus::KeptOff::from_our_cpu(pid))
        .flatten();
    // Read while the init sets itself up (the start time is fixed at the clone).
    record.pid_start_time = state::process_start_time(pid).map(|(s, _)| s).unwrap_or(0);
    if cgroups_later {
        cgroup
            .create_version(cgroups::Version::V1)
            .map_err(Error::Cgroup)?;
        undo.cgroup = Some(cgroup.clone());
        record.cgroup = serde_json::to_value(&cgroup).ok();
        dir.save(&record)?;
        let joiner = cgroup
            .joiner_for(Some(cgroups::Version::V1))
            .map_err(Error::Cgroup)?;
        let tasks: Vec<_> = joiner.tasks.iter().map(|f| f.as_fd()).collect();
        drop(kept_off);
        to_init
            .send_with(&ToInit::Cgroups { count: tasks.len() }, &tasks)
            .map_err(|e| init_failed(&to_init, e, &pidfd))?;
    }

    if let Some(adj) = spec.process().as_ref().and_then(|p| p.oom_score_adj()) {
        host_proc
            .write(
                &PathBuf::from(format!("{pid}/oom_score_adj")),
                adj.to_string().as_bytes(),
            )
            .map_err(|errno| Error::Sys {
                step: format!("set oom_score_adj to {adj}"),
                errno,
            })?;
    }
    if cgroup.uses_systemd() {
        let no_resources = Default::default();
        let resources = linux
            .and_then(|l| l.resources().as_ref())
            .unwrap_or(&no_resources);
        cgroup
            .start_scope(pid, resources, &record.annotations)
            .map_err(Error::Cgroup)?;
        undo.cgroup = Some(cgroup.clone());
        record.cgroup = serde_json::to_value(&cgroup).ok();
        dir.save(&record)?;
    }
    if userns_new {
        let l = linux.expect("validated: a user namespace has mappings");
        namespaces::write_id_maps(
            &host_proc,
            pid,
            l.uid_mappings().as_deref().unwrap_or_default(),
            l.gid_mappings().as_deref().unwrap_or_default(),
        )?;
    }
    if wait_for_go {
        to_init
            .send(&ToInit::Go { host_pid: pid })
            .map_err(|e| init_failed(&to_init, e, &pidfd))?;
    }

    loop {
        match to_init.recv() {
            Ok(FromInit::HooksReady) => {
                let mut st = record.oci_state(Status::Creating);
                st.pid = pid;
                let json = serde_json::to_vec(&st).unwrap_or_default();
                for kind in [HookKind::Prestart, HookKind::CreateRuntime] {
                    hooks::run_all(kind, &hooks::of_kind(hook_list, kind), &json)?;
                }
                to_init
                    .send(&ToInit::HooksDone)
                    .map_err(|e| init_failed(&to_init, e, &pidfd))?;
            }
            Ok(FromInit::Ready) => break,
            Ok(FromInit::SeccompNotify { fd }) => {
                let mut st = record.oci_state(Status::Creating);
                st.pid = pid;
                hand_to_agent(&spec, &pidfd, fd, &st, pid)?;
                to_init
                    .send(&ToInit::SeccompDone)
                    .map_err(|e| init_failed(&to_init, e, &pidfd))?;
            }
            Ok(FromInit::Failed(e)) => return Err(Error::Init(e)),
            Err(e) => return Err(init_gone(e, &pidfd)),
        }
    }

    cgroup
        .apply(&resources_with_device_rules(&spec))
        .map_err(Error::Cgroup)?;
    record.status = Status::Created;
    // `run` records the container once, after the start: nothing stands between Ready and Start.
    let unsaved_config = if mode == Mode::Create {
        dir.save_config(&config_bytes)?;
        dir.save(&record)?;
        None
    } else {
        Some(config_bytes)
    };
    if let Some(pid_file) = &opts.pid_file {
        write_pid_file(pid_file, pid)?;
    }

    let pty_master = console.receive_master()?;
    let dir = undo.dir.take().expect("set above");
    undo.cgroup = None;
    undo.child = None;
    Ok(Launched {
        dir,
        record,
        spec,
        chan: (mode != Mode::Create).then_some(to_init),
        pty_master,
        pidfd,
        unsaved_config,
    })
}

/// The config's resources with runc's device rules: the config's own rules, an allow rule for
/// each device in `linux.devices`, and the devices every container may use.
fn resources_with_device_rules(spec: &Spec) -> oci_spec::runtime::LinuxResources {
    let linux = spec.linux().as_ref();
    let mut resources = linux
        .and_then(|l| l.resources().clone())
        .unwrap_or_default();
    let mut rules = resources.devices().clone().unwrap_or_default();
    // Each device of linux.devices is allowed, as runc does; FIFOs are not devices the cgroup
    // controls, so they get no rule.
    for dev in linux
        .and_then(|l| l.devices().as_ref())
        .into_iter()
        .flatten()
        .filter(|d| d.typ() != oci_spec::runtime::LinuxDeviceType::P)
    {
        rules.push(oci_spec::runtime::LinuxDeviceCgroup::from(dev));
    }
    rules.extend(cgroups::default_device_rules());
    resources.set_devices(Some(rules));
    resources
}

/// Takes a notify fd (number `fd` in the process behind `pidfd`) and hands it, with the
/// container's state, to the seccomp agent at `linux.seccomp.listenerPath`.
pub(crate) fn hand_to_agent(
    spec: &Spec,
    pidfd: &OwnedFd,
    fd: i32,
    state: &crate::state::OciState,
    pid: i32,
) -> Result<()> {
    let profile = spec
        .linux()
        .as_ref()
        .and_then(|l| l.seccomp().as_ref())
        .ok_or_else(|| Error::Usage("a notify fd without linux.seccomp".into()))?;
    let path = profile.listener_path().as_ref().ok_or_else(|| {
        Error::Usage("linux.seccomp: SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath".into())
    })?;
    let notify = pidfd_getfd(pidfd, fd).map_err(|errno| Error::Sys {
        step: "take the seccomp notify fd from the container process".into(),
        errno,
    })?;
    seccomp::send_to_listener(
        path,
        &state.to_spec_state(),
        pid,
        profile.listener_metadata().as_deref(),
        notify.as_fd(),
    )
    .map_err(Error::Seccomp)
}

/// `pidfd_getfd(2)`: a copy of fd `fd` of the process behind `pidfd`.
fn pidfd_getfd(pidfd: &OwnedFd, fd: i32) -> std::result::Result<OwnedFd, Errno> {
    // SAFETY: plain integer arguments; the result is a new fd that we own.
    let ret = check(unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd, 0) })?;
    // SAFETY: as above.
    Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(ret as i32) })
}

/// The error for an init that went away without reporting: its exit status says why.
/// A send to the init failed: the init has exited. Its own error, when it sent one before it
/// went (it mounts while the runtime makes the cgroups), is still queued on the channel and says
/// more than the closed socket.
fn init_failed(chan: &Channel<ToInit, FromInit>, e: ChannelError, pidfd: &OwnedFd) -> Error {
    // Only a closed peer: a recv on a live one could wait for ever.
    if matches!(e, ChannelError::Closed) {
        if let Ok(FromInit::Failed(reason)) = chan.recv() {
            return Error::Init(reason);
        }
    }
    init_gone(e, pidfd)
}

fn init_gone(e: ChannelError, pidfd: &OwnedFd) -> Error {
    Error::InitDied {
        status: clone::wait(pidfd).ok(),
        cause: e.to_string(),
    }
}

/// Namespaces that apply to children only (a new time namespace with offsets, joining a pid
/// namespace) are entered by the runtime just for the clone, then left again.
struct Restore {
    pid: Option<OwnedFd>,
    time: Option<OwnedFd>,
}

impl Restore {
    fn undo(&self) {
        if let Some(fd) = &self.pid {
            // SAFETY: setns back into our own pid namespace (for children).
            unsafe { libc::setns(fd.as_raw_fd(), libc::CLONE_NEWPID) };
        }
        if let Some(fd) = &self.time {
            // SAFETY: setns back into our own time namespace.
            unsafe { libc::setns(fd.as_raw_fd(), libc::CLONE_NEWTIME) };
        }
    }
}

fn enter_for_children(spec: &Spec, plan: &Plan, host_proc: &ProcFs) -> Result<Restore> {
    let mut restore = Restore {
        pid: None,
        time: None,
    };
    if let Some(path) = plan.joins(LinuxNamespaceType::Pid) {
        restore.pid = Some(open_own_ns("pid")?);
        let fd = namespaces::open(LinuxNamespaceType::Pid, path)?;
        namespaces::join(LinuxNamespaceType::Pid, &fd, path)?;
    }
    if plan.creates(LinuxNamespaceType::Time) {
        restore.time = Some(open_own_ns("time")?);
        if let Err(e) = namespaces::unshare(libc::CLONE_NEWTIME as u64)
            .and_then(|()| namespaces::write_time_offsets(host_proc, spec))
        {
            restore.undo();
            return Err(e.into());
        }
    }
    Ok(restore)
}

fn open_own_ns(name: &str) -> Result<OwnedFd> {
    let path = PathBuf::from(format!("/proc/self/ns/{name}"));
    crate::sys::openat(crate::sys::cwd(), &path, libc::O_RDONLY, 0).map_err(|errno| Error::Io {
        op: "open own namespace",
        path,
        errno,
    })
}

/// A listening `SOCK_SEQPACKET` socket at `path`.
fn listen(path: &Path) -> Result<OwnedFd> {
    let err = |errno| Error::Io {
        op: "create start socket",
        path: path.to_owned(),
        errno,
    };
    let sock = unix_socket().map_err(err)?;
    let addr = crate::sockaddr::UnixAddr::new(path).map_err(err)?;
    // SAFETY: `addr` is a valid sockaddr_un of the length given.
    check(unsafe { libc::bind(sock.as_raw_fd(), addr.as_ptr(), addr.len()) }).map_err(err)?;
    // SAFETY: listen on a bound socket.
    check(unsafe { libc::listen(sock.as_raw_fd(), 4) }).map_err(err)?;
    Ok(sock)
}

/// A new `AF_UNIX` `SOCK_SEQPACKET` socket.
pub fn unix_socket() -> std::result::Result<OwnedFd, Errno> {
    // SAFETY: socket(2) with constant arguments.
    let fd = check(unsafe {
        libc::socket(libc::AF_UNIX, libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC, 0)
    })?;
    // SAFETY: a new fd that we own.
    Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
}

/// Writes the pid file the way containerd and conmon expect: a temporary file renamed into
/// place, holding the pid without a newline.
pub(crate) fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let path = std::path::absolute(path).map_err(|e| Error::Io {
        op: "resolve pid file",
        path: path.to_owned(),
        errno: Errno::from(e),
    })?;
    crate::store::write_atomic(&path, pid.to_string().as_bytes())?;
    Ok(())
}
