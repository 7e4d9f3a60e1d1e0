//! runtime.md: lifecycle, state transitions, start, kill, delete.

use super::{Entry, WAITER, expect_error, pid_alive, start_ready, wait_output, wait_pid_gone};
use crate::harness::{Ctx, R};
use crate::report::Report;
use crate::{ensure, ensure_eq};

pub const CASES: &[Entry] = &[
    ("lifecycle.create-does-not-run-process", create_does_not_run),
    ("lifecycle.start-runs-process", start_runs),
    ("lifecycle.status-created-running-stopped", statuses),
    (
        "lifecycle.config-changes-after-create-ignored",
        config_after_create,
    ),
    ("lifecycle.start-twice-errors", start_twice),
    ("lifecycle.start-stopped-errors", start_stopped),
    ("lifecycle.kill-created", kill_created),
    ("lifecycle.kill-stopped-errors", kill_stopped),
    ("lifecycle.kill-default-sigterm", |c| {
        kill_with(c, &[], "TERM")
    }),
    ("lifecycle.kill-signal-number", |c| {
        kill_with(c, &["10"], "USR1")
    }),
    ("lifecycle.kill-signal-name", |c| {
        kill_with(c, &["USR1"], "USR1")
    }),
    ("lifecycle.kill-signal-sig-name", |c| {
        kill_with(c, &["SIGHUP"], "HUP")
    }),
    ("lifecycle.kill-all", kill_all),
    ("lifecycle.delete-stopped", delete_stopped),
    ("lifecycle.delete-running-errors", delete_running),
    ("lifecycle.delete-created-errors", delete_created),
    ("lifecycle.delete-force-running", delete_force_running),
    ("lifecycle.delete-force-created", delete_force_created),
    ("lifecycle.id-reusable-after-delete", id_reuse),
];

fn create_does_not_run(ctx: &mut Ctx) -> R {
    let mut b = ctx.bundle()?;
    b.sh("echo user-code-ran");
    let (id, out) = ctx.create(&b)?;
    let st = ctx.state(&id)?;
    ensure_eq!(
        st["status"].as_str().unwrap_or(""),
        "created",
        "status after create"
    );
    let pid = st["pid"].as_u64().unwrap_or(0);
    ensure!(
        pid > 0 && pid_alive(pid),
        "state pid {pid} of a created container is not a live process"
    );
    ensure!(
        !out.stdout_now().contains("user-code-ran"),
        "the process ran before start"
    );
    Ok(())
}

fn start_runs(ctx: &mut Ctx) -> R {
    let mut b = ctx.bundle()?;
    b.sh("echo user-code-ran");
    let (_, stdout) = ctx.create_start_wait(&b)?;
    ensure!(
        stdout.contains("user-code-ran"),
        "process output missing after start: {stdout:?}"
    );
    Ok(())
}

fn statuses(ctx: &mut Ctx) -> R {
    let mut b = ctx.bundle()?;
    b.sh(WAITER);
    let (id, _) = ctx.create(&b)?;
    ensure_eq!(
        ctx.status(&id).unwrap_or_default(),
        "created",
        "status after create"
    );
    ctx.rt_ok(&["start", &id])?;
    ensure_eq!(
        ctx.status(&id).unwrap_or_default(),
        "running",
        "status after start"
    );
    ctx.rt_ok(&["kill", &id, "KILL"])?;
    ctx.wait_status(&id, "stopped")?;
    ctx.rt_ok(&["delete", &id])?;
    let out = ctx.rt(&["state", &id]);
    expect_error(&out, "state after delete")
}

fn config_after_create(ctx: &mut Ctx) -> R {
    let mut b = ctx.bundle()?;
    b.config["hostname"] = "before-create".into();
    let (id, out) = ctx.create(&b)?;
    b.config["hostname"] = "after-create".into();
    b.config["process"]["args"] = serde_json::json!(["/bin/sh", "-c", "echo changed"]);
    b.save()?;
    ctx.rt_ok(&["start", &id])?;
    ctx.wait_status(&id, "stopped")?;
    let r = Report::parse(&out.stdout_now())?;
    ensure_eq!(r.str("hostname"), "before-create", "hostname");
    Ok(())
}

fn start_twice(ctx: &mut Ctx) -> R {
    let mut b = ctx.bundle()?;
    b.sh(WAITER);
    let (id, out) = start_ready(ctx, &b)?;
    let again = ctx.rt(&["start", &id]);
    expect_error(&again, "second start")?;
    ensure_eq!(
        ctx.status(&id).unwrap_or_default(),
        "running",
        "status after second start"
    );
    ensure_eq!(
        out.stdout_now().matches("ready").count(),
        1,
        "times the process ran"
    );
    Ok(())
}

fn start_stopped(ctx: &mut Ctx) -> R {
    let mut b = ctx.bundle()?;
    b.sh("echo once");
    let (id, out) = ctx.create_start_wait(&b)?;
    let again = ctx.rt(&["start", &id]);
    expect_error(&again, "start of a stopped container")?;
    ensure_eq!(ctx.status(&id).unwrap_or_default(), "stopped", "status");
    ensure_eq!(out.matches("once").count(), 1, "times the process ran");
    Ok(())
}

fn kill_created(ctx: &mut Ctx) -> R {
    let mut b = ctx.bundle()?;
    b.sh("echo user-code-ran");
    let (id, out) = ctx.create(&b)?;
    ctx.rt_ok(&["kill", &id, "KILL"])?;
    ctx.wait_status(&id, "stopped")?;
    ensure!(
        !out.stdout_now().contains("user-code-ran"),
        "the process ran after kill of a created container"
    );
    Ok(())
}

fn kill_stopped(ctx: &mut Ctx) -> R {
    let mut b = ctx.bundle()?;
    b.sh("true");
    let (id, _) = ctx.create_start_wait(&b)?;
    let out = ctx.rt(&["kill", &id, "KILL"]);
    expect_error(&out, "kill of a stopped container")?;
    ensure_eq!(ctx.status(&id).unwrap_or_default(), "stopped", "status");
    Ok(())
}

fn kill_with(ctx: &mut Ctx, sig: &[&str], name: &str) -> R {
    let mut b = ctx.bundle()?;
    b.sh(WAITER);
    let (id, out) = start_ready(ctx, &b)?;
    let mut args = vec!["kill", &id];
    args.extend_from_slice(sig);
    ctx.rt_ok(&args)?;
    wait_output(ctx, &out, &format!("got {name}"))?;
    ctx.wait_status(&id, "stopped")
}

fn kill_all(ctx: &mut Ctx) -> R {
    // Without a pid namespace, killing init leaves its children: --all must get them.
    let mut b = ctx.bundle()?;
    b.drop_namespace("pid");
    b.sh("sleep 1000 & echo child=$! ; echo ready; wait");
    let (id, out) = start_ready(ctx, &b)?;
    let text = out.stdout_now();
    let child: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("child="))
        .and_then(|p| p.trim().parse().ok())
        .ok_or_else(|| format!("no child pid in {text:?}"))?;
    ensure!(pid_alive(child), "child {child} not running before kill");
    ctx.rt_ok(&["kill", "--all", &id, "KILL"])?;
    wait_pid_gone(ctx, child)?;
    ctx.wait_status(&id, "stopped")
}

fn delete_stopped(ctx: &mut Ctx) -> R {
    let mut b = ctx.bundle()?;
    b.sh("true");
    let (id, _) = ctx.create_start_wait(&b)?;
    ctx.rt_ok(&["delete", &id])?;
    expect_error(&ctx.rt(&["state", &id]), "state after delete")
}

fn delete_running(ctx: &mut Ctx) -> R {
    let mut b = ctx.bundle()?;
    b.sh(WAITER);
    let (id, _) = start_ready(ctx, &b)?;
    expect_error(&ctx.rt(&["delete", &id]), "delete of a running container")?;
    ensure_eq!(
        ctx.status(&id).unwrap_or_default(),
        "running",
        "status after refused delete"
    );
    Ok(())
}

fn delete_created(ctx: &mut Ctx) -> R {
    let mut b = ctx.bundle()?;
    b.sh("true");
    let (id, _) = ctx.create(&b)?;
    expect_error(&ctx.rt(&["delete", &id]), "delete of a created container")?;
    ensure_eq!(
        ctx.status(&id).unwrap_or_default(),
        "created",
        "status after refused delete"
    );
    Ok(())
}

fn delete_force_running(ctx: &mut Ctx) -> R {
    let mut b = ctx.bundle()?;
    b.sh(WAITER);
    let (id, _) = start_ready(ctx, &b)?;
    let pid = ctx.state(&id)?["pid"].as_u64().unwrap_or(0);
    ctx.rt_ok(&["delete", "--force", &id])?;
    wait_pid_gone(ctx, pid)?;
    expect_error(&ctx.rt(&["state", &id]), "state after delete --force")
}

fn delete_force_created(ctx: &mut Ctx) -> R {
    let mut b = ctx.bundle()?;
    b.sh("echo user-code-ran");
    let (id, out) = ctx.create(&b)?;
    let pid = ctx.state(&id)?["pid"].as_u64().unwrap_or(0);
    ctx.rt_ok(&["delete", "--force", &id])?;
    wait_pid_gone(ctx, pid)?;
    ensure!(
        !out.stdout_now().contains("user-code-ran"),
        "the process ran"
    );
    expect_error(&ctx.rt(&["state", &id]), "state after delete --force")
}

fn id_reuse(ctx: &mut Ctx) -> R {
    let mut b = ctx.bundle()?;
    b.sh("true");
    let (id, _) = ctx.create_start_wait(&b)?;
    ctx.rt_ok(&["delete", &id])?;
    let pid_file = ctx.dir.join("again.pid").display().to_string();
    ctx.rt_ok(&[
        "create",
        "--bundle",
        &b.path(),
        "--pid-file",
        &pid_file,
        &id,
    ])?;
    ensure_eq!(
        ctx.status(&id).unwrap_or_default(),
        "created",
        "status of the reused id"
    );
    Ok(())
}
