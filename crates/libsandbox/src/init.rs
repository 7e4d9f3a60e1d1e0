//! The container's init, child side: everything between `clone3` and `execve`.
//!
//! The child is a fork of the runtime, so it already holds the parsed config; it only talks to
//! the runtime to synchronise (id maps written, hooks run, start requested) and to report an
//! error as a typed value naming the step that failed.

use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::channel::{Channel, ChannelError};
use crate::devices::{self, DeviceError};
use crate::errno::{Errno, check};
use crate::fds::Passed;
use crate::hooks::{self, HookError, HookKind};
use crate::masked::{self, DevNull, MaskError};
use crate::mounts::{self, MountContext, MountError};
use crate::namespaces::{self, NamespaceError, Plan};
use crate::process::{self, ProcessError};
use crate::procfs::ProcFs;
use crate::rlimits::{self, RlimitError};
use crate::rootfs::{self, RootfsError};
use crate::state::OciState;
use crate::sysctl;
use crate::terminal::{self, TerminalError};

/// Runtime to init.
#[derive(Debug, Serialize, Deserialize)]
pub enum ToInit {
    /// The container's v1 cgroups are made: their `tasks` files are attached (this many).
    Cgroups { count: usize },
    /// Id maps are written and the cgroup joined; carries the init's pid as the host sees it.
    Go { host_pid: i32 },
    /// Prestart and createRuntime hooks ran.
    HooksDone,
    /// Run the process now.
    Start,
    /// The seccomp agent has the notify fd.
    SeccompDone,
}

/// Init to runtime.
#[derive(Debug, Serialize, Deserialize)]
pub enum FromInit {
    /// Mounts are made: run prestart and createRuntime hooks now.
    HooksReady,
    /// Setup is complete; waiting for `Start`.
    Ready,
    /// A filter with SCMP_ACT_NOTIFY is installed; its listener fd is this fd number in the init
    /// (the runtime takes it with pidfd_getfd, so the init only ever writes).
    SeccompNotify { fd: i32 },
    /// A step failed.
    Failed(InitError),
}

/// A step of the init that failed.
#[derive(Debug, Error, Serialize, Deserialize)]
pub enum InitError {
    #[error(transparent)]
    Namespace(#[from] NamespaceError),
    #[error(transparent)]
    Rootfs(#[from] RootfsError),
    #[error(transparent)]
    Mount(#[from] MountError),
    #[error(transparent)]
    Device(#[from] DeviceError),
    #[error(transparent)]
    Mask(#[from] MaskError),
    #[error(transparent)]
    Terminal(#[from] TerminalError),
    #[error(transparent)]
    Rlimit(#[from] RlimitError),
    #[error(transparent)]
    Process(#[from] ProcessError),
    #[error(transparent)]
    Hook(#[from] HookError),
    #[error("write sysctl {key}={value}: {errno}")]
    Sysctl {
        key: String,
        value: String,
        errno: Errno,
    },
    #[error("set {what} to {value:?}: {errno}")]
    Uts {
        what: String,
        value: String,
        errno: Errno,
    },
    #[error("{step}: {errno}")]
    Step { step: String, errno: Errno },
    #[error("join the container's cgroup: {0}")]
    Cgroup(String),
    #[error("{0}")]
    Protocol(String),
    #[error("the container's init panicked: {0}")]
    Panic(String),
}

impl From<ChannelError> for InitError {
    fn from(e: ChannelError) -> Self {
        InitError::Protocol(format!("talking to the runtime: {e}"))
    }
}

fn step(name: &str) -> impl FnOnce(Errno) -> InitError + '_ {
    move |errno| InitError::Step {
        step: name.to_owned(),
        errno,
    }
}

/// How the init learns that it may run the process.
pub enum StartGate {
    /// `run`: a `Start` message on the runtime channel.
    Channel,
    /// `create`: a connection on this listening socket (in the container's state directory),
    /// which `start` makes; the connection then carries `Start` and any error reply.
    Listener(OwnedFd),
}

/// Everything the init needs, prepared by the runtime before `clone3`.
pub struct InitContext<'a> {
    pub spec: &'a Spec,
    pub plan: &'a Plan,
    pub bundle: &'a Path,
    pub rootfs: &'a Path,
    pub no_pivot: bool,
    /// Whether to wait for `Go` before starting (id maps, cgroup join, pid for hooks).
    pub wait_for_go: bool,
    /// Namespaces the init must unshare itself after `Go` (a cgroup namespace on v1 hosts,
    /// where the cgroup is joined after the clone).
    pub late_unshare: u64,
    /// Namespaces the init unshares first of all (the network namespace, when the runtime makes
    /// the cgroups meanwhile).
    pub early_unshare: u64,
    /// Whether the v1 cgroups' `tasks` files come in a `Cgroups` message instead of
    /// `cgroup_tasks`.
    pub cgroups_later: bool,
    pub console_socket: Option<OwnedFd>,
    pub gate: StartGate,
    pub passed: Passed,
    /// Fds of the runtime the init must not keep (the state lock).
    pub close_fds: Vec<RawFd>,
    /// The state given to hooks, with the pid filled in by the init.
    pub hook_state: OciState,
    /// Whether prestart/createRuntime hooks exist (so the init stops for them).
    pub runtime_hooks: bool,
    /// The compiled seccomp filter, installed as the last step before execve (or before
    /// `Ready` when it notifies an agent, which must have the fd before the process runs).
    pub seccomp: Option<&'a seccomp::Filter>,
    /// The v1 `tasks` files the init writes itself into (v2 is joined by the clone).
    pub cgroup_tasks: &'a [OwnedFd],
    /// The container's cgroup directories on the host (for the `cgroup` mount).
    pub cgroup_paths: &'a [PathBuf],
    /// The host's enabled security modules.
    pub lsm: crate::lsm::Lsm,
    /// The session keyring to join (named after the container), unless `--no-new-keyring`.
    pub keyring: Option<String>,
}

type ToRuntime = Channel<FromInit, ToInit>;

/// The init's entry point in the child; never returns.
pub fn main(ctx: InitContext<'_>, chan: ToRuntime) -> ! {
    let result = setup(ctx, &chan);
    let err = match result {
        Ok(never) => match never {},
        Err((e, reply)) => {
            let reply = reply.as_ref().unwrap_or(&chan);
            let _ = reply.send(&FromInit::Failed(e));
            1
        }
    };
    // SAFETY: _exit ends the child without running the parent's destructors or atexit handlers.
    unsafe { libc::_exit(err) }
}

enum Never {}

/// The init's steps; on failure also returns the channel the error must go to (after `start`,
/// the start connection).
fn setup(ctx: InitContext<'_>, chan: &ToRuntime) -> Result<Never, (InitError, Option<ToRuntime>)> {
    let mut ctx = ctx;
    let (reply, prepared) = prepare(&mut ctx, chan).map_err(|e| (e, None))?;
    let e = run(&ctx, prepared);
    Err((e, reply))
}

/// Everything up to and including the wait for start; returns the start connection (create).
fn prepare<'a>(
    ctx: &mut InitContext<'a>,
    chan: &ToRuntime,
) -> Result<(Option<ToRuntime>, process::Prepared<'a>), InitError> {
    // The network namespace the clone left out: made in the runtime's cgroup, as it would have
    // been by the clone.
    if ctx.early_unshare != 0 {
        namespaces::unshare(ctx.early_unshare)?;
    }
    for fd in ctx.close_fds.drain(..) {
        // SAFETY: closing our copy of a runtime fd that nothing in the child uses.
        unsafe { libc::close(fd) };
    }
    // The v1 cgroups come from the runtime, which makes them while this process makes its
    // network namespace. When nothing else is awaited from the runtime before the mounts,
    // the init goes on with them meanwhile and joins the cgroups where it first needs them
    // (before a cgroup mount, and at the latest before it creates device nodes, runs hooks or
    // forks anything); otherwise it joins them now, before any other work.
    let mut cgroups_pending = ctx.cgroups_later;
    let join_at_mounts =
        cgroups_pending && !ctx.wait_for_go && ctx.plan.has(LinuxNamespaceType::Mount);
    if !ctx.cgroups_later {
        cgroups::join_self(ctx.cgroup_tasks).map_err(|e| InitError::Cgroup(e.to_string()))?;
    } else if !join_at_mounts {
        join_cgroups(chan)?;
        cgroups_pending = false;
    }
    let spec = ctx.spec;
    let linux = spec.linux().as_ref();
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| InitError::Protocol("config has no process".to_owned()))?;

    if ctx.wait_for_go {
        match chan.recv()? {
            ToInit::Go { host_pid } => ctx.hook_state.pid = host_pid,
            other => return Err(InitError::Protocol(format!("expected Go, got {other:?}"))),
        }
    }

    if ctx.plan.creates(LinuxNamespaceType::User) {
        // The id maps are written now; become root of the new user namespace (until this, our
        // ids are the host's, which the namespace does not map, so files could not be made).
        become_namespace_root()?;
    }
    for (kind, path) in &ctx.plan.join {
        if *kind == LinuxNamespaceType::Pid {
            continue; // joined by the runtime before the clone (it applies to children only)
        }
        let fd = namespaces::open(*kind, path)?;
        namespaces::join(*kind, &fd, path)?;
    }
    // A cgroup namespace is rooted where the init is when it is made: after the join.
    if ctx.late_unshare != 0 && !cgroups_pending {
        namespaces::unshare(ctx.late_unshare)?;
    }
    let late_unshare = ctx.late_unshare;
    let mut join_pending_cgroups = || -> Result<(), InitError> {
        if std::mem::take(&mut cgroups_pending) {
            join_cgroups(chan)?;
            if late_unshare != 0 {
                namespaces::unshare(late_unshare)?;
            }
        }
        Ok(())
    };

    // SAFETY: setsid has no memory effects; the init leads its own session like runc's.
    check(unsafe { libc::setsid() }).map_err(step("setsid"))?;
    if let Some(name) = &ctx.keyring {
        join_session_keyring(name)?;
    }

    let userns = ctx.plan.has(LinuxNamespaceType::User);
    let terminal = process.terminal() == Some(true);
    let mut proc_root: Option<OwnedFd>;
    let mut console: Option<terminal::Pty> = None;

    if ctx.plan.has(LinuxNamespaceType::Mount) {
        let root = rootfs::prepare(
            ctx.rootfs,
            linux.and_then(|l| l.rootfs_propagation().as_deref()),
        )?;
        let mctx = MountContext {
            root: root.as_fd(),
            bundle: ctx.bundle,
            cgroupns: ctx.plan.has(LinuxNamespaceType::Cgroup),
            cgroup_paths: ctx.cgroup_paths,
            userns,
        };
        let all = spec.mounts().as_deref().unwrap_or_default();
        let (before, after) = all.split_at(
            all.iter()
                .position(mounts::needs_own_cgroups)
                .unwrap_or(all.len()),
        );
        let mut made = mounts::MountResult::default();
        mounts::mount_all(&mctx, before, &mut made)?;
        join_pending_cgroups()?;
        mounts::mount_all(&mctx, after, &mut made)?;
        proc_root = made.proc_root;
        if !made.dev_is_bind {
            let nodes = devices::nodes(
                linux
                    .and_then(|l| l.devices().as_deref())
                    .unwrap_or_default(),
                true,
            );
            devices::create(root.as_fd(), &nodes, userns)?;
            devices::symlinks(root.as_fd(), made.devpts)?;
        }
        if terminal {
            let size = process
                .console_size()
                .as_ref()
                .map(|b| (b.height() as u16, b.width() as u16));
            let pty = terminal::open(root.as_fd(), size)?;
            terminal::bind_console(root.as_fd(), &pty.peer)?;
            console = Some(pty);
        }
        let devnull = DevNull::open()?;
        // Sysctls go through the container's own procfs before read-only paths cover /proc/sys.
        apply_sysctls(linux, proc_root.take())?;

        if ctx.runtime_hooks {
            chan.send(&FromInit::HooksReady)?;
            match chan.recv()? {
                ToInit::HooksDone => {}
                other => {
                    return Err(InitError::Protocol(format!(
                        "expected HooksDone, got {other:?}"
                    )));
                }
            }
        }
        run_hooks(
            spec,
            HookKind::CreateContainer,
            &ctx.hook_state,
            crate::state::Status::Creating,
        )?;

        // Masks and read-only paths are resolved inside the rootfs through its fd, before the
        // host's /dev/null leaves our mount namespace with the old root.
        if let Some(l) = linux {
            masked::readonly(
                root.as_fd(),
                l.readonly_paths().as_deref().unwrap_or_default(),
            )?;
            masked::mask(
                root.as_fd(),
                l.masked_paths().as_deref().unwrap_or_default(),
                &devnull,
            )?;
        }
        if ctx.no_pivot {
            rootfs::move_root(&root, ctx.rootfs)?;
        } else {
            rootfs::pivot(&root, ctx.rootfs)?;
        }
        rootfs::restore_propagation(linux.and_then(|l| l.rootfs_propagation().as_deref()))?;
        if spec.root().as_ref().and_then(|r| r.readonly()) == Some(true) {
            rootfs::make_readonly()?;
        }
    } else {
        join_pending_cgroups()?;
        let c = crate::sys::cpath(ctx.rootfs).map_err(step("chroot"))?;
        // SAFETY: `c` is NUL-terminated.
        check(unsafe { libc::chroot(c.as_ptr()) }).map_err(step("chroot"))?;
        // SAFETY: valid C string.
        check(unsafe { libc::chdir(c"/".as_ptr()) }).map_err(step("chdir /"))?;
        apply_sysctls(linux, None)?;
        if ctx.runtime_hooks {
            chan.send(&FromInit::HooksReady)?;
            chan.recv()?;
        }
    }

    if let Some(name) = spec.hostname().as_deref().filter(|h| !h.is_empty()) {
        // SAFETY: pointer and length of a valid byte slice.
        check(unsafe { libc::sethostname(name.as_ptr().cast(), name.len()) }).map_err(|errno| {
            InitError::Uts {
                what: "hostname".into(),
                value: name.to_owned(),
                errno,
            }
        })?;
    }
    if let Some(name) = spec.domainname().as_deref().filter(|h| !h.is_empty()) {
        // SAFETY: pointer and length of a valid byte slice.
        check(unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) }).map_err(
            |errno| InitError::Uts {
                what: "domainname".into(),
                value: name.to_owned(),
                errno,
            },
        )?;
    }

    if let Some(limits) = process.rlimits() {
        rlimits::apply(limits)?;
    }

    if let Some(pty) = console.take() {
        if let Some(sock) = ctx.console_socket.take() {
            terminal::send_master(sock.as_fd(), &pty.master)?;
        }
        terminal::become_controlling(&pty.peer)?;
    }
    ctx.console_socket = None;

    let mut prepared = process::prepare(
        process::Role::Init,
        ctx.lsm,
        process,
        ctx.seccomp,
        &ctx.passed.env(),
        set_groups_allowed(ctx.plan)?,
    )?;
    if let Some(fd) = prepared.install_notify_filter()? {
        chan.send(&FromInit::SeccompNotify { fd: fd.as_raw_fd() })?;
        match chan.recv()? {
            ToInit::SeccompDone => {}
            other => {
                return Err(InitError::Protocol(format!(
                    "expected SeccompDone, got {other:?}"
                )));
            }
        }
    }

    // Ready: tell the runtime, then wait for start.
    chan.send(&FromInit::Ready)?;
    let reply = match std::mem::replace(&mut ctx.gate, StartGate::Channel) {
        StartGate::Channel => {
            match chan.recv()? {
                ToInit::Start => {}
                other => {
                    return Err(InitError::Protocol(format!(
                        "expected Start, got {other:?}"
                    )));
                }
            }
            None
        }
        StartGate::Listener(listener) => {
            exit_on_termination_signals();
            let conn = accept_start(&listener)?;
            drop(listener);
            Some(conn)
        }
    };
    Ok((reply, prepared))
}

/// Receives the v1 cgroups' `tasks` files from the runtime and writes the init into them.
fn join_cgroups(chan: &ToRuntime) -> Result<(), InitError> {
    let (tasks, count) = match chan.recv_with_fds()? {
        (ToInit::Cgroups { count }, fds) => (fds, count),
        (other, _) => {
            return Err(InitError::Protocol(format!(
                "expected Cgroups, got {other:?}"
            )));
        }
    };
    if tasks.len() != count {
        return Err(InitError::Protocol(format!(
            "expected {count} cgroup tasks files, got {}",
            tasks.len()
        )));
    }
    cgroups::join_self(&tasks).map_err(|e| InitError::Cgroup(e.to_string()))
}

/// After start: startContainer hooks, then the last process steps and `execve`.
fn run(ctx: &InitContext<'_>, prepared: process::Prepared<'_>) -> InitError {
    if let Err(e) = run_hooks(
        ctx.spec,
        HookKind::StartContainer,
        &ctx.hook_state,
        crate::state::Status::Created,
    ) {
        return e;
    }
    prepared.exec(ctx.passed).into()
}

fn run_hooks(
    spec: &Spec,
    kind: HookKind,
    state: &OciState,
    status: crate::state::Status,
) -> Result<(), InitError> {
    let list = hooks::of_kind(spec.hooks().as_ref(), kind);
    if list.is_empty() {
        return Ok(());
    }
    let mut state = state.clone();
    state.status = status;
    let json = serde_json::to_vec(&state).map_err(|e| InitError::Protocol(e.to_string()))?;
    hooks::run_all(kind, &list, &json)?;
    Ok(())
}

/// Writes `linux.sysctl` through the container's procfs mount (or a private procfs instance when
/// the config mounts none), sorted by key so the order is stable.
fn apply_sysctls(
    linux: Option<&oci_spec::runtime::Linux>,
    proc_root: Option<OwnedFd>,
) -> Result<(), InitError> {
    let Some(sysctls) = linux
        .and_then(|l| l.sysctl().as_ref())
        .filter(|s| !s.is_empty())
    else {
        return Ok(());
    };
    let proc = match proc_root {
        Some(fd) => ProcFs::from_fd(fd),
        None => ProcFs::new_private(),
    }
    .map_err(step("open procfs for sysctls"))?;
    let mut keys: Vec<_> = sysctls.iter().collect();
    keys.sort();
    for (key, value) in keys {
        sysctl::apply(&proc, key, value).map_err(|errno| InitError::Sysctl {
            key: key.clone(),
            value: value.clone(),
            errno,
        })?;
    }
    Ok(())
}

/// `setresgid(0, 0, 0)` and `setresuid(0, 0, 0)` inside a new user namespace.
fn become_namespace_root() -> Result<(), InitError> {
    // SAFETY: integer arguments only; the process is single-threaded.
    check(unsafe { libc::syscall(libc::SYS_setresgid, 0, 0, 0) })
        .map_err(step("become gid 0 in the user namespace"))?;
    // SAFETY: as above.
    check(unsafe { libc::syscall(libc::SYS_setresuid, 0, 0, 0) })
        .map_err(step("become uid 0 in the user namespace"))?;
    Ok(())
}

/// Gives the container its own session keyring, so it cannot see the host's keys (runc does
/// the same; kernels without keyrings are fine).
fn join_session_keyring(name: &str) -> Result<(), InitError> {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    let cname = crate::sys::cstr(name).map_err(step("join session keyring"))?;
    // SAFETY: keyctl with a NUL-terminated name.
    match check(unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            KEYCTL_JOIN_SESSION_KEYRING,
            cname.as_ptr(),
        )
    }) {
        Ok(_) | Err(Errno(libc::ENOSYS)) => Ok(()),
        Err(e) => Err(step("join session keyring")(e)),
    }
}

/// Whether setgroups(2) is allowed: always, unless the container joined a user namespace whose
/// `setgroups` file says "deny" (the runtime never writes "deny" for a namespace it creates).
/// Read through a private procfs instance, never through the container's /proc, which the
/// image or a mount could fake.
fn set_groups_allowed(plan: &Plan) -> Result<bool, InitError> {
    if plan.joins(LinuxNamespaceType::User).is_none() {
        return Ok(true);
    }
    ProcFs::new_private()
        .and_then(|proc| proc.setgroups_allowed(std::process::id()))
        .map_err(step("read setgroups of the joined user namespace"))
}

/// Waits for `start` to connect, and reads its `Start`.
fn accept_start(listener: &OwnedFd) -> Result<ToRuntime, InitError> {
    let conn = loop {
        // SAFETY: accept4 on a listening socket; the peer address is not wanted.
        let fd = unsafe {
            libc::accept4(
                listener.as_raw_fd(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                libc::SOCK_CLOEXEC,
            )
        };
        if fd >= 0 {
            // SAFETY: accept4 returned a new fd that we own.
            break unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        }
        let e = Errno::last();
        if e.0 != libc::EINTR {
            return Err(step("wait for start")(e));
        }
    };
    let conn: ToRuntime = Channel::from_fd(conn);
    match conn.recv()? {
        ToInit::Start => Ok(conn),
        other => Err(InitError::Protocol(format!(
            "expected Start, got {other:?}"
        ))),
    }
}

extern "C" fn exit_on_signal(sig: libc::c_int) {
    // SAFETY: _exit is async-signal-safe.
    unsafe { libc::_exit(128 + sig) };
}

/// While a created container waits for `start`, its init is pid 1 of its namespace, which the
/// kernel protects from signals it has no handler for. runc's init (a Go program) handles them
/// and dies; do the same so that `kill <created container> TERM` stops it.
fn exit_on_termination_signals() {
    for sig in [
        libc::SIGHUP,
        libc::SIGINT,
        libc::SIGQUIT,
        libc::SIGTERM,
        libc::SIGUSR1,
        libc::SIGUSR2,
        libc::SIGALRM,
        libc::SIGPIPE,
    ] {
        // SAFETY: installing an async-signal-safe handler.
        unsafe { libc::signal(sig, exit_on_signal as *const () as libc::sighandler_t) };
    }
}

/// The paths an init needs to compute before the clone.
pub fn rootfs_path(bundle: &Path, spec: &Spec) -> PathBuf {
    let root = spec
        .root()
        .as_ref()
        .map(|r| r.path().clone())
        .unwrap_or_else(|| PathBuf::from("rootfs"));
    bundle.join(root)
}
