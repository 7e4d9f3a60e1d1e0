//! `/dev`: the default device nodes every container gets, `linux.devices`, and the standard
//! symlinks. In a user namespace device nodes cannot be created, so the host's are bound instead,
//! as runc does.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::errno::{Errno, check};
use crate::safepath;
use crate::sys::{self, mount_api};

/// A device step that failed.
#[derive(Debug, Error, Serialize, Deserialize)]
pub enum DeviceError {
    #[error("create device {path:?}: {errno}")]
    Create { path: String, errno: Errno },
    #[error("bind host device {path:?}: {errno}")]
    Bind { path: String, errno: Errno },
    #[error("create symlink {path:?}: {errno}")]
    Symlink { path: String, errno: Errno },
}

/// One node to create.
#[derive(Clone, Debug)]
pub struct Node {
    pub path: PathBuf,
    pub kind: u32,
    pub major: u64,
    pub minor: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// The devices the spec says every Linux container has (config-linux.md "Default Devices").
fn defaults() -> Vec<Node> {
    let char_dev = |path: &str, major, minor| Node {
        path: PathBuf::from(path),
        kind: libc::S_IFCHR,
        major,
        minor,
        mode: 0o666,
        uid: 0,
        gid: 0,
    };
    vec![
        char_dev("/dev/null", 1, 3),
        char_dev("/dev/zero", 1, 5),
        char_dev("/dev/full", 1, 7),
        char_dev("/dev/random", 1, 8),
        char_dev("/dev/urandom", 1, 9),
        char_dev("/dev/tty", 5, 0),
    ]
}

fn from_spec(d: &LinuxDevice) -> Node {
    let kind = match d.typ() {
        LinuxDeviceType::B => libc::S_IFBLK,
        LinuxDeviceType::P => libc::S_IFIFO,
        // "c" and "u" (unbuffered character device) are both character devices.
        _ => libc::S_IFCHR,
    };
    Node {
        path: d.path().clone(),
        kind,
        major: d.major() as u64,
        minor: d.minor() as u64,
        mode: d.file_mode().unwrap_or(0o666) & 0o7777,
        uid: d.uid().unwrap_or(0),
        gid: d.gid().unwrap_or(0),
    }
}

/// The full list: defaults first, replaced by a spec entry with the same path.
pub fn nodes(spec_devices: &[LinuxDevice], with_defaults: bool) -> Vec<Node> {
    let spec: Vec<Node> = spec_devices.iter().map(from_spec).collect();
    let mut all: Vec<Node> = if with_defaults {
        defaults()
            .into_iter()
            .filter(|d| !spec.iter().any(|s| s.path == d.path))
            .collect()
    } else {
        Vec::new()
    };
    all.extend(spec);
    all
}

/// Creates `nodes` inside the root (mknod, or a bind of the host node in a user namespace).
pub fn create(root: BorrowedFd<'_>, nodes: &[Node], bind: bool) -> Result<(), DeviceError> {
    // Nodes get exactly the config's mode (as runc makes them, under umask 0), so no chmod.
    // SAFETY: umask only swaps the process's file mode mask.
    let umask = unsafe { libc::umask(0) };
    let made = create_each(root, nodes, bind);
    // SAFETY: as above; puts back the mask read above.
    unsafe { libc::umask(umask) };
    made
}

fn create_each(root: BorrowedFd<'_>, nodes: &[Node], bind: bool) -> Result<(), DeviceError> {
    let mut dirs = Dirs::default();
    for node in nodes {
        if bind {
            bind_host(root, node).map_err(|errno| DeviceError::Bind {
                path: node.path.display().to_string(),
                errno,
            })?;
        } else {
            mknod(root, &mut dirs, node).map_err(|errno| DeviceError::Create {
                path: node.path.display().to_string(),
                errno,
            })?;
        }
    }
    Ok(())
}

/// The directories nodes and links go into, each resolved inside the root once (they are
/// nearly all in `/dev`). Nothing of the container runs yet, so a directory cannot be swapped
/// between two uses.
#[derive(Default)]
struct Dirs {
    open: Vec<(PathBuf, std::os::fd::OwnedFd)>,
}

impl Dirs {
    /// The directory holding `path` (made if missing) and the last component's name.
    fn split(
        &mut self,
        root: BorrowedFd<'_>,
        path: &Path,
    ) -> Result<(BorrowedFd<'_>, std::ffi::CString), Errno> {
        let rel = safepath::relative(path);
        let parent = rel.parent().unwrap_or(Path::new("."));
        let name = sys::cpath(Path::new(rel.file_name().ok_or(Errno(libc::EINVAL))?))?;
        let i = match self.open.iter().position(|(p, _)| p == parent) {
            Some(i) => i,
            None => {
                let dir = safepath::mkdir_all(root, parent, 0o755)?;
                let dir = safepath::reopen_dir(dir.as_fd())?;
                self.open.push((parent.to_path_buf(), dir));
                self.open.len() - 1
            }
        };
        Ok((self.open[i].1.as_fd(), name))
    }
}

fn mknod(root: BorrowedFd<'_>, dirs: &mut Dirs, node: &Node) -> Result<(), Errno> {
    let (dir, name) = dirs.split(root, &node.path)?;
    let dev = libc::makedev(node.major as u32, node.minor as u32);
    let make = || {
        // SAFETY: `name` is NUL-terminated and `dir` is a directory fd; no memory effects.
        check(unsafe { libc::mknodat(dir.as_raw_fd(), name.as_ptr(), node.kind | node.mode, dev) })
    };
    match make() {
        Err(Errno(libc::EEXIST)) => {
            // Replace whatever the image has there: a device node must be exactly what the
            // config says (a fresh /dev tmpfs has nothing, so this is rare).
            // SAFETY: as above.
            check(unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), 0) })?;
            make()?;
        }
        made => {
            made?;
        }
    }
    if node.mode & 0o7000 != 0 {
        // Set-id and sticky bits are not mknod's to set everywhere; chmod sets them exactly.
        // SAFETY: as above.
        check(unsafe { libc::fchmodat(dir.as_raw_fd(), name.as_ptr(), node.mode, 0) })?;
    }
    // SAFETY: as above; AT_SYMLINK_NOFOLLOW never follows a link.
    check(unsafe {
        libc::fchownat(
            dir.as_raw_fd(),
            name.as_ptr(),
            node.uid,
            node.gid,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })?;
    Ok(())
}

fn bind_host(root: BorrowedFd<'_>, node: &Node) -> Result<(), Errno> {
    let host = sys::openat(sys::cwd(), &node.path, libc::O_PATH | libc::O_NOFOLLOW, 0)?;
    let target = safepath::ensure_file(root, &node.path, 0o644)?;
    let tree = mount_api::clone_tree(host.as_fd(), Path::new(""), false)?;
    mount_api::move_mount(tree.as_fd(), target.as_fd())
}

/// The standard `/dev` symlinks (`/dev/fd`, `/dev/std*`, `/dev/core`), and `/dev/ptmx` pointing
/// into the container's devpts instance when it has one.
pub fn symlinks(root: BorrowedFd<'_>, devpts: bool) -> Result<(), DeviceError> {
    let mut links: Vec<(&str, &str)> = vec![
        ("/proc/self/fd", "/dev/fd"),
        ("/proc/self/fd/0", "/dev/stdin"),
        ("/proc/self/fd/1", "/dev/stdout"),
        ("/proc/self/fd/2", "/dev/stderr"),
    ];
    if Path::new("/proc/kcore").exists() {
        links.push(("/proc/kcore", "/dev/core"));
    }
    let mut dirs = Dirs::default();
    for (target, path) in links {
        symlink(root, &mut dirs, target, Path::new(path), false).map_err(|errno| {
            DeviceError::Symlink {
                path: path.to_owned(),
                errno,
            }
        })?;
    }
    if devpts {
        symlink(root, &mut dirs, "pts/ptmx", Path::new("/dev/ptmx"), true).map_err(|errno| {
            DeviceError::Symlink {
                path: "/dev/ptmx".to_owned(),
                errno,
            }
        })?;
    }
    Ok(())
}

fn symlink(
    root: BorrowedFd<'_>,
    dirs: &mut Dirs,
    target: &str,
    path: &Path,
    replace: bool,
) -> Result<(), Errno> {
    let (dir, name) = dirs.split(root, path)?;
    if replace {
        // SAFETY: `name` is NUL-terminated and `dir` is a directory fd.
        match check(unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), 0) }) {
            Ok(_) | Err(Errno(libc::ENOENT)) => {}
            Err(e) => return Err(e),
        }
    }
    let ctarget = sys::cstr(target)?;
    // SAFETY: both strings are NUL-terminated and `dir` is a directory fd.
    match check(unsafe { libc::symlinkat(ctarget.as_ptr(), dir.as_raw_fd(), name.as_ptr()) }) {
        Ok(_) | Err(Errno(libc::EEXIST)) => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_devices_replace_defaults_with_the_same_path() {
        let dev: LinuxDevice = serde_json::from_str(
            r#"{"path":"/dev/null","type":"c","major":1,"minor":3,"fileMode":438,"uid":5,"gid":6}"#,
        )
        .unwrap();
        let all = nodes(&[dev], true);
        assert_eq!(all.len(), 6);
        let null = all
            .iter()
            .find(|n| n.path == Path::new("/dev/null"))
            .unwrap();
        assert_eq!((null.uid, null.gid), (5, 6));
        assert!(nodes(&[], false).is_empty());
    }
}
