//! config.md "Mounts" and config-linux.md default filesystems: types, options,
//! flags, propagation, recursive attributes, order; checked in mountinfo.

use super::Entry;
use crate::bundle::Bundle;
use crate::harness::{Ctx, Fail, R};
use crate::report::{Report, opts};
use crate::{ensure, ensure_eq};
use serde_json::{Value, json};
use std::path::PathBuf;

pub const CASES: &[Entry] = &[
    ("mounts.proc", |c| fstype(c, "/proc", "proc", &[])),
    ("mounts.sysfs-ro", |c| {
        fstype(c, "/sys", "sysfs", &["ro", "nosuid", "nodev", "noexec"])
    }),
    ("mounts.tmpfs-dev", tmpfs_dev),
    ("mounts.devpts", devpts),
    ("mounts.shm", |c| {
        fstype(c, "/dev/shm", "tmpfs", &["nosuid", "nodev", "noexec"])
    }),
    ("mounts.mqueue", |c| {
        fstype(c, "/dev/mqueue", "mqueue", &["nosuid", "nodev", "noexec"])
    }),
    ("mounts.cgroup-ro", cgroup),
    ("mounts.order", order),
    ("mounts.flags", flags),
    ("mounts.tmpfs-data", tmpfs_data),
    ("mounts.destination-created", destination_created),
    ("mounts.bind-dir-ro", bind_ro),
    ("mounts.bind-file", bind_file),
    ("mounts.bind-not-recursive", |c| {
        submounts(c, &["bind"], false, false)
    }),
    ("mounts.rbind-recursive", |c| {
        submounts(c, &["rbind"], true, false)
    }),
    ("mounts.rro-recursive-readonly", |c| {
        submounts(c, &["rbind", "rro"], true, true)
    }),
    ("mounts.propagation-shared", |c| {
        propagation(c, "shared", "shared:")
    }),
    ("mounts.propagation-private", |c| {
        propagation(c, "private", "")
    }),
];

fn mount_of<'a>(r: &'a Report, target: &str) -> Result<&'a Value, Fail> {
    r.mount(target)
        .ok_or_else(|| Fail::Fail(format!("{target} is not a mount point inside")))
}

fn has_opts(m: &Value, want: &[&str]) -> R {
    let have = opts(m, "options");
    for w in want {
        ensure!(
            have.iter().any(|h| h == w),
            "mount {} lacks {w}: {}",
            m["target"],
            m["options"]
        );
    }
    Ok(())
}

fn has_super(m: &Value, want: &[&str]) -> R {
    let have = opts(m, "super");
    for w in want {
        ensure!(
            have.iter().any(|h| h == w),
            "mount {} lacks fs option {w}: {}",
            m["target"],
            m["super"]
        );
    }
    Ok(())
}

fn fstype(ctx: &mut Ctx, target: &str, ty: &str, want: &[&str]) -> R {
    let b = ctx.bundle()?;
    let r = ctx.report(&b)?;
    let m = mount_of(&r, target)?;
    ensure_eq!(
        m["fstype"].as_str().unwrap_or(""),
        ty,
        format!("{target} type")
    );
    has_opts(m, want)
}

fn tmpfs_dev(ctx: &mut Ctx) -> R {
    let b = ctx.bundle()?;
    let r = ctx.report(&b)?;
    let m = mount_of(&r, "/dev")?;
    ensure_eq!(m["fstype"].as_str().unwrap_or(""), "tmpfs", "/dev type");
    has_opts(m, &["nosuid"])?;
    has_super(m, &["mode=755", "size=65536k"])
}

fn devpts(ctx: &mut Ctx) -> R {
    let b = ctx.bundle()?;
    let r = ctx.report(&b)?;
    let m = mount_of(&r, "/dev/pts")?;
    ensure_eq!(
        m["fstype"].as_str().unwrap_or(""),
        "devpts",
        "/dev/pts type"
    );
    has_opts(m, &["nosuid", "noexec"])?;
    has_super(m, &["gid=5", "mode=620", "ptmxmode=666"])
}

fn cgroup(ctx: &mut Ctx) -> R {
    let b = ctx.bundle()?;
    let r = ctx.report(&b)?;
    let mounts = r.0["mounts"].as_array().cloned().unwrap_or_default();
    let cg: Vec<&Value> = mounts
        .iter()
        .filter(|m| {
            m["target"]
                .as_str()
                .is_some_and(|t| t == "/sys/fs/cgroup" || t.starts_with("/sys/fs/cgroup/"))
        })
        .filter(|m| m["fstype"] == "cgroup" || m["fstype"] == "cgroup2")
        .collect();
    ensure!(!cg.is_empty(), "no cgroup filesystem under /sys/fs/cgroup");
    for m in cg {
        has_opts(m, &["ro"])?;
    }
    Ok(())
}

fn order(ctx: &mut Ctx) -> R {
    let b = ctx.bundle()?;
    let r = ctx.report(&b)?;
    let list = r.0["mounts"].as_array().cloned().unwrap_or_default();
    let pos = |t: &str| list.iter().rposition(|m| m["target"] == t);
    let (dev, pts) = (pos("/dev"), pos("/dev/pts"));
    ensure!(
        dev.is_some() && pts.is_some() && dev < pts,
        "mounts not in config order: /dev at {dev:?}, /dev/pts at {pts:?}"
    );
    Ok(())
}

fn flags(ctx: &mut Ctx) -> R {
    let mut b = ctx.bundle()?;
    b.mount(
        json!({ "destination": "/mnt/flags", "type": "tmpfs", "source": "tmpfs",
                    "options": ["nosuid", "nodev", "noexec", "noatime", "ro"] }),
    );
    let r = ctx.report(&b)?;
    has_opts(
        mount_of(&r, "/mnt/flags")?,
        &["nosuid", "nodev", "noexec", "noatime", "ro"],
    )
}

fn tmpfs_data(ctx: &mut Ctx) -> R {
    let mut b = ctx.bundle()?;
    b.mount(json!({ "destination": "/mnt/data", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m", "mode=700"] }));
    b.report(&["--stat", "/mnt/data"]);
    let r = ctx.report(&b)?;
    has_super(mount_of(&r, "/mnt/data")?, &["size=1024k", "mode=700"])?;
    ensure_eq!(
        r.probe("stat", "/mnt/data")["mode"].as_u64(),
        Some(0o700),
        "mode of the tmpfs root"
    );
    Ok(())
}

fn destination_created(ctx: &mut Ctx) -> R {
    let mut b = ctx.bundle()?;
    b.mount(json!({ "destination": "/not/yet/there", "type": "tmpfs", "source": "tmpfs" }));
    let r = ctx.report(&b)?;
    mount_of(&r, "/not/yet/there")?;
    Ok(())
}

/// A host directory with a file `hello`, bind-mounted at /mnt/host with `options`.
fn host_dir(ctx: &mut Ctx, b: &mut Bundle, options: &[&str]) -> Result<PathBuf, Fail> {
    let dir = ctx.scratch("hostdir")?;
    std::fs::write(dir.join("hello"), "hello from the host")?;
    b.mount(json!({ "destination": "/mnt/host", "type": "bind", "source": dir.display().to_string(), "options": options }));
    Ok(dir)
}

fn bind_ro(ctx: &mut Ctx) -> R {
    let mut b = ctx.bundle()?;
    host_dir(ctx, &mut b, &["bind", "ro"])?;
    b.report(&["--read", "/mnt/host/hello", "--ro", "/mnt/host"]);
    let r = ctx.report(&b)?;
    ensure_eq!(
        r.probe("read", "/mnt/host/hello").as_str().unwrap_or(""),
        "hello from the host",
        "bound file"
    );
    ensure_eq!(
        r.probe("ro", "/mnt/host").as_bool(),
        Some(true),
        "ro bind read-only"
    );
    Ok(())
}

fn bind_file(ctx: &mut Ctx) -> R {
    let mut b = ctx.bundle()?;
    let f = ctx.dir.join("bound-file");
    std::fs::write(&f, "one file")?;
    b.mount(json!({ "destination": "/etc/bound", "type": "none", "source": f.display().to_string(), "options": ["bind"] }));
    b.report(&["--read", "/etc/bound"]);
    let r = ctx.report(&b)?;
    ensure_eq!(
        r.probe("read", "/etc/bound").as_str().unwrap_or(""),
        "one file",
        "bound file"
    );
    Ok(())
}

fn submounts(ctx: &mut Ctx, options: &[&str], recursive: bool, ro: bool) -> R {
    let mut b = ctx.bundle()?;
    let dir = host_dir(ctx, &mut b, options)?;
    let sub = dir.join("sub");
    std::fs::create_dir(&sub)?;
    ctx.mount("tmpfs", &sub, "tmpfs", 0, "size=64k")?;
    std::fs::write(sub.join("in-submount"), "x")?;
    b.report(&[
        "--stat",
        "/mnt/host/sub/in-submount",
        "--ro",
        "/mnt/host/sub",
        "--ro",
        "/mnt/host",
    ]);
    let r = ctx.report(&b)?;
    let seen = r.probe("stat", "/mnt/host/sub/in-submount")["type"] == "file";
    ensure_eq!(seen, recursive, "submount visible");
    if ro {
        ensure_eq!(
            r.probe("ro", "/mnt/host").as_bool(),
            Some(true),
            "the mount read-only"
        );
        ensure_eq!(
            r.probe("ro", "/mnt/host/sub").as_bool(),
            Some(true),
            "the submount read-only"
        );
    }
    Ok(())
}

fn propagation(ctx: &mut Ctx, flag: &str, want: &str) -> R {
    let mut b = ctx.bundle()?;
    b.mount(json!({ "destination": "/mnt/prop", "type": "tmpfs", "source": "tmpfs", "options": [flag] }));
    let r = ctx.report(&b)?;
    let m = mount_of(&r, "/mnt/prop")?;
    let optional = m["optional"].as_str().unwrap_or("");
    if want.is_empty() {
        ensure!(
            optional.is_empty(),
            "{flag} mount has propagation {optional:?}"
        );
    } else {
        ensure!(
            optional.contains(want),
            "{flag} mount has propagation {optional:?}"
        );
    }
    Ok(())
}
