//! `exec` and `update` as runc callers use them (containerd's shim, podman):
//! a second process in a running container, and live resource updates.

use super::{Entry, WAITER, start_ready};
use crate::exec::wait_until;
use crate::harness::{Ctx, Fail, R, read_host, skip};
use crate::host::ns_inode;
use crate::report::Report;
use crate::{ensure, ensure_eq};
use serde_json::json;

pub const CASES: &[Entry] = &[
    ("exec.joins-container-namespaces", joins),
    ("exec.process-file", process_file),
    ("exec.exit-status", exit_status),
    ("exec.missing-binary-exits-255", missing_binary),
    ("exec.detach-pid-file", detach),
    ("exec.stopped-container-errors", stopped),
    ("update.pids-limit", update_pids),
];

fn running(ctx: &mut Ctx) -> Result<(String, u64), Fail> {
    let mut b = ctx.bundle()?;
    b.sh(WAITER);
    let (id, _) = start_ready(ctx, &b)?;
    let pid = ctx.state(&id)?["pid"].as_u64().unwrap_or(0);
    Ok((id, pid))
}

fn joins(ctx: &mut Ctx) -> R {
    let (id, pid) = running(ctx)?;
    let out = ctx.rt_ok(&["exec", &id, "/oci-checker", "report"])?;
    let r = Report::parse(&out.stdout)?;
    for ns in ["pid", "net", "mnt", "ipc", "uts"] {
        ensure_eq!(
            r.ns(ns),
            ns_inode(&pid.to_string(), ns),
            format!("{ns} namespace of the exec'd process (init's)")
        );
    }
    ensure!(
        r.0["pid"].as_u64().unwrap_or(1) != 1,
        "the exec'd process is pid 1"
    );
    Ok(())
}

fn process_file(ctx: &mut Ctx) -> R {
    let (id, _) = running(ctx)?;
    let proc = json!({
        "terminal": false,
        "user": { "uid": 1000, "gid": 1000, "additionalGids": [20] },
        "args": ["/oci-checker", "report"],
        "env": ["PATH=/bin", "EXEC_VAR=yes", "HOME=/"],
        "cwd": "/tmp",
        "capabilities": { "bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"] },
        "noNewPrivileges": true
    });
    let file = ctx.dir.join("process.json");
    std::fs::write(&file, proc.to_string())?;
    let out = ctx.rt_ok(&["exec", "--process", &file.display().to_string(), &id])?;
    let r = Report::parse(&out.stdout)?;
    ensure_eq!(r.ids("uid"), vec![1000, 1000, 1000, 1000], "uids");
    ensure_eq!(r.str("cwd"), "/tmp", "cwd");
    ensure!(
        r.env().contains(&"EXEC_VAR=yes".to_string()),
        "env: {:?}",
        r.env()
    );
    ensure!(
        r.ids("groups").contains(&20),
        "groups: {:?}",
        r.ids("groups")
    );
    ensure_eq!(
        r.cap("bounding"),
        crate::host::cap_mask(&["CAP_KILL"]),
        "bounding set"
    );
    Ok(())
}

fn exit_status(ctx: &mut Ctx) -> R {
    let (id, _) = running(ctx)?;
    let out = ctx.rt(&["exec", &id, "/bin/sh", "-c", "exit 7"]);
    ensure_eq!(out.code, Some(7), "exit status of exec");
    Ok(())
}

fn missing_binary(ctx: &mut Ctx) -> R {
    let (id, _) = running(ctx)?;
    let out = ctx.rt(&["exec", &id, "/no/such/binary"]);
    ensure_eq!(
        out.code,
        Some(255),
        "exit status of an exec whose setup fails"
    );
    ensure_eq!(
        ctx.status(&id).unwrap_or_default(),
        "running",
        "container status afterwards"
    );
    Ok(())
}

fn detach(ctx: &mut Ctx) -> R {
    let (id, _) = running(ctx)?;
    let pid_file = ctx.dir.join("exec.pid");
    let p = pid_file.display().to_string();
    ctx.rt_ok(&[
        "exec",
        "--detach",
        "--pid-file",
        &p,
        &id,
        "/bin/sleep",
        "1000",
    ])?;
    let pid: u64 = read_host(&pid_file)?
        .parse()
        .map_err(|e| format!("pid file: {e}"))?;
    ensure!(
        super::pid_alive(pid),
        "the detached exec'd process {pid} is not running"
    );
    // The process may still be on its way to execve when the pid file appears.
    let mut cmdline = String::new();
    let ok = wait_until(ctx.env.cmd_timeout, || {
        cmdline = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        cmdline.contains("sleep")
    });
    ensure!(
        ok,
        "pid file names {pid} ({cmdline:?}), not the exec'd process"
    );
    Ok(())
}

fn stopped(ctx: &mut Ctx) -> R {
    let mut b = ctx.bundle()?;
    b.sh("true");
    let (id, _) = ctx.create_start_wait(&b)?;
    let out = ctx.rt(&["exec", &id, "/bin/true"]);
    ensure!(
        !out.success() && !out.stderr.trim().is_empty(),
        "exec into a stopped container: {}",
        out.describe()
    );
    Ok(())
}

fn update_pids(ctx: &mut Ctx) -> R {
    let (id, pid) = running(ctx)?;
    let Some((dir, _)) = ctx.env.cgroups.dir_of(pid as u32, "pids") else {
        return skip("no pids controller on this host");
    };
    let file = ctx.dir.join("resources.json");
    std::fs::write(&file, json!({ "pids": { "limit": 77 } }).to_string())?;
    ctx.rt_ok(&["update", "--resources", &file.display().to_string(), &id])?;
    ensure_eq!(
        read_host(&dir.join("pids.max"))?,
        "77",
        "pids.max after update"
    );
    Ok(())
}
