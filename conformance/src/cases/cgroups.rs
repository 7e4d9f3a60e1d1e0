//! config-linux.md "Control groups": cgroupsPath and resource values, read on the
//! host in the container's cgroup (v1, hybrid or v2 alike), and their removal.

use super::{Entry, WAITER, start_ready};
use crate::harness::{Ctx, Fail, R, read_host, skip};
use crate::{ensure, ensure_eq};
use serde_json::{Value, json};

pub const CASES: &[Entry] = &[
    ("cgroups.path", path),
    ("cgroups.removed-on-delete", removed),
    ("cgroups.memory-limit", memory),
    ("cgroups.pids-limit", pids),
    ("cgroups.cpu-shares", cpu_shares),
    ("cgroups.cpu-quota-period", cpu_quota),
];

fn unique_path(ctx: &Ctx) -> String {
    format!(
        "/{}-{}",
        ctx.env.id_prefix,
        ctx.dir
            .file_name()
            .map(|s| s.to_string_lossy())
            .unwrap_or_default()
    )
}

/// Starts a waiting container with `resources` and returns its host pid.
fn running_with(
    ctx: &mut Ctx,
    resources: Value,
    cgpath: Option<&str>,
) -> Result<(String, u32), Fail> {
    let mut b = ctx.bundle()?;
    b.sh(WAITER);
    if let Some(obj) = resources.as_object() {
        for (k, v) in obj {
            b.config["linux"]["resources"][k] = v.clone();
        }
    }
    if let Some(p) = cgpath {
        b.config["linux"]["cgroupsPath"] = p.into();
    }
    let (id, _) = start_ready(ctx, &b)?;
    let pid = ctx.state(&id)?["pid"].as_u64().unwrap_or(0) as u32;
    Ok((id, pid))
}

/// Reads `v1file` or `v2file` from the container's cgroup for `controller`.
fn value(
    ctx: &Ctx,
    pid: u32,
    controller: &str,
    v1file: &str,
    v2file: &str,
) -> Result<(String, bool), Fail> {
    let Some((dir, v2)) = ctx.env.cgroups.dir_of(pid, controller) else {
        return skip(format!("no {controller} controller on this host"));
    };
    let v = read_host(&dir.join(if v2 { v2file } else { v1file }))?;
    Ok((v, v2))
}

fn path(ctx: &mut Ctx) -> R {
    let p = unique_path(ctx);
    let (_, pid) = running_with(ctx, json!({}), Some(&p))?;
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))?;
    let mut matched = 0;
    for line in text.lines() {
        let cg = line.splitn(3, ':').nth(2).unwrap_or("");
        if line.starts_with("0::") && !ctx.env.cgroups.pure_v2() && cg == "/" {
            continue; // hybrid: the v2 tree may not be used for the container
        }
        ensure!(
            cg.ends_with(&p),
            "cgroup {line:?} is not at cgroupsPath {p}"
        );
        matched += 1;
    }
    ensure!(matched > 0, "no cgroup lines in /proc/{pid}/cgroup");
    Ok(())
}

fn removed(ctx: &mut Ctx) -> R {
    let p = unique_path(ctx);
    let (id, pid) = running_with(ctx, json!({}), Some(&p))?;
    let dirs: Vec<_> = ctx
        .env
        .cgroups
        .all_dirs(pid)
        .into_iter()
        .filter(|d| d.display().to_string().ends_with(&p))
        .collect();
    ensure!(
        !dirs.is_empty(),
        "no cgroup directory of the container found on the host"
    );
    ctx.rt_ok(&["delete", "--force", &id])?;
    let left: Vec<_> = dirs.iter().filter(|d| d.exists()).collect();
    ensure!(
        left.is_empty(),
        "cgroup directories left after delete: {left:?}"
    );
    Ok(())
}

fn memory(ctx: &mut Ctx) -> R {
    let limit = 64u64 << 20;
    let (_, pid) = running_with(ctx, json!({ "memory": { "limit": limit } }), None)?;
    let (v, _) = value(ctx, pid, "memory", "memory.limit_in_bytes", "memory.max")?;
    ensure_eq!(v, limit.to_string(), "memory limit");
    Ok(())
}

fn pids(ctx: &mut Ctx) -> R {
    let (_, pid) = running_with(ctx, json!({ "pids": { "limit": 42 } }), None)?;
    let (v, _) = value(ctx, pid, "pids", "pids.max", "pids.max")?;
    ensure_eq!(v, "42", "pids.max");
    Ok(())
}

fn cpu_shares(ctx: &mut Ctx) -> R {
    let (_, pid) = running_with(ctx, json!({ "cpu": { "shares": 512 } }), None)?;
    let (v, v2) = value(ctx, pid, "cpu", "cpu.shares", "cpu.weight")?;
    // On v2, the runc conversion: weight = 1 + ((shares - 2) * 9999) / 262142.
    let want = if v2 {
        (1 + ((512 - 2) * 9999) / 262142).to_string()
    } else {
        "512".into()
    };
    ensure_eq!(v, want, if v2 { "cpu.weight" } else { "cpu.shares" });
    Ok(())
}

fn cpu_quota(ctx: &mut Ctx) -> R {
    let (_, pid) = running_with(
        ctx,
        json!({ "cpu": { "quota": 50000, "period": 200000 } }),
        None,
    )?;
    let (v, v2) = value(ctx, pid, "cpu", "cpu.cfs_quota_us", "cpu.max")?;
    if v2 {
        ensure_eq!(v, "50000 200000", "cpu.max");
    } else {
        ensure_eq!(v, "50000", "cpu.cfs_quota_us");
        let (p, _) = value(ctx, pid, "cpu", "cpu.cfs_period_us", "cpu.max")?;
        ensure_eq!(p, "200000", "cpu.cfs_period_us");
    }
    Ok(())
}
