//! The lifecycle commands, as callers use them: create/start/state/kill/delete, run, list, spec.

mod support;

use serde_json::Value;
use support::{Sandbox, stderr, stdout};

fn remove_namespace(cfg: &mut Value, kind: &str) {
    let ns = cfg["linux"]["namespaces"].as_array_mut().unwrap();
    ns.retain(|n| n["type"] != kind);
}

/// A process that, as pid 1 of its namespace, still ends on SIGTERM (it has a handler).
const TERMINABLE: &[&str] = &[
    "sh",
    "-c",
    "trap 'exit 0' TERM; while :; do sleep 0.05; done",
];

fn state(sb: &Sandbox, id: &str) -> Value {
    let out = sb.ocirun(&["state", id]);
    assert!(out.status.success(), "state {id}: {}", stderr(&out));
    serde_json::from_slice(&out.stdout).expect("state prints JSON")
}

#[test]
fn run_exits_with_the_process_status() {
    let sb = Sandbox::new("runstatus");
    sb.write_config(&sb.config(&["true"]));
    assert_eq!(sb.run(&sb.id("a")).0, 0);
    sb.write_config(&sb.config(&["sh", "-c", "exit 3"]));
    assert_eq!(sb.run(&sb.id("b")).0, 3);
    // Without a pid namespace the shell is not an init the kernel protects, so it can kill
    // itself.
    let mut cfg = sb.config(&["sh", "-c", "kill -9 $$"]);
    remove_namespace(&mut cfg, "pid");
    sb.write_config(&cfg);
    assert_eq!(sb.run(&sb.id("c")).0, 137);
    for s in ["a", "b", "c"] {
        sb.assert_clean(&sb.id(s));
    }
}

#[test]
fn run_passes_stdio_through() {
    let sb = Sandbox::new("runstdio");
    sb.write_config(&sb.config(&["sh", "-c", "echo out; echo err >&2"]));
    let (status, out, err) = sb.run(&sb.id("a"));
    assert_eq!(status, 0);
    assert_eq!(out, "out\n");
    assert_eq!(err, "err\n");
}

#[test]
fn create_start_kill_delete() {
    let sb = Sandbox::new("lifecycle");
    sb.write_config(&sb.config(&["sleep", "1000"]));
    let id = sb.id("c");
    let pid_file = sb.dir.join("pid");
    let out = sb.ocirun(&["create", "--pid-file", pid_file.to_str().unwrap(), &id]);
    assert!(out.status.success(), "create: {}", stderr(&out));
    let pid: i32 = std::fs::read_to_string(&pid_file).unwrap().parse().unwrap();
    let st = state(&sb, &id);
    assert_eq!(st["status"], "created");
    assert_eq!(st["pid"], pid);
    assert_eq!(st["id"], id);
    assert_eq!(st["ociVersion"], libsandbox::OCI_VERSION);
    assert_eq!(st["bundle"], sb.bundle.to_str().unwrap());
    assert!(st["created"].as_str().unwrap().ends_with('Z'));

    let out = sb.ocirun(&["start", &id]);
    assert!(out.status.success(), "start: {}", stderr(&out));
    assert_eq!(state(&sb, &id)["status"], "running");
    // The process is sleep, not our init any more.
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert_eq!(comm.trim(), "sleep");

    let out = sb.ocirun(&["start", &id]);
    assert_eq!(out.status.code(), Some(1), "a second start must fail");

    let out = sb.ocirun(&["delete", &id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not stopped"), "{}", stderr(&out));

    let out = sb.ocirun(&["kill", &id, "KILL"]);
    assert!(out.status.success(), "kill: {}", stderr(&out));
    wait_stopped(&sb, &id);
    let st = state(&sb, &id);
    assert_eq!(st["pid"], 0);

    let out = sb.ocirun(&["kill", &id, "TERM"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("container not running"),
        "{}",
        stderr(&out)
    );

    let out = sb.ocirun(&["delete", &id]);
    assert!(out.status.success(), "delete: {}", stderr(&out));
    sb.assert_clean(&id);
}

fn wait_stopped(sb: &Sandbox, id: &str) {
    for _ in 0..500 {
        if state(sb, id)["status"] == "stopped" {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("{id} did not stop");
}

#[test]
fn kill_accepts_numbers_names_and_sig_names() {
    let sb = Sandbox::new("killsig");
    sb.write_config(&sb.config(TERMINABLE));
    for (i, sig) in ["15", "TERM", "SIGTERM", "sigkill"].iter().enumerate() {
        let id = sb.id(&format!("k{i}"));
        assert!(sb.ocirun(&["run", "-d", &id]).status.success());
        let out = sb.ocirun(&["kill", &id, sig]);
        assert!(out.status.success(), "kill {sig}: {}", stderr(&out));
        wait_stopped(&sb, &id);
        assert!(sb.ocirun(&["delete", &id]).status.success());
    }
    let id = sb.id("bad");
    assert!(sb.ocirun(&["run", "-d", &id]).status.success());
    let out = sb.ocirun(&["kill", &id, "NOTASIGNAL"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("invalid signal"), "{}", stderr(&out));
}

#[test]
fn a_created_container_dies_on_sigterm() {
    let sb = Sandbox::new("createdterm");
    sb.write_config(&sb.config(&["sleep", "1000"]));
    let id = sb.id("c");
    assert!(sb.ocirun(&["create", &id]).status.success());
    assert!(sb.ocirun(&["kill", &id, "TERM"]).status.success());
    wait_stopped(&sb, &id);
    assert!(sb.ocirun(&["delete", &id]).status.success());
    sb.assert_clean(&id);
}

#[test]
fn delete_force_kills_running_and_ignores_missing() {
    let sb = Sandbox::new("delforce");
    sb.write_config(&sb.config(&["sleep", "1000"]));
    let id = sb.id("c");
    assert!(sb.ocirun(&["run", "--detach", &id]).status.success());
    assert_eq!(state(&sb, &id)["status"], "running");
    let out = sb.ocirun(&["delete", "--force", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    sb.assert_clean(&id);
    assert!(
        sb.ocirun(&["delete", "--force", "never-existed"])
            .status
            .success()
    );
    let out = sb.ocirun(&["delete", "never-existed"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("does not exist"), "{}", stderr(&out));
}

#[test]
fn list_formats() {
    let sb = Sandbox::new("list");
    let out = sb.ocirun(&["list", "--format", "json"]);
    assert!(out.status.success());
    assert_eq!(stdout(&out), "[]");
    sb.write_config(&sb.config(&["sleep", "1000"]));
    let id = sb.id("c");
    assert!(sb.ocirun(&["create", &id]).status.success());
    let out = sb.ocirun(&["list", "-q"]);
    assert_eq!(stdout(&out), id);
    let out = sb.ocirun(&["list", "-f", "json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["id"], id);
    assert_eq!(v[0]["status"], "created");
    let out = sb.ocirun(&["list"]);
    let text = stdout(&out);
    assert!(text.starts_with("ID"), "{text}");
    assert!(text.contains(&id) && text.contains("created"), "{text}");
}

#[test]
fn version_and_help() {
    let sb = Sandbox::new("version");
    let out = sb.ocirun(&["--version"]);
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("ocirun version "), "{text}");
    assert!(lines[1].starts_with("commit: "), "{text}");
    assert_eq!(lines[2], format!("spec: {}", libsandbox::OCI_VERSION));
    assert!(sb.ocirun(&["--help"]).status.success());
}

#[test]
fn spec_writes_runc_template_once() {
    let sb = Sandbox::new("spec");
    let dir = sb.dir.join("specdir");
    std::fs::create_dir_all(&dir).unwrap();
    let out = sb.ocirun(&["spec", "--bundle", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value =
        serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    let fixture: Value =
        serde_json::from_str(include_str!("../../../fixtures/runc-spec-default.json")).unwrap();
    assert_eq!(v, fixture);
    let out = sb.ocirun(&["spec", "--bundle", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("already exists"));
}

#[test]
fn json_log_gets_one_error_line() {
    let sb = Sandbox::new("jsonlog");
    let log = sb.dir.join("log.json");
    let out = sb.ocirun(&[
        "--log",
        log.to_str().unwrap(),
        "--log-format",
        "json",
        "state",
        "missing",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "{text}");
    let v: Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(v["level"], "error");
    assert!(v["msg"].as_str().unwrap().contains("does not exist"));
    assert!(v["time"].is_string());
    assert!(stderr(&out).contains("does not exist"));
}

#[test]
fn single_dash_long_options_work() {
    let sb = Sandbox::new("singledash");
    let out = sb
        .cmd(&[])
        .args(["-log-format", "json", "list", "-format", "json"])
        .output()
        .unwrap();
    // --root was given with two dashes by the helper; the rest with one.
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "[]");
}

#[test]
fn features_are_honest_json() {
    let sb = Sandbox::new("features");
    let out = sb.ocirun(&["features"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ociVersionMax"], libsandbox::OCI_VERSION);
    let ns: Vec<&str> = v["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    for want in [
        "cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts",
    ] {
        assert!(ns.contains(&want), "{want} missing from {ns:?}");
    }
    assert_eq!(v["linux"]["seccomp"]["enabled"], true);
    assert!(
        v["linux"]["seccomp"]["actions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "SCMP_ACT_NOTIFY")
    );
    // Not implemented, so not claimed.
    assert_eq!(v["linux"]["mountExtensions"]["idmap"]["enabled"], false);
    assert!(
        !v["mountOptions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o == "idmap")
    );
    assert_eq!(v["linux"]["cgroup"]["systemd"], false);
}

#[test]
fn a_killed_create_is_removed_by_delete_force() {
    let sb = Sandbox::new("killedcreate");
    let mut cfg = sb.config(&["true"]);
    // The prestart hook holds `create` in the middle, with the init and the cgroup made; it
    // says so by writing its pid (the cgroup directories alone can appear before the init).
    let hook_pid = sb.dir.join("hook.pid");
    let script = format!(
        "echo $$ > {}.tmp && mv {0}.tmp {0} && exec sleep 30",
        hook_pid.display()
    );
    cfg["hooks"] =
        serde_json::json!({"prestart": [{"path": "/bin/sh", "args": ["sh", "-c", script]}]});
    sb.write_config(&cfg);
    let id = sb.id("c");
    let mut create = sb
        .cmd(&["create", &id])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let state_file = sb.root.join(&id).join("state.json");
    for _ in 0..500 {
        if hook_pid.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(state_file.exists(), "create never recorded the container");
    assert!(
        !support::cgroup_dirs_named(&id).is_empty(),
        "no cgroup made"
    );
    let hook: i32 = std::fs::read_to_string(&hook_pid)
        .expect("the prestart hook never ran")
        .trim()
        .parse()
        .unwrap();
    // SAFETY: signalling the child we spawned, then the hook it left behind.
    unsafe { libc::kill(create.id() as i32, libc::SIGKILL) };
    let _ = create.wait();
    // SAFETY: as above; the hook still sleeps (30 s), so the pid is still its own.
    unsafe { libc::kill(hook, libc::SIGKILL) };
    let st = state(&sb, &id);
    assert_eq!(st["status"], "stopped");
    let out = sb.ocirun(&["delete", "--force", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    sb.assert_clean(&id);
}

#[test]
fn the_log_file_is_created_at_start_and_gets_argument_errors() {
    let sb = Sandbox::new("earlylog");
    let log = sb.dir.join("log.json");
    let out = sb.ocirun(&["--log", log.to_str().unwrap(), "list", "-q"]);
    assert!(out.status.success());
    assert!(
        log.exists(),
        "the log file is created even when nothing is logged"
    );
    let out = sb.ocirun(&[
        "--log",
        log.to_str().unwrap(),
        "--log-format",
        "json",
        "no-such-command",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let text = std::fs::read_to_string(&log).unwrap();
    let v: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(v["level"], "error");
    assert!(
        v["msg"].as_str().unwrap().contains("no-such-command"),
        "{v}"
    );
}
