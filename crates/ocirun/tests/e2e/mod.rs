//! Shared harness of the end-to-end suites (`e2e_containerd`, `e2e_docker`, `e2e_podman`): the
//! runtime under test, the check that a suite can run, a private scratch directory that is torn
//! down even when a test fails (processes killed by pid, mounts unmounted, cgroups removed,
//! files deleted), daemons stopped by pid, commands run with a deadline, a pseudo-terminal for
//! the clients' `-t` modes, and a busybox rootfs to make images from.
//!
//! The suites need root and Debian's packages (`.ci/e2e-deps` installs them). A suite that
//! cannot run fails with the reason, unless `OCIRUN_E2E=skip` is set outside CI.
#![allow(dead_code)]

mod host;
mod pty;

pub use host::*;

use std::fmt;
use std::fs::File;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// `OCIRUN_E2E=skip` skips the suites (honoured only outside CI).
pub const SKIP_VAR: &str = "OCIRUN_E2E";

/// The deadline of one client command, daemon start, or wait for a state.
pub const TIMEOUT: Duration = Duration::from_secs(90);

/// PATH given to the daemons and clients: Debian's binaries, not anything in /usr/local.
pub const SYSTEM_PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";

/// The runtime under test: `OCIRUN_BIN`, or the `ocirun` cargo built for this test run.
pub fn runtime_bin() -> PathBuf {
    let p = std::env::var_os("OCIRUN_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_ocirun")));
    std::fs::canonicalize(&p).unwrap_or(p)
}

/// The runtime's file name (`ocirun`, `runc`, ...).
pub fn runtime_name() -> String {
    runtime_bin()
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Checks that suite `suite` can run: root, the runtime, and every path in `tools`. Returns
/// false when the suite should be skipped (only with `OCIRUN_E2E=skip`, never when `CI` is set);
/// otherwise a missing prerequisite fails the test with the reason.
pub fn ready(suite: &str, tools: &[&str]) -> bool {
    let in_ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false");
    let skip = std::env::var(SKIP_VAR).is_ok_and(|v| v == "skip");
    if skip && !in_ci {
        eprintln!("e2e {suite}: SKIPPED because {SKIP_VAR}=skip");
        return false;
    }
    let mut missing = Vec::new();
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        missing.push("root (the daemons and the runtime need it)".to_owned());
    }
    let bin = runtime_bin();
    if !bin.is_file() {
        missing.push(format!("the runtime {} (OCIRUN_BIN)", bin.display()));
    }
    for t in tools {
        if !Path::new(t).exists() {
            missing.push((*t).to_owned());
        }
    }
    if missing.is_empty() {
        eprintln!(
            "e2e {suite}: runtime {} ({})",
            bin.display(),
            runtime_version(&bin)
        );
        return true;
    }
    let why = if skip {
        format!("{SKIP_VAR}=skip is not honoured when CI is set")
    } else {
        format!("set {SKIP_VAR}=skip to skip these suites outside CI")
    };
    panic!(
        "e2e {suite} cannot run, missing: {}. Install the packages with `.ci/e2e-deps` (as root); {why}.",
        missing.join(", ")
    );
}

fn runtime_version(bin: &Path) -> String {
    Command::new(bin)
        .arg("--version")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or("")
                .to_owned()
        })
        .unwrap_or_default()
}

/// What a finished command printed and how it ended.
pub struct Output {
    pub cmd: String,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// Panics, showing everything, unless the command succeeded.
    #[track_caller]
    pub fn ok(self) -> Output {
        assert!(self.success(), "{self}");
        self
    }

    /// Panics unless the command failed.
    #[track_caller]
    pub fn failed(self) -> Output {
        assert!(!self.success(), "expected a failure: {self}");
        self
    }

    /// stdout, trimmed.
    pub fn out(&self) -> &str {
        self.stdout.trim()
    }
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` exited with {:?}\n--- stdout:\n{}\n--- stderr:\n{}",
            self.cmd, self.code, self.stdout, self.stderr
        )
    }
}

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

fn exit_code(status: ExitStatus) -> Option<i32> {
    use std::os::unix::process::ExitStatusExt;
    status.code().or_else(|| status.signal().map(|s| 128 + s))
}

/// Waits for `child` until `timeout`; kills it (by its pid) when the deadline passes.
fn wait_child(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(st)) => return Some(st),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
}

/// Polls `probe` until it gives a value; panics with `what` after `timeout`.
#[track_caller]
pub fn wait_for<T>(what: &str, timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs `attempt` (given the attempt number, from 0) until `complete` accepts what it printed,
/// at most 3 times. The clients copy a process's output through fifos and pipes and now and
/// then lose it (all of it, or its end) although the process ran and exited as it should:
/// seen here with runc 1.1.5 as the runtime too (`ctr task exec` printed nothing, status 0,
/// about 1 run in 40 under load), a known class of client races. A lost output is retried,
/// loudly; what the runtime controls (that the process ran, its exit status) is still asserted
/// by the caller on the last run.
pub fn rerun_if_output_lost(
    mut attempt: impl FnMut(usize) -> Output,
    complete: impl Fn(&Output) -> bool,
) -> Output {
    let mut out = attempt(0);
    for n in 1..3 {
        if complete(&out) {
            break;
        }
        eprintln!("e2e: WARNING: the client lost output (a client race); running again: {out}");
        out = attempt(n);
    }
    out
}

/// Collects failed checks so that one run reports all of them.
#[derive(Default)]
pub struct Checks {
    failures: Vec<String>,
}

impl Checks {
    pub fn check(&mut self, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            self.failures.push(what());
        }
    }

    /// `out` succeeded and its stdout contains each of `wanted`.
    pub fn output(&mut self, name: &str, out: &Output, wanted: &[&str]) {
        if !out.success() {
            self.failures.push(format!("{name}: {out}"));
            return;
        }
        for w in wanted {
            if !out.stdout.contains(w) {
                self.failures
                    .push(format!("{name}: stdout lacks {w:?}\n{out}"));
            }
        }
    }

    #[track_caller]
    pub fn finish(self) {
        assert!(
            self.failures.is_empty(),
            "{} check(s) failed:\n\n{}",
            self.failures.len(),
            self.failures.join("\n\n")
        );
    }
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A private directory for one test, and the tag naming everything the test makes outside it
/// (cgroup parents, containerd namespaces). Dropping it undoes everything: processes whose
/// command line names the directory and processes in the tag's cgroups are killed, mounts
/// under the directory unmounted, the tag's cgroups removed, the directory deleted.
pub struct Scratch {
    pub dir: PathBuf,
    pub tag: String,
}

impl Scratch {
    pub fn new(suite: &str, test: &str) -> Scratch {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let tag = format!("ocirun-e2e-{suite}-{}-{n}", std::process::id());
        let dir = std::env::temp_dir().join(format!("{tag}-{test}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the scratch directory");
        eprintln!("e2e: scratch {} (tag {tag})", dir.display());
        Scratch { dir, tag }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    /// Runs `cmd` to completion (stdin from /dev/null) with the default deadline.
    pub fn run(&self, cmd: &mut Command) -> Output {
        self.run_with(cmd, None, TIMEOUT)
    }

    /// Runs `cmd` with stdin from `stdin` (or /dev/null), killing it after `timeout`; panics
    /// when it cannot start or times out.
    pub fn run_with(&self, cmd: &mut Command, stdin: Option<File>, timeout: Duration) -> Output {
        match self.try_run(cmd, stdin, timeout) {
            Ok(out) => out,
            Err(e) => panic!("{e}"),
        }
    }

    /// Like `run_with`, for teardown: reports failure to start or a timeout as an error.
    /// stdout and stderr go through files: a detached container or daemon may inherit them, and
    /// a pipe would then only reach end-of-file when that process exits.
    pub fn try_run(
        &self,
        cmd: &mut Command,
        stdin: Option<File>,
        timeout: Duration,
    ) -> Result<Output, String> {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let out_path = self.dir.join(format!(".out.{n}"));
        let err_path = self.dir.join(format!(".err.{n}"));
        let desc = describe(cmd);
        eprintln!("e2e: $ {desc}");
        let files = File::create(&out_path).and_then(|o| Ok((o, File::create(&err_path)?)));
        let (o, e) = files.map_err(|e| format!("cannot make output files for `{desc}`: {e}"))?;
        cmd.stdin(stdin.map(Stdio::from).unwrap_or_else(Stdio::null))
            .stdout(o)
            .stderr(e);
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start `{desc}`: {e}"))?;
        let status = wait_child(&mut child, timeout);
        let stdout =
            String::from_utf8_lossy(&std::fs::read(&out_path).unwrap_or_default()).into_owned();
        let stderr =
            String::from_utf8_lossy(&std::fs::read(&err_path).unwrap_or_default()).into_owned();
        let _ = std::fs::remove_file(&out_path);
        let _ = std::fs::remove_file(&err_path);
        let out = Output {
            cmd: desc,
            code: status.and_then(exit_code),
            stdout,
            stderr,
        };
        match status {
            Some(_) => Ok(out),
            None => Err(format!("timed out after {timeout:?}, killed: {out}")),
        }
    }

    /// Runs `cmd` for teardown: never panics, gives up after 30 s.
    pub fn cleanup_run(&self, cmd: &mut Command) -> Option<Output> {
        match self.try_run(cmd, None, Duration::from_secs(30)) {
            Ok(out) => Some(out),
            Err(e) => {
                eprintln!("e2e: teardown: {e}");
                None
            }
        }
    }

    /// Tears everything down; idempotent. Never panics.
    fn teardown(&self) {
        host::teardown(&self.dir, &self.tag);
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        self.teardown();
    }
}

/// A daemon this test started; dropping it stops it by its pid: SIGTERM, then SIGKILL.
pub struct Daemon {
    name: String,
    child: Child,
    pub log: PathBuf,
}

impl Daemon {
    /// Starts `cmd` with its output in `log`.
    pub fn spawn(name: &str, cmd: &mut Command, log: PathBuf) -> Daemon {
        eprintln!("e2e: starting {name}: {}", describe(cmd));
        let f = File::create(&log).expect("daemon log");
        // Temporary files of the daemon (containerd writes a goroutine dump to $TMPDIR on
        // SIGUSR1) go to the test's scratch directory, which its teardown removes.
        if let Some(scratch) = log.parent() {
            cmd.env("TMPDIR", scratch);
        }
        let child = cmd
            .env("PATH", SYSTEM_PATH)
            .stdin(Stdio::null())
            .stdout(f.try_clone().expect("dup log"))
            .stderr(f)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Daemon {
            name: name.to_owned(),
            child,
            log,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the daemon with SIGKILL (by its pid) and reaps it: a crash, leaving behind
    /// whatever it started.
    pub fn crash(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Panics with the log's end if the daemon has exited.
    #[track_caller]
    pub fn assert_running(&mut self) {
        if let Ok(Some(st)) = self.child.try_wait() {
            panic!("{} exited ({st}):\n{}", self.name, self.log_tail(40));
        }
    }

    /// The last `n` lines of the daemon's log.
    pub fn log_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Lines of the daemon's log containing `needle`.
    pub fn log_grep(&self, needle: &str) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(needle))
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let pid = self.child.id() as i32;
            // SAFETY: kill has no memory effects; the pid is our own child, not yet reaped.
            unsafe { libc::kill(pid, libc::SIGTERM) };
            if wait_child(&mut self.child, Duration::from_secs(30)).is_none() {
                eprintln!("e2e: {} ignored SIGTERM; killed", self.name);
            }
        }
    }
}

/// Builds a busybox rootfs at `rootfs`: the static binary, one link per applet, and the usual
/// directories and files.
pub fn make_rootfs(rootfs: &Path) {
    let busybox = Path::new(BUSYBOX);
    let bin = rootfs.join("bin");
    std::fs::create_dir_all(&bin).expect("rootfs/bin");
    std::fs::copy(busybox, bin.join("busybox")).expect("copy busybox");
    let list = Command::new(busybox)
        .arg("--list")
        .output()
        .expect("busybox --list");
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" {
            symlink("busybox", bin.join(applet)).expect("applet link");
        }
    }
    for d in ["proc", "sys", "dev", "etc", "tmp", "root", "var", "run"] {
        std::fs::create_dir_all(rootfs.join(d)).expect("rootfs dir");
    }
    std::fs::write(
        rootfs.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )
    .expect("passwd");
    std::fs::write(rootfs.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").expect("group");
}

/// A script for a container with a terminal: prints the tty's name, whether stdin is a tty, and
/// `size=ROWS COLS`. Clients set the window size after the process starts, so it waits (bounded)
/// for a size to arrive.
pub const TTY_PROBE: &str = "tty; [ -t 0 ] && echo stdin-is-a-tty; i=0; while [ $i -lt 200 ]; do \
    s=$(stty size 2>/dev/null); [ -n \"$s\" ] && [ \"$s\" != '0 0' ] && break; sleep 0.05; \
    i=$((i+1)); done; echo \"size=$s\"";

/// Debian's busybox-static.
pub const BUSYBOX: &str = "/bin/busybox";
/// GNU tar.
pub const TAR: &str = "/bin/tar";

/// A tar archive of a busybox rootfs, made under `sc`.
pub fn rootfs_tar(sc: &Scratch) -> PathBuf {
    let rootfs = sc.path("image-rootfs");
    make_rootfs(&rootfs);
    let tar = sc.path("image-rootfs.tar");
    sc.run(
        Command::new(TAR)
            .arg("-C")
            .arg(&rootfs)
            .arg("-cf")
            .arg(&tar)
            .arg("."),
    )
    .ok();
    let _ = std::fs::remove_dir_all(&rootfs);
    tar
}
