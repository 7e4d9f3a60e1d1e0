//! Keeping the runtime's own executable out of the container's reach (CVE-2019-5736).
//!
//! Every process the runtime forks into a container runs this executable until it calls
//! `execve`, and a process inside the container can open it through `/proc/<pid>/exe`. If that
//! file is the writable binary on the host, the container can overwrite it once the runtime
//! exits, and the next runtime invocation on the host runs the attacker's code. So before it
//! forks anything into a container, the runtime makes sure it runs from a copy the container
//! cannot write: a detached read-only bind mount of the same file (cheap: no data is copied),
//! or a sealed memfd when the mount API is not available. If the executable is already on a
//! read-only mount or sealed, nothing is done.
//!
//! The protected image keeps the clone's fd open (it comes through the re-execution): closing
//! the last fd of a detached mount dissolves it, which waits for an RCU grace period, so the
//! runtime closes it with [`release_protected_copy`] while it waits for the container anyway.
//! Processes forked into a container close their copy first thing ([`protected_copy_fd`]).

use std::ffi::OsStr;
use std::ffi::{CString, OsString};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStringExt;
use std::path::Path;
use std::sync::atomic::{AtomicI32, Ordering};

use thiserror::Error;

use crate::errno::{Errno, check};
use crate::sys::{self, mount_api};

/// The protection could not be set up.
#[derive(Debug, Error)]
pub enum ExeError {
    #[error("protect the runtime executable ({step}): {errno}")]
    Step { step: &'static str, errno: Errno },
    #[error("protect the runtime executable: still writable after re-executing")]
    Loop,
}

/// Set for the protected image: the fd number of the clone it runs from, or "-".
const MARKER: &str = "_OCIRUN_EXE_PROTECTED";

/// The fd of the read-only clone this image runs from, while it is open; -1 otherwise.
static CLONE_FD: AtomicI32 = AtomicI32::new(-1);

/// The fd of the read-only clone this image runs from, while the runtime keeps it open. A
/// process forked into a container closes it first thing, so that the runtime's close is the
/// last one (and nothing of it reaches the container).
pub(crate) fn protected_copy_fd() -> Option<RawFd> {
    let fd = CLONE_FD.load(Ordering::Relaxed);
    (fd >= 0).then_some(fd)
}

/// Closes the read-only clone this image runs from, if still open. It dissolves the detached
/// mount, which waits for an RCU grace period: call it where the runtime waits anyway.
pub(crate) fn release_protected_copy() {
    let fd = CLONE_FD.swap(-1, Ordering::Relaxed);
    if fd >= 0 {
        // SAFETY: the fd was adopted by `adopt_clone` and is closed only here (swapped out).
        unsafe { libc::close(fd) };
    }
}

/// Takes over the clone's fd named by the marker, when it is the file this image runs from
/// (the environment is the caller's: anything else is left alone).
fn adopt_clone(value: &OsStr, exe: BorrowedFd<'_>) {
    let Some(fd) = value.to_str().and_then(|v| v.parse::<RawFd>().ok()) else {
        return;
    };
    if fd <= 2 {
        return;
    }
    let stat = |fd: RawFd| {
        // SAFETY: fstat into a zeroed stat buffer; a closed fd just fails.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        (unsafe { libc::fstat(fd, &mut st) } == 0).then_some((st.st_dev, st.st_ino))
    };
    match (stat(fd), stat(exe.as_raw_fd())) {
        (Some(a), Some(b)) if a == b => {}
        _ => return,
    }
    // SAFETY: F_SETFD on an fd checked above; it must not reach anything we exec.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) } == 0 {
        CLONE_FD.store(fd, Ordering::Relaxed);
    }
}

fn step(step: &'static str) -> impl FnOnce(Errno) -> ExeError {
    move |errno| ExeError::Step { step, errno }
}

/// Whether the file behind `fd` cannot be written through any path: on a read-only mount, or a
/// memfd sealed against writes.
fn is_protected(fd: BorrowedFd<'_>) -> Result<bool, Errno> {
    if sys::on_readonly_mount(fd)? {
        return Ok(true);
    }
    // SAFETY: F_GET_SEALS on a valid fd; EINVAL for files that are not memfds.
    let seals = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GET_SEALS) };
    Ok(seals >= 0 && seals & libc::F_SEAL_WRITE != 0)
}

/// Returns when the running executable is protected; otherwise re-executes the process from a
/// protected copy with the same arguments and environment (and does not return).
///
/// Must be called before the program starts any thread.
pub fn ensure_protected() -> Result<(), ExeError> {
    let exe = sys::openat(sys::cwd(), Path::new("/proc/self/exe"), libc::O_PATH, 0)
        .map_err(step("open /proc/self/exe"))?;
    if is_protected(exe.as_fd()).map_err(step("inspect /proc/self/exe"))? {
        if let Some(value) = std::env::var_os(MARKER) {
            adopt_clone(&value, exe.as_fd());
            // SAFETY: called before any thread exists (documented requirement), so nothing reads
            // the environment concurrently.
            unsafe { std::env::remove_var(MARKER) };
        }
        return Ok(());
    }
    if std::env::var_os(MARKER).is_some() {
        return Err(ExeError::Loop);
    }
    let (copy, inherited) = match readonly_clone() {
        Ok(fd) => (fd, true),
        // Without the mount API (or CAP_SYS_ADMIN in our mount namespace), copy into a memfd.
        Err(_) => (sealed_memfd(exe.as_fd())?, false),
    };
    reexec(copy.as_fd(), inherited)
}

/// A detached, read-only bind mount of our executable.
fn readonly_clone() -> Result<OwnedFd, ExeError> {
    let tree = mount_api::clone_tree(sys::cwd(), Path::new("/proc/self/exe"), false)
        .map_err(step("clone executable mount"))?;
    let attr = mount_api::MountAttr {
        attr_set: mount_api::MOUNT_ATTR_RDONLY,
        ..Default::default()
    };
    mount_api::mount_setattr(tree.as_fd(), false, &attr).map_err(step("make clone read-only"))?;
    // Inherited by the protected image, which closes it when it costs nothing (see the module).
    // SAFETY: F_SETFD on our own fd.
    check(unsafe { libc::fcntl(tree.as_raw_fd(), libc::F_SETFD, 0) })
        .map_err(step("keep clone open"))?;
    Ok(tree)
}

/// A memfd holding a copy of our executable, sealed against any change.
fn sealed_memfd(exe: BorrowedFd<'_>) -> Result<OwnedFd, ExeError> {
    // SAFETY: memfd_create with a static name; the result is a new fd.
    let fd = check(unsafe {
        libc::memfd_create(
            c"ocirun".as_ptr(),
            libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
        )
    })
    .map_err(step("memfd_create"))?;
    // SAFETY: a new fd that we own.
    let memfd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    let src = sys::openat(exe, Path::new(""), libc::O_RDONLY, 0)
        .or_else(|_| sys::openat(sys::cwd(), Path::new("/proc/self/exe"), libc::O_RDONLY, 0))
        .map_err(step("open executable"))?;
    let mut from = std::fs::File::from(src);
    let mut to = std::fs::File::from(
        memfd
            .try_clone()
            .map_err(|e| step("dup memfd")(Errno::from(e)))?,
    );
    std::io::copy(&mut from, &mut to).map_err(|e| step("copy executable")(Errno::from(e)))?;
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: F_ADD_SEALS on our memfd.
    check(unsafe { libc::fcntl(memfd.as_raw_fd(), libc::F_ADD_SEALS, seals) })
        .map_err(step("seal memfd"))?;
    Ok(memfd)
}

/// `execveat(fd, "", argv, envp, AT_EMPTY_PATH)` with our own arguments and environment plus the
/// loop-guard marker, which names `fd` when the new image inherits it.
fn reexec(fd: BorrowedFd<'_>, inherited: bool) -> Result<(), ExeError> {
    let to_c =
        |s: OsString| CString::new(s.into_vec()).map_err(|_| step("argument")(Errno(libc::EINVAL)));
    let args: Vec<CString> = std::env::args_os().map(to_c).collect::<Result<_, _>>()?;
    let mut env: Vec<CString> = std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = k;
            kv.push("=");
            kv.push(v);
            to_c(kv)
        })
        .collect::<Result<_, _>>()?;
    let marker = if inherited {
        format!("{MARKER}={}", fd.as_raw_fd())
    } else {
        format!("{MARKER}=-")
    };
    env.push(CString::new(marker).expect("no NUL"));
    let mut argv: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let mut envp: Vec<*const libc::c_char> = env.iter().map(|a| a.as_ptr()).collect();
    envp.push(std::ptr::null());
    // SAFETY: argv/envp are NULL-terminated arrays of NUL-terminated strings that outlive the
    // call; on success the call does not return.
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            fd.as_raw_fd(),
            c"".as_ptr(),
            argv.as_ptr(),
            envp.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    Err(step("re-execute from the protected copy")(Errno::last()))
}
