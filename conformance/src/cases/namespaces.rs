//! config-linux.md "Namespaces", "User namespace mappings", "Offset for Time
//! Namespace": new, shared and joined namespaces, compared by inode with the host.

use super::Entry;
use crate::bundle::Bundle;
use crate::exec::{Exec, wait_until};
use crate::harness::{Ctx, Fail, R};
use crate::host::{ns_inode, proc_ns_name};
use crate::report::Report;
use crate::{ensure, ensure_eq};
use serde_json::json;

pub const CASES: &[Entry] = &[
    ("namespaces.pid-new", |c| new_ns(c, "pid")),
    ("namespaces.network-new", |c| new_ns(c, "network")),
    ("namespaces.mount-new", |c| new_ns(c, "mount")),
    ("namespaces.ipc-new", |c| new_ns(c, "ipc")),
    ("namespaces.uts-new", |c| new_ns(c, "uts")),
    ("namespaces.cgroup-new", |c| new_ns(c, "cgroup")),
    ("namespaces.pid-shared", |c| shared_ns(c, "pid")),
    ("namespaces.network-shared", |c| shared_ns(c, "network")),
    ("namespaces.ipc-shared", |c| shared_ns(c, "ipc")),
    ("namespaces.uts-shared", |c| shared_ns(c, "uts")),
    ("namespaces.cgroup-shared", |c| shared_ns(c, "cgroup")),
    ("namespaces.pid-init-is-1", pid_one),
    ("namespaces.cgroup-root-is-slash", cgroup_root),
    ("namespaces.user-mappings", user_mappings),
    ("namespaces.time", time_ns),
    ("namespaces.join-network-by-path", |c| {
        join(c, "network", libc::CLONE_NEWNET)
    }),
    ("namespaces.join-ipc-by-path", |c| {
        join(c, "ipc", libc::CLONE_NEWIPC)
    }),
    ("namespaces.join-uts-by-path", |c| {
        join(c, "uts", libc::CLONE_NEWUTS)
    }),
];

fn host_ino(ctx: &Ctx, ty: &str) -> Result<u64, Fail> {
    ctx.env
        .host_ns
        .get(proc_ns_name(ty))
        .copied()
        .ok_or_else(|| Fail::Skip(format!("no {ty} namespace on the host")))
}

fn new_ns(ctx: &mut Ctx, ty: &str) -> R {
    let host = host_ino(ctx, ty)?;
    let mut b = ctx.bundle()?;
    b.namespace(ty, None);
    let r = ctx.report(&b)?;
    let got = r
        .ns(proc_ns_name(ty))
        .ok_or(format!("no {ty} namespace in the report"))?;
    ensure!(
        got != host,
        "{ty}: the container is in the host's namespace ({got})"
    );
    Ok(())
}

fn shared_ns(ctx: &mut Ctx, ty: &str) -> R {
    let host = host_ino(ctx, ty)?;
    let mut b = ctx.bundle()?;
    b.drop_namespace(ty);
    if ty == "uts" {
        b.config.as_object_mut().map(|o| o.remove("hostname"));
    }
    if ty == "network" {
        // sysfs belongs to a network namespace; a shared one needs a bind of /sys.
        b.unmount("/sys/fs/cgroup");
        b.unmount("/sys");
        b.mount(json!({ "destination": "/sys", "type": "bind", "source": "/sys", "options": ["rbind", "nosuid", "noexec", "nodev", "ro"] }));
    }
    let r = ctx.report(&b)?;
    ensure_eq!(
        r.ns(proc_ns_name(ty)),
        Some(host),
        format!("{ty} namespace inode (host's)")
    );
    Ok(())
}

fn pid_one(ctx: &mut Ctx) -> R {
    let b = ctx.bundle()?;
    let r = ctx.report(&b)?;
    ensure_eq!(
        r.0["pid"].as_u64(),
        Some(1),
        "pid of the process in a new pid namespace"
    );
    Ok(())
}

fn cgroup_root(ctx: &mut Ctx) -> R {
    let mut b = ctx.bundle()?;
    b.namespace("cgroup", None);
    let r = ctx.report(&b)?;
    let text = r.str("cgroup");
    for line in text.lines() {
        let path = line.splitn(3, ':').nth(2).unwrap_or("");
        ensure_eq!(
            path,
            "/",
            format!("cgroup path in a new cgroup namespace ({line})")
        );
    }
    Ok(())
}

fn user_mappings(ctx: &mut Ctx) -> R {
    let mut b = ctx.bundle()?;
    b.namespace("user", None);
    b.config["linux"]["uidMappings"] =
        json!([{ "containerID": 0, "hostID": 200000, "size": 65536 }]);
    b.config["linux"]["gidMappings"] =
        json!([{ "containerID": 0, "hostID": 300000, "size": 65536 }]);
    // A v1 cgroup mount is not allowed from a user namespace; the rest is.
    b.unmount("/sys/fs/cgroup");
    let host = host_ino(ctx, "user")?;
    let r = ctx.report(&b)?;
    ensure!(
        r.ns("user").is_some_and(|i| i != host),
        "user namespace not new"
    );
    let norm = |s: String| s.split_whitespace().collect::<Vec<_>>().join(" ");
    ensure_eq!(norm(r.str("uid_map")), "0 200000 65536", "uid_map");
    ensure_eq!(norm(r.str("gid_map")), "0 300000 65536", "gid_map");
    ensure_eq!(r.ids("uid"), vec![0, 0, 0, 0], "uid inside");
    Ok(())
}

fn time_ns(ctx: &mut Ctx) -> R {
    let mut b = ctx.bundle()?;
    b.namespace("time", None);
    b.config["linux"]["timeOffsets"] = json!({
        "monotonic": { "secs": 86400, "nanosecs": 0 },
        "boottime": { "secs": 172800, "nanosecs": 0 },
    });
    let host = host_ino(ctx, "time")?;
    let r = ctx.report(&b)?;
    ensure!(
        r.ns("time").is_some_and(|i| i != host),
        "time namespace not new"
    );
    let offs = r.str("timens_offsets");
    let norm: Vec<String> = offs
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    ensure!(
        norm.iter().any(|l| l == "monotonic 86400 0"),
        "timens_offsets: {offs:?}"
    );
    ensure!(
        norm.iter().any(|l| l == "boottime 172800 0"),
        "timens_offsets: {offs:?}"
    );
    Ok(())
}

/// A helper process in a fresh namespace (made by unshare before exec); the
/// container joins it by /proc/PID/ns path.
fn join(ctx: &mut Ctx, ty: &str, flag: libc::c_int) -> R {
    let mut e = Exec::new(
        vec![
            ctx.env.busybox.display().to_string(),
            "sleep".into(),
            "1000".into(),
        ],
        ctx.env.cmd_timeout * 10,
    );
    e.unshare = flag;
    let helper = ctx.spawn_exec(e, "helper")?;
    let pid = helper.pid();
    ctx.keep_helper(helper);
    let name = proc_ns_name(ty);
    let host = host_ino(ctx, ty)?;
    let ok = wait_until(ctx.env.cmd_timeout, || {
        ns_inode(&pid.to_string(), name).is_some_and(|i| i != host)
    });
    ensure!(ok, "the helper never got its own {ty} namespace");
    let want = ns_inode(&pid.to_string(), name);
    let mut b: Bundle = ctx.bundle()?;
    b.namespace(ty, Some(&format!("/proc/{pid}/ns/{name}")));
    if ty == "uts" {
        b.config.as_object_mut().map(|o| o.remove("hostname"));
    }
    let r: Report = ctx.report(&b)?;
    ensure_eq!(
        r.ns(name),
        want,
        format!("{ty} namespace inode (the helper's)")
    );
    Ok(())
}
