//! The last steps before the container's process runs, shared by `create` and `exec`: the
//! working directory, identity, capabilities, no_new_privs, seccomp, and `execve`.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use oci_spec::runtime::Process;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::caps::{self, CapSets, CapsError};
use crate::errno::{Errno, check};
use crate::identity::{self, IdentityError};
use crate::safepath;
use crate::sys;

/// A process step that failed.
#[derive(Debug, Error, Serialize, Deserialize)]
pub enum ProcessError {
    #[error("chdir to cwd {path:?} set in config.json: {errno}")]
    Cwd { path: String, errno: Errno },
    #[error("cwd {path:?} is outside the container's root")]
    CwdEscaped { path: String },
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error(transparent)]
    Caps(#[from] CapsError),
    #[error("set ioPriority ({class:?}, {priority}): {errno}")]
    IoPriority {
        class: String,
        priority: i64,
        errno: Errno,
    },
    #[error(transparent)]
    Lsm(#[from] crate::lsm::LsmError),
    #[error("set no_new_privs: {errno}")]
    NoNewPrivs { errno: Errno },
    #[error("exec: {name:?}: executable file not found in $PATH")]
    NotFound { name: String },
    #[error("exec: {path:?}: {errno}")]
    NotExecutable { path: String, errno: Errno },
    #[error("exec {path:?}: {errno}")]
    Exec { path: String, errno: Errno },
    #[error("seccomp: {reason}")]
    Seccomp { reason: String },
    #[error("mark runtime fds close-on-exec: {errno}")]
    Fds { errno: Errno },
    #[error("invalid {what}: contains a NUL byte")]
    Nul { what: String },
}

/// Opens `cwd` inside the current root, refusing magic links so that `/proc/self/fd/N` cannot
/// point it at a host directory (CVE-2024-21626), and changes to it. With `create`, a missing
/// directory is made (the container's init, as runc does); an exec'd process gets an error.
pub fn enter_cwd(cwd: &Path, create: bool) -> Result<(), ProcessError> {
    let err = |errno| ProcessError::Cwd {
        path: cwd.display().to_string(),
        errno,
    };
    let root = sys::openat(
        sys::cwd(),
        Path::new("/"),
        libc::O_PATH | libc::O_DIRECTORY,
        0,
    )
    .map_err(err)?;
    let dir = match safepath::open_in_root(root.as_fd(), cwd, libc::O_PATH | libc::O_DIRECTORY) {
        Ok(fd) => fd,
        Err(Errno(libc::ENOENT)) if create => {
            safepath::mkdir_all(root.as_fd(), cwd, 0o755).map_err(err)?
        }
        Err(e) => return Err(err(e)),
    };
    // SAFETY: fchdir on a valid directory fd.
    check(unsafe { libc::fchdir(dir.as_raw_fd()) }).map_err(err)?;
    Ok(())
}

/// Checks that the working directory is reachable from the root; the kernel reports
/// "(unreachable)" for one that is not (a leaked host directory).
pub fn verify_cwd(cwd: &Path) -> Result<(), ProcessError> {
    match std::env::current_dir() {
        Ok(p) if p.is_absolute() => Ok(()),
        _ => Err(ProcessError::CwdEscaped {
            path: cwd.display().to_string(),
        }),
    }
}

/// The environment for the process: the config's, plus HOME when missing (looked up in the
/// container's /etc/passwd, as runc does), plus `extra`.
pub fn environment(process: &Process, extra: &[String]) -> Vec<String> {
    let mut env: Vec<String> = process.env().clone().unwrap_or_default();
    if !env.iter().any(|v| v.starts_with("HOME=")) {
        env.push(format!("HOME={}", home_of(process.user().uid())));
    }
    env.extend(extra.iter().cloned());
    env
}

fn home_of(uid: u32) -> String {
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|text| {
            text.lines().find_map(|line| {
                let f: Vec<&str> = line.split(':').collect();
                (f.len() >= 6 && f[2].parse() == Ok(uid)).then(|| f[5].to_owned())
            })
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "/".to_owned())
}

/// Finds the executable like `exec.LookPath` would inside the container: a name with a `/` is
/// used as is; otherwise each `PATH` entry of the process environment is tried.
pub fn find_executable(name: &str, env: &[String]) -> Result<PathBuf, ProcessError> {
    if name.contains('/') {
        let p = PathBuf::from(name);
        check_executable(&p)?;
        return Ok(p);
    }
    let path_var = env
        .iter()
        .rev()
        .find_map(|v| v.strip_prefix("PATH="))
        .unwrap_or("");
    for dir in path_var.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let candidate = Path::new(dir).join(name);
        if check_executable(&candidate).is_ok() {
            return Ok(candidate);
        }
    }
    Err(ProcessError::NotFound {
        name: name.to_owned(),
    })
}

fn check_executable(path: &Path) -> Result<(), ProcessError> {
    let err = |errno| ProcessError::NotExecutable {
        path: path.display().to_string(),
        errno,
    };
    let meta = std::fs::metadata(path).map_err(|e| err(Errno::from(e)))?;
    if meta.is_dir() {
        return Err(err(Errno(libc::EACCES)));
    }
    let c = sys::cpath(path).map_err(err)?;
    // SAFETY: `c` is NUL-terminated.
    check(unsafe { libc::access(c.as_ptr(), libc::X_OK) }).map_err(err)?;
    Ok(())
}

/// Switches to the process's user and capability sets. When `keep_sys_admin`, CAP_SYS_ADMIN
/// stays effective (and permitted) so a seccomp filter can still be installed without
/// no_new_privs; `drop_extra_caps` removes it afterwards.
pub fn set_identity(
    process: &Process,
    sets: &CapSets,
    set_groups: bool,
    keep_sys_admin: bool,
) -> Result<(), ProcessError> {
    caps::apply_bounding(sets.bounding, sets.last)?;
    caps::keep_caps(true)?;
    identity::switch(process.user(), set_groups)?;
    caps::keep_caps(false)?;
    let extra = if keep_sys_admin {
        1u64 << caps::CAP_SYS_ADMIN
    } else {
        0
    };
    caps::capset(
        sets.effective | extra,
        sets.permitted | extra,
        sets.inheritable,
    )?;
    // The kernel only lets a capability be ambient when it is permitted and inheritable; runc's
    // default template lists ambient capabilities without inheritable ones, and runc (like
    // crun) skips what cannot be raised rather than failing the container.
    caps::raise_ambient(sets.ambient & sets.permitted & sets.inheritable, sets.last)?;
    identity::set_umask(process.user());
    Ok(())
}

/// Sets the final capability sets after a seccomp install that needed CAP_SYS_ADMIN.
pub fn drop_extra_caps(sets: &CapSets) -> Result<(), ProcessError> {
    caps::capset(sets.effective, sets.permitted, sets.inheritable)?;
    Ok(())
}

/// `ioprio_set(IOPRIO_WHO_PROCESS, 0, class << 13 | priority)`, while the capabilities a
/// real-time class needs are still held.
fn set_io_priority(io: &oci_spec::runtime::LinuxIOPriority) -> Result<(), ProcessError> {
    use oci_spec::runtime::IOPriorityClass;
    const IOPRIO_WHO_PROCESS: libc::c_int = 1;
    let class: i64 = match io.class() {
        IOPriorityClass::IoprioClassRt => 1,
        IOPriorityClass::IoprioClassBe => 2,
        IOPriorityClass::IoprioClassIdle => 3,
    };
    let value = (class << 13) | io.priority();
    // SAFETY: integer arguments only.
    check(unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, value) })
        .map(|_| ())
        .map_err(|errno| ProcessError::IoPriority {
            class: format!("{:?}", io.class()),
            priority: io.priority(),
            errno,
        })
}

/// Sets no_new_privs.
pub fn set_no_new_privs() -> Result<(), ProcessError> {
    // SAFETY: prctl with integer arguments.
    check(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) })
        .map(|_| ())
        .map_err(|errno| ProcessError::NoNewPrivs { errno })
}

/// A prepared `execve`: every C string built ahead, so that the last step allocates nothing.
pub struct Execve {
    path: CString,
    argv: Vec<CString>,
    envp: Vec<CString>,
}

impl Execve {
    pub fn new(path: &Path, args: &[String], env: &[String]) -> Result<Execve, ProcessError> {
        let nul = |what: &str| ProcessError::Nul {
            what: what.to_owned(),
        };
        Ok(Execve {
            path: sys::cpath(path).map_err(|_| nul("executable path"))?,
            argv: args
                .iter()
                .map(|a| CString::new(a.as_bytes()).map_err(|_| nul("process.args")))
                .collect::<Result<_, _>>()?,
            envp: env
                .iter()
                .map(|a| CString::new(a.as_bytes()).map_err(|_| nul("process.env")))
                .collect::<Result<_, _>>()?,
        })
    }

    /// Replaces the process image; returns only on failure.
    pub fn exec(&self) -> ProcessError {
        let mut argv: Vec<*const libc::c_char> = self.argv.iter().map(|a| a.as_ptr()).collect();
        argv.push(std::ptr::null());
        let mut envp: Vec<*const libc::c_char> = self.envp.iter().map(|a| a.as_ptr()).collect();
        envp.push(std::ptr::null());
        // SAFETY: path, argv and envp are NUL-terminated strings in NULL-terminated arrays that
        // live until the call returns (it only returns on failure).
        unsafe { libc::execve(self.path.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
        ProcessError::Exec {
            path: self.path.to_string_lossy().into_owned(),
            errno: Errno::last(),
        }
    }
}

/// Which process is being prepared: the container's init, or one exec'd into it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Init,
    Exec,
}

/// A process ready to exec: identity switched, executable found, everything allocated.
pub struct Prepared<'a> {
    sets: CapSets,
    /// CAP_SYS_ADMIN is held only to install the seccomp filter, and dropped right after.
    keep_sys_admin: bool,
    filter: Option<&'a seccomp::Filter>,
    execve: Execve,
}

/// Everything before the wait for `start` (or, for exec, before the runtime's go-ahead): the
/// working directory, no_new_privs, user and capabilities, and the executable's lookup, so that a
/// missing binary is a create-time error as in runc.
pub fn prepare<'a>(
    role: Role,
    lsm: crate::lsm::Lsm,
    process: &Process,
    filter: Option<&'a seccomp::Filter>,
    extra_env: &[String],
    set_groups: bool,
) -> Result<Prepared<'a>, ProcessError> {
    if let Some(io) = process.io_priority() {
        set_io_priority(io)?;
    }
    enter_cwd(process.cwd(), role == Role::Init)?;
    crate::lsm::apply(
        lsm,
        process.apparmor_profile().as_deref(),
        process.selinux_label().as_deref(),
    )?;
    let sets = CapSets::from_spec(process.capabilities().as_ref());
    let nnp = process.no_new_privileges() == Some(true);
    if nnp {
        set_no_new_privs()?;
    }
    let keep_sys_admin =
        !nnp && filter.is_some() && sets.effective & (1 << caps::CAP_SYS_ADMIN) == 0;
    set_identity(process, &sets, set_groups, keep_sys_admin)?;
    verify_cwd(process.cwd())?;
    let env = environment(process, extra_env);
    let args = process.args().clone().unwrap_or_default();
    let name = args.first().ok_or(ProcessError::NotFound {
        name: String::new(),
    })?;
    let path = find_executable(name, &env)?;
    let execve = Execve::new(&path, &args, &env)?;
    Ok(Prepared {
        sets,
        keep_sys_admin,
        filter,
        execve,
    })
}

impl Prepared<'_> {
    /// Installs a filter that notifies an agent now (the agent must get its fd before the
    /// process runs); returns the notify fd. Other filters wait for [`Prepared::exec`].
    pub fn install_notify_filter(&mut self) -> Result<Option<OwnedFd>, ProcessError> {
        let Some(filter) = self.filter.filter(|f| f.uses_notify()) else {
            return Ok(None);
        };
        let fd = seccomp::install(filter).map_err(|e| ProcessError::Seccomp {
            reason: e.to_string(),
        })?;
        self.filter = None;
        if self.keep_sys_admin {
            drop_extra_caps(&self.sets)?;
            self.keep_sys_admin = false;
        }
        Ok(fd)
    }

    /// The last steps: signals reset, runtime fds closed on exec, the seccomp filter, execve.
    /// Returns only on failure.
    pub fn exec(self, passed: crate::fds::Passed) -> ProcessError {
        crate::fds::reset_signals();
        if let Err(errno) = crate::fds::seal(passed) {
            return ProcessError::Fds { errno };
        }
        if let Some(filter) = self.filter {
            if let Err(e) = seccomp::install(filter) {
                return ProcessError::Seccomp {
                    reason: e.to_string(),
                };
            }
            if self.keep_sys_admin {
                if let Err(e) = drop_extra_caps(&self.sets) {
                    return e;
                }
            }
        }
        self.execve.exec()
    }
}
