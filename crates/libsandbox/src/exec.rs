//! `exec`: a new process in a running container.
//!
//! The runtime enters the container's pid namespace for its children only, then forks once
//! (`clone3`, straight into the container's cgroup on v2). The child joins every other namespace
//! of the container in one `setns` on the init's pidfd, prepares the process exactly like the
//! init does (cwd, identity, capabilities, seccomp last), and execs when the runtime says so.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use oci_spec::runtime::{LinuxNamespaceType, Process, Spec};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::channel::{self, Channel, ChannelError};
use crate::clone::{self, Forked};
use crate::container::{self, cgroup_of};
use crate::errno::{Errno, check};
use crate::error::{Error, Result};
use crate::fds::Passed;
use crate::process::{self, ProcessError};
use crate::spec;
use crate::state::{self, Status};
use crate::store::Store;
use crate::terminal::{self, TerminalError};

/// Options of `exec`.
#[derive(Clone, Debug, Default)]
pub struct ExecOptions {
    /// The process to run (runc's `--process` file, or built from the command line).
    pub process: Process,
    pub detach: bool,
    pub pid_file: Option<std::path::PathBuf>,
    pub console_socket: Option<std::path::PathBuf>,
    pub preserve_fds: u32,
    /// Exec into a paused container too.
    pub ignore_paused: bool,
}

/// Runtime to exec child.
#[derive(Debug, Serialize, Deserialize)]
enum ToChild {
    Go,
    SeccompDone,
    Start,
}

/// Exec child to runtime.
#[derive(Debug, Serialize, Deserialize)]
enum FromChild {
    Ready,
    SeccompNotify { fd: i32 },
    Failed(ExecError),
}

/// A step of the exec'd process's setup that failed.
#[derive(Debug, Error, Serialize, Deserialize)]
pub enum ExecError {
    #[error("join the container's namespaces: {errno}")]
    Setns { errno: Errno },
    #[error("chroot into the container's rootfs: {errno}")]
    Chroot { errno: Errno },
    #[error(transparent)]
    Process(#[from] ProcessError),
    #[error(transparent)]
    Terminal(#[from] TerminalError),
    #[error(transparent)]
    Rlimit(#[from] crate::rlimits::RlimitError),
    #[error("join the container's cgroup: {0}")]
    Cgroup(String),
    #[error("{0}")]
    Protocol(String),
}

impl From<ChannelError> for ExecError {
    fn from(e: ChannelError) -> Self {
        ExecError::Protocol(format!("talking to the runtime: {e}"))
    }
}

/// The namespaces of `pid` that differ from ours (the ones to join).
fn namespaces_to_join(spec: &Spec, pid: i32) -> u64 {
    use LinuxNamespaceType::*;
    let configured = spec::namespace_set(spec);
    let mut flags = 0;
    for t in [User, Mount, Pid, Network, Ipc, Uts, Cgroup, Time] {
        if !configured.contains(&t) {
            continue;
        }
        let name = crate::namespaces::proc_name(t);
        let theirs = std::fs::metadata(format!("/proc/{pid}/ns/{name}"));
        let ours = std::fs::metadata(format!("/proc/self/ns/{name}"));
        use std::os::unix::fs::MetadataExt;
        if let (Ok(a), Ok(b)) = (theirs, ours) {
            if (a.ino(), a.dev()) != (b.ino(), b.dev()) {
                flags |= crate::namespaces::flag(t);
            }
        }
    }
    flags
}

/// Runs a process in container `id`. Returns its exit status (0 at once with `detach`).
pub fn exec(store: &Store, id: &str, opts: &ExecOptions) -> Result<i32> {
    let dir = store.open(id, false)?;
    let record = dir.load()?;
    match container::live_status(&record) {
        Status::Running | Status::Created => {}
        Status::Paused if opts.ignore_paused => {}
        Status::Paused => {
            return Err(Error::State(
                "container is paused (use --ignore-paused to exec anyway)".to_string(),
            ));
        }
        other => {
            return Err(Error::State(format!(
                "cannot exec in a {other} container: container not running"
            )));
        }
    }
    let config = dir.load_config()?;
    let spec = spec::parse(&dir.file("config.json"), &config)?;
    drop(dir);
    let init_pidfd =
        state::pidfd(&record).ok_or_else(|| Error::State("container not running".to_string()))?;
    let process = &opts.process;
    if process.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err(Error::Usage("exec: no command given".into()));
    }
    let terminal = process.terminal() == Some(true);
    if terminal && opts.console_socket.is_none() && opts.detach {
        return Err(Error::Usage(
            "a terminal for a detached process needs --console-socket".into(),
        ));
    }
    let filter = match spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
        Some(profile) => Some(seccomp::compile(profile).map_err(Error::Seccomp)?),
        None => None,
    };
    let join = namespaces_to_join(&spec, record.pid);
    // Only a user namespace of the container's own can deny setgroups.
    let set_groups = join & libc::CLONE_NEWUSER as u64 == 0 || setgroups_allowed(record.pid)?;
    let lsm = crate::lsm::Lsm::detect();
    let cgroup = cgroup_of(&record);
    let joiner = match &cgroup {
        Some(cg) => Some(cg.joiner().map_err(Error::Cgroup)?),
        None => None,
    };
    let clone_into = joiner.as_ref().and_then(|j| j.clone_into.as_ref());
    let cgroup_tasks: &[OwnedFd] = joiner.as_ref().map_or(&[], |j| &j.tasks);
    // In the foreground without a console socket, the runtime relays the terminal itself.
    let mut relay = crate::tty::Console::open(opts.console_socket.as_deref(), terminal)?;
    let console = relay.for_child.take();

    // The pid namespace applies to children: enter it for the clone only.
    let own_pidns = if join & libc::CLONE_NEWPID as u64 != 0 {
        let own = crate::sys::openat(
            crate::sys::cwd(),
            std::path::Path::new("/proc/self/ns/pid"),
            libc::O_RDONLY,
            0,
        )
        .map_err(|errno| Error::Sys {
            step: "open own pid namespace".into(),
            errno,
        })?;
        // SAFETY: setns with a valid pidfd and a namespace flag.
        check(unsafe { libc::setns(init_pidfd.as_raw_fd(), libc::CLONE_NEWPID) }).map_err(
            |errno| Error::Sys {
                step: format!("exec {id}: enter the container's pid namespace"),
                errno,
            },
        )?;
        Some(own)
    } else {
        None
    };

    let (to_child, from_runtime) =
        channel::pair::<ToChild, FromChild>().map_err(|errno| Error::Sys {
            step: "create exec channel".into(),
            errno,
        })?;
    let passed = Passed::from_env(opts.preserve_fds);
    // SAFETY: the runtime is single-threaded; the child leaves through execve or _exit.
    let forked = unsafe { clone::clone3(0, clone_into.map(|f| f.as_fd())) };
    if let Some(own) = &own_pidns {
        // SAFETY: back into our own pid namespace for later children.
        unsafe { libc::setns(own.as_raw_fd(), libc::CLONE_NEWPID) };
    }
    let (pid, pidfd) = match forked.map_err(|errno| Error::Sys {
        step: format!("exec {id}: fork the process"),
        errno,
    })? {
        Forked::Child => {
            drop(to_child);
            let chan = Channel::<FromChild, ToChild>::from_fd(from_runtime.into_fd());
            let steps = ChildSteps {
                chan: &chan,
                cgroup_tasks,
                init_pidfd: &init_pidfd,
                join: join & !(libc::CLONE_NEWPID as u64),
                rootfs: &record.rootfs,
                spec: &spec,
                process,
                filter: filter.as_ref(),
                passed,
                console,
                set_groups,
                lsm,
            };
            let err = match steps.run() {
                Ok(never) => match never {},
                Err(e) => e,
            };
            let _ = chan.send(&FromChild::Failed(err));
            // SAFETY: leave the child without running the parent's destructors.
            unsafe { libc::_exit(255) }
        }
        Forked::Parent { pid, pidfd } => (pid, pidfd),
    };
    drop(from_runtime);
    drop(console);

    let fail = |e: Error| {
        let _ = crate::sys::pidfd_send_signal(pidfd.as_fd(), libc::SIGKILL);
        let _ = clone::wait(&pidfd);
        e
    };
    to_child
        .send(&ToChild::Go)
        .map_err(|e| fail(child_gone(e)))?;
    loop {
        match to_child.recv() {
            Ok(FromChild::Ready) => break,
            Ok(FromChild::SeccompNotify { fd }) => {
                let st = record.oci_state(Status::Running);
                crate::launch::hand_to_agent(&spec, &pidfd, fd, &st, pid).map_err(fail)?;
                to_child
                    .send(&ToChild::SeccompDone)
                    .map_err(|e| fail(child_gone(e)))?;
            }
            Ok(FromChild::Failed(e)) => return Err(fail(Error::Exec(e))),
            Err(e) => return Err(fail(child_gone(e))),
        }
    }
    let forward = if opts.detach {
        None
    } else {
        Some(container::SignalForwarder::block()?)
    };
    to_child
        .send(&ToChild::Start)
        .map_err(|e| fail(child_gone(e)))?;
    match to_child.recv() {
        Err(ChannelError::Closed) => {}
        Ok(FromChild::Failed(e)) => return Err(fail(Error::Exec(e))),
        Ok(other) => {
            return Err(fail(Error::State(format!("unexpected message {other:?}"))));
        }
        Err(e) => return Err(fail(child_gone(e))),
    }
    if let Some(pid_file) = &opts.pid_file {
        crate::launch::write_pid_file(pid_file, pid)?;
    }
    // The process runs: a good time for the wait that closing the executable's clone costs.
    crate::exe::release_protected_copy();
    match forward {
        None => Ok(0),
        Some(f) => {
            let mut tty = relay.receive_master()?.map(crate::tty::TtyProxy::new);
            f.wait_with_tty(&pidfd, tty.as_mut())
        }
    }
}

/// Whether the container's user namespace allows setgroups(2), read from the init's
/// `setgroups` file through the host's verified procfs (never the container's /proc).
fn setgroups_allowed(init: i32) -> Result<bool> {
    crate::procfs::ProcFs::host()
        .and_then(|proc| proc.setgroups_allowed(init as u32))
        .map_err(|errno| Error::Sys {
            step: format!("read /proc/{init}/setgroups"),
            errno,
        })
}

fn child_gone(e: ChannelError) -> Error {
    Error::State(format!("the process went away during setup ({e})"))
}

/// What the exec'd process's side needs, up to `execve`.
struct ChildSteps<'a> {
    chan: &'a Channel<FromChild, ToChild>,
    /// The v1 `tasks` files to write ourselves into (v2 was joined by the clone).
    cgroup_tasks: &'a [OwnedFd],
    init_pidfd: &'a OwnedFd,
    /// Namespaces to join (the pid namespace was entered by the runtime for the clone).
    join: u64,
    rootfs: &'a std::path::Path,
    spec: &'a Spec,
    process: &'a Process,
    filter: Option<&'a seccomp::Filter>,
    passed: Passed,
    console: Option<OwnedFd>,
    set_groups: bool,
    lsm: crate::lsm::Lsm,
}

enum Never {}

impl ChildSteps<'_> {
    /// The steps; returns only on failure.
    fn run(self) -> std::result::Result<Never, ExecError> {
        let ChildSteps {
            chan,
            cgroup_tasks,
            init_pidfd,
            join,
            rootfs,
            spec,
            process,
            filter,
            passed,
            console,
            set_groups,
            lsm,
        } = self;
        cgroups::join_self(cgroup_tasks).map_err(|e| ExecError::Cgroup(e.to_string()))?;
        if let Some(fd) = crate::exe::protected_copy_fd() {
            // SAFETY: our copy of the runtime's executable clone; nothing here uses it.
            unsafe { libc::close(fd) };
        }
        // Not dumpable until execve: processes already in the container cannot ptrace us or open
        // our /proc files while we still run the runtime's code.
        // SAFETY: prctl with integer arguments.
        unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
        match chan.recv()? {
            ToChild::Go => {}
            other => return Err(ExecError::Protocol(format!("expected Go, got {other:?}"))),
        }
        if join != 0 {
            // SAFETY: setns with a valid pidfd and namespace flags; joins them all atomically.
            check(unsafe { libc::setns(init_pidfd.as_raw_fd(), join as libc::c_int) })
                .map_err(|errno| ExecError::Setns { errno })?;
        }
        if !spec::namespace_set(spec).contains(&LinuxNamespaceType::Mount) {
            let c = crate::sys::cpath(rootfs).map_err(|errno| ExecError::Chroot { errno })?;
            // SAFETY: `c` is NUL-terminated.
            check(unsafe { libc::chroot(c.as_ptr()) })
                .map_err(|errno| ExecError::Chroot { errno })?;
        }
        if let Some(sock) = console {
            // SAFETY: setsid has no memory effects; the process leads its terminal's session.
            unsafe { libc::setsid() };
            let root = crate::sys::openat(
                crate::sys::cwd(),
                std::path::Path::new("/"),
                libc::O_PATH | libc::O_DIRECTORY,
                0,
            )
            .map_err(|errno| TerminalError::OpenPtmx { errno })?;
            let size = process
                .console_size()
                .as_ref()
                .map(|b| (b.height() as u16, b.width() as u16));
            let pty = terminal::open(root.as_fd(), size)?;
            terminal::send_master(sock.as_fd(), &pty.master)?;
            terminal::become_controlling(&pty.peer)?;
        }
        if let Some(limits) = process.rlimits() {
            crate::rlimits::apply(limits)?;
        }
        let mut prepared = process::prepare(
            process::Role::Exec,
            lsm,
            process,
            filter,
            &passed.env(),
            set_groups,
        )?;
        if let Some(fd) = prepared.install_notify_filter()? {
            chan.send(&FromChild::SeccompNotify { fd: fd.as_raw_fd() })?;
            match chan.recv()? {
                ToChild::SeccompDone => {}
                other => {
                    return Err(ExecError::Protocol(format!(
                        "expected SeccompDone, got {other:?}"
                    )));
                }
            }
        }
        chan.send(&FromChild::Ready)?;
        match chan.recv()? {
            ToChild::Start => {}
            other => {
                return Err(ExecError::Protocol(format!(
                    "expected Start, got {other:?}"
                )));
            }
        }
        Err(prepared.exec(passed).into())
    }
}
