//! config.md "POSIX-platform Hooks" and runtime.md "Lifecycle": order, state on
//! stdin, args, env, namespaces, timeout, failure semantics. Each hook is a
//! busybox shell script that appends a record to a log the runner reads.

use super::{Entry, expect_error};
use crate::bundle::Bundle;
use crate::harness::{Ctx, Fail, R};
use crate::{ensure, ensure_eq};
use serde_json::{Value, json};
use std::path::PathBuf;

pub const CASES: &[Entry] = &[
    ("hooks.order", order),
    ("hooks.state-on-stdin", state_stdin),
    ("hooks.args-and-env", args_env),
    ("hooks.namespaces", namespaces),
    ("hooks.timeout", timeout),
    ("hooks.prestart-failure", |c| create_failure(c, "prestart")),
    ("hooks.createRuntime-failure", |c| {
        create_failure(c, "createRuntime")
    }),
    ("hooks.createContainer-failure", |c| {
        create_failure(c, "createContainer")
    }),
    ("hooks.startContainer-failure", start_failure),
    ("hooks.poststart-failure-continues", poststart_failure),
    ("hooks.poststop-failure-continues", poststop_failure),
];

const KINDS: [&str; 6] = [
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

/// The log, on the host and as the container sees it.
struct Log {
    host: PathBuf,
}

impl Log {
    fn new(ctx: &mut Ctx, b: &mut Bundle) -> Result<Log, Fail> {
        let dir = ctx.scratch("hooks")?;
        b.mount(json!({ "destination": "/hooks", "type": "bind", "source": dir.display().to_string(), "options": ["rbind", "rw"] }));
        b.sh("echo process >> /hooks/log");
        Ok(Log {
            host: dir.join("log"),
        })
    }

    fn records(&self) -> Vec<Record> {
        let text = std::fs::read_to_string(&self.host).unwrap_or_default();
        let mut out: Vec<Record> = Vec::new();
        for line in text.lines() {
            if line == "process" {
                out.push(Record {
                    name: "process".into(),
                    fields: Vec::new(),
                    state: Value::Null,
                });
            } else if let Some(rest) = line.strip_prefix("hook ") {
                let mut parts = rest.split('|');
                let name = parts.next().unwrap_or("").to_string();
                let fields = parts.map(String::from).collect();
                out.push(Record {
                    name,
                    fields,
                    state: Value::Null,
                });
            } else if let Some(s) = line.strip_prefix("state ") {
                if let Some(last) = out.last_mut() {
                    last.state = serde_json::from_str(s).unwrap_or(Value::String(s.to_string()));
                }
            }
        }
        out
    }

    fn names(&self) -> Vec<String> {
        self.records().into_iter().map(|r| r.name).collect()
    }
}

struct Record {
    name: String,
    /// args, env, uts ns, mnt ns
    fields: Vec<String>,
    state: Value,
}

/// A hook that logs `name`, then runs `then` (e.g. `exit 1`). Hooks that run
/// inside the container's mount namespace after pivot_root use the rootfs busybox
/// and the log at /hooks/log; the others the host's.
fn hook(ctx: &Ctx, log: &Log, kind: &str, name: &str, then: &str) -> Value {
    let inside = kind == "startContainer";
    let bb = if inside {
        "/bin/busybox".to_string()
    } else {
        ctx.env.busybox.display().to_string()
    };
    let file = if inside {
        "/hooks/log".to_string()
    } else {
        log.host.display().to_string()
    };
    let script = format!(
        "{{ echo \"hook $0|$*|$HOOK_ENV|$({bb} readlink /proc/self/ns/uts)|$({bb} readlink /proc/self/ns/mnt)\"; \
         printf 'state '; {bb} tr -d '\\n'; echo; }} >> {file}; {then}"
    );
    json!({ "path": bb, "args": ["busybox", "sh", "-c", script, name, format!("arg-{name}")], "env": [format!("HOOK_ENV=env-{name}")] })
}

fn add(b: &mut Bundle, kind: &str, h: Value) {
    let list = &mut b.config["hooks"][kind];
    if !list.is_array() {
        *list = json!([]);
    }
    if let Some(a) = list.as_array_mut() {
        a.push(h);
    }
}

/// A bundle with one logging hook of every kind (two prestart ones).
fn all_hooks(ctx: &mut Ctx) -> Result<(Bundle, Log), Fail> {
    let mut b = ctx.bundle()?;
    let log = Log::new(ctx, &mut b)?;
    for kind in KINDS {
        add(&mut b, kind, hook(ctx, &log, kind, kind, "true"));
        if kind == "prestart" {
            add(&mut b, kind, hook(ctx, &log, kind, "prestart-2", "true"));
        }
    }
    Ok((b, log))
}

/// create, start, wait, delete; returns the id and the container's pid.
fn full_run(ctx: &mut Ctx, b: &Bundle) -> Result<(String, u64), Fail> {
    let (id, _) = ctx.create(b)?;
    let pid = ctx.state(&id)?["pid"].as_u64().unwrap_or(0);
    ctx.rt_ok(&["start", &id])?;
    ctx.wait_status(&id, "stopped")?;
    ctx.rt_ok(&["delete", &id])?;
    Ok((id, pid))
}

fn order(ctx: &mut Ctx) -> R {
    let (b, log) = all_hooks(ctx)?;
    full_run(ctx, &b)?;
    let names = log.names();
    let hooks: Vec<&str> = names
        .iter()
        .map(String::as_str)
        .filter(|n| *n != "process")
        .collect();
    let want = [
        "prestart",
        "prestart-2",
        "createRuntime",
        "createContainer",
        "startContainer",
        "poststart",
        "poststop",
    ];
    ensure_eq!(hooks, want, "hook order");
    let pos = |n: &str| names.iter().position(|x| x == n);
    ensure!(
        pos("startContainer") < pos("process"),
        "startContainer ran after the process: {names:?}"
    );
    Ok(())
}

fn state_stdin(ctx: &mut Ctx) -> R {
    let (b, log) = all_hooks(ctx)?;
    let (id, pid) = full_run(ctx, &b)?;
    let bundle = std::fs::canonicalize(&b.dir)?.display().to_string();
    let mut wrong = Vec::new();
    for r in log.records().iter().filter(|r| r.name != "process") {
        let s = &r.state;
        let status = s["status"].as_str().unwrap_or("");
        let want: &[&str] = match r.name.as_str() {
            "prestart" | "prestart-2" | "createRuntime" | "createContainer" => {
                &["creating", "created"]
            }
            "startContainer" => &["created", "creating"],
            "poststart" => &["running", "stopped"],
            _ => &["stopped"],
        };
        if s["id"].as_str() != Some(id.as_str())
            || s["bundle"].as_str() != Some(bundle.as_str())
            || !s["ociVersion"].is_string()
        {
            wrong.push(format!("{}: id/bundle/ociVersion wrong in {s}", r.name));
        }
        if r.name != "poststop" && s["pid"].as_u64() != Some(pid) {
            wrong.push(format!("{}: pid {} (host pid {pid})", r.name, s["pid"]));
        }
        if !want.contains(&status) {
            wrong.push(format!(
                "{}: status {status:?}, want one of {want:?}",
                r.name
            ));
        }
    }
    ensure!(wrong.is_empty(), "{}", wrong.join("; "));
    Ok(())
}

fn args_env(ctx: &mut Ctx) -> R {
    let (b, log) = all_hooks(ctx)?;
    full_run(ctx, &b)?;
    for r in log.records().iter().filter(|r| r.name != "process") {
        ensure_eq!(
            r.fields.first().map(String::as_str),
            Some(format!("arg-{}", r.name).as_str()),
            format!("{}: args", r.name)
        );
        ensure_eq!(
            r.fields.get(1).map(String::as_str),
            Some(format!("env-{}", r.name).as_str()),
            format!("{}: env", r.name)
        );
    }
    Ok(())
}

fn namespaces(ctx: &mut Ctx) -> R {
    let (b, log) = all_hooks(ctx)?;
    full_run(ctx, &b)?;
    let host_uts = format!("uts:[{}]", ctx.env.host_ns.get("uts").copied().unwrap_or(0));
    let host_mnt = format!("mnt:[{}]", ctx.env.host_ns.get("mnt").copied().unwrap_or(0));
    for r in log.records().iter().filter(|r| r.name != "process") {
        let (uts, mnt) = (
            r.fields.get(2).cloned().unwrap_or_default(),
            r.fields.get(3).cloned().unwrap_or_default(),
        );
        let in_container = r.name == "createContainer" || r.name == "startContainer";
        ensure!(
            (uts == host_uts) != in_container,
            "{}: uts namespace {uts} (host {host_uts})",
            r.name
        );
        ensure!(
            (mnt == host_mnt) != in_container,
            "{}: mount namespace {mnt} (host {host_mnt})",
            r.name
        );
    }
    Ok(())
}

fn timeout(ctx: &mut Ctx) -> R {
    let mut b = ctx.bundle()?;
    let log = Log::new(ctx, &mut b)?;
    let sleep = format!("exec {} sleep 3600", ctx.env.busybox.display());
    let mut h = hook(ctx, &log, "prestart", "prestart", &sleep);
    h["timeout"] = json!(1);
    add(&mut b, "prestart", h);
    b.save()?;
    let id = ctx.new_id();
    let out = ctx.rt(&["create", "--bundle", &b.path(), &id]);
    ensure!(
        !out.timed_out,
        "the runtime did not time the hook out: {}",
        out.describe()
    );
    expect_error(&out, "create with a hook past its timeout")?;
    ensure!(
        !log.names().contains(&"process".to_string()),
        "the process ran"
    );
    Ok(())
}

fn create_failure(ctx: &mut Ctx, kind: &str) -> R {
    let mut b = ctx.bundle()?;
    let log = Log::new(ctx, &mut b)?;
    add(&mut b, kind, hook(ctx, &log, kind, kind, "exit 3"));
    b.save()?;
    let id = ctx.new_id();
    let out = ctx.rt(&["create", "--bundle", &b.path(), &id]);
    expect_error(&out, &format!("create with a failing {kind} hook"))?;
    ensure!(
        log.names().contains(&kind.to_string()),
        "the {kind} hook never ran: {:?}",
        log.names()
    );
    let st = ctx.rt(&["state", &id]);
    expect_error(&st, "state after the failed create")?;
    ensure!(
        !log.names().contains(&"process".to_string()),
        "the process ran"
    );
    Ok(())
}

fn start_failure(ctx: &mut Ctx) -> R {
    let mut b = ctx.bundle()?;
    let log = Log::new(ctx, &mut b)?;
    add(
        &mut b,
        "startContainer",
        hook(ctx, &log, "startContainer", "startContainer", "exit 3"),
    );
    let (id, _) = ctx.create(&b)?;
    let out = ctx.rt(&["start", &id]);
    expect_error(&out, "start with a failing startContainer hook")?;
    ensure!(
        log.names().contains(&"startContainer".to_string()),
        "the hook never ran"
    );
    ensure!(
        !log.names().contains(&"process".to_string()),
        "the process ran after its startContainer hook failed"
    );
    let status = ctx.status(&id);
    ensure!(
        status.is_none() || status.as_deref() == Some("stopped"),
        "status after the failed start: {status:?}"
    );
    Ok(())
}

fn poststart_failure(ctx: &mut Ctx) -> R {
    let mut b = ctx.bundle()?;
    let log = Log::new(ctx, &mut b)?;
    add(
        &mut b,
        "poststart",
        hook(ctx, &log, "poststart", "poststart", "exit 3"),
    );
    add(
        &mut b,
        "poststart",
        hook(ctx, &log, "poststart", "poststart-2", "true"),
    );
    let (id, _) = ctx.create(&b)?;
    let out = ctx.rt(&["start", &id]);
    ensure!(
        out.success(),
        "start failed on a failing poststart hook (must warn and go on): {}",
        out.describe()
    );
    ctx.wait_status(&id, "stopped")?;
    let names = log.names();
    ensure!(
        names.contains(&"process".to_string()),
        "the process did not run: {names:?}"
    );
    ensure!(
        names.contains(&"poststart-2".to_string()),
        "the hook after the failing one did not run: {names:?}"
    );
    Ok(())
}

fn poststop_failure(ctx: &mut Ctx) -> R {
    let mut b = ctx.bundle()?;
    let log = Log::new(ctx, &mut b)?;
    add(
        &mut b,
        "poststop",
        hook(ctx, &log, "poststop", "poststop", "exit 3"),
    );
    add(
        &mut b,
        "poststop",
        hook(ctx, &log, "poststop", "poststop-2", "true"),
    );
    let (id, _) = ctx.create(&b)?;
    ctx.rt_ok(&["start", &id])?;
    ctx.wait_status(&id, "stopped")?;
    let out = ctx.rt(&["delete", &id]);
    ensure!(
        out.success(),
        "delete failed on a failing poststop hook (must warn and go on): {}",
        out.describe()
    );
    expect_error(&ctx.rt(&["state", &id]), "state after delete")?;
    ensure!(
        log.names().contains(&"poststop-2".to_string()),
        "the hook after the failing one did not run: {:?}",
        log.names()
    );
    Ok(())
}
