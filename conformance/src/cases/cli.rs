//! The state operation (runtime.md) and the runc command-line conventions that
//! callers (containerd, podman, runtime-tools) rely on.

use super::{Entry, WAITER, expect_error, start_ready};
use crate::exec::wait_until;
use crate::harness::{Ctx, R, read_host};
use crate::{ensure, ensure_eq};
use serde_json::{Value, json};

pub const CASES: &[Entry] = &[
    ("state.spec-fields", state_fields),
    ("state.annotations", state_annotations),
    ("state.runc-fields", state_runc_fields),
    ("state.pid-zero-when-stopped", state_pid_zero),
    ("cli.pid-file", pid_file),
    ("cli.root-holds-state", root_state),
    ("cli.run-exit-status", run_exit_status),
    ("cli.run-removes-container", run_removes),
    ("cli.run-killed-exit-status", run_killed),
    ("cli.run-detach", run_detach),
    ("cli.list-json-empty", list_empty),
    ("cli.list-json", list_json),
    ("cli.list-quiet", list_quiet),
    ("cli.ps-json", ps_json),
    ("cli.pause-resume", pause_resume),
    ("cli.log-json-error", log_json),
    ("cli.version", version),
    ("cli.delete-force-missing-exits-0", delete_force_missing),
];

fn state_fields(ctx: &mut Ctx) -> R {
    let mut b = ctx.bundle()?;
    b.sh("true");
    let (id, _) = ctx.create(&b)?;
    let st = ctx.state(&id)?;
    // The version of the spec the state complies with (not necessarily the config's).
    let v = st["ociVersion"].as_str().unwrap_or("");
    let parts: Vec<&str> = v.split(['.', '-', '+']).collect();
    ensure!(
        parts.len() >= 3
            && parts[..3]
                .iter()
                .all(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit())),
        "ociVersion is not a version: {v:?}"
    );
    ensure_eq!(st["id"].as_str().unwrap_or(""), id.as_str(), "id");
    ensure_eq!(st["status"].as_str().unwrap_or(""), "created", "status");
    ensure!(
        st["pid"].as_u64().unwrap_or(0) > 0,
        "pid of a created container: {}",
        st["pid"]
    );
    let bundle = std::fs::canonicalize(&b.dir)?;
    ensure_eq!(
        st["bundle"].as_str().unwrap_or(""),
        bundle.display().to_string().as_str(),
        "bundle"
    );
    Ok(())
}

fn state_annotations(ctx: &mut Ctx) -> R {
    let mut b = ctx.bundle()?;
    b.sh("true");
    let ann = json!({ "org.example.key": "value", "org.example.other": "two words" });
    b.config["annotations"] = ann.clone();
    let (id, _) = ctx.create(&b)?;
    let st = ctx.state(&id)?;
    ensure_eq!(st["annotations"], ann, "annotations");
    Ok(())
}

fn state_runc_fields(ctx: &mut Ctx) -> R {
    let mut b = ctx.bundle()?;
    b.sh("true");
    let (id, _) = ctx.create(&b)?;
    let raw = ctx.rt_ok(&["state", &id])?.stdout;
    ensure!(
        raw.contains("\n  "),
        "state output is not indented JSON: {raw:?}"
    );
    let st: Value = serde_json::from_str(&raw).map_err(|e| format!("state: {e}"))?;
    let rootfs = std::fs::canonicalize(b.rootfs())?;
    ensure_eq!(
        st["rootfs"].as_str().unwrap_or(""),
        rootfs.display().to_string().as_str(),
        "rootfs"
    );
    let created = st["created"].as_str().unwrap_or("");
    ensure!(is_rfc3339(created), "created is not RFC 3339: {created:?}");
    ensure!(st["owner"].is_string(), "owner missing: {st}");
    Ok(())
}

/// `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`.
fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| r.clone().all(|i| b.get(i).is_some_and(u8::is_ascii_digit));
    if b.len() < 20
        || !digits(0..4)
        || b[4] != b'-'
        || !digits(5..7)
        || b[7] != b'-'
        || !digits(8..10)
    {
        return false;
    }
    if b[10] != b'T'
        || !digits(11..13)
        || b[13] != b':'
        || !digits(14..16)
        || b[16] != b':'
        || !digits(17..19)
    {
        return false;
    }
    let mut rest = &s[19..];
    if let Some(r) = rest.strip_prefix('.') {
        let n = r.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return false;
        }
        rest = &r[n..];
    }
    rest == "Z"
        || (rest.len() == 6
            && (rest.starts_with('+') || rest.starts_with('-'))
            && &rest[3..4] == ":")
}

fn state_pid_zero(ctx: &mut Ctx) -> R {
    let mut b = ctx.bundle()?;
    b.sh("true");
    let (id, _) = ctx.create_start_wait(&b)?;
    let st = ctx.state(&id)?;
    ensure_eq!(st["pid"].as_u64(), Some(0), "pid of a stopped container");
    Ok(())
}

fn pid_file(ctx: &mut Ctx) -> R {
    let mut b = ctx.bundle()?;
    b.sh("true");
    let (id, _) = ctx.create(&b)?;
    let text = read_host(&ctx.dir.join(format!("{id}.pid")))?;
    let st = ctx.state(&id)?;
    ensure_eq!(
        text.parse::<u64>().ok(),
        st["pid"].as_u64(),
        "pid file vs state pid"
    );
    Ok(())
}

fn root_state(ctx: &mut Ctx) -> R {
    let mut b = ctx.bundle()?;
    b.sh("true");
    let (id, _) = ctx.create(&b)?;
    ensure!(
        ctx.root.join(&id).exists(),
        "no {id} in --root {}",
        ctx.root.display()
    );
    ctx.rt_ok(&["delete", "--force", &id])?;
    ensure!(
        !ctx.root.join(&id).exists(),
        "{id} still in --root after delete"
    );
    Ok(())
}

fn run_exit_status(ctx: &mut Ctx) -> R {
    let mut b = ctx.bundle()?;
    b.sh("exit 42");
    let (_, out) = ctx.run(&b)?;
    ensure_eq!(out.code, Some(42), "exit status of run");
    Ok(())
}

fn run_removes(ctx: &mut Ctx) -> R {
    let mut b = ctx.bundle()?;
    b.sh("echo hello");
    let (id, out) = ctx.run(&b)?;
    ensure!(
        out.success() && out.stdout.contains("hello"),
        "run: {}",
        out.describe()
    );
    expect_error(&ctx.rt(&["state", &id]), "state after run")
}

fn run_killed(ctx: &mut Ctx) -> R {
    let mut b = ctx.bundle()?;
    b.sh(WAITER);
    b.save()?;
    let id = ctx.new_id();
    let e = ctx.exec(&["run", "--bundle", &b.path(), &id]);
    let running = ctx.spawn_exec(e, "run")?;
    let ok = wait_until(ctx.env.cmd_timeout, || {
        ctx.status(&id).as_deref() == Some("running")
    });
    ensure!(ok, "the container never ran");
    ctx.rt_ok(&["kill", &id, "KILL"])?;
    let out = running.wait();
    ensure_eq!(
        out.code,
        Some(128 + 9),
        "exit status of run when the process is killed by SIGKILL"
    );
    Ok(())
}

fn run_detach(ctx: &mut Ctx) -> R {
    let mut b = ctx.bundle()?;
    b.sh(WAITER);
    b.save()?;
    let id = ctx.new_id();
    let out = ctx.rt(&["run", "-d", "--bundle", &b.path(), &id]);
    ensure!(out.success(), "run -d: {}", out.describe());
    ensure_eq!(
        ctx.status(&id).unwrap_or_default(),
        "running",
        "status after run -d"
    );
    Ok(())
}

fn list_empty(ctx: &mut Ctx) -> R {
    let out = ctx.rt_ok(&["list", "--format", "json"])?;
    let v: Result<Value, _> = serde_json::from_str(&out.stdout);
    ensure!(
        v.as_ref()
            .is_ok_and(|v| v.as_array().is_some_and(Vec::is_empty)),
        "list --format json with no containers: got {:?}, want an empty array `[]`",
        out.stdout
    );
    Ok(())
}

fn list_json(ctx: &mut Ctx) -> R {
    let mut b = ctx.bundle()?;
    b.sh("true");
    let (id, _) = ctx.create(&b)?;
    let out = ctx.rt_ok(&["list", "--format", "json"])?;
    let v: Value = serde_json::from_str(&out.stdout)
        .map_err(|e| format!("list json: {e}: {:?}", out.stdout))?;
    let list = v.as_array().ok_or("list --format json is not an array")?;
    ensure_eq!(list.len(), 1, "containers listed");
    ensure_eq!(
        list[0]["id"].as_str().unwrap_or(""),
        id.as_str(),
        "listed id"
    );
    ensure_eq!(
        list[0]["status"].as_str().unwrap_or(""),
        "created",
        "listed status"
    );
    ensure!(list[0]["pid"].as_u64().unwrap_or(0) > 0, "listed pid");
    Ok(())
}

fn list_quiet(ctx: &mut Ctx) -> R {
    let mut b = ctx.bundle()?;
    b.sh("true");
    let (a, _) = ctx.create(&b)?;
    let b2 = {
        let mut b2 = ctx.bundle()?;
        b2.sh("true");
        b2
    };
    let (c, _) = ctx.create(&b2)?;
    let out = ctx.rt_ok(&["list", "-q"])?;
    let mut got: Vec<&str> = out
        .stdout
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    got.sort();
    let mut want = vec![a.as_str(), c.as_str()];
    want.sort();
    ensure_eq!(got, want, "list -q");
    Ok(())
}

fn ps_json(ctx: &mut Ctx) -> R {
    let mut b = ctx.bundle()?;
    b.sh(WAITER);
    let (id, _) = start_ready(ctx, &b)?;
    let pid = ctx.state(&id)?["pid"].as_u64().unwrap_or(0);
    let out = ctx.rt_ok(&["ps", "--format", "json", &id])?;
    let v: Value =
        serde_json::from_str(&out.stdout).map_err(|e| format!("ps json: {e}: {:?}", out.stdout))?;
    let pids: Vec<u64> = v
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default();
    ensure!(
        pids.contains(&pid),
        "ps --format json {pids:?} lacks the init pid {pid}"
    );
    Ok(())
}

fn pause_resume(ctx: &mut Ctx) -> R {
    let mut b = ctx.bundle()?;
    b.sh(WAITER);
    let (id, _) = start_ready(ctx, &b)?;
    ctx.rt_ok(&["pause", &id])?;
    ensure_eq!(
        ctx.status(&id).unwrap_or_default(),
        "paused",
        "status after pause"
    );
    ctx.rt_ok(&["resume", &id])?;
    ensure_eq!(
        ctx.status(&id).unwrap_or_default(),
        "running",
        "status after resume"
    );
    Ok(())
}

fn log_json(ctx: &mut Ctx) -> R {
    let mut b = ctx.bundle()?;
    b.config["root"]["path"] = "no-such-rootfs".into();
    b.save()?;
    let id = ctx.new_id();
    let log = ctx.dir.join("log.json");
    let log_s = log.display().to_string();
    let pid_file = ctx.dir.join("p.pid").display().to_string();
    let out = ctx.rt(&[
        "--log",
        &log_s,
        "--log-format",
        "json",
        "create",
        "--bundle",
        &b.path(),
        "--pid-file",
        &pid_file,
        &id,
    ]);
    ensure!(!out.success(), "create with a missing rootfs succeeded");
    let text = read_host(&log)?;
    let last_error = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .rfind(|v| v["level"] == "error")
        .ok_or_else(|| format!("no \"level\":\"error\" JSON line in the log: {text:?}"))?;
    ensure!(
        last_error["msg"].as_str().is_some_and(|m| !m.is_empty()),
        "error line without msg: {last_error}"
    );
    ensure!(
        !ctx.dir.join("p.pid").exists(),
        "pid file written although create failed"
    );
    Ok(())
}

fn version(ctx: &mut Ctx) -> R {
    let out = ctx.rt_ok(&["--version"])?;
    let first = out.stdout.lines().next().unwrap_or("");
    ensure!(
        first.contains(" version "),
        "first line of --version: {first:?}"
    );
    ensure!(
        out.stdout.lines().any(|l| l.starts_with("spec: ")),
        "no `spec: ` line in {:?}",
        out.stdout
    );
    Ok(())
}

fn delete_force_missing(ctx: &mut Ctx) -> R {
    let out = ctx.rt(&["delete", "--force", "no-such-container"]);
    ensure!(
        out.success(),
        "delete --force of a missing container: {}",
        out.describe()
    );
    Ok(())
}
