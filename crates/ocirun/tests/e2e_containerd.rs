//! containerd 1.6 drives the runtime under test through its runc shim (shim v2), as
//! `ctr run --runc-binary RUNTIME` does: run, run with a terminal, exec, kill, pause and resume,
//! metrics, delete, and the runtime's errors in containerd's messages.
//!
//! Each test starts its own containerd (private root, state, sockets; overlayfs snapshotter),
//! imports a busybox image made locally with umoci (an OCI layout), and tears it all down. Needs
//! root and `.ci/e2e-deps`; `OCIRUN_BIN` selects the runtime (default: this crate's ocirun).

mod e2e;

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use e2e::{Checks, Daemon, Output, Scratch, TIMEOUT, wait_for};
use serde_json::Value;

const CONTAINERD: &str = "/usr/bin/containerd";
const CTR: &str = "/usr/bin/ctr";
const SHIM: &str = "/usr/bin/containerd-shim-runc-v2";
const UMOCI: &str = "/usr/bin/umoci";
const IMAGE: &str = "e2e.local/busybox:latest";

/// A shell that ends on SIGTERM with status 7 (as pid 1 it needs a handler to end at all).
const TERMINABLE: &[&str] = &[
    "sh",
    "-c",
    "trap 'exit 7' TERM; while :; do sleep 0.1; done",
];

/// One private containerd. Fields drop in order: the daemon is stopped, then the scratch
/// directory is torn down.
struct Containerd {
    daemon: Daemon,
    sc: Scratch,
    runtime: PathBuf,
}

impl Containerd {
    /// Starts containerd and imports the image; None when the suite is skipped.
    fn start(test: &str) -> Option<Containerd> {
        if !e2e::ready(
            "containerd",
            &[CONTAINERD, CTR, SHIM, UMOCI, e2e::TAR, e2e::BUSYBOX],
        ) {
            return None;
        }
        let sc = Scratch::new("ctrd", test);
        let d = sc.dir.display();
        let config = format!(
            r#"version = 2
root = "{d}/root"
state = "{d}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = "{d}/containerd.sock"

[ttrpc]
  address = "{d}/containerd.sock.ttrpc"

[debug]
  address = ""

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "{d}/opt"
"#
        );
        std::fs::write(sc.path("config.toml"), config).expect("write config.toml");
        let daemon = Daemon::spawn(
            "containerd",
            Command::new(CONTAINERD)
                .arg("--config")
                .arg(sc.path("config.toml"))
                .arg("--log-level")
                .arg("debug"),
            sc.path("containerd.log"),
        );
        let mut c = Containerd {
            daemon,
            sc,
            runtime: e2e::runtime_bin(),
        };
        wait_for("containerd to serve", TIMEOUT, || {
            c.daemon.assert_running();
            if !c.sc.path("containerd.sock").exists() {
                return None;
            }
            c.sc.run(c.ctr().arg("version")).success().then_some(())
        });
        c.import_image();
        Some(c)
    }

    fn ns(&self) -> &str {
        &self.sc.tag
    }

    /// `ctr` against this containerd, in this test's namespace.
    fn ctr(&self) -> Command {
        let mut c = Command::new(CTR);
        c.env("PATH", e2e::SYSTEM_PATH)
            .arg("--address")
            .arg(self.sc.path("containerd.sock"))
            .arg("--namespace")
            .arg(self.ns());
        c
    }

    fn ctr_run(&self, args: &[&str]) -> Output {
        self.sc.run(self.ctr().args(args))
    }

    /// The runtime's state root (what `--runc-root` points the shim at).
    fn runtime_root(&self) -> PathBuf {
        self.sc.path("runtime-root")
    }

    /// `ctr run` with the runtime under test: `flags` go before the image, `args` after the id.
    fn run_cmd(&self, flags: &[&str], id: &str, args: &[&str]) -> Command {
        let mut c = self.ctr();
        c.arg("run")
            .arg("--runc-binary")
            .arg(&self.runtime)
            .arg("--runc-root")
            .arg(self.runtime_root())
            .arg("--fifo-dir")
            .arg(self.sc.path("fifo"))
            .args(flags)
            .arg(IMAGE)
            .arg(id)
            .args(args);
        c
    }

    fn run(&self, flags: &[&str], id: &str, args: &[&str]) -> Output {
        self.sc.run(&mut self.run_cmd(flags, id, args))
    }

    /// Starts a detached task and waits for it to be RUNNING.
    fn run_detached(&self, flags: &[&str], id: &str, args: &[&str]) {
        let mut all = vec!["-d"];
        all.extend_from_slice(flags);
        self.run(&all, id, args).ok();
        self.wait_status(id, "RUNNING");
    }

    /// The task's status as `ctr task ls` shows it.
    fn task_status(&self, id: &str) -> Option<String> {
        let out = self.ctr_run(&["task", "ls"]).ok();
        out.stdout.lines().skip(1).find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.first() == Some(&id)).then(|| f.last().unwrap_or(&"").to_string())
        })
    }

    fn wait_status(&self, id: &str, status: &str) {
        wait_for(&format!("task {id} to be {status}"), TIMEOUT, || {
            (self.task_status(id).as_deref() == Some(status)).then_some(())
        });
    }

    fn exec_cmd(&self, flags: &[&str], id: &str, exec_id: &str, args: &[&str]) -> Command {
        let mut c = self.ctr();
        c.args(["task", "exec", "--fifo-dir"])
            .arg(self.sc.path("fifo"))
            .args(["--exec-id", exec_id])
            .args(flags)
            .arg(id)
            .args(args);
        c
    }

    /// Kills a task with SIGKILL, deletes it and its container.
    fn remove(&self, id: &str) {
        self.ctr_run(&["task", "kill", "--all", "--signal", "SIGKILL", id]);
        self.wait_status(id, "STOPPED");
        self.ctr_run(&["task", "delete", id]).ok();
        self.ctr_run(&["container", "delete", id]).ok();
    }

    /// The cgroup of task `id`, relative to a hierarchy.
    fn cgroup(&self, id: &str) -> String {
        format!("/{}/{id}", self.ns())
    }

    /// An OCI layout holding a busybox image, made with umoci, imported with `ctr image import`.
    fn import_image(&self) {
        let layout = self.sc.path("layout");
        let rootfs = self.sc.path("image-rootfs");
        e2e::make_rootfs(&rootfs);
        let image = format!("{}:latest", layout.display());
        let umoci = |args: &[&str]| {
            self.sc.run(Command::new(UMOCI).args(args)).ok();
        };
        umoci(&["init", "--layout", layout.to_str().unwrap()]);
        umoci(&["new", "--image", &image]);
        umoci(&["insert", "--image", &image, rootfs.to_str().unwrap(), "/"]);
        umoci(&[
            "config",
            "--image",
            &image,
            "--config.cmd",
            "sh",
            "--config.env",
            "PATH=/bin",
        ]);
        let tar = self.sc.path("image.tar");
        self.sc
            .run(
                Command::new(e2e::TAR)
                    .arg("-C")
                    .arg(&layout)
                    .arg("-cf")
                    .arg(&tar)
                    .arg("."),
            )
            .ok();
        self.sc
            .run(
                self.ctr()
                    .args(["image", "import", "--base-name", "e2e.local/busybox"])
                    .arg(&tar),
            )
            .ok();
        let _ = std::fs::remove_dir_all(&rootfs);
        let _ = std::fs::remove_dir_all(&layout);
    }

    /// Asserts that containerd, the runtime and the host hold nothing of the test's containers:
    /// no task or container, no runtime state, no cgroup, no rootfs mount.
    #[track_caller]
    fn assert_clean(&self) {
        let tasks = self.ctr_run(&["task", "ls", "-q"]).ok();
        assert_eq!(tasks.out(), "", "tasks left");
        let containers = self.ctr_run(&["container", "ls", "-q"]).ok();
        assert_eq!(containers.out(), "", "containers left");
        let state = entries(&self.runtime_root().join(self.ns()));
        assert!(state.is_empty(), "runtime state left: {state:?}");
        let cgroups = e2e::tag_cgroups_left(self.ns(), &[]);
        assert!(cgroups.is_empty(), "cgroups left: {cgroups:?}");
        let mounts = e2e::mounts_under(&self.sc.path("state"));
        assert!(mounts.is_empty(), "mounts left: {mounts:?}");
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        // Best effort through containerd first, so that the shims exit by themselves; the
        // scratch directory's teardown kills whatever is left.
        let Some(list) = self
            .sc
            .cleanup_run(self.ctr().args(["container", "ls", "-q"]))
        else {
            return;
        };
        for id in list.stdout.split_whitespace() {
            self.sc.cleanup_run(self.ctr().args(["task", "resume", id]));
            self.sc.cleanup_run(
                self.ctr()
                    .args(["task", "kill", "--all", "--signal", "SIGKILL", id]),
            );
            self.sc
                .cleanup_run(self.ctr().args(["task", "delete", "--force", id]));
            self.sc
                .cleanup_run(self.ctr().args(["container", "delete", id]));
        }
    }
}

fn entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn run_shows_output_exit_status_and_cgroup() {
    let Some(c) = Containerd::start("run") else {
        return;
    };
    let script = "echo hello; echo oops >&2; cat /proc/self/cgroup; exit 3";
    let out = e2e::rerun_if_output_lost(
        |_| c.run(&["--rm"], "r1", &["sh", "-c", script]),
        |o| o.stdout.contains("0::") && o.stderr.contains("oops"),
    );
    assert_eq!(out.code, Some(3), "{out}");
    assert!(out.stdout.starts_with("hello\n"), "{out}");
    assert!(out.stderr.contains("oops"), "{out}");
    let cg = c.cgroup("r1");
    assert!(
        out.stdout.lines().any(|l| l.ends_with(&format!(":{cg}"))),
        "the task is not in cgroup {cg}: {out}"
    );
    c.assert_clean();
}

#[test]
fn run_with_a_terminal() {
    let Some(c) = Containerd::start("tty") else {
        return;
    };
    let script = format!("{}; exit 5", e2e::TTY_PROBE);
    let out = e2e::rerun_if_output_lost(
        |_| {
            let mut cmd = c.run_cmd(&["--rm", "-t"], "t1", &["sh", "-c", &script]);
            c.sc.run_in_pty(&mut cmd, 33, 97)
        },
        |o| o.stdout.contains("size="),
    );
    assert_eq!(out.code, Some(5), "{out}");
    assert!(out.stdout.contains("/dev/pts/"), "no pty: {out}");
    assert!(out.stdout.contains("stdin-is-a-tty"), "{out}");
    assert!(
        out.stdout.contains("size=33 97"),
        "window size not passed: {out}"
    );
    c.assert_clean();
}

#[test]
fn exec_in_a_running_task() {
    let Some(c) = Containerd::start("exec") else {
        return;
    };
    c.run_detached(&[], "e1", TERMINABLE);
    // Each attempt needs its own exec id.
    let exec = |name: &str, flags: &[&str], args: &[&str], done: &dyn Fn(&Output) -> bool| {
        e2e::rerun_if_output_lost(
            |n| {
                c.sc.run(&mut c.exec_cmd(flags, "e1", &format!("{name}-{n}"), args))
            },
            done,
        )
    };
    let out = exec("x1", &[], &["sh", "-c", "echo in-exec; exit 4"], &|o| {
        !o.stdout.is_empty()
    });
    assert_eq!(out.code, Some(4), "{out}");
    assert_eq!(out.out(), "in-exec", "{out}");

    let out = exec(
        "x2",
        &["--cwd", "/tmp", "--user", "65534"],
        &["sh", "-c", "pwd; id -u; tr '\\0' ' ' < /proc/1/cmdline"],
        &|o| o.stdout.contains("trap"),
    )
    .ok();
    assert!(
        out.stdout.starts_with("/tmp\n65534\n"),
        "cwd or user not applied: {out}"
    );
    assert!(
        out.stdout.contains("trap"),
        "exec is not in the task's pid namespace: {out}"
    );

    let out = e2e::rerun_if_output_lost(
        |n| {
            let id = format!("x3-{n}");
            let mut cmd = c.exec_cmd(&["-t"], "e1", &id, &["sh", "-c", e2e::TTY_PROBE]);
            c.sc.run_in_pty(&mut cmd, 21, 61)
        },
        |o| o.stdout.contains("size="),
    );
    assert_eq!(out.code, Some(0), "{out}");
    assert!(out.stdout.contains("/dev/pts/"), "{out}");
    assert!(out.stdout.contains("stdin-is-a-tty"), "{out}");
    assert!(out.stdout.contains("size=21 61"), "{out}");

    let out =
        c.sc.run(&mut c.exec_cmd(&[], "e1", "x4", &["/nonexistent"]))
            .failed();
    assert!(
        out.stderr.contains("/nonexistent")
            && !out.stderr.contains("unable to retrieve OCI runtime error"),
        "the runtime's error does not reach containerd: {out}"
    );
    c.remove("e1");
    c.assert_clean();
}

#[test]
fn kill_and_delete() {
    let Some(c) = Containerd::start("kill") else {
        return;
    };
    c.run_detached(&[], "k1", TERMINABLE);
    // A running task cannot be deleted.
    c.ctr_run(&["task", "delete", "k1"]).failed();
    c.ctr_run(&["task", "kill", "k1"]).ok();
    c.wait_status("k1", "STOPPED");
    let out = c.ctr_run(&["task", "delete", "k1"]).ok();
    assert!(
        out.stderr.contains("exit code 7"),
        "SIGTERM's handler did not run: {out}"
    );
    c.ctr_run(&["container", "delete", "k1"]).ok();

    // --all reaches every process of the task, not only its init.
    c.run_detached(
        &[],
        "k2",
        &["sh", "-c", "trap '' TERM; sleep 1000 & sleep 1000 & wait"],
    );
    c.ctr_run(&["task", "kill", "--all", "--signal", "SIGKILL", "k2"])
        .ok();
    c.wait_status("k2", "STOPPED");
    let out = c.ctr_run(&["task", "delete", "k2"]).ok();
    assert!(out.stderr.contains("exit code 137"), "{out}");
    c.ctr_run(&["container", "delete", "k2"]).ok();
    c.assert_clean();
}

#[test]
fn ps_lists_the_task_processes() {
    let Some(c) = Containerd::start("ps") else {
        return;
    };
    c.run_detached(
        &[],
        "p1",
        &[
            "sh",
            "-c",
            "trap 'exit 0' TERM; sleep 1000 & while :; do sleep 0.1; done",
        ],
    );
    // The shim answers `ctr task ps` with the runtime's `ps --format json`.
    let out = c.ctr_run(&["task", "ps", "p1"]).ok();
    let pids: Vec<&str> = out.stdout.lines().skip(1).collect();
    assert!(pids.len() >= 2, "ps shows fewer than 2 processes: {out}");
    c.remove("p1");
    c.assert_clean();
}

#[test]
fn pause_and_resume() {
    let Some(c) = Containerd::start("pause") else {
        return;
    };
    c.run_detached(&[], "z1", TERMINABLE);
    let freezer = e2e::cgroup_file(&c.cgroup("z1"), "freezer", "freezer.state", "cgroup.freeze");
    let frozen = if e2e::cgroup_v2_only() { "1" } else { "FROZEN" };
    let thawed = if e2e::cgroup_v2_only() { "0" } else { "THAWED" };
    c.ctr_run(&["task", "pause", "z1"]).ok();
    c.wait_status("z1", "PAUSED");
    assert_eq!(e2e::read_cgroup(&freezer), frozen);
    c.ctr_run(&["task", "resume", "z1"]).ok();
    c.wait_status("z1", "RUNNING");
    assert_eq!(e2e::read_cgroup(&freezer), thawed);
    c.ctr_run(&["task", "kill", "z1"]).ok();
    c.wait_status("z1", "STOPPED");
    c.ctr_run(&["task", "delete", "z1"]).ok();
    c.ctr_run(&["container", "delete", "z1"]).ok();
    c.assert_clean();
}

#[test]
fn metrics_report_the_task_cgroup() {
    let Some(c) = Containerd::start("metrics") else {
        return;
    };
    c.run_detached(
        &["--memory-limit", "67108864"],
        "m1",
        &[
            "sh",
            "-c",
            "sleep 1000 & trap 'exit 7' TERM; while :; do sleep 0.1; done",
        ],
    );
    let limit = e2e::cgroup_file(
        &c.cgroup("m1"),
        "memory",
        "memory.limit_in_bytes",
        "memory.max",
    );
    assert_eq!(
        e2e::read_cgroup(&limit),
        "67108864",
        "the runtime did not set the limit"
    );
    let out = c
        .ctr_run(&["task", "metrics", "--format", "json", "m1"])
        .ok();
    let m: Value = serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out}"));
    let mut checks = Checks::default();
    let pids = m["pids"]["current"].as_u64().unwrap_or(0);
    checks.check(pids >= 2, || format!("pids.current {pids}: {out}"));
    // cgroup v1 metrics carry memory.usage.limit, v2 metrics memory.usage_limit.
    let lim = m["memory"]["usage"]["limit"]
        .as_u64()
        .or_else(|| m["memory"]["usage_limit"].as_u64());
    checks.check(lim == Some(67_108_864), || {
        format!("memory limit {lim:?}: {out}")
    });
    checks.finish();
    c.remove("m1");
    c.assert_clean();
}

#[test]
fn runtime_errors_reach_containerd() {
    let Some(c) = Containerd::start("errors") else {
        return;
    };
    let out = c.run(&["--rm"], "bad1", &["/nonexistent"]).failed();
    assert!(
        out.stderr.contains("OCI runtime create failed")
            && out.stderr.contains("/nonexistent")
            && out.stderr.contains("no such file or directory"),
        "the runtime's error is not in containerd's message: {out}"
    );
    assert!(
        !out.stderr.contains("unable to retrieve OCI runtime error"),
        "containerd found no error in the runtime's log: {out}"
    );
    // The failed create left nothing behind.
    c.ctr_run(&["container", "delete", "bad1"]);
    c.assert_clean();
}

#[test]
fn teardown_after_a_failure_leaves_nothing() {
    let seen = Mutex::new(None);
    let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
        let Some(mut c) = Containerd::start("teardown") else {
            return;
        };
        *seen.lock().unwrap() = Some((c.sc.dir.clone(), c.sc.tag.clone(), c.daemon.pid()));
        c.run_detached(&[], "f1", TERMINABLE);
        c.run_detached(&[], "f2", TERMINABLE);
        c.ctr_run(&["task", "pause", "f2"]).ok();
        c.wait_status("f2", "PAUSED");
        // The harshest case: the daemon dies and leaves its shims, tasks and mounts behind.
        c.daemon.crash();
        panic!("a deliberate failure, with a running and a paused task, and containerd dead");
    }));
    let Some((dir, tag, pid)) = seen.into_inner().unwrap() else {
        return;
    };
    assert!(result.is_err(), "the test body did not fail");
    e2e::assert_torn_down(&dir, &tag, &[pid]);
}
