//! Helpers for tests on real cgroups: a guard that always removes the test's cgroup (also when
//! the test panics), children that join the cgroup before doing anything, and loud skips.

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use cgroups::{Layout, Manager};

/// Prints "SKIP: ..." straight to fd 2, past the test harness's output capture.
pub fn skip(test: &str, reason: &str) {
    let line = format!("SKIP {test}: {reason}\n");
    // SAFETY: writes a valid buffer to fd 2.
    unsafe { libc::write(2, line.as_ptr() as *const libc::c_void, line.len()) };
}

pub fn layout() -> Layout {
    cgroups::detect_layout().unwrap_or_else(|e| panic!("detect layout: {e}"))
}

/// Absolute cgroups path unique to this test process and test: "/ocirun-test-PID-N-NAME/c".
pub fn unique_path(name: &str) -> (String, String) {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let top = format!("/ocirun-test-{}-{n}-{name}", std::process::id());
    (format!("{top}/c"), top)
}

/// A child process that waits for a line on stdin (so it can be moved into the cgroup first)
/// and then runs `script` with sh.
pub struct Waiting {
    pub child: Child,
    stdin: Option<ChildStdin>,
}

impl Waiting {
    pub fn spawn(script: &str) -> Self {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(format!("read _go; {script}"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn sh: {e}"));
        let stdin = child.stdin.take();
        Waiting { child, stdin }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Lets the script run.
    pub fn go(&mut self) {
        if let Some(mut s) = self.stdin.take() {
            let _ = s.write_all(b"go\n");
        }
    }

    /// Lets the script run and returns the first line it prints (the script is then still
    /// running; stdin stays open for a later `read`).
    pub fn go_and_read_line(&mut self) -> String {
        if let Some(s) = self.stdin.as_mut() {
            let _ = s.write_all(b"go\n");
        }
        let mut line = String::new();
        if let Some(out) = self.child.stdout.as_mut() {
            let mut byte = [0u8; 1];
            // Byte by byte: a BufReader would swallow output the caller reads later.
            while std::io::Read::read(out, &mut byte).unwrap_or(0) == 1 && byte[0] != b'\n' {
                line.push(byte[0] as char);
            }
        }
        line
    }

    /// Lets the script run and waits for its end: (exit code or -signal, stdout, stderr).
    pub fn finish(mut self) -> (i32, String, String) {
        self.go();
        let child = std::mem::replace(
            &mut self.child,
            Command::new("true")
                .spawn()
                .unwrap_or_else(|e| panic!("{e}")),
        );
        let out = child
            .wait_with_output()
            .unwrap_or_else(|e| panic!("wait: {e}"));
        use std::os::unix::process::ExitStatusExt;
        let code = out
            .status
            .code()
            .unwrap_or_else(|| -out.status.signal().unwrap_or(0));
        (
            code,
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A test cgroup that is destroyed when the guard goes, whatever happened.
pub struct TestCgroup {
    pub m: Manager,
    pub top: Option<String>,
}

impl TestCgroup {
    /// Creates the cgroup "/ocirun-test-.../c".
    pub fn new(name: &str) -> Self {
        let (path, top) = unique_path(name);
        let m = Manager::new(Some(&path), name, false)
            .unwrap_or_else(|e| panic!("manager for {path}: {e}"));
        // The guard exists before create(), so a half-made cgroup is removed too.
        let mut guard = TestCgroup { m, top: Some(top) };
        guard
            .m
            .create()
            .unwrap_or_else(|e| panic!("create {path}: {e}"));
        guard
    }

    /// A file of `controller` in the container's cgroup.
    pub fn file(&self, controller: &str, name: &str) -> PathBuf {
        self.m
            .path_of(controller)
            .unwrap_or_else(|| panic!("no {controller} controller"))
            .join(name)
    }

    pub fn read(&self, controller: &str, name: &str) -> String {
        let p = self.file(controller, name);
        std::fs::read_to_string(&p)
            .unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
            .trim()
            .to_string()
    }

    pub fn has(&self, controller: &str) -> bool {
        self.m.path_of(controller).is_some()
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        if let Err(e) = self.m.destroy() {
            // A test must not hide a leak: make it visible even if the test passed.
            skip("cleanup", &format!("destroy failed: {e}"));
        }
        // The parents `create` made are gone too; check, so a leak fails loudly next time.
        if let Some(top) = &self.top {
            for p in self.m.paths() {
                let mut dir: &Path = p;
                while let Some(parent) = dir.parent() {
                    if parent.ends_with(top.trim_start_matches('/')) {
                        let _ = std::fs::remove_dir(parent);
                    }
                    dir = parent;
                }
            }
        }
    }
}

pub fn in_cgroup(pid: i32, cg: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/cgroup")) else {
        return false;
    };
    let s = cg.to_string_lossy();
    text.lines().any(|l| {
        let path = l.splitn(3, ':').nth(2).unwrap_or("");
        path != "/" && s.ends_with(path)
    })
}
