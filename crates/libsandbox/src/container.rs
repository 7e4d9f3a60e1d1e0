//! Operations on an existing container: start, state, kill, delete, and the foreground part of
//! `run`.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;

use oci_spec::runtime::Hooks;

use crate::channel::{Channel, ChannelError};
use crate::clone;
use crate::errno::{Errno, check};
use crate::error::{Error, Result};
use crate::hooks::{self, HookError, HookKind};
use crate::init::{FromInit, ToInit};
use crate::launch::{self, Launched, START_SOCKET};
use crate::sockaddr::UnixAddr;
use crate::state::{self, OciState, Record, Status};
use crate::store::{ContainerDir, Store, StoreError};
use crate::sys;

/// Hooks that failed where the spec says to warn and carry on (poststart, poststop).
pub type Warnings = Vec<HookError>;

/// The cgroup manager stored in a record.
pub(crate) fn cgroup_of(record: &Record) -> Option<cgroups::Manager> {
    record
        .cgroup
        .as_ref()
        .and_then(|v| serde_json::from_value(v.clone()).ok())
}

/// The container's status right now: the record, corrected by whether the init lives and
/// whether its cgroup is frozen.
pub fn live_status(record: &Record) -> Status {
    if !record.init_alive() {
        return Status::Stopped;
    }
    if record.status == Status::Running {
        if let Some(cg) = cgroup_of(record) {
            if matches!(cg.freezer_state(), Ok(cgroups::FreezerState::Frozen)) {
                return Status::Paused;
            }
        }
    }
    record.status
}

/// The OCI state of container `id`.
pub fn state(store: &Store, id: &str) -> Result<OciState> {
    let dir = store.open(id, false)?;
    let record = dir.load()?;
    Ok(record.oci_state(live_status(&record)))
}

/// The states of every container in the store (containers whose creation is still under way
/// are skipped).
pub fn list(store: &Store) -> Result<Vec<OciState>> {
    let mut out = Vec::new();
    for id in store.list()? {
        let Ok(dir) = store.open(&id, false) else {
            continue;
        };
        if let Ok(record) = dir.load() {
            out.push(record.oci_state(live_status(&record)));
        }
    }
    Ok(out)
}

/// The stored config's hooks, read without building the rest of the config (`start` and
/// `delete` need nothing else of it, and a whole config costs a tenth of their time).
fn load_hooks(dir: &ContainerDir) -> Option<Hooks> {
    #[derive(serde::Deserialize)]
    struct HooksOnly {
        hooks: Option<Hooks>,
    }
    let bytes = dir.load_config().ok()?;
    serde_json::from_slice::<HooksOnly>(&bytes).ok()?.hooks
}

fn run_warn(hooks: Option<&Hooks>, kind: HookKind, state: &OciState) -> Warnings {
    let list = hooks::of_kind(hooks, kind);
    if list.is_empty() {
        return Vec::new();
    }
    let json = serde_json::to_vec(state).unwrap_or_default();
    let mut warnings = Vec::new();
    // Each hook runs even if an earlier one failed: these are warnings, not errors.
    for (i, hook) in list.iter().enumerate() {
        if let Err(mut e) = hooks::run_all(kind, std::slice::from_ref(hook), &json) {
            e.index = i;
            warnings.push(e);
        }
    }
    warnings
}

/// Starts a created container: asks its init to exec the process and waits until it did.
pub fn start(store: &Store, id: &str) -> Result<Warnings> {
    let dir = store.open(id, true)?;
    let mut record = dir.load()?;
    match live_status(&record) {
        Status::Created => {}
        other => {
            return Err(Error::State(format!(
                "cannot start container {id}: it is {other}, not created"
            )));
        }
    }
    let sock_path = dir.file(START_SOCKET);
    let chan = connect(&sock_path)?;
    chan.send(&ToInit::Start)
        .map_err(|e| Error::State(format!("{e}")))?;
    match chan.recv() {
        Err(ChannelError::Closed) => {}
        Ok(FromInit::Failed(e)) => return Err(Error::Init(e)),
        Ok(other) => {
            return Err(Error::State(format!("unexpected reply {other:?}")));
        }
        Err(e) => return Err(Error::State(format!("{e}"))),
    }
    let _ = crate::store::remove_file(&sock_path);
    record.status = Status::Running;
    dir.save(&record)?;
    let hooks = load_hooks(&dir);
    Ok(run_warn(
        hooks.as_ref(),
        HookKind::Poststart,
        &record.oci_state(Status::Running),
    ))
}

fn connect(path: &Path) -> Result<Channel<ToInit, FromInit>> {
    let err = |errno| Error::Io {
        op: "connect to the container's init",
        path: path.to_owned(),
        errno,
    };
    let sock = launch::unix_socket().map_err(err)?;
    let addr = UnixAddr::new(path).map_err(err)?;
    // SAFETY: `addr` is a valid sockaddr_un of the length given.
    check(unsafe { libc::connect(sock.as_raw_fd(), addr.as_ptr(), addr.len()) }).map_err(err)?;
    Ok(Channel::from_fd(sock))
}

/// Sends `signal` to the container's init, or with `all` to every process in its cgroup.
pub fn kill(store: &Store, id: &str, signal: i32, all: bool) -> Result<()> {
    let dir = store.open(id, false)?;
    let record = dir.load()?;
    let status = live_status(&record);
    if status == Status::Stopped {
        return Err(Error::State("container not running".to_string()));
    }
    if all {
        return signal_all(&record, signal);
    }
    let Some(pidfd) = state::pidfd(&record) else {
        return Err(Error::State("container not running".to_string()));
    };
    sys::pidfd_send_signal(pidfd.as_fd(), signal).map_err(|errno| Error::Sys {
        step: format!("kill {id}: signal {signal} to pid {}", record.pid),
        errno,
    })
}

/// Signals every process of the container's cgroup. A frozen container is thawed for SIGKILL
/// so that its processes can die.
fn signal_all(record: &Record, signal: i32) -> Result<()> {
    let Some(cg) = cgroup_of(record) else {
        return Err(Error::State(format!(
            "kill --all {}: the container has no cgroup",
            record.id
        )));
    };
    // Frozen, the cgroup's processes cannot exit, so no pid read from it can be recycled
    // before it is signalled. A container that was already paused stays paused (unless killed).
    let was_frozen = matches!(cg.freezer_state(), Ok(cgroups::FreezerState::Frozen));
    cg.freeze().map_err(Error::Cgroup)?;
    let pids = cg.pids();
    if let Ok(pids) = &pids {
        for &pid in pids {
            if let Ok(fd) = sys::pidfd_open(pid) {
                let _ = sys::pidfd_send_signal(fd.as_fd(), signal);
            }
        }
    }
    if !was_frozen || signal == libc::SIGKILL {
        cg.thaw().map_err(Error::Cgroup)?;
    }
    pids.map(|_| ()).map_err(Error::Cgroup)
}

/// Deletes a container: refuses a running one unless `force` (then kills it), kills whatever is
/// left in its cgroup, removes the cgroup and the state, and runs poststop hooks.
pub fn delete(store: &Store, id: &str, force: bool) -> Result<Warnings> {
    let dir = store.open(id, true)?;
    let record = match dir.load() {
        Ok(r) => r,
        Err(StoreError::Incomplete(_)) if force => {
            dir.remove()?;
            return Ok(Vec::new());
        }
        Err(e) => return Err(e.into()),
    };
    let status = live_status(&record);
    if matches!(status, Status::Running | Status::Paused) && !force {
        return Err(Error::State(format!(
            "cannot delete container {id} that is not stopped: {status}"
        )));
    }
    let hooks = load_hooks(&dir);
    destroy(dir, &record, None)?;
    Ok(run_warn(
        hooks.as_ref(),
        HookKind::Poststop,
        &record.oci_state(Status::Stopped),
    ))
}

/// Kills the container's processes, waits for the init, removes the cgroup and the state.
fn destroy(dir: ContainerDir, record: &Record, pidfd: Option<&OwnedFd>) -> Result<()> {
    let cg = cgroup_of(record);
    let own;
    let pidfd = match pidfd {
        Some(fd) => Some(fd),
        None => {
            own = state::pidfd(record);
            own.as_ref()
        }
    };
    if let Some(fd) = pidfd {
        // A paused init dies of SIGKILL only when thawed. An init already gone (ESRCH) needs
        // no thaw, and whatever else might be left in the cgroup is frozen, killed and thawed
        // by the cgroup's removal.
        let signalled = sys::pidfd_send_signal(fd.as_fd(), libc::SIGKILL).is_ok();
        if let (true, Some(cg)) = (signalled, &cg) {
            let _ = cg.thaw();
        }
        // The init may not be our child: wait for it through the pidfd, which becomes readable
        // when the process exits.
        let _ = sys::poll_readable(fd.as_fd(), 10_000);
    }
    if let Some(cg) = &cg {
        cg.destroy().map_err(Error::Cgroup)?;
    }
    dir.remove()?;
    Ok(())
}

/// `run` after `create`: starts the init, runs poststart hooks, then (unless `detach`) waits for
/// the process while forwarding signals to it, and deletes the container. Returns the process's
/// exit status (128 + signal when killed), and the hooks that failed as warnings.
pub fn run(store: &Store, opts: &launch::CreateOptions, detach: bool) -> Result<(i32, Warnings)> {
    let forward = if detach {
        None
    } else {
        Some(SignalForwarder::block()?)
    };
    let mode = if detach {
        launch::Mode::RunDetached
    } else {
        launch::Mode::Run
    };
    let launched = launch::create(store, opts, mode)?;
    let Launched {
        dir,
        mut record,
        spec,
        chan,
        pidfd,
        pty_master,
        unsaved_config,
        ..
    } = launched;
    let mut tty = pty_master.map(crate::tty::TtyProxy::new);
    let chan = chan.expect("run mode has a channel");
    let started = chan
        .send(&ToInit::Start)
        .map_err(|e| e.to_string())
        .and_then(|()| match chan.recv() {
            Err(ChannelError::Closed) => Ok(()),
            Ok(FromInit::Failed(e)) => Err(Error::Init(e).to_string()),
            Ok(other) => Err(format!("unexpected reply {other:?}")),
            Err(e) => Err(e.to_string()),
        });
    if let Err(msg) = started {
        let _ = destroy(dir, &record, Some(&pidfd));
        let _ = clone::wait(&pidfd);
        return Err(Error::State(msg));
    }
    // The process runs: a good time for the wait that closing the executable's clone costs.
    crate::exe::release_protected_copy();
    record.status = Status::Running;
    if let Some(bytes) = &unsaved_config {
        dir.save_config(bytes)?;
    }
    dir.save(&record)?;
    let mut warnings = run_warn(
        spec.hooks().as_ref(),
        HookKind::Poststart,
        &record.oci_state(Status::Running),
    );
    let Some(forward) = forward else {
        return Ok((0, warnings));
    };
    drop(dir);
    let status = forward.wait_with_tty(&pidfd, tty.as_mut())?;
    drop(tty);
    let dir = store.open(&record.id, true)?;
    destroy(dir, &record, None)?;
    warnings.extend(run_warn(
        spec.hooks().as_ref(),
        HookKind::Poststop,
        &record.oci_state(Status::Stopped),
    ));
    Ok((status, warnings))
}

/// Signals `run` relays to the container while it waits (SIGWINCH resizes the terminal
/// instead when `run` holds one).
const FORWARDED: [i32; 13] = [
    libc::SIGHUP,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGALRM,
    libc::SIGTERM,
    libc::SIGCONT,
    libc::SIGTSTP,
    libc::SIGTTIN,
    libc::SIGTTOU,
    libc::SIGPWR,
    libc::SIGWINCH,
];

/// Blocks the forwarded signals (so none is lost while the container starts) and relays them
/// through a signalfd while waiting.
pub(crate) struct SignalForwarder {
    fd: OwnedFd,
    old: libc::sigset_t,
}

impl SignalForwarder {
    pub(crate) fn block() -> Result<SignalForwarder> {
        // SAFETY: sigset manipulation on local, initialised sets.
        unsafe {
            let mut set = std::mem::zeroed::<libc::sigset_t>();
            let mut old = std::mem::zeroed::<libc::sigset_t>();
            libc::sigemptyset(&mut set);
            for sig in FORWARDED {
                libc::sigaddset(&mut set, sig);
            }
            libc::sigprocmask(libc::SIG_BLOCK, &set, &mut old);
            let fd = libc::signalfd(-1, &set, libc::SFD_CLOEXEC);
            if fd < 0 {
                let errno = Errno::last();
                libc::sigprocmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
                return Err(Error::Sys {
                    step: "signalfd".into(),
                    errno,
                });
            }
            Ok(SignalForwarder {
                fd: <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd),
                old,
            })
        }
    }

    /// Relays signals (and a terminal, when given) until the process behind `pidfd` exits;
    /// returns its status.
    pub(crate) fn wait_with_tty(
        &self,
        pidfd: &OwnedFd,
        mut tty: Option<&mut crate::tty::TtyProxy>,
    ) -> Result<i32> {
        loop {
            let tty_fds = tty.as_ref().map(|t| t.poll_fds());
            let none = libc::pollfd {
                fd: -1,
                events: 0,
                revents: 0,
            };
            let mut fds = [
                libc::pollfd {
                    fd: self.fd.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: pidfd.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
                tty_fds.map_or(none, |f| f[0]),
                tty_fds.map_or(none, |f| f[1]),
            ];
            // SAFETY: four valid pollfd entries (negative fds are ignored).
            let n = unsafe { libc::poll(fds.as_mut_ptr(), 4, -1) };
            if n < 0 {
                let e = Errno::last();
                if e.0 == libc::EINTR {
                    continue;
                }
                return Err(Error::Sys {
                    step: "wait for the container".into(),
                    errno: e,
                });
            }
            if fds[0].revents & libc::POLLIN != 0 {
                // SAFETY: signalfd_siginfo is plain data; read fills it.
                let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
                // SAFETY: reading one signalfd_siginfo into a buffer of its size.
                let got = unsafe {
                    libc::read(
                        self.fd.as_raw_fd(),
                        (&mut info as *mut libc::signalfd_siginfo).cast(),
                        std::mem::size_of::<libc::signalfd_siginfo>(),
                    )
                };
                if got > 0 {
                    let sig = info.ssi_signo as i32;
                    match tty.as_ref() {
                        Some(t) if sig == libc::SIGWINCH => t.resize(),
                        _ => {
                            let _ = sys::pidfd_send_signal(pidfd.as_fd(), sig);
                        }
                    }
                }
            }
            if let Some(t) = tty.as_mut() {
                if fds[2].revents != 0 || fds[3].revents != 0 {
                    let ready = [fds[2], fds[3]];
                    if !t.pump(&ready) {
                        // The terminal is gone; keep waiting for the process only.
                        tty = None;
                    }
                }
            }
            if fds[1].revents != 0 {
                if let Some(t) = tty.as_mut() {
                    t.drain();
                }
                return clone::wait(pidfd).map_err(|errno| Error::Sys {
                    step: "wait for the container".into(),
                    errno,
                });
            }
        }
    }
}

impl Drop for SignalForwarder {
    fn drop(&mut self) {
        // SAFETY: restoring the mask saved in block().
        unsafe { libc::sigprocmask(libc::SIG_SETMASK, &self.old, std::ptr::null_mut()) };
    }
}
