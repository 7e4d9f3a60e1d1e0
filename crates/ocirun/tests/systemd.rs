//! The systemd cgroup driver (`--systemd-cgroup`) against a real systemd: the container's scope
//! unit, its properties, the cgroup files, commands on it, and that nothing is left.
//!
//! These need systemd as PID 1; elsewhere each test prints "SKIP" and returns. CI runs them in
//! the project's pure cgroup v2 guest booted with systemd (`tools/cgv2-vm -s`) with
//! `OCIRUN_REQUIRE_SYSTEMD=1`, which turns a skip into a failure. CI also runs them in the guest
//! with hybrid cgroups (`-s -H`): v1 controllers, and the v2 hierarchy at /sys/fs/cgroup/unified.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};
use support::{Sandbox, stderr, stdout};

/// Whether the driver can be tested here (and must be, under OCIRUN_REQUIRE_SYSTEMD).
fn systemd_here(test: &str) -> bool {
    let sb = Sandbox::new("sdprobe");
    let out = sb.ocirun(&["features"]);
    let features: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let works = features["linux"]["cgroup"]["systemd"] == true;
    if !works {
        assert!(
            std::env::var_os("OCIRUN_REQUIRE_SYSTEMD").is_none(),
            "OCIRUN_REQUIRE_SYSTEMD is set but `ocirun features` says the systemd driver cannot work here"
        );
        println!("SKIP {test}: needs systemd as PID 1");
    }
    works
}

/// `systemctl show -p NAME --value UNIT`.
fn unit_property(unit: &str, name: &str) -> String {
    let out = Command::new("systemctl")
        .args(["show", "-p", name, "--value", unit])
        .output()
        .expect("run systemctl");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn init_pid(sb: &Sandbox, id: &str) -> i32 {
    let state: Value = serde_json::from_slice(&sb.ocirun(&["state", id]).stdout).unwrap();
    state["pid"].as_i64().unwrap() as i32
}

fn own_cgroup(pid: i32) -> String {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let line = text.lines().find(|l| l.starts_with("0::"));
    line.unwrap_or_else(|| panic!("no v2 line: {text}"))[3..].to_string()
}

fn pure_v2() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// A file of `unit`'s cgroup in system.slice: `v2` on pure v2, else `v1` in `controller`'s
/// hierarchy.
fn scope_file(unit: &str, controller: &str, v2: &str, v1: &str) -> String {
    let path = if pure_v2() {
        PathBuf::from("/sys/fs/cgroup/system.slice")
            .join(unit)
            .join(v2)
    } else {
        PathBuf::from("/sys/fs/cgroup")
            .join(controller)
            .join("system.slice")
            .join(unit)
            .join(v1)
    };
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .to_string()
}

/// Every cgroup directory of `unit` (system.slice/UNIT in any hierarchy) that exists.
fn scope_dirs(unit: &str) -> Vec<PathBuf> {
    let mut roots = vec![PathBuf::from("/sys/fs/cgroup")];
    if let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") {
        roots.extend(rd.filter_map(|e| e.ok()).map(|e| e.path()));
    }
    roots
        .into_iter()
        .map(|r| r.join("system.slice").join(unit))
        .filter(|d| d.is_dir())
        .collect()
}

#[test]
fn a_container_is_a_scope_with_its_limits_until_deleted() {
    if !systemd_here("a_container_is_a_scope_with_its_limits_until_deleted") {
        return;
    }
    let sb = Sandbox::new("sdscope");
    let id = sb.id("c");
    let unit = format!("ocirun-test-{id}.scope");
    let mut cfg = sb.config(&["sleep", "1000"]);
    cfg["linux"]["cgroupsPath"] = json!(format!("system.slice:ocirun-test:{id}"));
    cfg["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "cgroup"}));
    cfg["linux"]["resources"] = json!({
        "memory": {"limit": 64 << 20},
        "cpu": {"shares": 1024, "quota": 50000, "period": 100000},
        "pids": {"limit": 50},
        "devices": [{"allow": false, "access": "rwm"}],
    });
    cfg["annotations"] = json!({"org.systemd.property.CollectMode": "'inactive-or-failed'"});
    sb.write_config(&cfg);
    let out = sb.ocirun(&["--systemd-cgroup", "run", "-d", &id]);
    assert!(out.status.success(), "{}", stderr(&out));

    let pid = init_pid(&sb, &id);
    assert_eq!(own_cgroup(pid), format!("/system.slice/{unit}"));
    // On v1 the init is in the scope in every hierarchy, also those systemd does not manage.
    let lines = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    for line in lines.lines() {
        assert!(line.ends_with(&format!(":/system.slice/{unit}")), "{lines}");
    }
    // systemd's view of the unit ...
    assert_eq!(unit_property(&unit, "ActiveState"), "active");
    assert_eq!(unit_property(&unit, "Delegate"), "yes");
    assert_eq!(unit_property(&unit, "MemoryMax"), (64u64 << 20).to_string());
    assert_eq!(unit_property(&unit, "TasksMax"), "50");
    assert_eq!(unit_property(&unit, "CPUWeight"), "39");
    assert_eq!(unit_property(&unit, "CPUQuotaPerSecUSec"), "500ms");
    assert_eq!(unit_property(&unit, "CollectMode"), "inactive-or-failed");
    // ... and the kernel's.
    let memory = || scope_file(&unit, "memory", "memory.max", "memory.limit_in_bytes");
    let pids = || scope_file(&unit, "pids", "pids.max", "pids.max");
    assert_eq!(memory(), (64u64 << 20).to_string());
    assert_eq!(pids(), "50");
    if pure_v2() {
        assert_eq!(scope_file(&unit, "cpu", "cpu.max", ""), "50000 100000");
        assert_eq!(scope_file(&unit, "cpu", "cpu.weight", ""), "39");
    } else {
        assert_eq!(scope_file(&unit, "cpu", "", "cpu.cfs_quota_us"), "50000");
        assert_eq!(scope_file(&unit, "cpu", "", "cpu.shares"), "1024");
    }

    // The cgroup namespace is rooted at the scope, and exec joins the same cgroup.
    let out = sb.ocirun(&["exec", &id, "cat", "/proc/self/cgroup"]);
    let inside = stdout(&out);
    assert!(inside.contains("0::/"), "{inside} {}", stderr(&out));
    for line in inside.lines() {
        assert!(line.ends_with(":/"), "{inside}");
    }
    // Device access follows the spec's rules plus runc's defaults, enforced by the runtime's
    // eBPF program on the scope: a node made for a device outside them cannot be opened.
    let out = sb.ocirun(&[
        "exec",
        "--cap",
        "CAP_MKNOD",
        &id,
        "sh",
        "-c",
        "mknod /dev/t c 4 1 && echo x > /dev/t",
    ]);
    assert!(!out.status.success(), "tty1 could be opened");
    assert!(
        stderr(&out).contains("Operation not permitted"),
        "{}",
        stderr(&out)
    );

    // update reaches both systemd and the cgroup files.
    let out = sb.ocirun(&["update", "--memory", "128M", "--pids-limit", "60", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        unit_property(&unit, "MemoryMax"),
        (128u64 << 20).to_string()
    );
    assert_eq!(unit_property(&unit, "TasksMax"), "60");
    assert_eq!(memory(), (128u64 << 20).to_string());
    assert_eq!(pids(), "60");

    assert!(sb.ocirun(&["pause", &id]).status.success());
    let state: Value = serde_json::from_slice(&sb.ocirun(&["state", &id]).stdout).unwrap();
    assert_eq!(state["status"], "paused");
    assert!(sb.ocirun(&["resume", &id]).status.success());
    let out = sb.ocirun(&["events", "--stats", &id]);
    let ev: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    assert_eq!(ev["data"]["pids"]["current"], 1, "{}", stderr(&out));

    let out = sb.ocirun(&["delete", "--force", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(unit_property(&unit, "ActiveState"), "inactive");
    assert_eq!(scope_dirs(&unit), Vec::<PathBuf>::new());
    sb.assert_clean(&id);
}

#[test]
fn default_scope_is_ocirun_id_in_system_slice_and_goes_when_its_processes_do() {
    if !systemd_here("default_scope_is_ocirun_id_in_system_slice") {
        return;
    }
    let sb = Sandbox::new("sddefault");
    let id = sb.id("c");
    let unit = format!("ocirun-{id}.scope");
    sb.write_config(&sb.config(&["sleep", "1000"]));
    let out = sb.ocirun(&["--systemd-cgroup", "create", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let pid = init_pid(&sb, &id);
    assert_eq!(own_cgroup(pid), format!("/system.slice/{unit}"));
    assert!(sb.ocirun(&["start", &id]).status.success());

    // The init dies: systemd removes the empty scope on its own; delete still succeeds.
    assert!(sb.ocirun(&["kill", &id, "KILL"]).status.success());
    let out = sb.ocirun(&["delete", "--force", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(unit_property(&unit, "ActiveState"), "inactive");
    assert_eq!(scope_dirs(&unit), Vec::<PathBuf>::new());
    sb.assert_clean(&id);

    // A foreground run: the exit status comes back and the scope is gone afterwards.
    sb.write_config(&sb.config(&["sh", "-c", "exit 7"]));
    let out = sb.ocirun(&["--systemd-cgroup", "run", &id]);
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    assert_eq!(unit_property(&unit, "ActiveState"), "inactive");
    assert_eq!(scope_dirs(&unit), Vec::<PathBuf>::new());
    sb.assert_clean(&id);
}

#[test]
fn bad_input_is_one_clear_error_and_leaves_nothing() {
    if !systemd_here("bad_input_is_one_clear_error_and_leaves_nothing") {
        return;
    }
    let sb = Sandbox::new("sdbad");
    let id = sb.id("c");
    let cases = [
        (json!("/docker/x"), json!({}), "slice:prefix:name"),
        (
            json!("user.slice/x.slice:p:n"),
            json!({}),
            "ending in .slice",
        ),
        (
            json!(""),
            json!({"org.systemd.property.TimeoutStopSec": "uint64 5"}),
            "TimeoutStopUSec",
        ),
        (
            json!(""),
            json!({"org.systemd.property.Bogus": "'x'"}),
            "Bogus",
        ),
    ];
    for (path, annotations, why) in cases {
        let mut cfg = sb.config(&["true"]);
        cfg["linux"]["cgroupsPath"] = path.clone();
        cfg["annotations"] = annotations;
        sb.write_config(&cfg);
        let out = sb.ocirun(&["--systemd-cgroup", "run", &id]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{path}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(why), "{path}: {err}");
        sb.assert_clean(&id);
        assert_eq!(
            unit_property(&format!("ocirun-{id}.scope"), "ActiveState"),
            "inactive"
        );
    }

    // A scope name in use by a running container.
    let mut cfg = sb.config(&["sleep", "1000"]);
    cfg["linux"]["cgroupsPath"] = json!("system.slice:ocirun-test:shared");
    sb.write_config(&cfg);
    let first = sb.id("first");
    let out = sb.ocirun(&["--systemd-cgroup", "run", "-d", &first]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = sb.ocirun(&["--systemd-cgroup", "run", "-d", &id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
    sb.assert_clean(&id);
    assert_eq!(
        unit_property("ocirun-test-shared.scope", "ActiveState"),
        "active",
        "the first container's scope must survive the second's failure"
    );
    let out = sb.ocirun(&["delete", "--force", &first]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        unit_property("ocirun-test-shared.scope", "ActiveState"),
        "inactive"
    );
}
