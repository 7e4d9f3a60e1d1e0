//! `linux.maskedPaths` and `linux.readonlyPaths`.
//!
//! Masked files get a bind of the host's real `/dev/null`, opened and verified (character device
//! 1:3) before the container's root is entered, so a container-made `/dev/null` symlink or node
//! cannot redirect the mask (CVE-2025-31133). Masked directories get an empty read-only tmpfs.
//! Read-only paths get a recursive read-only bind of themselves.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::errno::Errno;
use crate::safepath;
use crate::sys::{self, mount_api};

/// A masking step that failed.
#[derive(Debug, Error, Serialize, Deserialize)]
pub enum MaskError {
    #[error("open host /dev/null: {errno}")]
    DevNull { errno: Errno },
    #[error("host /dev/null is not the null device (char 1:3)")]
    NotDevNull,
    #[error("mask {path:?}: {errno}")]
    Mask { path: String, errno: Errno },
    #[error("make {path:?} read-only: {errno}")]
    Readonly { path: String, errno: Errno },
}

/// The host's `/dev/null`, verified.
pub struct DevNull(OwnedFd);

impl DevNull {
    /// Opens and checks the host's `/dev/null` (call before entering the container's root).
    pub fn open() -> Result<DevNull, MaskError> {
        let fd = sys::openat(
            sys::cwd(),
            Path::new("/dev/null"),
            libc::O_PATH | libc::O_NOFOLLOW,
            0,
        )
        .map_err(|errno| MaskError::DevNull { errno })?;
        let st = sys::fstat(fd.as_fd()).map_err(|errno| MaskError::DevNull { errno })?;
        let is_null = st.st_mode & libc::S_IFMT == libc::S_IFCHR
            && libc::major(st.st_rdev) == 1
            && libc::minor(st.st_rdev) == 3;
        if !is_null {
            return Err(MaskError::NotDevNull);
        }
        Ok(DevNull(fd))
    }
}

/// Masks each path that exists inside `root`.
pub fn mask(root: BorrowedFd<'_>, paths: &[String], null: &DevNull) -> Result<(), MaskError> {
    for path in paths {
        let fail = |errno| MaskError::Mask {
            path: path.clone(),
            errno,
        };
        let target = match safepath::open_in_root(root, Path::new(path), libc::O_PATH) {
            Ok(fd) => fd,
            Err(Errno(libc::ENOENT)) => continue,
            Err(e) => return Err(fail(e)),
        };
        let tree = if safepath::file_type(target.as_fd()).map_err(fail)? == libc::S_IFDIR {
            let fs = mount_api::fsopen("tmpfs").map_err(fail)?;
            mount_api::fsconfig_create(fs.as_fd()).map_err(fail)?;
            mount_api::fsmount(fs.as_fd(), mount_api::MOUNT_ATTR_RDONLY).map_err(fail)?
        } else {
            mount_api::clone_tree(null.0.as_fd(), Path::new(""), false).map_err(fail)?
        };
        mount_api::move_mount(tree.as_fd(), target.as_fd()).map_err(fail)?;
    }
    Ok(())
}

/// Makes each path that exists inside `root` read-only (recursively).
pub fn readonly(root: BorrowedFd<'_>, paths: &[String]) -> Result<(), MaskError> {
    for path in paths {
        let fail = |errno| MaskError::Readonly {
            path: path.clone(),
            errno,
        };
        let target = match safepath::open_in_root(root, Path::new(path), libc::O_PATH) {
            Ok(fd) => fd,
            Err(Errno(libc::ENOENT)) => continue,
            Err(e) => return Err(fail(e)),
        };
        let tree = mount_api::clone_tree(target.as_fd(), Path::new(""), true).map_err(fail)?;
        let attr = mount_api::MountAttr {
            attr_set: mount_api::MOUNT_ATTR_RDONLY,
            ..Default::default()
        };
        mount_api::mount_setattr(tree.as_fd(), true, &attr).map_err(fail)?;
        mount_api::move_mount(tree.as_fd(), target.as_fd()).map_err(fail)?;
    }
    Ok(())
}
