//! The container's root: propagation, the rootfs bind, `pivot_root` (or move + chroot with
//! `--no-pivot`), and the read-only root.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::errno::{Errno, check};
use crate::mountopts;
use crate::sys::{self, mount_api};

/// A root filesystem step that failed.
#[derive(Debug, Error, Serialize, Deserialize)]
pub enum RootfsError {
    #[error("set propagation of / to {propagation}: {errno}")]
    Propagation { propagation: String, errno: Errno },
    #[error("make the mount holding the rootfs private: {errno}")]
    ParentPrivate { errno: Errno },
    #[error("bind rootfs {path:?}: {errno}")]
    Bind { path: String, errno: Errno },
    #[error("pivot_root into {path:?}: {errno}")]
    Pivot { path: String, errno: Errno },
    #[error("move rootfs {path:?} to / and chroot: {errno}")]
    MoveRoot { path: String, errno: Errno },
    #[error("make / read-only: {errno}")]
    Readonly { errno: Errno },
}

/// Sets the propagation of every mount the container inherited (default `rslave`, so that mounts
/// made in the container never reach the host while host mounts still reach the container), then
/// binds the rootfs onto itself so that it is a mount point for `pivot_root`. Returns the fd of the
/// new rootfs mount, the anchor of every later path resolution.
pub fn prepare(rootfs: &Path, propagation: Option<&str>) -> Result<OwnedFd, RootfsError> {
    let name = propagation.unwrap_or("rslave");
    let prop = mountopts::propagation(name).ok_or(RootfsError::Propagation {
        propagation: name.to_owned(),
        errno: Errno(libc::EINVAL),
    })?;
    let mut flags = prop.flag;
    if prop.recursive {
        flags |= libc::MS_REC;
    }
    mount_flags(c"/", flags).map_err(|errno| RootfsError::Propagation {
        propagation: name.to_owned(),
        errno,
    })?;
    if prop.flag == mountopts::MS_SHARED {
        // pivot_root refuses a new root whose parent mount is shared.
        make_parent_private(rootfs).map_err(|errno| RootfsError::ParentPrivate { errno })?;
    }
    let bind_err = |errno| RootfsError::Bind {
        path: rootfs.display().to_string(),
        errno,
    };
    let tree = mount_api::clone_tree(sys::cwd(), rootfs, true).map_err(bind_err)?;
    let target =
        sys::openat(sys::cwd(), rootfs, libc::O_PATH | libc::O_DIRECTORY, 0).map_err(bind_err)?;
    mount_api::move_mount(tree.as_fd(), target.as_fd()).map_err(bind_err)?;
    if prop.flag == mountopts::MS_SHARED {
        // pivot_root refuses a shared new root; it becomes shared again after the pivot.
        let attr = mount_api::MountAttr {
            propagation: mountopts::MS_PRIVATE,
            ..Default::default()
        };
        mount_api::mount_setattr(tree.as_fd(), false, &attr).map_err(bind_err)?;
    }
    Ok(tree)
}

fn mount_flags(target: &std::ffi::CStr, flags: u64) -> Result<(), Errno> {
    // SAFETY: `target` is NUL-terminated; the other pointers may be null for a propagation change.
    check(unsafe {
        libc::mount(
            std::ptr::null(),
            target.as_ptr(),
            std::ptr::null(),
            flags,
            std::ptr::null(),
        )
    })?;
    Ok(())
}

/// Finds the mount holding `path`'s parent in `/proc/self/mountinfo` and makes it private.
fn make_parent_private(path: &Path) -> Result<(), Errno> {
    let parent = path.parent().unwrap_or(Path::new("/"));
    let info = std::fs::read_to_string("/proc/self/mountinfo").map_err(Errno::from)?;
    let mountpoint = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape)
        .filter(|mp| parent.starts_with(mp))
        .max_by_key(|mp| mp.len())
        .unwrap_or_else(|| "/".to_owned());
    mount_flags(&sys::cstr(&mountpoint)?, libc::MS_PRIVATE)
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unescape(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let v = (bytes[i + 1] - b'0') * 64 + (bytes[i + 2] - b'0') * 8 + (bytes[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Makes `root` the process's `/` with `pivot_root(2)` and detaches the old root.
pub fn pivot(root: &OwnedFd, path: &Path) -> Result<(), RootfsError> {
    let err = |errno| RootfsError::Pivot {
        path: path.display().to_string(),
        errno,
    };
    // An fd of the old root, to change its propagation after the pivot: no path names it then,
    // as mount(2) does not follow mounts on a final "." (which names the new root).
    let old_root = sys::openat(
        sys::cwd(),
        Path::new("/"),
        libc::O_PATH | libc::O_DIRECTORY,
        0,
    )
    .map_err(err)?;
    // SAFETY: fchdir on a valid directory fd.
    check(unsafe { libc::fchdir(root.as_raw_fd()) }).map_err(err)?;
    // pivot_root(".", ".") stacks the old root on top of the new one; it is then detached.
    // SAFETY: both arguments are valid C strings.
    check(unsafe { libc::syscall(libc::SYS_pivot_root, c".".as_ptr(), c".".as_ptr()) })
        .map_err(err)?;
    // The old root must not propagate the unmount back to the host.
    let slave = mount_api::MountAttr {
        propagation: mountopts::MS_SLAVE,
        ..Default::default()
    };
    mount_api::mount_setattr(old_root.as_fd(), true, &slave).map_err(err)?;
    drop(old_root);
    // SAFETY: "." is a valid C string.
    check(unsafe { libc::umount2(c".".as_ptr(), libc::MNT_DETACH) }).map_err(err)?;
    // SAFETY: "/" is a valid C string.
    check(unsafe { libc::chdir(c"/".as_ptr()) }).map_err(err)?;
    Ok(())
}

/// `--no-pivot`: moves the rootfs mount over `/` and chroots into it (for ramfs roots, where
/// pivot_root is impossible). Less isolated: the old root stays reachable to a process that can
/// escape a chroot, which is why pivot_root is the default.
pub fn move_root(root: &OwnedFd, path: &Path) -> Result<(), RootfsError> {
    let err = |errno| RootfsError::MoveRoot {
        path: path.display().to_string(),
        errno,
    };
    // SAFETY: fchdir on a valid directory fd.
    check(unsafe { libc::fchdir(root.as_raw_fd()) }).map_err(err)?;
    // SAFETY: valid C strings; MS_MOVE takes no filesystem type or data.
    check(unsafe {
        libc::mount(
            c".".as_ptr(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_MOVE,
            std::ptr::null(),
        )
    })
    .map_err(err)?;
    // SAFETY: valid C strings.
    check(unsafe { libc::chroot(c".".as_ptr()) }).map_err(err)?;
    // SAFETY: valid C string.
    check(unsafe { libc::chdir(c"/".as_ptr()) }).map_err(err)?;
    Ok(())
}

/// After the pivot: a shared `rootfsPropagation` makes the container's root shared again (it had
/// to be private for pivot_root).
pub fn restore_propagation(propagation: Option<&str>) -> Result<(), RootfsError> {
    let Some(prop) = propagation.and_then(mountopts::propagation) else {
        return Ok(());
    };
    if prop.flag != mountopts::MS_SHARED {
        return Ok(());
    }
    let err = |errno| RootfsError::Propagation {
        propagation: propagation.unwrap_or_default().to_owned(),
        errno,
    };
    let root = sys::openat(
        sys::cwd(),
        Path::new("/"),
        libc::O_PATH | libc::O_DIRECTORY,
        0,
    )
    .map_err(err)?;
    let attr = mount_api::MountAttr {
        propagation: mountopts::MS_SHARED,
        ..Default::default()
    };
    mount_api::mount_setattr(root.as_fd(), false, &attr).map_err(err)
}

/// Makes the (already entered) root mount read-only.
pub fn make_readonly() -> Result<(), RootfsError> {
    let err = |errno| RootfsError::Readonly { errno };
    let root = sys::openat(
        sys::cwd(),
        Path::new("/"),
        libc::O_PATH | libc::O_DIRECTORY,
        0,
    )
    .map_err(err)?;
    let attr = mount_api::MountAttr {
        attr_set: mount_api::MOUNT_ATTR_RDONLY,
        ..Default::default()
    };
    mount_api::mount_setattr(root.as_fd(), false, &attr).map_err(err)
}

#[cfg(test)]
mod tests {
    #[test]
    fn unescapes_mountinfo_paths() {
        assert_eq!(super::unescape(r"/a\040b"), "/a b");
        assert_eq!(super::unescape("/plain"), "/plain");
    }
}
