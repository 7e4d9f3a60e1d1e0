//! The spec's `cgroup` mount: the container's own cgroups, visible at (usually) `/sys/fs/cgroup`.
//!
//! On a cgroup v2 host with a cgroup namespace, a fresh `cgroup2` mount shows exactly the
//! container's subtree. Without a cgroup namespace, or on v1 and hybrid hosts, the container's
//! cgroup directories are bound from the host: a tmpfs holding one bind per v1 hierarchy, as runc
//! lays it out.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use oci_spec::runtime::Mount;

use crate::errno::{Errno, check};
use crate::mountopts::MountOptions;
use crate::mounts::{MountContext, destination, set_attributes, set_propagation};
use crate::safepath;
use crate::sys::{self, mount_api};

const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

type StepResult<T> = Result<T, (String, Errno)>;

fn step<T>(name: &str, r: Result<T, Errno>) -> StepResult<T> {
    r.map_err(|e| (name.to_owned(), e))
}

/// Mounts the container's cgroups at `dest`.
pub fn mount(
    ctx: &MountContext<'_>,
    _m: &Mount,
    dest: &Path,
    opts: &MountOptions,
) -> StepResult<()> {
    let root = step(
        "open /sys/fs/cgroup",
        sys::openat(
            sys::cwd(),
            Path::new(CGROUP_ROOT),
            libc::O_PATH | libc::O_DIRECTORY,
            0,
        ),
    )?;
    let unified =
        step("statfs /sys/fs/cgroup", sys::fs_magic(root.as_fd()))? == CGROUP2_SUPER_MAGIC;
    let target = step("resolve destination", destination(ctx, dest, true))?;
    let memberships = step("read /proc/self/cgroup", own_cgroups())?;

    if unified {
        let tree = if ctx.cgroupns {
            let fs = step("open cgroup2", mount_api::fsopen("cgroup2"))?;
            step("create cgroup2", mount_api::fsconfig_create(fs.as_fd()))?;
            step("mount cgroup2", mount_api::fsmount(fs.as_fd(), 0))?
        } else {
            let path = memberships
                .iter()
                .find(|m| m.controllers.is_empty())
                .map(|m| m.path.clone())
                .unwrap_or_else(|| "/".into());
            let host = Path::new(CGROUP_ROOT).join(path.trim_start_matches('/'));
            step(
                "bind container cgroup",
                mount_api::clone_tree(sys::cwd(), &host, false),
            )?
        };
        let mut attrs = opts.clone();
        attrs.attr_set |= attrs.rec_attr_set;
        step("set attributes", set_attributes(&tree, &attrs))?;
        step(
            "attach",
            mount_api::move_mount(tree.as_fd(), target.as_fd()),
        )?;
        return step("set propagation", set_propagation(&tree, &opts.propagation));
    }

    // v1 or hybrid: a tmpfs with one directory per hierarchy.
    let fs = step("open tmpfs", mount_api::fsopen("tmpfs"))?;
    step(
        "tmpfs mode",
        mount_api::fsconfig_set(fs.as_fd(), "mode", Some("755")),
    )?;
    step("create tmpfs", mount_api::fsconfig_create(fs.as_fd()))?;
    let base =
        mount_api::MOUNT_ATTR_NOSUID | mount_api::MOUNT_ATTR_NODEV | mount_api::MOUNT_ATTR_NOEXEC;
    let tmpfs = step("mount tmpfs", mount_api::fsmount(fs.as_fd(), base))?;
    step(
        "attach tmpfs",
        mount_api::move_mount(tmpfs.as_fd(), target.as_fd()),
    )?;
    let dir = step("open tmpfs", safepath::reopen_dir(tmpfs.as_fd()))?;

    let mounts = step("read /proc/self/mountinfo", v1_mountpoints())?;
    for membership in memberships.iter().filter(|m| !m.controllers.is_empty()) {
        let Some(mountpoint) = mounts.iter().find(|(opts, _)| {
            membership
                .controllers
                .iter()
                .all(|c| opts.iter().any(|o| o == c))
        }) else {
            continue;
        };
        let name = mountpoint
            .1
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name.is_empty() {
            continue;
        }
        let host = mountpoint.1.join(membership.path.trim_start_matches('/'));
        let tree = step(
            &format!("bind cgroup {name}"),
            mount_api::clone_tree(sys::cwd(), &host, false),
        )?;
        let mut attrs = opts.clone();
        attrs.attr_set |= attrs.rec_attr_set
            | mount_api::MOUNT_ATTR_NOSUID
            | mount_api::MOUNT_ATTR_NODEV
            | mount_api::MOUNT_ATTR_NOEXEC;
        step("set attributes", set_attributes(&tree, &attrs))?;
        let sub = step(&format!("mkdir {name}"), mkdir_in(&dir, &name))?;
        step(
            &format!("attach cgroup {name}"),
            mount_api::move_mount(tree.as_fd(), sub.as_fd()),
        )?;
        // Co-mounted controllers ("cpu,cpuacct") get a link per controller, as on the host.
        if name.contains(',') {
            for part in name.split(',') {
                let _ = symlink_in(&dir, &name, part);
            }
        }
    }
    if opts.readonly() {
        let ro = MountOptions {
            attr_set: mount_api::MOUNT_ATTR_RDONLY,
            ..Default::default()
        };
        step("make read-only", set_attributes(&tmpfs, &ro))?;
    }
    step(
        "set propagation",
        set_propagation(&tmpfs, &opts.propagation),
    )
}

struct Membership {
    controllers: Vec<String>,
    path: String,
}

/// `/proc/self/cgroup`: each hierarchy's controllers and our path in it.
fn own_cgroups() -> Result<Vec<Membership>, Errno> {
    let text = std::fs::read_to_string("/proc/self/cgroup").map_err(Errno::from)?;
    Ok(text
        .lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let _id = parts.next()?;
            let controllers = parts.next()?;
            let path = parts.next()?;
            Some(Membership {
                controllers: controllers
                    .split(',')
                    .filter(|c| !c.is_empty())
                    .map(str::to_owned)
                    .collect(),
                path: path.to_owned(),
            })
        })
        .collect())
}

/// v1 cgroup mounts: (super options, mount point).
fn v1_mountpoints() -> Result<Vec<(Vec<String>, PathBuf)>, Errno> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").map_err(Errno::from)?;
    Ok(text
        .lines()
        .filter_map(|line| {
            let (pre, post) = line.split_once(" - ")?;
            let mut post = post.split(' ');
            if post.next()? != "cgroup" {
                return None;
            }
            let _source = post.next()?;
            let superopts = post.next()?.split(',').map(str::to_owned).collect();
            let mountpoint = pre.split(' ').nth(4)?;
            Some((superopts, PathBuf::from(mountpoint)))
        })
        .collect())
}

fn mkdir_in(dir: &OwnedFd, name: &str) -> Result<OwnedFd, Errno> {
    let cname = sys::cstr(name)?;
    // SAFETY: `cname` is NUL-terminated and `dir` is a directory fd we own.
    match check(unsafe { libc::mkdirat(dir.as_raw_fd(), cname.as_ptr(), 0o755) }) {
        Ok(_) | Err(Errno(libc::EEXIST)) => {}
        Err(e) => return Err(e),
    }
    sys::openat(
        dir.as_fd(),
        Path::new(name),
        libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW,
        0,
    )
}

fn symlink_in(dir: &OwnedFd, target: &str, name: &str) -> Result<(), Errno> {
    let ctarget = sys::cstr(target)?;
    let cname = sys::cstr(name)?;
    // SAFETY: both strings are NUL-terminated and `dir` is a directory fd we own.
    check(unsafe { libc::symlinkat(ctarget.as_ptr(), dir.as_raw_fd(), cname.as_ptr()) })?;
    Ok(())
}
