//! Test support: a private state root, bundle and busybox rootfs per test, the `ocirun` binary
//! under test, and cleanup that runs even when the test fails.
#![allow(dead_code)]

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};

/// The binary under test: `OCIRUN_BIN`, or the one cargo built for this test run.
pub fn ocirun_bin() -> PathBuf {
    std::env::var_os("OCIRUN_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_ocirun")))
}

/// A static busybox for the rootfs (Debian's busybox-static).
pub fn busybox() -> PathBuf {
    let p = std::env::var_os("BUSYBOX")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/bin/busybox"));
    assert!(
        p.exists(),
        "{} is missing: install busybox-static (the README's test command does)",
        p.display()
    );
    p
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// One test's world: `<dir>/root` (state), `<dir>/bundle` (config.json + rootfs).
pub struct Sandbox {
    pub dir: PathBuf,
    pub root: PathBuf,
    pub bundle: PathBuf,
    pub name: String,
}

impl Sandbox {
    pub fn new(name: &str) -> Sandbox {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("ocirun-t-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let root = dir.join("root");
        let bundle = dir.join("bundle");
        std::fs::create_dir_all(&root).unwrap();
        make_rootfs(&bundle.join("rootfs"));
        let sb = Sandbox {
            dir,
            root,
            bundle,
            name: name.to_owned(),
        };
        sb.write_config(&sb.config(&["true"]));
        sb
    }

    /// A container id unique to this test.
    pub fn id(&self, suffix: &str) -> String {
        format!("{}-{suffix}", self.name)
    }

    /// runc's default template, without a terminal, running `args`.
    pub fn config(&self, args: &[&str]) -> Value {
        let mut v: Value =
            serde_json::from_str(include_str!("../../../../fixtures/runc-spec-default.json"))
                .expect("fixture parses");
        v["process"]["terminal"] = json!(false);
        v["process"]["args"] = json!(args);
        v
    }

    pub fn write_config(&self, v: &Value) {
        std::fs::write(
            self.bundle.join("config.json"),
            serde_json::to_vec_pretty(v).unwrap(),
        )
        .unwrap();
    }

    /// `ocirun --root <root> ARGS`, run from the bundle directory.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(ocirun_bin());
        c.arg("--root")
            .arg(&self.root)
            .args(args)
            .current_dir(&self.bundle);
        c.stdin(Stdio::null());
        c
    }

    /// Runs `ocirun ARGS` to completion. stdout and stderr go through files, not pipes: a
    /// container created or run detached keeps the runtime's stdio open, and a pipe would only
    /// reach end-of-file when the container exits.
    pub fn ocirun(&self, args: &[&str]) -> Output {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let out_path = self.dir.join(format!("stdout.{n}"));
        let err_path = self.dir.join(format!("stderr.{n}"));
        let status = self
            .cmd(args)
            .stdout(std::fs::File::create(&out_path).unwrap())
            .stderr(std::fs::File::create(&err_path).unwrap())
            .status()
            .expect("run ocirun");
        let out = Output {
            status,
            stdout: std::fs::read(&out_path).unwrap_or_default(),
            stderr: std::fs::read(&err_path).unwrap_or_default(),
        };
        let _ = std::fs::remove_file(out_path);
        let _ = std::fs::remove_file(err_path);
        out
    }

    /// `run` of the current config; returns (status, stdout, stderr).
    pub fn run(&self, id: &str) -> (i32, String, String) {
        let out = self.ocirun(&["run", "--bundle", self.bundle.to_str().unwrap(), id]);
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Runs `sh -c SCRIPT` in a container with `config` adjusted by `edit`; returns stdout,
    /// asserting success.
    pub fn sh(&self, script: &str, edit: impl FnOnce(&mut Value)) -> String {
        let mut cfg = self.config(&["sh", "-c", script]);
        edit(&mut cfg);
        self.write_config(&cfg);
        let id = self.id(&format!("sh{}", COUNTER.fetch_add(1, Ordering::SeqCst)));
        let (status, out, err) = self.run(&id);
        assert_eq!(status, 0, "container failed: stdout {out:?} stderr {err:?}");
        out
    }

    /// The ids the state root holds.
    pub fn containers(&self) -> Vec<String> {
        let mut ids: Vec<String> = std::fs::read_dir(&self.root)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        ids.sort();
        ids
    }

    /// Asserts nothing of container `id` is left: no state, no cgroup.
    pub fn assert_clean(&self, id: &str) {
        assert!(
            !self.root.join(id).exists(),
            "state directory of {id} left behind"
        );
        let left = cgroup_dirs_named(id);
        assert!(left.is_empty(), "cgroups of {id} left behind: {left:?}");
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        for id in self.containers() {
            let _ = self.ocirun(&["delete", "--force", &id]);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Builds a busybox rootfs: the binary, one symlink per applet, and the usual directories.
pub fn make_rootfs(rootfs: &Path) {
    let bin = rootfs.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy(busybox(), bin.join("busybox")).unwrap();
    let list = Command::new(busybox()).arg("--list").output().unwrap();
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" {
            let _ = symlink("busybox", bin.join(applet));
        }
    }
    for d in ["proc", "sys", "dev", "etc", "tmp", "root"] {
        std::fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    std::fs::write(
        rootfs.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )
    .unwrap();
    std::fs::write(rootfs.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").unwrap();
}

/// Cgroup directories named `id` anywhere under /sys/fs/cgroup (up to a few levels down).
pub fn cgroup_dirs_named(id: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![(PathBuf::from("/sys/fs/cgroup"), 0)];
    while let Some((dir, depth)) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.filter_map(|e| e.ok()) {
            if !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let p = e.path();
            if e.file_name() == id {
                found.push(p.clone());
            }
            if depth < 5 {
                stack.push((p, depth + 1));
            }
        }
    }
    found
}

/// stdout of a command output as a trimmed string.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim().to_owned()
}

/// stderr of a command output as a trimmed string.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).trim().to_owned()
}
