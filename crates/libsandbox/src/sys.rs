//! Thin, safe wrappers over the Linux system calls the runtime uses that `std` does not offer:
//! `openat2`, the fd-based mount API, pidfds and `close_range`. Each returns an `OwnedFd` or an
//! `Errno`; callers add the context (which step, which path).

use std::ffi::CString;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::errno::{Errno, check, retry};

/// `AT_FDCWD` as a borrowed fd, for calls that take a directory fd.
pub fn cwd() -> BorrowedFd<'static> {
    // SAFETY: AT_FDCWD is a sentinel the kernel interprets as "the current directory"; it is never
    // closed, so a 'static borrow of it is sound for passing to *at() calls.
    unsafe { BorrowedFd::borrow_raw(libc::AT_FDCWD) }
}

/// A path as a C string; a path holding a NUL byte is `EINVAL`.
pub fn cpath(path: &Path) -> Result<CString, Errno> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| Errno(libc::EINVAL))
}

/// A string as a C string; a string holding a NUL byte is `EINVAL`.
pub fn cstr(s: &str) -> Result<CString, Errno> {
    CString::new(s.as_bytes()).map_err(|_| Errno(libc::EINVAL))
}

fn owned(fd: libc::c_long) -> OwnedFd {
    // SAFETY: the caller passes the return value of a syscall that returned a new fd, which we now
    // own exclusively.
    unsafe { OwnedFd::from_raw_fd(fd as RawFd) }
}

/// `open_how.resolve` flags (linux/openat2.h).
pub mod resolve {
    pub const NO_XDEV: u64 = 0x01;
    pub const NO_MAGICLINKS: u64 = 0x02;
    pub const NO_SYMLINKS: u64 = 0x04;
    pub const BENEATH: u64 = 0x08;
    pub const IN_ROOT: u64 = 0x10;
}

#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// `openat2(2)`: opens `path` relative to `dir` with `resolve` restrictions. `O_CLOEXEC` is
/// always added.
pub fn openat2(
    dir: BorrowedFd<'_>,
    path: &Path,
    flags: i32,
    mode: u32,
    resolve: u64,
) -> Result<OwnedFd, Errno> {
    let cpath = cpath(path)?;
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u64,
        mode: u64::from(mode),
        resolve,
    };
    // With RESOLVE_IN_ROOT or RESOLVE_BENEATH, the kernel gives up on `..` with EAGAIN when any
    // rename or mount happened on the system during the walk (it cannot prove the walk stayed
    // inside); that is not an error of ours, so try again, a bounded number of times.
    let mut attempts = 0;
    loop {
        // SAFETY: `cpath` is NUL-terminated, `how` is a valid open_how of the size passed.
        let result = retry(|| unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dir.as_raw_fd(),
                cpath.as_ptr(),
                &how as *const OpenHow,
                std::mem::size_of::<OpenHow>(),
            )
        });
        match result {
            Err(Errno(libc::EAGAIN)) if attempts < 256 => attempts += 1,
            other => return other.map(owned),
        }
    }
}

/// `openat(2)` with `O_CLOEXEC` added.
pub fn openat(dir: BorrowedFd<'_>, path: &Path, flags: i32, mode: u32) -> Result<OwnedFd, Errno> {
    let cpath = cpath(path)?;
    // SAFETY: `cpath` is NUL-terminated; the returned fd is new and owned by us.
    let fd = retry(|| unsafe {
        libc::openat(
            dir.as_raw_fd(),
            cpath.as_ptr(),
            flags | libc::O_CLOEXEC,
            mode as libc::c_uint,
        )
    })?;
    Ok(owned(fd as libc::c_long))
}

/// `fstat(2)`.
pub fn fstat(fd: BorrowedFd<'_>) -> Result<libc::stat, Errno> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `st` is a valid out-pointer for one `struct stat`.
    check(unsafe { libc::fstat(fd.as_raw_fd(), st.as_mut_ptr()) })?;
    // SAFETY: fstat succeeded and initialised `st`.
    Ok(unsafe { st.assume_init() })
}

/// `fstatfs(2)`, returning the filesystem magic number.
pub fn fs_magic(fd: BorrowedFd<'_>) -> Result<i64, Errno> {
    let mut st = std::mem::MaybeUninit::<libc::statfs>::uninit();
    // SAFETY: `st` is a valid out-pointer for one `struct statfs`.
    check(unsafe { libc::fstatfs(fd.as_raw_fd(), st.as_mut_ptr()) })?;
    // SAFETY: fstatfs succeeded and initialised `st`.
    let magic = unsafe { st.assume_init() }.f_type;
    // f_type is signed on glibc and unsigned on musl; the magic numbers fit either.
    #[allow(clippy::unnecessary_cast)]
    Ok(magic as i64)
}

/// Whether the filesystem holding `fd` is mounted read-only (`fstatvfs` `ST_RDONLY`).
pub fn on_readonly_mount(fd: BorrowedFd<'_>) -> Result<bool, Errno> {
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `st` is a valid out-pointer for one `struct statvfs`.
    check(unsafe { libc::fstatvfs(fd.as_raw_fd(), st.as_mut_ptr()) })?;
    // SAFETY: fstatvfs succeeded and initialised `st`.
    Ok(unsafe { st.assume_init() }.f_flag & libc::ST_RDONLY != 0)
}

/// The mount API (linux/mount.h), which mounts by file descriptor so that no path the container
/// controls is resolved twice.
pub mod mount_api {
    use super::*;

    pub const FSOPEN_CLOEXEC: u32 = 0x1;
    pub const FSMOUNT_CLOEXEC: u32 = 0x1;
    pub const OPEN_TREE_CLONE: u32 = 0x1;
    pub const OPEN_TREE_CLOEXEC: u32 = libc::O_CLOEXEC as u32;
    pub const MOVE_MOUNT_F_EMPTY_PATH: u32 = 0x4;
    pub const MOVE_MOUNT_T_EMPTY_PATH: u32 = 0x40;
    pub const FSCONFIG_SET_FLAG: u32 = 0;
    pub const FSCONFIG_SET_STRING: u32 = 1;
    pub const FSCONFIG_CMD_CREATE: u32 = 6;

    pub const MOUNT_ATTR_RDONLY: u64 = 0x1;
    pub const MOUNT_ATTR_NOSUID: u64 = 0x2;
    pub const MOUNT_ATTR_NODEV: u64 = 0x4;
    pub const MOUNT_ATTR_NOEXEC: u64 = 0x8;
    pub const MOUNT_ATTR__ATIME: u64 = 0x70;
    pub const MOUNT_ATTR_RELATIME: u64 = 0x0;
    pub const MOUNT_ATTR_NOATIME: u64 = 0x10;
    pub const MOUNT_ATTR_STRICTATIME: u64 = 0x20;
    pub const MOUNT_ATTR_NODIRATIME: u64 = 0x80;
    pub const MOUNT_ATTR_NOSYMFOLLOW: u64 = 0x200000;

    #[repr(C)]
    #[derive(Default)]
    pub struct MountAttr {
        pub attr_set: u64,
        pub attr_clr: u64,
        pub propagation: u64,
        pub userns_fd: u64,
    }

    /// `fsopen(2)`: a new filesystem context of type `fstype`.
    pub fn fsopen(fstype: &str) -> Result<OwnedFd, Errno> {
        let name = cstr(fstype)?;
        // SAFETY: `name` is NUL-terminated; the result is a new fd.
        let fd = check(unsafe { libc::syscall(libc::SYS_fsopen, name.as_ptr(), FSOPEN_CLOEXEC) })?;
        Ok(owned(fd))
    }

    /// `fsconfig(FSCONFIG_SET_STRING)`, or `FSCONFIG_SET_FLAG` when `value` is `None`.
    pub fn fsconfig_set(fs: BorrowedFd<'_>, key: &str, value: Option<&str>) -> Result<(), Errno> {
        let key = cstr(key)?;
        let value = value.map(cstr).transpose()?;
        let (cmd, vptr) = match &value {
            Some(v) => (FSCONFIG_SET_STRING, v.as_ptr()),
            None => (FSCONFIG_SET_FLAG, std::ptr::null()),
        };
        // SAFETY: `key` and `value` are NUL-terminated (or null for a flag) and outlive the call.
        check(unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                fs.as_raw_fd(),
                cmd,
                key.as_ptr(),
                vptr,
                0,
            )
        })?;
        Ok(())
    }

    /// `fsconfig(FSCONFIG_CMD_CREATE)`: creates the superblock.
    pub fn fsconfig_create(fs: BorrowedFd<'_>) -> Result<(), Errno> {
        // SAFETY: the command takes no pointers.
        check(unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                fs.as_raw_fd(),
                FSCONFIG_CMD_CREATE,
                std::ptr::null::<libc::c_char>(),
                std::ptr::null::<libc::c_char>(),
                0,
            )
        })?;
        Ok(())
    }

    /// `fsmount(2)`: a detached mount of the created superblock with `attrs` (MOUNT_ATTR_*).
    pub fn fsmount(fs: BorrowedFd<'_>, attrs: u64) -> Result<OwnedFd, Errno> {
        // SAFETY: plain integer arguments; the result is a new fd.
        let fd = check(unsafe {
            libc::syscall(libc::SYS_fsmount, fs.as_raw_fd(), FSMOUNT_CLOEXEC, attrs)
        })?;
        Ok(owned(fd))
    }

    /// `open_tree(2)` with `OPEN_TREE_CLONE`: a detached copy of the mount at `path` (relative to
    /// `dir`; an empty path means `dir` itself), recursive when `recursive`.
    pub fn clone_tree(dir: BorrowedFd<'_>, path: &Path, recursive: bool) -> Result<OwnedFd, Errno> {
        let cpath = cpath(path)?;
        let mut flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC;
        if recursive {
            flags |= libc::AT_RECURSIVE as u32;
        }
        if path.as_os_str().is_empty() {
            flags |= libc::AT_EMPTY_PATH as u32;
        }
        // SAFETY: `cpath` is NUL-terminated; the result is a new fd.
        let fd = check(unsafe {
            libc::syscall(libc::SYS_open_tree, dir.as_raw_fd(), cpath.as_ptr(), flags)
        })?;
        Ok(owned(fd))
    }

    /// `move_mount(2)` of the detached or attached mount `from` onto the object `to`.
    pub fn move_mount(from: BorrowedFd<'_>, to: BorrowedFd<'_>) -> Result<(), Errno> {
        let empty = c"";
        // SAFETY: both paths are the empty C string, interpreted with *_EMPTY_PATH as "the fd".
        check(unsafe {
            libc::syscall(
                libc::SYS_move_mount,
                from.as_raw_fd(),
                empty.as_ptr(),
                to.as_raw_fd(),
                empty.as_ptr(),
                MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
            )
        })?;
        Ok(())
    }

    /// `mount_setattr(2)` on the mount `fd` refers to (`AT_EMPTY_PATH`).
    pub fn mount_setattr(
        fd: BorrowedFd<'_>,
        recursive: bool,
        attr: &MountAttr,
    ) -> Result<(), Errno> {
        let empty = c"";
        let mut flags = libc::AT_EMPTY_PATH as u32;
        if recursive {
            flags |= libc::AT_RECURSIVE as u32;
        }
        // SAFETY: `attr` points to a valid mount_attr of the size passed.
        check(unsafe {
            libc::syscall(
                libc::SYS_mount_setattr,
                fd.as_raw_fd(),
                empty.as_ptr(),
                flags,
                attr as *const MountAttr,
                std::mem::size_of::<MountAttr>(),
            )
        })?;
        Ok(())
    }
}

/// `pidfd_open(2)`.
pub fn pidfd_open(pid: i32) -> Result<OwnedFd, Errno> {
    // SAFETY: plain integer arguments; the result is a new fd (pidfds are always close-on-exec).
    let fd = check(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) })?;
    Ok(owned(fd))
}

/// `pidfd_send_signal(2)`.
pub fn pidfd_send_signal(pidfd: BorrowedFd<'_>, signal: i32) -> Result<(), Errno> {
    // SAFETY: a null siginfo means "as kill(2) would send it".
    check(unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    })?;
    Ok(())
}

/// Waits up to `timeout_ms` (negative: forever) for `fd` to become readable. Returns whether it
/// did.
pub fn poll_readable(fd: BorrowedFd<'_>, timeout_ms: i32) -> Result<bool, Errno> {
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: `pfd` is one valid pollfd.
    let n = retry(|| unsafe { libc::poll(&mut pfd, 1, timeout_ms) })?;
    Ok(n > 0)
}

/// Marks every fd from `first` upwards close-on-exec (`close_range(CLOSE_RANGE_CLOEXEC)`), so no
/// fd the runtime holds reaches the container by accident.
pub fn cloexec_from(first: u32) -> Result<(), Errno> {
    const CLOSE_RANGE_CLOEXEC: u32 = 1 << 2;
    // SAFETY: plain integer arguments.
    check(unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, CLOSE_RANGE_CLOEXEC) })?;
    Ok(())
}
