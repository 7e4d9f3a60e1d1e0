//! Docker 20.10 runs containers with the runtime under test (`dockerd --add-runtime ocirun=BIN`,
//! `docker run --runtime ocirun`): Docker's defaults (seccomp profile, capabilities, masked and
//! read-only paths, its prestart hook), resource limits, filesystem and security options, run
//! and exec with and without a terminal, pause, update, stop (SIGTERM, then SIGKILL), logs,
//! stats, top, and the runtime's errors.
//!
//! Each test starts its own dockerd (private data root, exec root, socket, cgroup parent; no
//! iptables, no bridge; dockerd's own containerd), imports a busybox image made locally
//! (`docker import`), and tears it all down. Needs root and `.ci/e2e-deps`; `OCIRUN_BIN` selects
//! the runtime (default: this crate's ocirun). Debian's docker.io binaries are used explicitly.

mod e2e;

use std::fs::File;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;

use e2e::{Checks, Daemon, Output, Scratch, TIMEOUT, wait_for};
use serde_json::Value;

const DOCKERD: &str = "/usr/sbin/dockerd";
const DOCKER: &str = "/usr/bin/docker";
const CONTAINERD: &str = "/usr/bin/containerd";
const SHIM: &str = "/usr/bin/containerd-shim-runc-v2";
const IMAGE: &str = "e2e.local/busybox:latest";
/// The name the runtime under test is registered under.
const RUNTIME: &str = "ocirun";

/// A shell that prints `started`, then on SIGTERM prints `got-term` and exits 0.
const TERMINABLE: &str =
    "echo started; trap 'echo got-term; exit 0' TERM; while :; do sleep 0.1; done";

/// One private dockerd. Fields drop in order: the daemon is stopped, then the scratch
/// directory is torn down.
struct Docker {
    daemon: Daemon,
    sc: Scratch,
}

impl Docker {
    /// Starts dockerd and imports the image; None when the suite is skipped.
    fn start(test: &str) -> Option<Docker> {
        if !e2e::ready(
            "docker",
            &[DOCKERD, DOCKER, CONTAINERD, SHIM, e2e::TAR, e2e::BUSYBOX],
        ) {
            return None;
        }
        let sc = Scratch::new("docker", test);
        // Docker 20.10 writes its identity key into /etc/docker unless told otherwise; the
        // setting has no command-line flag.
        let config = serde_json::json!({ "deprecated-key-path": sc.path("key.json") });
        std::fs::write(sc.path("daemon.json"), config.to_string()).expect("daemon.json");
        let mut runtime_arg = std::ffi::OsString::from(format!("{RUNTIME}="));
        runtime_arg.push(e2e::runtime_bin());
        let daemon = Daemon::spawn(
            "dockerd",
            Command::new(DOCKERD)
                .arg("--config-file")
                .arg(sc.path("daemon.json"))
                .arg("--data-root")
                .arg(sc.path("data"))
                .arg("--exec-root")
                .arg(sc.path("exec"))
                .arg("--pidfile")
                .arg(sc.path("dockerd.pid"))
                .arg("--host")
                .arg(format!("unix://{}", sc.path("docker.sock").display()))
                .args([
                    "--iptables=false",
                    "--ip6tables=false",
                    "--ip-forward=false",
                    "--ip-masq=false",
                    "--bridge=none",
                    "--userland-proxy=false",
                    "--exec-opt",
                    "native.cgroupdriver=cgroupfs",
                ])
                .arg("--cgroup-parent")
                .arg(format!("/{}", sc.tag))
                .arg("--add-runtime")
                .arg(runtime_arg),
            sc.path("dockerd.log"),
        );
        let mut d = Docker { daemon, sc };
        wait_for("dockerd to serve", TIMEOUT, || {
            d.daemon.assert_running();
            if !d.sc.path("docker.sock").exists() {
                return None;
            }
            d.sc.run(d.docker().arg("version")).success().then_some(())
        });
        let tar = e2e::rootfs_tar(&d.sc);
        d.sc.run_with(
            d.docker().args([
                "import",
                "--change",
                "CMD [\"sh\"]",
                "--change",
                "ENV PATH=/bin",
                "-",
                IMAGE,
            ]),
            Some(File::open(&tar).expect("open the rootfs tar")),
            TIMEOUT,
        )
        .ok();
        let _ = std::fs::remove_file(tar);
        Some(d)
    }

    /// Debian's docker CLI against this dockerd, with a private CLI configuration.
    fn docker(&self) -> Command {
        let mut c = Command::new(DOCKER);
        c.env("PATH", e2e::SYSTEM_PATH)
            .env("DOCKER_CONFIG", self.sc.path("cli"))
            .env_remove("DOCKER_HOST")
            .env_remove("DOCKER_CONTEXT")
            .arg("--host")
            .arg(format!("unix://{}", self.sc.path("docker.sock").display()));
        c
    }

    fn cli(&self, args: &[&str]) -> Output {
        self.sc.run(self.docker().args(args))
    }

    /// `docker run --runtime ocirun --network none FLAGS IMAGE ARGS`.
    fn run_cmd(&self, flags: &[&str], args: &[&str]) -> Command {
        let mut c = self.docker();
        c.args(["run", "--runtime", RUNTIME, "--network", "none"])
            .args(flags)
            .arg(IMAGE)
            .args(args);
        c
    }

    fn run(&self, flags: &[&str], args: &[&str]) -> Output {
        self.sc.run(&mut self.run_cmd(flags, args))
    }

    /// `run --rm` of `sh -c SCRIPT` (which prints something), again if the output was lost.
    fn sh(&self, flags: &[&str], script: &str) -> Output {
        let mut all = vec!["--rm"];
        all.extend_from_slice(flags);
        e2e::rerun_if_output_lost(
            |_| self.run(&all, &["sh", "-c", script]),
            |o| !o.stdout.is_empty(),
        )
    }

    /// `docker exec ARGS` (of a command that prints something), again if the output was lost.
    fn exec(&self, args: &[&str]) -> Output {
        let mut all = vec!["exec"];
        all.extend_from_slice(args);
        e2e::rerun_if_output_lost(|_| self.cli(&all), |o| !o.stdout.is_empty())
    }

    /// Starts a detached container named `name` running `sh -c SCRIPT`; returns its full id.
    fn detached(&self, name: &str, flags: &[&str], script: &str) -> String {
        let mut all = vec!["-d", "--name", name];
        all.extend_from_slice(flags);
        let out = self.run(&all, &["sh", "-c", script]).ok();
        self.wait_status(name, "running");
        out.out().to_owned()
    }

    fn inspect(&self, name: &str, format: &str) -> String {
        self.cli(&["inspect", "--format", format, name])
            .ok()
            .out()
            .to_owned()
    }

    fn wait_status(&self, name: &str, status: &str) {
        wait_for(&format!("container {name} to be {status}"), TIMEOUT, || {
            (self.inspect(name, "{{.State.Status}}") == status).then_some(())
        });
    }

    /// The cgroup of container `id`, relative to a hierarchy.
    fn cgroup(&self, id: &str) -> String {
        format!("/{}/{id}", self.sc.tag)
    }

    /// The state root dockerd's containerd gives the runtime.
    fn runtime_roots(&self) -> Vec<PathBuf> {
        std::fs::read_dir(self.sc.path("exec"))
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .filter(|e| e.file_name().to_string_lossy().starts_with("runtime-"))
                    .map(|e| e.path().join("moby"))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Removes every container through Docker, then asserts nothing of them is left: no
    /// container, no runtime state, no cgroup, no mount.
    #[track_caller]
    fn remove_all_and_assert_clean(&self) {
        let ids = self.cli(&["ps", "-aq"]).ok();
        for id in ids.stdout.split_whitespace() {
            self.cli(&["rm", "-f", id]).ok();
        }
        assert_eq!(self.cli(&["ps", "-aq"]).ok().out(), "", "containers left");
        for root in self.runtime_roots() {
            let left: Vec<_> = std::fs::read_dir(&root)
                .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
                .unwrap_or_default();
            assert!(
                left.is_empty(),
                "runtime state left in {}: {left:?}",
                root.display()
            );
        }
        let cgroups = e2e::tag_cgroups_left(&self.sc.tag, &[]);
        assert!(cgroups.is_empty(), "cgroups left: {cgroups:?}");
        let mounts: Vec<_> = e2e::mounts_under(&self.sc.path("data"))
            .into_iter()
            .filter(|m| m.ends_with("merged") || m.ends_with("shm"))
            .collect();
        assert!(mounts.is_empty(), "mounts left: {mounts:?}");
    }
}

impl Drop for Docker {
    fn drop(&mut self) {
        // Best effort through Docker first; the scratch teardown kills whatever is left.
        let Some(ids) = self.sc.cleanup_run(self.docker().args(["ps", "-aq"])) else {
            return;
        };
        for id in ids.stdout.split_whitespace() {
            self.sc.cleanup_run(self.docker().args(["unpause", id]));
            self.sc.cleanup_run(self.docker().args(["rm", "-f", id]));
        }
    }
}

/// Docker 20.10's masked and read-only paths.
const MASKED: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
];
const READONLY: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

#[test]
fn run_with_docker_defaults() {
    let Some(d) = Docker::start("defaults") else {
        return;
    };
    let cid = d.sc.path("defaults.cid");
    let script = format!(
        "echo hello; echo oops >&2; \
         grep -E '^(Seccomp|CapEff|NoNewPrivs):' /proc/self/status; \
         for p in {masked}; do \
           if [ -c $p ]; then echo \"masked $p $(stat -c %t:%T $p)\"; \
           elif [ -d $p ]; then echo \"masked $p dir $(ls -A $p | wc -l) \
             $(grep \" $p \" /proc/mounts | cut -d' ' -f3,4 | cut -d, -f1)\"; fi; done; \
         for p in {readonly}; do \
           echo \"readonly $p $(grep \" $p \" /proc/mounts | cut -d' ' -f4 | cut -d, -f1)\"; \
         done; \
         cat /proc/self/cgroup; exit 3",
        masked = MASKED.join(" "),
        readonly = READONLY.join(" "),
    );
    let out = d.run(
        &["--rm", "--cidfile", cid.to_str().unwrap()],
        &["sh", "-c", &script],
    );
    assert_eq!(out.code, Some(3), "{out}");
    let id = std::fs::read_to_string(&cid).expect("cidfile");
    let mut c = Checks::default();
    let has = |s: &str| out.stdout.lines().any(|l| l.trim() == s);
    c.check(out.stdout.starts_with("hello\n"), || {
        format!("stdout: {out}")
    });
    c.check(out.stderr.contains("oops"), || format!("stderr: {out}"));
    // Docker's default profile, in filter mode.
    c.check(has("Seccomp:\t2"), || format!("no seccomp filter: {out}"));
    // Docker's 14 default capabilities.
    c.check(has("CapEff:\t00000000a80425fb"), || {
        format!("capabilities are not Docker's defaults: {out}")
    });
    c.check(has("NoNewPrivs:\t0"), || format!("no_new_privs: {out}"));
    // Masked files are /dev/null, masked directories an empty read-only tmpfs; read-only
    // paths are read-only binds. Paths this kernel lacks are skipped.
    for p in MASKED {
        let want = match std::fs::metadata(p) {
            Ok(m) if m.is_dir() => format!("masked {p} dir 0 tmpfs ro"),
            Ok(_) => format!("masked {p} 1:3"),
            Err(_) => continue,
        };
        c.check(has(&want), || {
            format!("{p} is not masked ({want:?}): {out}")
        });
    }
    for p in READONLY {
        if std::path::Path::new(p).exists() {
            c.check(has(&format!("readonly {p} ro")), || {
                format!("{p} is not read-only: {out}")
            });
        }
    }
    let cg = d.cgroup(&id);
    c.check(
        out.stdout.lines().any(|l| l.ends_with(&format!(":{cg}"))),
        || format!("not in cgroup {cg}: {out}"),
    );
    c.finish();
    d.remove_all_and_assert_clean();
}

#[test]
fn prestart_hook_runs() {
    let Some(d) = Docker::start("hook") else {
        return;
    };
    // Docker's prestart hook (libnetwork-setkey) hands the container's network namespace to
    // dockerd, which records it as the sandbox key.
    d.detached("h1", &[], TERMINABLE);
    let key = d.inspect("h1", "{{.NetworkSettings.SandboxKey}}");
    assert!(
        key.contains("/netns/") && std::path::Path::new(&key).exists(),
        "the prestart hook did not run: sandbox key {key:?}"
    );
    d.remove_all_and_assert_clean();
}

#[test]
fn run_with_resource_limits() {
    let Some(d) = Docker::start("limits") else {
        return;
    };
    let id = d.detached(
        "l1",
        &["--memory", "64m", "--cpus", "0.5", "--pids-limit", "50"],
        TERMINABLE,
    );
    let cg = d.cgroup(&id);
    let mut c = Checks::default();
    let mem = e2e::cgroup_file(&cg, "memory", "memory.limit_in_bytes", "memory.max");
    let cpu = if e2e::cgroup_v2_only() {
        e2e::cgroup_file(&cg, "cpu", "", "cpu.max")
    } else {
        e2e::cgroup_file(&cg, "cpu", "cpu.cfs_quota_us", "")
    };
    let pids = e2e::cgroup_file(&cg, "pids", "pids.max", "pids.max");
    let want_cpu = if e2e::cgroup_v2_only() {
        "50000 100000"
    } else {
        "50000"
    };
    for (file, want) in [(&mem, "67108864"), (&cpu, want_cpu), (&pids, "50")] {
        let got = e2e::read_cgroup(file);
        c.check(got == want, || {
            format!("{}: {got}, not {want}", file.display())
        });
    }
    c.finish();
    d.remove_all_and_assert_clean();
}

#[test]
fn run_with_filesystem_and_security_options() {
    let Some(d) = Docker::start("options") else {
        return;
    };
    let vol = d.sc.path("volume");
    std::fs::create_dir_all(&vol).unwrap();
    std::fs::write(vol.join("from-host"), "host data\n").unwrap();
    let rw = format!("{}:/vol", vol.display());
    let ro = format!("{}:/rovol:ro", vol.display());
    let mut c = Checks::default();

    let out = d.sh(
        &["--read-only"],
        "touch /file 2>&1; touch /tmp/file 2>&1; echo done",
    );
    c.output(
        "--read-only",
        &out,
        &["/file: Read-only file system", "/tmp/file: Read-only"],
    );

    let out = d.sh(
        &["--user", "65534:65534"],
        "id -u; id -g; touch /root/x 2>&1; true",
    );
    c.output("--user", &out, &["65534\n65534\n", "Permission denied"]);

    let out = d.sh(
        &["--device", "/dev/zero:/dev/myzero"],
        "stat -c '%F %t:%T' /dev/myzero; head -c 3 /dev/myzero | od -An -c",
    );
    c.output(
        "--device",
        &out,
        &["character special file 1:5", "\\0  \\0  \\0"],
    );

    let out = d.sh(
        &["--tmpfs", "/scratch:size=1m,mode=0750"],
        "grep ' /scratch ' /proc/mounts; stat -c 'mode=%a' /scratch; \
         echo x > /scratch/f && cat /scratch/f",
    );
    c.output(
        "--tmpfs",
        &out,
        &["tmpfs /scratch tmpfs rw", "size=1024k", "mode=750\nx\n"],
    );

    let out = d.sh(
        &["-v", &rw, "-v", &ro],
        "cat /vol/from-host; echo from-container > /vol/made; touch /rovol/x 2>&1; echo done",
    );
    c.output(
        "-v",
        &out,
        &["host data", "/rovol/x: Read-only file system"],
    );
    c.check(
        std::fs::read_to_string(vol.join("made")).is_ok_and(|s| s == "from-container\n"),
        || "-v: the container's file did not reach the host".to_owned(),
    );

    let out = d.sh(&["--ulimit", "nofile=512:1024"], "ulimit -Sn; ulimit -Hn");
    c.output("--ulimit", &out, &["512\n1024\n"]);

    let out = d.sh(
        &[
            "--sysctl",
            "net.ipv4.ip_forward=1",
            "--sysctl",
            "kernel.shmmax=123456789",
        ],
        "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmax",
    );
    c.output("--sysctl", &out, &["1\n123456789\n"]);

    c.finish();
    d.remove_all_and_assert_clean();
}

#[test]
fn exec_with_and_without_a_terminal() {
    let Some(d) = Docker::start("exec") else {
        return;
    };
    d.detached("x1", &[], TERMINABLE);
    let out = d.exec(&["x1", "sh", "-c", "echo in-exec; exit 4"]);
    assert_eq!(out.code, Some(4), "{out}");
    assert_eq!(out.out(), "in-exec", "{out}");

    let out = d
        .exec(&[
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

    let out = e2e::rerun_if_output_lost(
        |_| {
            let mut cmd = d.docker();
            cmd.args(["exec", "-it", "x1", "sh", "-c", e2e::TTY_PROBE]);
            d.sc.run_in_pty(&mut cmd, 22, 66)
        },
        |o| o.stdout.contains("size="),
    );
    assert_eq!(out.code, Some(0), "{out}");
    assert!(out.stdout.contains("/dev/pts/"), "{out}");
    assert!(out.stdout.contains("stdin-is-a-tty"), "{out}");
    assert!(out.stdout.contains("size=22 66"), "{out}");

    let out = d.cli(&["exec", "x1", "/nonexistent"]);
    assert!(matches!(out.code, Some(126 | 127)), "{out}");
    assert!(
        out.stdout.contains("/nonexistent") || out.stderr.contains("/nonexistent"),
        "the runtime's error does not reach docker: {out}"
    );
    d.remove_all_and_assert_clean();
}

#[test]
fn exec_with_a_missing_cwd_fails() {
    let Some(d) = Docker::start("execcwd") else {
        return;
    };
    let id = d.detached("w1", &[], TERMINABLE);
    // runc refuses a working directory that does not exist for exec (it creates one only for
    // the container's first process): the exec fails and the container is left unchanged.
    let out = d.cli(&["exec", "-w", "/missing-dir", "w1", "pwd"]);
    assert_eq!(
        out.code,
        Some(126),
        "exec with a missing cwd did not fail: {out}"
    );
    // docker exec prints the runtime's error on stdout.
    let said = format!("{}{}", out.stdout, out.stderr);
    assert!(
        said.contains("/missing-dir") && said.contains("no such file or directory"),
        "{out}"
    );
    let made =
        d.sc.path("data/overlay2")
            .read_dir()
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .any(|e| e.path().join("diff/missing-dir").exists())
            })
            .unwrap_or(false);
    assert!(!made, "exec created the missing cwd in container {id}");
    d.remove_all_and_assert_clean();
}

#[test]
fn run_with_a_terminal() {
    let Some(d) = Docker::start("tty") else {
        return;
    };
    let script = format!("{}; exit 5", e2e::TTY_PROBE);
    let out = e2e::rerun_if_output_lost(
        |_| {
            let mut cmd = d.run_cmd(&["--rm", "-it"], &["sh", "-c", &script]);
            d.sc.run_in_pty(&mut cmd, 24, 88)
        },
        |o| o.stdout.contains("size="),
    );
    assert_eq!(out.code, Some(5), "{out}");
    assert!(out.stdout.contains("/dev/pts/0"), "{out}");
    assert!(out.stdout.contains("stdin-is-a-tty"), "{out}");
    assert!(out.stdout.contains("size=24 88"), "{out}");
    d.remove_all_and_assert_clean();
}

#[test]
fn pause_and_unpause() {
    let Some(d) = Docker::start("pause") else {
        return;
    };
    let id = d.detached("p1", &[], TERMINABLE);
    let freezer = e2e::cgroup_file(&d.cgroup(&id), "freezer", "freezer.state", "cgroup.freeze");
    let (frozen, thawed) = if e2e::cgroup_v2_only() {
        ("1", "0")
    } else {
        ("FROZEN", "THAWED")
    };
    d.cli(&["pause", "p1"]).ok();
    d.wait_status("p1", "paused");
    assert_eq!(e2e::read_cgroup(&freezer), frozen);
    d.cli(&["unpause", "p1"]).ok();
    d.wait_status("p1", "running");
    assert_eq!(e2e::read_cgroup(&freezer), thawed);
    d.cli(&["stop", "p1"]).ok();
    d.remove_all_and_assert_clean();
}

#[test]
fn update_changes_the_limits() {
    let Some(d) = Docker::start("update") else {
        return;
    };
    let id = d.detached("u1", &["--memory", "64m", "--pids-limit", "50"], TERMINABLE);
    let cg = d.cgroup(&id);
    d.cli(&[
        "update",
        "--memory",
        "32m",
        "--memory-swap",
        "64m",
        "--cpus",
        "0.25",
        "--pids-limit",
        "20",
        "u1",
    ])
    .ok();
    let mut c = Checks::default();
    let v2 = e2e::cgroup_v2_only();
    let want = [
        (
            e2e::cgroup_file(&cg, "memory", "memory.limit_in_bytes", "memory.max"),
            "33554432",
        ),
        (
            e2e::cgroup_file(
                &cg,
                "memory",
                "memory.memsw.limit_in_bytes",
                "memory.swap.max",
            ),
            // v2 counts swap alone: 64m of memory+swap with 32m of memory is 32m of swap.
            if v2 { "33554432" } else { "67108864" },
        ),
        (
            e2e::cgroup_file(&cg, "cpu", "cpu.cfs_quota_us", "cpu.max"),
            if v2 { "25000 100000" } else { "25000" },
        ),
        (e2e::cgroup_file(&cg, "pids", "pids.max", "pids.max"), "20"),
    ];
    for (file, want) in &want {
        let got = e2e::read_cgroup(file);
        c.check(got == *want, || {
            format!("{}: {got}, not {want}", file.display())
        });
    }
    let mem = d.inspect("u1", "{{.HostConfig.Memory}}");
    c.check(mem == "33554432", || {
        format!("docker inspect shows memory {mem}")
    });
    c.finish();
    d.remove_all_and_assert_clean();
}

#[test]
fn stop_sends_sigterm_then_sigkill() {
    let Some(d) = Docker::start("stop") else {
        return;
    };
    d.detached("s1", &[], TERMINABLE);
    d.cli(&["stop", "--time", "30", "s1"]).ok();
    assert_eq!(d.inspect("s1", "{{.State.ExitCode}}"), "0");
    let logs = d.cli(&["logs", "s1"]).ok();
    assert_eq!(logs.out(), "started\ngot-term", "{logs}");

    // A process that ignores SIGTERM gets SIGKILL when the grace period ends.
    d.detached(
        "s2",
        &[],
        "trap '' TERM; echo started; while :; do sleep 0.1; done",
    );
    d.cli(&["stop", "--time", "1", "s2"]).ok();
    assert_eq!(d.inspect("s2", "{{.State.ExitCode}}"), "137");
    d.remove_all_and_assert_clean();
}

#[test]
fn logs_stats_and_top() {
    let Some(d) = Docker::start("logs") else {
        return;
    };
    let out = d.run(
        &["--name", "o1"],
        &["sh", "-c", "echo to-stdout; echo to-stderr >&2; exit 2"],
    );
    assert_eq!(out.code, Some(2), "{out}");
    let logs = d.cli(&["logs", "o1"]).ok();
    assert_eq!(logs.stdout, "to-stdout\n", "{logs}");
    assert_eq!(logs.stderr, "to-stderr\n", "{logs}");

    d.detached(
        "o2",
        &["--memory", "64m"],
        "sleep 1000 & trap 'exit 0' TERM; while :; do sleep 0.1; done",
    );
    let out = d
        .cli(&["stats", "--no-stream", "--format", "{{json .}}", "o2"])
        .ok();
    let stats: Value = serde_json::from_str(out.out()).unwrap_or_else(|e| panic!("{e}: {out}"));
    let pids: u64 = stats["PIDs"].as_str().unwrap_or("").parse().unwrap_or(0);
    assert!(pids >= 2, "stats shows {pids} processes: {out}");
    let mem = stats["MemUsage"].as_str().unwrap_or("");
    assert!(
        mem.ends_with("/ 64MiB") && !mem.starts_with("0B"),
        "stats memory {mem:?}: {out}"
    );
    // `docker top` asks the shim for the task's pids, which the shim gets from the runtime's
    // `ps --format json`.
    let out = d.cli(&["top", "o2"]).ok();
    assert!(out.stdout.contains("sleep 1000"), "{out}");
    d.remove_all_and_assert_clean();
}

#[test]
fn runtime_errors_reach_docker() {
    let Some(d) = Docker::start("errors") else {
        return;
    };
    let out = d.run(&["--rm"], &["/nonexistent"]);
    assert_eq!(out.code, Some(127), "{out}");
    assert!(
        out.stderr.contains("OCI runtime create failed")
            && out.stderr.contains("/nonexistent")
            && out.stderr.contains("no such file or directory"),
        "the runtime's error is not in docker's message: {out}"
    );
    assert!(
        !out.stderr.contains("unable to retrieve OCI runtime error"),
        "containerd found no error in the runtime's log: {out}"
    );
    d.remove_all_and_assert_clean();
}

#[test]
fn teardown_after_a_failure_leaves_nothing() {
    let seen = Mutex::new(None);
    let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
        let Some(mut d) = Docker::start("teardown") else {
            return;
        };
        *seen.lock().unwrap() = Some((d.sc.dir.clone(), d.sc.tag.clone(), d.daemon.pid()));
        d.detached("f1", &[], TERMINABLE);
        d.detached("f2", &[], TERMINABLE);
        d.cli(&["pause", "f2"]).ok();
        d.wait_status("f2", "paused");
        // The harshest case: the daemon dies and leaves its shims, tasks and mounts behind.
        d.daemon.crash();
        panic!("a deliberate failure, with a running and a paused container, and dockerd dead");
    }));
    let Some((dir, tag, pid)) = seen.into_inner().unwrap() else {
        return;
    };
    assert!(result.is_err(), "the test body did not fail");
    e2e::assert_torn_down(&dir, &tag, &[pid]);
}
