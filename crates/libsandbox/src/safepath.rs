//! Resolving and creating paths inside the container's rootfs without ever leaving it.
//!
//! The rootfs belongs to the container image, so any component may be a symlink pointing at the
//! host (CVE-2021-30465, CVE-2024-45310). Every lookup goes through `openat2(RESOLVE_IN_ROOT)`
//! from a directory fd of the rootfs, so symlinks (and `..`) are resolved as if the rootfs were
//! `/`; magic links (`/proc/self/fd/N`) are refused. Creation happens with `*at()` calls on an fd of
//! an already-resolved parent, never through a path string the container could swap.

use std::ffi::OsStr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use crate::errno::{Errno, check};
use crate::sys::{self, resolve};

const IN_ROOT: u64 = resolve::IN_ROOT | resolve::NO_MAGICLINKS;

/// Opens `path` inside the root `root` (an fd of the rootfs directory).
pub fn open_in_root(root: BorrowedFd<'_>, path: &Path, flags: i32) -> Result<OwnedFd, Errno> {
    sys::openat2(root, &relative(path), flags, 0, IN_ROOT)
}

/// `path` without its leading `/`, so that it resolves relative to a root fd.
pub fn relative(path: &Path) -> PathBuf {
    let rel: PathBuf = path
        .components()
        .filter(|c| !matches!(c, Component::RootDir | Component::CurDir))
        .collect();
    if rel.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        rel
    }
}

/// Like `mkdir -p` inside the root: creates every missing directory of `path` with `mode` and
/// returns an `O_PATH` fd of the final directory.
pub fn mkdir_all(root: BorrowedFd<'_>, path: &Path, mode: u32) -> Result<OwnedFd, Errno> {
    let rel = relative(path);
    if let Ok(fd) = open_in_root(root, &rel, libc::O_PATH | libc::O_DIRECTORY) {
        return Ok(fd);
    }
    let mut dir = sys::openat(root, Path::new("."), libc::O_PATH | libc::O_DIRECTORY, 0)?;
    let mut done = PathBuf::new();
    for comp in rel.components() {
        let Component::Normal(name) = comp else {
            // `..` is resolved by openat2 below against what exists so far.
            done.push(comp);
            dir = open_in_root(root, &done, libc::O_PATH | libc::O_DIRECTORY)?;
            continue;
        };
        done.push(name);
        match open_in_root(root, &done, libc::O_PATH | libc::O_DIRECTORY) {
            Ok(fd) => dir = fd,
            Err(Errno(libc::ENOENT)) => {
                mkdirat(dir.as_fd(), name, mode)?;
                // Open what we just made through the resolver, not by name, so that a swap
                // between the two calls cannot take us out of the root.
                dir = open_in_root(root, &done, libc::O_PATH | libc::O_DIRECTORY)?;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(dir)
}

fn mkdirat(dir: BorrowedFd<'_>, name: &OsStr, mode: u32) -> Result<(), Errno> {
    let cname = sys::cpath(Path::new(name))?;
    // SAFETY: `cname` is NUL-terminated and `dir` is a valid directory fd.
    match check(unsafe { libc::mkdirat(dir.as_raw_fd(), cname.as_ptr(), mode) }) {
        Ok(_) | Err(Errno(libc::EEXIST)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Makes sure a file exists at `path` inside the root (creating its parents and an empty regular
/// file if needed) and returns an `O_PATH` fd of it. Used as the target of file bind mounts.
pub fn ensure_file(root: BorrowedFd<'_>, path: &Path, mode: u32) -> Result<OwnedFd, Errno> {
    if let Ok(fd) = open_in_root(root, path, libc::O_PATH) {
        return Ok(fd);
    }
    let rel = relative(path);
    let (parent, name) = match (rel.parent(), rel.file_name()) {
        (Some(p), Some(n)) => (p, n),
        _ => return Err(Errno(libc::EINVAL)),
    };
    let dir = mkdir_all(root, parent, 0o755)?;
    // O_PATH fds cannot be used as *at() bases for creation; reopen the directory for real.
    let dir = sys::openat2(
        dir.as_fd(),
        Path::new("."),
        libc::O_RDONLY | libc::O_DIRECTORY,
        0,
        resolve::BENEATH,
    )?;
    let cname = sys::cpath(Path::new(name))?;
    // SAFETY: `cname` is NUL-terminated; O_NOFOLLOW|O_EXCL means we never follow or reuse a link.
    let created = check(unsafe {
        libc::openat(
            dir.as_raw_fd(),
            cname.as_ptr(),
            libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_WRONLY | libc::O_CLOEXEC,
            mode as libc::c_uint,
        )
    });
    match created {
        Ok(fd) => {
            // SAFETY: `fd` is a new descriptor that nothing else owns.
            unsafe { libc::close(fd) };
        }
        Err(Errno(libc::EEXIST)) => {}
        Err(e) => return Err(e),
    }
    open_in_root(root, path, libc::O_PATH)
}

/// Reopens an `O_PATH` directory fd as a real directory fd, for use as an `*at()` base.
pub fn reopen_dir(fd: BorrowedFd<'_>) -> Result<OwnedFd, Errno> {
    sys::openat2(
        fd,
        Path::new("."),
        libc::O_RDONLY | libc::O_DIRECTORY,
        0,
        resolve::BENEATH,
    )
}

/// `fd`'s `st_mode` file type bits.
pub fn file_type(fd: BorrowedFd<'_>) -> Result<u32, Errno> {
    Ok(sys::fstat(fd)?.st_mode & libc::S_IFMT)
}
