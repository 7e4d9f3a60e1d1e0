//! `tmpcopyup`: a tmpfs mounted over a directory starts with that directory's content.

use std::ffi::CStr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::errno::{Errno, check};
use crate::safepath;
use crate::sys;

/// Copies the tree under `from` (an `O_PATH` fd of a directory in the rootfs) into `to` (the
/// root of a detached tmpfs), keeping modes, owners, and symlinks as they are.
pub fn copy_dir(from: BorrowedFd<'_>, to: BorrowedFd<'_>) -> Result<(), Errno> {
    let src = safepath::reopen_dir(from)?;
    let dst = safepath::reopen_dir(to)?;
    copy_tree(&src, &dst)
}

fn copy_tree(src: &OwnedFd, dst: &OwnedFd) -> Result<(), Errno> {
    let dup = check(unsafe_dup(src.as_raw_fd()))?;
    // SAFETY: `dup` is a fresh descriptor; fdopendir takes ownership of it.
    let dirp = unsafe { libc::fdopendir(dup) };
    if dirp.is_null() {
        let e = Errno::last();
        // SAFETY: fdopendir failed, so `dup` is still ours to close.
        unsafe { libc::close(dup) };
        return Err(e);
    }
    let result = (|| {
        loop {
            // SAFETY: `dirp` is a valid open DIR stream.
            let ent = unsafe { libc::readdir(dirp) };
            if ent.is_null() {
                return Ok(());
            }
            // SAFETY: readdir returned a valid dirent whose d_name is NUL-terminated.
            let name = unsafe { CStr::from_ptr((*ent).d_name.as_ptr()) }.to_owned();
            if name.as_bytes() == b"." || name.as_bytes() == b".." {
                continue;
            }
            copy_entry(src, dst, &name)?;
        }
    })();
    // SAFETY: `dirp` is valid and closed exactly once.
    unsafe { libc::closedir(dirp) };
    result
}

fn unsafe_dup(fd: i32) -> i32 {
    // SAFETY: dup of a valid fd has no memory effects.
    unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) }
}

fn copy_entry(src: &OwnedFd, dst: &OwnedFd, name: &CStr) -> Result<(), Errno> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `st` is a valid out-pointer; AT_SYMLINK_NOFOLLOW keeps links as links.
    check(unsafe {
        libc::fstatat(
            src.as_raw_fd(),
            name.as_ptr(),
            st.as_mut_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })?;
    // SAFETY: fstatat succeeded.
    let st = unsafe { st.assume_init() };
    let path = Path::new(std::ffi::OsStr::from_bytes(name.to_bytes()));
    match st.st_mode & libc::S_IFMT {
        libc::S_IFDIR => {
            // SAFETY: `name` is NUL-terminated; `dst` is a directory fd.
            check(unsafe { libc::mkdirat(dst.as_raw_fd(), name.as_ptr(), st.st_mode & 0o7777) })?;
            let sub_src = sys::openat(
                src.as_fd(),
                path,
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
                0,
            )?;
            let sub_dst = sys::openat(
                dst.as_fd(),
                path,
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
                0,
            )?;
            copy_tree(&sub_src, &sub_dst)?;
        }
        libc::S_IFREG => {
            let from = sys::openat(src.as_fd(), path, libc::O_RDONLY | libc::O_NOFOLLOW, 0)?;
            let to = sys::openat(
                dst.as_fd(),
                path,
                libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW,
                st.st_mode & 0o7777,
            )?;
            let mut from = std::fs::File::from(from);
            let mut to = std::fs::File::from(to);
            std::io::copy(&mut from, &mut to).map_err(Errno::from)?;
        }
        libc::S_IFLNK => {
            let mut buf = vec![0u8; libc::PATH_MAX as usize];
            // SAFETY: `buf` is writable for its length.
            let n = check(unsafe {
                libc::readlinkat(
                    src.as_raw_fd(),
                    name.as_ptr(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                )
            })?;
            buf.truncate(n as usize);
            buf.push(0);
            // SAFETY: `buf` now ends with a NUL; `name` is NUL-terminated.
            check(unsafe { libc::symlinkat(buf.as_ptr().cast(), dst.as_raw_fd(), name.as_ptr()) })?;
        }
        _ => {
            // SAFETY: `name` is NUL-terminated; mknodat recreates the special file as it was.
            check(unsafe {
                libc::mknodat(dst.as_raw_fd(), name.as_ptr(), st.st_mode, st.st_rdev)
            })?;
        }
    }
    // SAFETY: `name` is NUL-terminated; AT_SYMLINK_NOFOLLOW changes links themselves.
    check(unsafe {
        libc::fchownat(
            dst.as_raw_fd(),
            name.as_ptr(),
            st.st_uid,
            st.st_gid,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })?;
    Ok(())
}
