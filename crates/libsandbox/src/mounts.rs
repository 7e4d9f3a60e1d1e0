//! The spec's `mounts`, made inside the container's mount namespace with the fd-based mount API.
//!
//! Each destination is resolved (and created) inside the rootfs through `safepath`; the new mount
//! is built detached (`fsopen`/`fsmount`, or `open_tree` for binds), given its attributes with
//! `mount_setattr`, and attached with `move_mount` onto the resolved fd. No path the container
//! controls is ever resolved by the kernel's `mount(2)` path walk.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use oci_spec::runtime::Mount;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::errno::Errno;
use crate::mountopts::{MountOptions, Propagation};
use crate::safepath;
use crate::sys::{self, mount_api};

/// A mount step that failed.
#[derive(Debug, Error, Serialize, Deserialize)]
pub enum MountError {
    #[error("mount {src:?} on {dest:?}: resolve destination in rootfs: {errno}")]
    Destination {
        src: String,
        dest: String,
        errno: Errno,
    },
    #[error(
        "mount {src:?} on {dest:?}: the destination (or a directory on the way) is a symlink, which is refused for {fstype}"
    )]
    SymlinkDestination {
        src: String,
        dest: String,
        fstype: String,
    },
    #[error(
        "mount {src:?} on {dest:?}: the destination resolves into procfs, where only {allowed} may be mounted over"
    )]
    ShadowsProc {
        src: String,
        dest: String,
        allowed: String,
    },
    #[error("mount {src:?} on {dest:?}: open bind source: {errno}")]
    BindSource {
        src: String,
        dest: String,
        errno: Errno,
    },
    #[error("mount {src:?} on {dest:?}: {fstype} option {option:?}: {errno}")]
    Option {
        src: String,
        dest: String,
        fstype: String,
        option: String,
        errno: Errno,
    },
    #[error("mount {src:?} on {dest:?} ({step}): {errno}")]
    Mount {
        src: String,
        dest: String,
        step: String,
        errno: Errno,
    },
}

/// Maps a propagation name to its `MS_*` flag, for validation.
pub fn propagation_flag(name: &str) -> Option<u64> {
    crate::mountopts::propagation(name).map(|p| p.flag)
}

/// Spec-level checks of one mount entry; returns the reason it is refused.
pub fn validate(m: &Mount) -> Result<(), String> {
    if m.destination().as_os_str().is_empty() {
        return Err("destination must not be empty".into());
    }
    let opts = MountOptions::parse(m.options().as_deref().unwrap_or_default());
    let typ = m.typ().as_deref().unwrap_or("");
    if (opts.bind || typ == "bind") && m.source().is_none() {
        return Err("a bind mount needs a source".into());
    }
    if opts.idmap.is_some() || m.uid_mappings().is_some() || m.gid_mappings().is_some() {
        return Err(
            "id-mapped mounts (idmap, ridmap, uidMappings) are not supported by this runtime"
                .into(),
        );
    }
    if !opts.bind && typ != "bind" && typ.is_empty() {
        return Err("type is required for a mount that is not a bind mount".into());
    }
    let dest = clean_dest(m.destination());
    if dest.starts_with("/proc")
        && dest != Path::new("/proc")
        && !PROC_OVERMOUNTS.iter().any(|p| dest == Path::new(p))
    {
        return Err(format!(
            "destination {} would shadow part of procfs; only {} may be mounted over",
            dest.display(),
            PROC_OVERMOUNTS.join(", ")
        ));
    }
    if dest == Path::new("/proc") && typ != "proc" {
        return Err("only a procfs (type \"proc\") may be mounted on /proc".into());
    }
    Ok(())
}

/// procfs files that tools like lxcfs legitimately replace; every other path under /proc is
/// refused as a mount destination, because a mount there could redirect the runtime's or the
/// container's view of the kernel (CVE-2019-16884, CVE-2023-27561).
const PROC_OVERMOUNTS: &[&str] = &[
    "/proc/cpuinfo",
    "/proc/diskstats",
    "/proc/meminfo",
    "/proc/stat",
    "/proc/swaps",
    "/proc/uptime",
    "/proc/loadavg",
    "/proc/slabinfo",
    "/proc/net/dev",
    "/proc/sys/kernel/ns_last_pid",
];

/// What the init needs to make the spec's mounts.
pub struct MountContext<'a> {
    /// An fd of the rootfs (already a mount point in the container's mount namespace).
    pub root: BorrowedFd<'a>,
    /// The bundle directory, against which relative bind sources resolve.
    pub bundle: &'a Path,
    /// Whether the container has its own cgroup namespace.
    pub cgroupns: bool,
    /// Whether the container runs in a new user namespace (device nodes cannot be created).
    pub userns: bool,
    /// The container's cgroup directories on the host, one per hierarchy.
    pub cgroup_paths: &'a [PathBuf],
}

/// What making the mounts left for later steps.
#[derive(Default)]
pub struct MountResult {
    /// The fd of a procfs mounted at `/proc`, if the spec mounts one (reused for sysctls).
    pub proc_root: Option<OwnedFd>,
    /// Whether `/dev` was mounted from the spec (a tmpfs to populate) or bound from the host.
    pub dev_mounted: bool,
    pub dev_is_bind: bool,
    /// Whether `/dev/pts` was mounted (so `/dev/ptmx` links to it).
    pub devpts: bool,
}

/// Makes every mount of the spec, in order.
pub fn mount_all(
    ctx: &MountContext<'_>,
    mounts: &[Mount],
    result: &mut MountResult,
) -> Result<(), MountError> {
    for m in mounts {
        let dest = clean_dest(m.destination());
        let fd = mount_one(ctx, m, &dest)?;
        match dest.to_str() {
            Some("/proc") if m.typ().as_deref() == Some("proc") => result.proc_root = fd,
            Some("/dev") => {
                result.dev_mounted = true;
                let opts = MountOptions::parse(m.options().as_deref().unwrap_or_default());
                result.dev_is_bind = opts.bind || m.typ().as_deref() == Some("bind");
            }
            Some("/dev/pts") => result.devpts = true,
            _ => {}
        }
    }
    Ok(())
}

/// Whether a mount needs the container's cgroups to exist and the init to be in them: a
/// cgroup filesystem (v1 binds the container's cgroup directories; a cgroup2 mount shows the
/// init's cgroup), or anything under /sys/fs/cgroup on either side.
pub fn needs_own_cgroups(m: &Mount) -> bool {
    let under_cgroup_root = |p: &Path| clean_dest(p).starts_with("/sys/fs/cgroup");
    matches!(m.typ().as_deref(), Some("cgroup" | "cgroup2"))
        || under_cgroup_root(m.destination())
        || m.source().as_deref().is_some_and(under_cgroup_root)
}

/// The destination as an absolute, normalised path (relative ones are relative to `/`).
/// `..` is resolved lexically (and cannot climb above `/`), so that a destination like
/// `/tmp/../proc` is judged as `/proc` by every check that follows.
fn clean_dest(dest: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::from("/");
    for c in dest.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

fn describe(m: &Mount, dest: &Path) -> (String, String) {
    let source = m
        .source()
        .as_ref()
        .map(|s| s.display().to_string())
        .or_else(|| m.typ().clone())
        .unwrap_or_default();
    (source, dest.display().to_string())
}

/// Makes one mount; returns the mount fd for procfs so it can be reused.
fn mount_one(
    ctx: &MountContext<'_>,
    m: &Mount,
    dest: &Path,
) -> Result<Option<OwnedFd>, MountError> {
    let opts = MountOptions::parse(m.options().as_deref().unwrap_or_default());
    let typ = m.typ().as_deref().unwrap_or("");
    let (source_s, dest_s) = describe(m, dest);
    let fail = |step: &str, errno: Errno| MountError::Mount {
        src: source_s.clone(),
        dest: dest_s.clone(),
        step: step.to_owned(),
        errno,
    };

    if opts.bind || typ == "bind" {
        let source = m.source().as_deref().unwrap_or(Path::new(""));
        let source = if source.is_absolute() {
            source.to_path_buf()
        } else {
            ctx.bundle.join(source)
        };
        let tree = mount_api::clone_tree(sys::cwd(), &source, opts.recursive).map_err(|errno| {
            MountError::BindSource {
                src: source_s.clone(),
                dest: dest_s.clone(),
                errno,
            }
        })?;
        let is_dir =
            safepath::file_type(tree.as_fd()).map_err(|e| fail("stat source", e))? == libc::S_IFDIR;
        set_attributes(&tree, &opts).map_err(|e| fail("set attributes", e))?;
        let target = destination(ctx, dest, is_dir).map_err(|errno| MountError::Destination {
            src: source_s.clone(),
            dest: dest_s.clone(),
            errno,
        })?;
        refuse_procfs_target(ctx, &target, dest, &source_s)?;
        mount_api::move_mount(tree.as_fd(), target.as_fd()).map_err(|e| fail("attach", e))?;
        set_propagation(&tree, &opts.propagation).map_err(|e| fail("set propagation", e))?;
        return Ok(None);
    }

    if typ == "cgroup" || typ == "cgroup2" {
        let target = destination(ctx, dest, true).map_err(|errno| MountError::Destination {
            src: source_s.clone(),
            dest: dest_s.clone(),
            errno,
        })?;
        refuse_procfs_target(ctx, &target, dest, &source_s)?;
        crate::cgroupfs::mount(ctx, target, &opts).map_err(|(step, e)| fail(&step, e))?;
        return Ok(None);
    }

    // procfs and sysfs must land on real directories: a symlink at /proc or /sys would let the
    // image move them where the runtime and the process do not expect them.
    let target = if typ == "proc" || typ == "sysfs" {
        real_directory(ctx, dest)
    } else {
        destination(ctx, dest, true)
    }
    .map_err(|errno| {
        if errno.0 == libc::ELOOP && (typ == "proc" || typ == "sysfs") {
            MountError::SymlinkDestination {
                src: source_s.clone(),
                dest: dest_s.clone(),
                fstype: typ.to_owned(),
            }
        } else {
            MountError::Destination {
                src: source_s.clone(),
                dest: dest_s.clone(),
                errno,
            }
        }
    })?;
    if typ != "proc" {
        refuse_procfs_target(ctx, &target, dest, &source_s)?;
    }
    let tree = match new_filesystem(typ, m.source().as_deref(), &opts) {
        Ok(tree) => tree,
        Err(FsError::Option(option, errno)) => {
            return Err(MountError::Option {
                src: source_s,
                dest: dest_s,
                fstype: typ.to_owned(),
                option,
                errno,
            });
        }
        Err(FsError::Step(step, errno)) => {
            // sysfs cannot be mounted in a user namespace that does not own the network
            // namespace; runc falls back to binding the host's /sys read-only, and so do we.
            if typ == "sysfs" && ctx.userns && errno.0 == libc::EPERM {
                let mut bind = opts.clone();
                bind.recursive = true;
                bind.rec_attr_set |= mount_api::MOUNT_ATTR_RDONLY;
                let tree = mount_api::clone_tree(sys::cwd(), Path::new("/sys"), true)
                    .map_err(|e| fail("bind /sys", e))?;
                set_attributes(&tree, &bind).map_err(|e| fail("set attributes", e))?;
                mount_api::move_mount(tree.as_fd(), target.as_fd())
                    .map_err(|e| fail("attach", e))?;
                return Ok(None);
            }
            return Err(fail(step, errno));
        }
    };
    if opts.tmpcopyup && typ == "tmpfs" {
        crate::copyup::copy_dir(target.as_fd(), tree.as_fd()).map_err(|e| fail("tmpcopyup", e))?;
    }
    mount_api::move_mount(tree.as_fd(), target.as_fd()).map_err(|e| fail("attach", e))?;
    set_propagation(&tree, &opts.propagation).map_err(|e| fail("set propagation", e))?;
    if typ == "proc" {
        return Ok(Some(tree));
    }
    Ok(None)
}

/// Resolves (creating if needed) the mount destination inside the rootfs.
pub fn destination(ctx: &MountContext<'_>, dest: &Path, dir: bool) -> Result<OwnedFd, Errno> {
    if dir {
        safepath::mkdir_all(ctx.root, dest, 0o755)
    } else {
        safepath::ensure_file(ctx.root, dest, 0o644)
    }
}

/// A destination directory reached without following any symlink (`ELOOP` if one is in the way).
fn real_directory(ctx: &MountContext<'_>, dest: &Path) -> Result<OwnedFd, Errno> {
    let rel = safepath::relative(dest);
    match sys::openat2(
        ctx.root,
        &rel,
        libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW,
        0,
        sys::resolve::IN_ROOT | sys::resolve::NO_SYMLINKS | sys::resolve::NO_MAGICLINKS,
    ) {
        Err(Errno(libc::ENOENT)) => {
            safepath::mkdir_all(ctx.root, dest, 0o755)?;
            sys::openat2(
                ctx.root,
                &rel,
                libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW,
                0,
                sys::resolve::IN_ROOT | sys::resolve::NO_SYMLINKS | sys::resolve::NO_MAGICLINKS,
            )
        }
        // O_DIRECTORY|O_NOFOLLOW on a symlink says ENOTDIR; say ELOOP for "a symlink".
        Err(Errno(libc::ENOTDIR)) => {
            let fd = safepath::open_in_root(ctx.root, dest, libc::O_PATH | libc::O_NOFOLLOW)?;
            if safepath::file_type(fd.as_fd())? == libc::S_IFLNK {
                Err(Errno(libc::ELOOP))
            } else {
                Err(Errno(libc::ENOTDIR))
            }
        }
        other => other,
    }
}

/// A mount whose destination resolved (through a symlink, say) into a mounted procfs shadows
/// part of it: refused, except for the files lxcfs-style tools replace, when reached without
/// any symlink.
fn refuse_procfs_target(
    ctx: &MountContext<'_>,
    target: &OwnedFd,
    dest: &Path,
    source: &str,
) -> Result<(), MountError> {
    const PROC_SUPER_MAGIC: i64 = 0x9fa0;
    if sys::fs_magic(target.as_fd()) != Ok(PROC_SUPER_MAGIC) {
        return Ok(());
    }
    let allowed = PROC_OVERMOUNTS.iter().any(|p| dest == Path::new(p))
        && sys::openat2(
            ctx.root,
            &safepath::relative(dest),
            libc::O_PATH | libc::O_NOFOLLOW,
            0,
            sys::resolve::IN_ROOT | sys::resolve::NO_SYMLINKS | sys::resolve::NO_MAGICLINKS,
        )
        .ok()
        .and_then(|direct| {
            Some((
                sys::fstat(direct.as_fd()).ok()?,
                sys::fstat(target.as_fd()).ok()?,
            ))
        })
        .is_some_and(|(a, b)| (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino));
    if allowed {
        return Ok(());
    }
    Err(MountError::ShadowsProc {
        src: source.to_owned(),
        dest: dest.display().to_string(),
        allowed: PROC_OVERMOUNTS.join(", "),
    })
}

enum FsError {
    Option(String, Errno),
    Step(&'static str, Errno),
}

/// A new, detached filesystem mount of `fstype` with the given options.
fn new_filesystem(
    fstype: &str,
    source: Option<&Path>,
    opts: &MountOptions,
) -> Result<OwnedFd, FsError> {
    let fs = mount_api::fsopen(fstype).map_err(|e| FsError::Step("open filesystem type", e))?;
    if let Some(source) = source.and_then(|s| s.to_str()).filter(|s| !s.is_empty()) {
        // Not every filesystem takes a source; those that do not ignore it through mount(2), so
        // do the same here.
        match mount_api::fsconfig_set(fs.as_fd(), "source", Some(source)) {
            Ok(()) | Err(Errno(libc::EINVAL)) => {}
            Err(e) => return Err(FsError::Option(format!("source={source}"), e)),
        }
    }
    for (key, value) in &opts.data {
        mount_api::fsconfig_set(fs.as_fd(), key, value.as_deref()).map_err(|e| {
            let shown = match value {
                Some(v) => format!("{key}={v}"),
                None => key.clone(),
            };
            FsError::Option(shown, e)
        })?;
    }
    mount_api::fsconfig_create(fs.as_fd()).map_err(|e| FsError::Step("create superblock", e))?;
    // fsmount takes the classic attributes; the rest (nosymfollow, ...) go through mount_setattr.
    const FSMOUNT_ATTRS: u64 = mount_api::MOUNT_ATTR_RDONLY
        | mount_api::MOUNT_ATTR_NOSUID
        | mount_api::MOUNT_ATTR_NODEV
        | mount_api::MOUNT_ATTR_NOEXEC
        | mount_api::MOUNT_ATTR__ATIME
        | mount_api::MOUNT_ATTR_NODIRATIME;
    let attrs = (opts.attr_set | opts.rec_attr_set) & FSMOUNT_ATTRS;
    let tree = mount_api::fsmount(fs.as_fd(), attrs).map_err(|e| FsError::Step("mount", e))?;
    let rest = MountOptions {
        attr_set: opts.attr_set & !FSMOUNT_ATTRS,
        rec_attr_set: opts.rec_attr_set & !FSMOUNT_ATTRS,
        ..Default::default()
    };
    set_attributes(&tree, &rest).map_err(|e| FsError::Step("set attributes", e))?;
    Ok(tree)
}

/// Applies the plain attributes to the top mount and the recursive ones to the whole tree.
pub fn set_attributes(tree: &OwnedFd, opts: &MountOptions) -> Result<(), Errno> {
    if opts.rec_attr_set != 0 || opts.rec_attr_clr != 0 {
        let attr = mount_api::MountAttr {
            attr_set: opts.rec_attr_set,
            attr_clr: opts.rec_attr_clr,
            ..Default::default()
        };
        mount_api::mount_setattr(tree.as_fd(), true, &attr)?;
    }
    if opts.attr_set != 0 || opts.attr_clr != 0 {
        let attr = mount_api::MountAttr {
            attr_set: opts.attr_set,
            attr_clr: opts.attr_clr,
            ..Default::default()
        };
        mount_api::mount_setattr(tree.as_fd(), false, &attr)?;
    }
    Ok(())
}

/// Applies propagation changes to an attached mount.
pub fn set_propagation(tree: &OwnedFd, props: &[Propagation]) -> Result<(), Errno> {
    for p in props {
        let attr = mount_api::MountAttr {
            propagation: p.flag,
            ..Default::default()
        };
        mount_api::mount_setattr(tree.as_fd(), p.recursive, &attr)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mount(json: &str) -> Mount {
        serde_json::from_str(json).unwrap_or_else(|e| panic!("{json}: {e}"))
    }

    #[test]
    fn cgroup_mounts_wait_for_the_cgroups_and_others_do_not() {
        for (json, needs) in [
            (
                r#"{"destination":"/sys/fs/cgroup","type":"cgroup","source":"cgroup"}"#,
                true,
            ),
            (
                r#"{"destination":"/cg","type":"cgroup2","source":"cgroup"}"#,
                true,
            ),
            (
                r#"{"destination":"/sys/fs/cgroup/x","type":"bind","source":"/tmp/x"}"#,
                true,
            ),
            (
                r#"{"destination":"/x/../sys/fs/cgroup","type":"tmpfs","source":"tmpfs"}"#,
                true,
            ),
            (
                r#"{"destination":"/mnt","options":["bind"],"source":"/sys/fs/cgroup/memory"}"#,
                true,
            ),
            (
                r#"{"destination":"/proc","type":"proc","source":"proc"}"#,
                false,
            ),
            (
                r#"{"destination":"/sys","type":"sysfs","source":"sysfs"}"#,
                false,
            ),
            (
                r#"{"destination":"/sys/fs/cgroupx","type":"tmpfs","source":"tmpfs"}"#,
                false,
            ),
            (
                r#"{"destination":"/dev","type":"tmpfs","source":"tmpfs"}"#,
                false,
            ),
        ] {
            assert_eq!(needs_own_cgroups(&mount(json)), needs, "{json}");
        }
    }
}
