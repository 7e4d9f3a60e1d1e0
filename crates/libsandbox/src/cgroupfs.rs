//! The spec's `cgroup` mount: the container's own cgroups, visible at (usually) `/sys/fs/cgroup`.
//!
//! On a cgroup v2 host with a cgroup namespace, a fresh `cgroup2` mount shows exactly the
//! container's subtree. Without a cgroup namespace, or on v1 and hybrid hosts, the container's
//! cgroup directories (as the runtime made them, never as the container's /proc reports them)
//! are bound from the host: a tmpfs holding one bind per hierarchy, as runc lays it out.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;

use crate::errno::{Errno, check};
use crate::mountopts::MountOptions;
use crate::mounts::{MountContext, set_attributes, set_propagation};
use crate::safepath;
use crate::sys::{self, mount_api};

const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

type StepResult<T> = Result<T, (String, Errno)>;

fn step<T>(name: &str, r: Result<T, Errno>) -> StepResult<T> {
    r.map_err(|e| (name.to_owned(), e))
}

/// Mounts the container's cgroups at `dest`.
pub fn mount(ctx: &MountContext<'_>, target: OwnedFd, opts: &MountOptions) -> StepResult<()> {
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
    // Every cgroup mount is at least nosuid, nodev, noexec, whatever the config says.
    let mut attrs = opts.clone();
    attrs.attr_set |= attrs.rec_attr_set
        | mount_api::MOUNT_ATTR_NOSUID
        | mount_api::MOUNT_ATTR_NODEV
        | mount_api::MOUNT_ATTR_NOEXEC;

    if unified {
        let tree = if ctx.cgroupns {
            let fs = step("open cgroup2", mount_api::fsopen("cgroup2"))?;
            step("create cgroup2", mount_api::fsconfig_create(fs.as_fd()))?;
            step("mount cgroup2", mount_api::fsmount(fs.as_fd(), 0))?
        } else {
            let host = ctx.cgroup_paths.first().ok_or_else(|| {
                (
                    "find the container's cgroup".to_owned(),
                    Errno(libc::ENOENT),
                )
            })?;
            step(
                "bind container cgroup",
                mount_api::clone_tree(sys::cwd(), host, false),
            )?
        };
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
        "tmpfs source",
        mount_api::fsconfig_set(fs.as_fd(), "source", Some("tmpfs")),
    )?;
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

    // One directory per hierarchy, named like its host mount point ("memory", "cpu,cpuacct",
    // "systemd", "unified"), holding a bind of the container's own cgroup there.
    for host in ctx.cgroup_paths {
        let Some(name) = host
            .strip_prefix(CGROUP_ROOT)
            .ok()
            .and_then(|rel| rel.components().next())
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
        else {
            continue;
        };
        let tree = step(
            &format!("bind cgroup {name}"),
            mount_api::clone_tree(sys::cwd(), host, false),
        )?;
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
