//! A procfs handle that is known to be procfs.
//!
//! Writes into procfs (sysctls, `oom_score_adj`, id maps) are how several runtime escapes worked:
//! the container made `/proc` a symlink or mounted something over a procfs file so that the
//! runtime's write landed elsewhere (CVE-2019-16884, CVE-2023-27561, CVE-2025-52881). Every write
//! here goes through a directory fd verified to be a procfs root, and resolves beneath it without
//! following any symlink or crossing any mount.

use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use crate::errno::Errno;
use crate::sys::{self, mount_api, resolve};

const PROC_SUPER_MAGIC: i64 = 0x9fa0;

/// A verified procfs root directory.
#[derive(Debug)]
pub struct ProcFs {
    root: OwnedFd,
}

impl ProcFs {
    /// A private procfs instance for the caller's pid namespace, never attached to any path, so
    /// nothing in the container can interpose on it.
    pub fn new_private() -> Result<ProcFs, Errno> {
        let fs = mount_api::fsopen("proc")?;
        mount_api::fsconfig_create(fs.as_fd())?;
        let mnt = mount_api::fsmount(
            fs.as_fd(),
            mount_api::MOUNT_ATTR_NOSUID
                | mount_api::MOUNT_ATTR_NODEV
                | mount_api::MOUNT_ATTR_NOEXEC,
        )?;
        ProcFs::from_fd(mnt)
    }

    /// Wraps a directory fd after checking that it is the root of a procfs mount.
    pub fn from_fd(root: OwnedFd) -> Result<ProcFs, Errno> {
        if sys::fs_magic(root.as_fd())? != PROC_SUPER_MAGIC {
            return Err(Errno(libc::EXDEV));
        }
        Ok(ProcFs { root })
    }

    /// The host's `/proc`, checked to be procfs (for the runtime's own side).
    pub fn host() -> Result<ProcFs, Errno> {
        let fd = sys::openat(
            sys::cwd(),
            Path::new("/proc"),
            libc::O_PATH | libc::O_DIRECTORY,
            0,
        )?;
        ProcFs::from_fd(fd)
    }

    /// Opens `rel` (like `sys/net/ipv4/ip_forward` or `1234/uid_map`) beneath the procfs root,
    /// refusing symlinks, magic links and mount crossings.
    pub fn open(&self, rel: &Path, flags: i32) -> Result<OwnedFd, Errno> {
        if rel
            .components()
            .any(|c| !matches!(c, std::path::Component::Normal(_)))
        {
            return Err(Errno(libc::EINVAL));
        }
        let fd = sys::openat2(
            self.root.as_fd(),
            rel,
            flags | libc::O_NOFOLLOW,
            0,
            resolve::BENEATH | resolve::NO_SYMLINKS | resolve::NO_MAGICLINKS | resolve::NO_XDEV,
        )?;
        if sys::fs_magic(fd.as_fd())? != PROC_SUPER_MAGIC {
            return Err(Errno(libc::EXDEV));
        }
        Ok(fd)
    }

    /// Writes `data` to `rel` in one `write(2)` (procfs files take one write per value).
    pub fn write(&self, rel: &Path, data: &[u8]) -> Result<(), Errno> {
        let fd = self.open(rel, libc::O_WRONLY)?;
        let mut file = std::fs::File::from(fd);
        file.write_all(data).map_err(Errno::from)
    }

    /// Whether process `pid`'s user namespace allows setgroups(2) (its `setgroups` file does not
    /// say "deny").
    pub fn setgroups_allowed(&self, pid: u32) -> Result<bool, Errno> {
        let fd = self.open(
            &Path::new(&pid.to_string()).join("setgroups"),
            libc::O_RDONLY,
        )?;
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::fs::File::from(fd), &mut text)
            .map_err(Errno::from)?;
        Ok(text.trim() != "deny")
    }

    /// The root directory fd.
    pub fn root(&self) -> BorrowedFd<'_> {
        self.root.as_fd()
    }
}
