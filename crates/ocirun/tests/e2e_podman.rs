//! podman 4.3 runs containers with the runtime under test through conmon
//! (`podman --runtime RUNTIME run`): run and exec with and without a terminal, pause, stop
//! (SIGTERM, then SIGKILL), rm, and the runtime's error as podman reports it (podman reads the
//! runtime's log file as one JSON object).
//!
//! Each test uses private podman storage, run and temporary directories, a private runtime
//! state root and cgroup parent, and a busybox image made locally (`podman import`), and tears
//! it all down. podman raises RLIMIT_NOFILE and RLIMIT_NPROC above the hard limits of hosts
//! without CAP_SYS_RESOURCE in the bounding set, which no runtime can grant, so every container
//! gets `--ulimit nofile=1024:1024 --ulimit nproc=1024:1024`. Needs root and `.ci/e2e-deps`;
//! `OCIRUN_BIN` selects the runtime (default: this crate's ocirun).

mod e2e;

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use e2e::{Output, Scratch, TIMEOUT, wait_for};
use serde_json::Value;

const PODMAN: &str = "/usr/bin/podman";
const CONMON: &str = "/usr/bin/conmon";
const IMAGE: &str = "e2e.local/busybox:latest";

/// A shell that ends with status 9 on SIGTERM.
const TERMINABLE: &str =
    "echo started; trap 'echo got-term; exit 9' TERM; while :; do sleep 0.1; done";

/// containers/image, under podman 4.3, keeps a blob-info cache for root in this directory
/// whatever `--root` says, and no option or variable moves it. The suite removes it when it
/// made it: the first podman of this process records whether it (and its parent) existed, the
/// last one removes what did not.
const BLOB_CACHE: &str = "/var/lib/containers/cache";

/// (podmans alive, the cache was made by us, its parent was made by us)
static BLOB_CACHE_USERS: Mutex<(usize, bool, bool)> = Mutex::new((0, false, false));

fn blob_cache_acquire() {
    let mut g = BLOB_CACHE_USERS.lock().unwrap_or_else(|e| e.into_inner());
    if g.0 == 0 {
        let cache = Path::new(BLOB_CACHE);
        g.1 = !cache.exists();
        g.2 = !cache.parent().is_some_and(Path::exists);
    }
    g.0 += 1;
}

fn blob_cache_release() {
    let mut g = BLOB_CACHE_USERS.lock().unwrap_or_else(|e| e.into_inner());
    g.0 = g.0.saturating_sub(1);
    if g.0 == 0 {
        let cache = Path::new(BLOB_CACHE);
        if g.1 {
            let _ = std::fs::remove_dir_all(cache);
        }
        if let (true, Some(parent)) = (g.2, cache.parent()) {
            let _ = std::fs::remove_dir(parent);
        }
    }
}

struct Podman {
    sc: Scratch,
}

impl Podman {
    /// Prepares podman's private directories and imports the image; None when skipped.
    fn start(test: &str) -> Option<Podman> {
        if !e2e::ready("podman", &[PODMAN, CONMON, e2e::TAR, e2e::BUSYBOX]) {
            return None;
        }
        let sc = Scratch::new("podman", test);
        // podman passes `--log-format=json --log FILE` only to runtimes it knows by name, and
        // then reads that file as one JSON object when the runtime fails.
        let conf = format!(
            "[engine]\nruntime_supports_json = [\"{}\"]\n",
            e2e::runtime_name()
        );
        std::fs::write(sc.path("containers.conf"), conf).expect("containers.conf");
        let storage = format!(
            "[storage]\ndriver = \"overlay\"\ngraphroot = \"{}\"\nrunroot = \"{}\"\n",
            sc.path("root").display(),
            sc.path("runroot").display()
        );
        std::fs::write(sc.path("storage.conf"), storage).expect("storage.conf");
        blob_cache_acquire();
        let p = Podman { sc };
        let tar = e2e::rootfs_tar(&p.sc);
        p.sc.run(
            p.podman()
                .args([
                    "import",
                    "--change",
                    "CMD [\"sh\"]",
                    "--change",
                    "ENV PATH=/bin",
                ])
                .arg(&tar)
                .arg(IMAGE),
        )
        .ok();
        let _ = std::fs::remove_file(tar);
        Some(p)
    }

    /// podman with private state everywhere and the runtime under test.
    fn podman(&self) -> Command {
        let sc = &self.sc;
        let mut c = Command::new(PODMAN);
        c.env("PATH", e2e::SYSTEM_PATH)
            .env("CONTAINERS_CONF", sc.path("containers.conf"))
            .env("CONTAINERS_STORAGE_CONF", sc.path("storage.conf"))
            .arg("--root")
            .arg(sc.path("root"))
            .arg("--runroot")
            .arg(sc.path("runroot"))
            .arg("--tmpdir")
            .arg(sc.path("tmp"))
            .arg("--network-config-dir")
            .arg(sc.path("net"))
            .arg("--runtime")
            .arg(e2e::runtime_bin())
            .args(["--conmon", CONMON])
            .args(["--cgroup-manager", "cgroupfs", "--events-backend", "file"])
            .args(["--storage-driver", "overlay"]);
        c
    }

    /// The runtime's state root: its default one. podman 4.3 drops `--runtime-flag` options
    /// from the `delete` it runs after a container exits (it runs `RUNTIME delete --force ID`
    /// without the `--root` that its `create` and `start` got), so a private root would
    /// collect stale state; the containers' ids are unique, and teardown deletes them by id.
    fn runtime_root(&self) -> PathBuf {
        PathBuf::from("/run").join(e2e::runtime_name())
    }

    /// The full ids of all of podman's containers.
    fn ids(&self) -> Vec<String> {
        self.sc
            .cleanup_run(self.podman().args(["ps", "--all", "--quiet", "--no-trunc"]))
            .map(|o| o.stdout.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default()
    }

    fn cli(&self, args: &[&str]) -> Output {
        self.sc.run(self.podman().args(args))
    }

    /// `podman run` with the suite's fixed options, `flags`, the image and `args`.
    fn run_cmd(&self, flags: &[&str], args: &[&str]) -> Command {
        let parent = format!("/{}", self.sc.tag);
        let mut c = self.podman();
        c.args(["run", "--network", "none", "--cgroup-parent", &parent])
            .args([
                "--ulimit",
                "nofile=1024:1024",
                "--ulimit",
                "nproc=1024:1024",
            ])
            .args(flags)
            .arg(IMAGE)
            .args(args);
        c
    }

    fn run(&self, flags: &[&str], args: &[&str]) -> Output {
        self.sc.run(&mut self.run_cmd(flags, args))
    }

    /// Starts a detached container named `name` running `sh -c SCRIPT`; returns its id.
    fn detached(&self, name: &str, script: &str) -> String {
        let out = self
            .run(&["-d", "--name", name], &["sh", "-c", script])
            .ok();
        wait_for(&format!("{name} to run"), TIMEOUT, || {
            (self.inspect(name, "{{.State.Status}}") == "running").then_some(())
        });
        out.out().to_owned()
    }

    fn inspect(&self, name: &str, format: &str) -> String {
        self.cli(&["inspect", "--format", format, name])
            .ok()
            .out()
            .to_owned()
    }

    /// Removes every container through podman and asserts nothing of them is left: no
    /// container, no runtime state, no conmon, no cgroup, no mount.
    #[track_caller]
    fn remove_all_and_assert_clean(&self) {
        let ids = self.ids();
        self.cli(&["rm", "--all", "--force", "--time", "0"]).ok();
        assert_eq!(self.cli(&["ps", "-aq"]).ok().out(), "", "containers left");
        let root = self.runtime_root();
        let state: Vec<_> = ids.iter().filter(|id| root.join(id).exists()).collect();
        assert!(
            state.is_empty(),
            "runtime state left in {}: {state:?}",
            root.display()
        );
        let conmons: Vec<_> = e2e::procs_naming(&format!("{}/", self.sc.dir.display()))
            .into_iter()
            .map(|p| format!("{p}: {}", e2e::cmdline(p)))
            .collect();
        assert!(conmons.is_empty(), "processes left: {conmons:?}");
        // podman's cgroupfs manager keeps conmon in `<parent>/conmon`, which podman leaves.
        let cgroups = e2e::tag_cgroups_left(&self.sc.tag, &["conmon"]);
        assert!(cgroups.is_empty(), "cgroups left: {cgroups:?}");
        let mounts: Vec<_> = e2e::mounts_under(&self.sc.path("root"))
            .into_iter()
            .filter(|m| m.ends_with("merged") || m.ends_with("shm"))
            .collect();
        assert!(mounts.is_empty(), "mounts left: {mounts:?}");
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        // Best effort through podman first, then the runtime itself (its state root is not
        // ours alone); the scratch teardown kills whatever is left.
        let ids = self.ids();
        self.sc.cleanup_run(
            self.podman()
                .args(["rm", "--all", "--force", "--time", "0"]),
        );
        for id in ids {
            if self.runtime_root().join(&id).exists() {
                self.sc.cleanup_run(
                    Command::new(e2e::runtime_bin())
                        .arg("--root")
                        .arg(self.runtime_root())
                        .args(["delete", "--force", &id]),
                );
            }
        }
        blob_cache_release();
    }
}

#[test]
fn run_shows_output_exit_status_and_cgroup() {
    let Some(p) = Podman::start("run") else {
        return;
    };
    let out = p.run(
        &["--rm"],
        &[
            "sh",
            "-c",
            "echo hello; echo oops >&2; ulimit -n; cat /proc/self/cgroup; exit 3",
        ],
    );
    assert_eq!(out.code, Some(3), "{out}");
    assert!(out.stdout.starts_with("hello\n1024\n"), "{out}");
    assert!(out.stderr.contains("oops"), "{out}");
    let parent = format!("/{}/", p.sc.tag);
    assert!(
        out.stdout.lines().any(|l| l.contains(&parent)),
        "not under cgroup parent {parent}: {out}"
    );
    p.remove_all_and_assert_clean();
}

#[test]
fn exec_in_a_running_container() {
    let Some(p) = Podman::start("exec") else {
        return;
    };
    p.detached("x1", TERMINABLE);
    let exec = |args: &[&str]| {
        let mut all = vec!["exec"];
        all.extend_from_slice(args);
        e2e::rerun_if_output_lost(|_| p.cli(&all), |o| !o.stdout.is_empty())
    };
    let out = exec(&["x1", "sh", "-c", "echo in-exec; exit 4"]);
    assert_eq!(out.code, Some(4), "{out}");
    assert_eq!(out.out(), "in-exec", "{out}");

    let out = exec(&[
        "-u",
        "65534",
        "-w",
        "/tmp",
        "-e",
        "FOO=bar",
        "x1",
        "sh",
        "-c",
        "id -u; pwd; echo $FOO; grep -c trap /proc/1/cmdline",
    ])
    .ok();
    assert_eq!(out.out(), "65534\n/tmp\nbar\n1", "{out}");

    let out = p.cli(&["exec", "x1", "/nonexistent"]);
    assert_eq!(out.code, Some(127), "{out}");
    assert!(out.stderr.contains("/nonexistent"), "{out}");
    p.remove_all_and_assert_clean();
}

#[test]
fn stop_sends_sigterm_then_sigkill_and_rm_removes() {
    let Some(p) = Podman::start("stop") else {
        return;
    };
    p.detached("s1", TERMINABLE);
    p.cli(&["stop", "--time", "30", "s1"]).ok();
    assert_eq!(p.inspect("s1", "{{.State.ExitCode}}"), "9");
    let logs = p.cli(&["logs", "s1"]).ok();
    assert_eq!(logs.out(), "started\ngot-term", "{logs}");

    // A process that ignores SIGTERM gets SIGKILL when the grace period ends.
    p.detached("s2", "trap '' TERM; while :; do sleep 0.1; done");
    p.cli(&["stop", "--time", "1", "s2"]).ok();
    assert_eq!(p.inspect("s2", "{{.State.ExitCode}}"), "137");

    p.cli(&["rm", "s1", "s2"]).ok();
    p.remove_all_and_assert_clean();
}

#[test]
fn runtime_errors_are_one_json_line() {
    let Some(p) = Podman::start("errors") else {
        return;
    };
    let out = p.run(&["--name", "bad"], &["/nonexistent"]);
    assert_eq!(out.code, Some(127), "{out}");
    assert!(
        out.stderr.contains("/nonexistent")
            && out.stderr.contains("no such file or directory")
            && out
                .stderr
                .contains("OCI runtime attempted to invoke a command that was not found"),
        "the runtime's error is not in podman's message: {out}"
    );
    assert!(
        !out.stderr.contains("\"level\"") && !out.stderr.contains("\"msg\""),
        "podman could not parse the runtime's log as one JSON object: {out}"
    );
    // The log podman handed the runtime holds one JSON object: the error.
    let id = p.inspect("bad", "{{.Id}}");
    let log =
        p.sc.path(&format!("runroot/overlay-containers/{id}/userdata/oci-log"));
    let text = std::fs::read_to_string(&log)
        .unwrap_or_else(|e| panic!("{}: {e} (podman did not pass --log)", log.display()));
    let v: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("the runtime's log is not one JSON object ({e}): {text}"));
    assert_eq!(v["level"], "error", "{text}");
    assert!(
        v["msg"]
            .as_str()
            .is_some_and(|m| m.contains("/nonexistent")),
        "{text}"
    );
    p.remove_all_and_assert_clean();
}

#[test]
fn run_and_exec_with_a_terminal() {
    let Some(p) = Podman::start("tty") else {
        return;
    };
    let script = format!("{}; exit 5", e2e::TTY_PROBE);
    let out = e2e::rerun_if_output_lost(
        |_| {
            let mut cmd = p.run_cmd(&["--rm", "-it"], &["sh", "-c", &script]);
            p.sc.run_in_pty(&mut cmd, 23, 71)
        },
        |o| o.stdout.contains("size="),
    );
    assert_eq!(out.code, Some(5), "{out}");
    assert!(out.stdout.contains("/dev/pts/0"), "{out}");
    assert!(out.stdout.contains("stdin-is-a-tty"), "{out}");
    assert!(out.stdout.contains("size=23 71"), "{out}");

    p.detached("t1", TERMINABLE);
    let out = e2e::rerun_if_output_lost(
        |_| {
            let mut cmd = p.podman();
            cmd.args(["exec", "-it", "t1", "sh", "-c", e2e::TTY_PROBE]);
            p.sc.run_in_pty(&mut cmd, 19, 59)
        },
        |o| o.stdout.contains("size="),
    );
    assert_eq!(out.code, Some(0), "{out}");
    assert!(out.stdout.contains("/dev/pts/"), "{out}");
    assert!(out.stdout.contains("stdin-is-a-tty"), "{out}");
    assert!(out.stdout.contains("size=19 59"), "{out}");
    p.remove_all_and_assert_clean();
}

#[test]
fn pause_and_unpause() {
    let Some(p) = Podman::start("pause") else {
        return;
    };
    p.detached("z1", TERMINABLE);
    p.cli(&["pause", "z1"]).ok();
    assert_eq!(p.inspect("z1", "{{.State.Status}}"), "paused");
    p.cli(&["unpause", "z1"]).ok();
    assert_eq!(p.inspect("z1", "{{.State.Status}}"), "running");
    p.cli(&["stop", "z1"]).ok();
    assert_eq!(p.inspect("z1", "{{.State.ExitCode}}"), "9");
    p.remove_all_and_assert_clean();
}

#[test]
fn teardown_after_a_failure_leaves_nothing() {
    let seen = Mutex::new(None);
    let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
        let Some(p) = Podman::start("teardown") else {
            return;
        };
        *seen.lock().unwrap() = Some((p.sc.dir.clone(), p.sc.tag.clone(), Vec::new()));
        p.detached("f1", TERMINABLE);
        p.detached("f2", TERMINABLE);
        p.cli(&["pause", "f2"]).ok();
        if let Some(s) = seen.lock().unwrap().as_mut() {
            s.2 = p.ids();
        }
        panic!("a deliberate failure, with a running and a paused container");
    }));
    let Some((dir, tag, ids)) = seen.into_inner().unwrap() else {
        return;
    };
    assert!(result.is_err(), "the test body did not fail");
    e2e::assert_torn_down(&dir, &tag, &[]);
    let root = PathBuf::from("/run").join(e2e::runtime_name());
    let left: Vec<_> = ids.iter().filter(|id| root.join(id).exists()).collect();
    assert!(
        left.is_empty(),
        "runtime state left in {}: {left:?}",
        root.display()
    );
}
