//! Cases, their verdicts, and the per-case context that owns everything a case
//! makes (bundles, containers, helper processes, mounts) and undoes it.

use crate::bundle::{Bundle, RootfsSource, default_config};
use crate::exec::{Exec, Output, Running, wait_until};
use crate::host::Cgroups;
use crate::report::Report;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Why a case did not pass.
#[derive(Debug)]
pub enum Fail {
    Fail(String),
    Skip(String),
}

impl From<String> for Fail {
    fn from(s: String) -> Fail {
        Fail::Fail(s)
    }
}

impl From<&str> for Fail {
    fn from(s: &str) -> Fail {
        Fail::Fail(s.to_string())
    }
}

impl From<std::io::Error> for Fail {
    fn from(e: std::io::Error) -> Fail {
        Fail::Fail(format!("io: {e}"))
    }
}

pub type R = Result<(), Fail>;

/// Fails the case with a formatted message unless `cond` holds.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err($crate::harness::Fail::Fail(format!($($msg)+)));
        }
    };
}

/// Fails the case unless the two values are equal.
#[macro_export]
macro_rules! ensure_eq {
    ($got:expr, $want:expr, $what:expr) => {
        match (&$got, &$want) {
            (g, w) => {
                if g != w {
                    return Err($crate::harness::Fail::Fail(format!(
                        "{}: got {:?}, want {:?}",
                        $what, g, w
                    )));
                }
            }
        }
    };
}

/// A named case: a spec clause (or a CLI convention) and the function checking it.
pub struct Case {
    pub name: &'static str,
    pub run: fn(&mut Ctx) -> R,
}

/// What every case shares: the runtime under test and the host facts.
pub struct Env {
    pub runtime: PathBuf,
    pub busybox: PathBuf,
    pub rootfs: RootfsSource,
    pub work: PathBuf,
    pub cmd_timeout: Duration,
    pub cgroups: Cgroups,
    /// Namespace inodes of the runner (= the runtime's) by /proc/self/ns name.
    pub host_ns: BTreeMap<String, u64>,
    pub id_prefix: String,
}

/// The per-case context.
pub struct Ctx {
    pub env: Arc<Env>,
    pub dir: PathBuf,
    /// The runtime's `--root` for this case (a fresh, private one).
    pub root: PathBuf,
    ids: Vec<String>,
    helpers: Vec<Running>,
    mounts: Vec<PathBuf>,
    seq: usize,
}

impl Ctx {
    pub fn new(env: Arc<Env>, index: usize) -> std::io::Result<Ctx> {
        let dir = env.work.join(format!("case{index}"));
        let root = dir.join("root");
        std::fs::create_dir_all(&root)?;
        Ok(Ctx {
            env,
            dir,
            root,
            ids: Vec::new(),
            helpers: Vec::new(),
            mounts: Vec::new(),
            seq: 0,
        })
    }

    fn next(&mut self) -> usize {
        self.seq += 1;
        self.seq
    }

    /// A fresh container id, remembered so that it is deleted at the end.
    pub fn new_id(&mut self) -> String {
        let id = format!(
            "{}-{}",
            self.env.id_prefix,
            self.dir
                .file_name()
                .map(|s| s.to_string_lossy())
                .unwrap_or_default()
        );
        let id = format!("{id}-{}", self.next());
        self.ids.push(id.clone());
        id
    }

    /// A fresh bundle with a rootfs and the default config (not yet saved).
    pub fn bundle(&mut self) -> Result<Bundle, Fail> {
        let n = self.next();
        let dir = self.dir.join(format!("bundle{n}"));
        std::fs::create_dir_all(dir.join("rootfs"))?;
        self.env.rootfs.build(&dir.join("rootfs"))?;
        Ok(Bundle {
            dir,
            config: default_config(),
        })
    }

    /// A scratch directory inside the case directory.
    pub fn scratch(&mut self, name: &str) -> Result<PathBuf, Fail> {
        let n = self.next();
        let p = self.dir.join(format!("{name}{n}"));
        std::fs::create_dir_all(&p)?;
        Ok(p)
    }

    fn argv(&self, args: &[&str]) -> Vec<String> {
        let mut v = vec![
            self.env.runtime.display().to_string(),
            "--root".into(),
            self.root.display().to_string(),
        ];
        v.extend(args.iter().map(|s| s.to_string()));
        v
    }

    fn log(&mut self, what: &str) -> PathBuf {
        let n = self.next();
        self.dir.join(format!("cmd{n}-{what}"))
    }

    /// An `Exec` for the runtime with `--root` and the given arguments.
    pub fn exec(&self, args: &[&str]) -> Exec {
        Exec::new(self.argv(args), self.env.cmd_timeout)
    }

    /// Runs the runtime to completion.
    pub fn rt(&mut self, args: &[&str]) -> Output {
        let log = self.log(args.first().copied().unwrap_or("x"));
        self.exec(args).run(&log)
    }

    /// Runs a prepared `Exec` to completion.
    pub fn run_exec(&mut self, e: Exec, what: &str) -> Output {
        let log = self.log(what);
        e.run(&log)
    }

    /// Starts a prepared `Exec` without waiting.
    pub fn spawn_exec(&mut self, e: Exec, what: &str) -> Result<Running, Fail> {
        let log = self.log(what);
        Ok(e.spawn(&log)?)
    }

    /// Runs the runtime and fails the case unless it exits 0.
    pub fn rt_ok(&mut self, args: &[&str]) -> Result<Output, Fail> {
        let out = self.rt(args);
        ensure!(out.success(), "{}", out.describe());
        Ok(out)
    }

    /// Saves the bundle and runs `create --bundle B --pid-file P ID`.
    pub fn create(&mut self, b: &Bundle) -> Result<(String, Output), Fail> {
        b.save()?;
        let id = self.new_id();
        let pid_file = self.dir.join(format!("{id}.pid")).display().to_string();
        let out = self.rt(&[
            "create",
            "--bundle",
            &b.path(),
            "--pid-file",
            &pid_file,
            &id,
        ]);
        ensure!(out.success(), "create: {}", out.describe());
        Ok((id, out))
    }

    /// `state ID` parsed; fails the case if the runtime fails.
    pub fn state(&mut self, id: &str) -> Result<Value, Fail> {
        let out = self.rt_ok(&["state", id])?;
        serde_json::from_str(&out.stdout)
            .map_err(|e| Fail::Fail(format!("state output is not JSON ({e}): {:?}", out.stdout)))
    }

    /// `state ID` status, or None when the runtime says no.
    pub fn status(&mut self, id: &str) -> Option<String> {
        let out = self.rt(&["state", id]);
        if !out.success() {
            return None;
        }
        let v: Value = serde_json::from_str(&out.stdout).ok()?;
        v["status"].as_str().map(String::from)
    }

    /// Waits until the container reports `want`.
    pub fn wait_status(&mut self, id: &str, want: &str) -> R {
        let mut last = None;
        let ok = wait_until(self.env.cmd_timeout, || {
            last = self.status(id);
            last.as_deref() == Some(want)
        });
        ensure!(
            ok,
            "container {id} never became {want:?} (last status {last:?})"
        );
        Ok(())
    }

    /// create + start, waits until stopped, and returns the container's stdout.
    pub fn create_start_wait(&mut self, b: &Bundle) -> Result<(String, String), Fail> {
        let (id, out) = self.create(b)?;
        self.rt_ok(&["start", &id])?;
        self.wait_status(&id, "stopped")?;
        Ok((id, out.stdout_now()))
    }

    /// `run --bundle B ID` in the foreground; returns its output.
    pub fn run(&mut self, b: &Bundle) -> Result<(String, Output), Fail> {
        b.save()?;
        let id = self.new_id();
        let out = self.rt(&["run", "--bundle", &b.path(), &id]);
        Ok((id, out))
    }

    /// Runs the bundle (its process should be the checker) and parses the report.
    pub fn report(&mut self, b: &Bundle) -> Result<Report, Fail> {
        let (_, out) = self.run(b)?;
        ensure!(out.success(), "run: {}", out.describe());
        Report::parse(&out.stdout)
    }

    /// Keeps a helper process to kill at the end.
    pub fn keep_helper(&mut self, r: Running) {
        self.helpers.push(r);
    }

    /// Mounts (source, target, fstype, flags, data) and remembers to unmount.
    pub fn mount(
        &mut self,
        src: &str,
        target: &Path,
        fstype: &str,
        flags: libc::c_ulong,
        data: &str,
    ) -> R {
        let c = |s: &str| std::ffi::CString::new(s).map_err(|e| Fail::Fail(e.to_string()));
        let (s, t, f, d) = (
            c(src)?,
            c(&target.display().to_string())?,
            c(fstype)?,
            c(data)?,
        );
        // SAFETY: all pointers are valid NUL-terminated strings that outlive the call.
        let rc =
            unsafe { libc::mount(s.as_ptr(), t.as_ptr(), f.as_ptr(), flags, d.as_ptr().cast()) };
        ensure!(
            rc == 0,
            "mount {src} on {}: {}",
            target.display(),
            std::io::Error::last_os_error()
        );
        self.mounts.push(target.to_path_buf());
        Ok(())
    }

    /// Deletes the containers, ends helpers, unmounts; returns what was left behind.
    pub fn cleanup(&mut self) -> Vec<String> {
        let mut problems = Vec::new();
        for id in std::mem::take(&mut self.ids) {
            let out = self.rt(&["delete", "--force", &id]);
            if out.timed_out {
                problems.push(format!("delete --force {id} timed out"));
            }
        }
        for mut h in std::mem::take(&mut self.helpers) {
            if !h.finished() {
                // SAFETY: kill(2) on a pid we spawned and have not reaped yet.
                unsafe { libc::kill(h.pid() as i32, libc::SIGKILL) };
            }
            h.wait();
        }
        for m in std::mem::take(&mut self.mounts).into_iter().rev() {
            if let Ok(c) = std::ffi::CString::new(m.display().to_string()) {
                // SAFETY: `c` is a valid NUL-terminated path.
                unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
            }
        }
        if let Ok(entries) = std::fs::read_dir(&self.root) {
            let left: Vec<String> = entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            if !left.is_empty() {
                problems.push(format!("left behind in --root: {left:?}"));
            }
        }
        problems
    }
}

impl Drop for Ctx {
    fn drop(&mut self) {
        self.cleanup();
        if self.mounts.is_empty() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Skips the case with a reason.
pub fn skip<T>(why: impl Into<String>) -> Result<T, Fail> {
    Err(Fail::Skip(why.into()))
}

/// Reads a file from the host, as a trimmed string.
pub fn read_host(p: &Path) -> Result<String, Fail> {
    std::fs::read_to_string(p)
        .map(|s| s.trim().to_string())
        .map_err(|e| Fail::Fail(format!("reading {}: {e}", p.display())))
}
