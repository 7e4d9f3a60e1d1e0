//! One attack's world: a [`Sandbox`] plus a host directory outside the rootfs that the attack
//! aims at (`outside`, holding a marker file), ways to prove that nothing outside the rootfs was
//! created, changed or mounted, and a runner for `ocirun` with extra inherited fds or
//! supplementary groups (things a careless caller might hand the runtime).

use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{self, Sandbox};

/// How long one runtime command may take before the test gives up on it.
const RUNTIME_LIMIT: Duration = Duration::from_secs(300);

pub const MARKER_TEXT: &str = "host marker: must never change\n";

pub struct World {
    pub sb: Sandbox,
    /// A host directory outside the rootfs: every attack tries to reach it.
    pub outside: PathBuf,
    /// `outside/marker`, a host file every redirection attack tries to write.
    pub marker: PathBuf,
    runs: std::cell::Cell<usize>,
}

impl World {
    pub fn new(name: &str) -> World {
        let sb = Sandbox::new(name);
        let outside = sb.dir.join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        let marker = outside.join("marker");
        std::fs::write(&marker, MARKER_TEXT).unwrap();
        World {
            sb,
            outside,
            marker,
            runs: std::cell::Cell::new(0),
        }
    }

    pub fn rootfs(&self) -> PathBuf {
        self.sb.bundle.join("rootfs")
    }

    /// `path` (absolute, as the container sees it) inside the rootfs on the host.
    pub fn in_rootfs(&self, path: &str) -> PathBuf {
        self.rootfs().join(path.trim_start_matches('/'))
    }

    /// The outside directory's path without its leading `/`: where an absolute symlink to it
    /// lands when resolved inside the rootfs.
    pub fn outside_rel(&self) -> String {
        self.outside
            .to_str()
            .unwrap()
            .trim_start_matches('/')
            .to_owned()
    }

    /// A relative symlink target that climbs far above the rootfs and back down to `outside`.
    pub fn outside_via_dotdot(&self) -> String {
        format!("{}{}", "../".repeat(24), self.outside_rel())
    }

    /// A config running `sh -c script`, with a writable root and the default template otherwise.
    pub fn config_sh(&self, script: &str) -> Value {
        let mut cfg = self.sb.config(&["sh", "-c", script]);
        cfg["root"]["readonly"] = json!(false);
        cfg
    }

    /// Everything under `outside`: relative path -> type, mode and content.
    pub fn snapshot(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        snapshot_into(&self.outside, &self.outside, &mut out);
        out
    }

    /// Asserts that `outside` looks exactly as it did (`before`) and has no mount on it.
    pub fn assert_outside_untouched(&self, before: &BTreeMap<String, String>, what: &str) {
        let now = self.snapshot();
        assert_eq!(
            &now, before,
            "{what}: the host directory outside the rootfs was changed"
        );
        assert_eq!(
            std::fs::read_to_string(&self.marker).unwrap(),
            MARKER_TEXT,
            "{what}: the host marker file was written"
        );
        let mounts = host_mounts_under(&self.outside);
        assert!(
            mounts.is_empty(),
            "{what}: host paths outside the rootfs got mounts: {mounts:?}"
        );
    }

    /// `ocirun --root <root> ARGS` through `cmd` (another binary, extra fds...), from the
    /// bundle directory, stdio through files. Returns (status, stdout, stderr).
    pub fn output(&self, mut cmd: Command) -> (i32, String, String) {
        let n = self.runs.get();
        self.runs.set(n + 1);
        let out_path = self.sb.dir.join(format!("sec-stdout.{n}"));
        let err_path = self.sb.dir.join(format!("sec-stderr.{n}"));
        let mut child = cmd
            .current_dir(&self.sb.bundle)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out_path).unwrap())
            .stderr(std::fs::File::create(&err_path).unwrap())
            .spawn()
            .expect("spawn ocirun");
        // A hang guard only: a runtime stuck on a broken attack must not hang the suite.
        let start = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if start.elapsed() > RUNTIME_LIMIT {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{cmd:?} did not finish within {RUNTIME_LIMIT:?}; stderr: {}",
                    std::fs::read_to_string(&err_path).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let out = Output {
            status,
            stdout: std::fs::read(&out_path).unwrap_or_default(),
            stderr: std::fs::read(&err_path).unwrap_or_default(),
        };
        let _ = std::fs::remove_file(out_path);
        let _ = std::fs::remove_file(err_path);
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// `ocirun --root <root> ARGS` with the binary under test.
    pub fn cmd(&self, args: &[&str]) -> Command {
        runtime_cmd(&support::ocirun_bin(), &self.sb.root, args)
    }

    /// Writes `cfg` and runs it in the foreground as container `id`.
    pub fn run(&self, cfg: &Value, id: &str) -> (i32, String, String) {
        self.sb.write_config(cfg);
        self.output(self.cmd(&["run", "--bundle", self.sb.bundle.to_str().unwrap(), id]))
    }

    /// Writes a process JSON (for `exec --process`) and returns its path.
    pub fn process_file(&self, name: &str, process: &Value) -> PathBuf {
        let path = self.sb.dir.join(name);
        std::fs::write(&path, serde_json::to_vec_pretty(process).unwrap()).unwrap();
        path
    }
}

impl Drop for World {
    fn drop(&mut self) {
        // A failed attack could have left a mount under our directory in the host's namespace;
        // detach it before the sandbox removes the directory, so removal never crosses into it.
        for mp in host_mounts_under(&self.sb.dir) {
            if let Ok(c) = std::ffi::CString::new(mp) {
                // SAFETY: `c` is a NUL-terminated path; MNT_DETACH has no memory effects.
                unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
            }
        }
    }
}

fn snapshot_into(base: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.filter_map(|e| e.ok()) {
        let p = e.path();
        let rel = p.strip_prefix(base).unwrap().display().to_string();
        let Ok(meta) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        let ft = meta.file_type();
        let mode = meta.permissions().mode() & 0o7777;
        let desc = if ft.is_symlink() {
            format!("symlink -> {:?}", std::fs::read_link(&p).ok())
        } else if ft.is_dir() {
            snapshot_into(base, &p, out);
            format!("dir {mode:o}")
        } else if ft.is_file() {
            let content = std::fs::read(&p).unwrap_or_default();
            format!(
                "file {mode:o} {:?}",
                String::from_utf8_lossy(&content[..content.len().min(200)])
            )
        } else if ft.is_char_device() || ft.is_block_device() {
            format!("device {mode:o} rdev {:x}", meta.rdev())
        } else {
            format!("other {mode:o}")
        };
        out.insert(rel, desc);
    }
}

/// Mount points of the host (this process's mount namespace) at or under `dir`.
pub fn host_mounts_under(dir: &Path) -> Vec<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let dir = dir.to_str().unwrap();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape)
        .filter(|mp| mp == dir || mp.starts_with(&format!("{dir}/")))
        .collect()
}

/// Undoes mountinfo's octal escapes.
pub fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| c.is_ascii_digit()) {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One line of a mountinfo: the mount point and the filesystem after the separator.
#[derive(Debug)]
pub struct MountLine {
    /// The path inside the filesystem that is mounted (field 4).
    pub root: String,
    pub mount_point: String,
    pub fstype: String,
    pub super_options: String,
}

pub fn parse_mountinfo(text: &str) -> Vec<MountLine> {
    text.lines()
        .filter_map(|l| {
            let l = l.trim_end_matches('\r');
            let (left, right) = l.split_once(" - ")?;
            let root = unescape(left.split(' ').nth(3)?);
            let mount_point = unescape(left.split(' ').nth(4)?);
            let mut r = right.split(' ');
            let fstype = r.next()?.to_owned();
            let _source = r.next()?;
            let super_options = r.next().unwrap_or("").to_owned();
            Some(MountLine {
                root,
                mount_point,
                fstype,
                super_options,
            })
        })
        .collect()
}

/// `runtime --root <root> ARGS`.
pub fn runtime_cmd(runtime: &Path, root: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(runtime);
    c.arg("--root").arg(root).args(args);
    c
}

/// Makes `cmd` start with `fd` open (and inheritable) as fd number `target`: a host fd the
/// caller leaks to the runtime.
pub fn leak_fd(cmd: &mut Command, fd: &OwnedFd, target: i32) {
    let raw = fd.as_raw_fd();
    // SAFETY: the closure runs in the forked child before exec and only calls dup2, which is
    // async-signal-safe; `raw` stays open in the parent until the child has exec'd (the parent
    // keeps `fd` alive across the spawn).
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(raw, target) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Makes `cmd` start with exactly these supplementary groups.
pub fn with_groups(cmd: &mut Command, groups: &'static [libc::gid_t]) {
    // SAFETY: the closure runs in the forked child before exec and only makes the raw setgroups
    // system call (not the C library's, which would coordinate threads the child no longer has).
    unsafe {
        cmd.pre_exec(move || {
            if libc::syscall(libc::SYS_setgroups, groups.len(), groups.as_ptr()) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Opens a directory (O_PATH is not enough for a later fchdir through /proc/self/fd).
pub fn open_dir(path: &Path) -> OwnedFd {
    OwnedFd::from(std::fs::File::open(path).unwrap())
}

/// Waits until `path` exists (written by the container), at most `limit`. This bounds a wait
/// for the other side; no result depends on how long anything took.
pub fn wait_for_file(path: &Path, limit: Duration, what: &str) -> String {
    let start = Instant::now();
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            if text.ends_with('\n') {
                return text;
            }
        }
        assert!(
            start.elapsed() < limit,
            "gave up after {limit:?} waiting for {what} ({})",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Capabilities of the default template plus `extra` in every set.
pub fn add_caps(cfg: &mut Value, extra: &[&str]) {
    let caps = &mut cfg["process"]["capabilities"];
    for set in ["bounding", "effective", "permitted", "ambient"] {
        let list = caps[set].as_array_mut().unwrap();
        for c in extra {
            if !list.iter().any(|v| v == c) {
                list.push(json!(c));
            }
        }
    }
}

/// Drops the config's mounts whose destination starts with `prefix`.
pub fn drop_mounts(cfg: &mut Value, prefix: &str) {
    cfg["mounts"]
        .as_array_mut()
        .unwrap()
        .retain(|m| !m["destination"].as_str().unwrap().starts_with(prefix));
}

pub fn add_mount(cfg: &mut Value, m: Value) {
    cfg["mounts"].as_array_mut().unwrap().push(m);
}

/// `busybox md5sum PATH`.
pub fn md5(path: &Path) -> String {
    let out = Command::new(support::busybox())
        .arg("md5sum")
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success(), "md5sum {}", path.display());
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

/// `ocirun state ID` as JSON.
pub fn state(w: &World, id: &str) -> Value {
    let (status, out, err) = w.output(w.cmd(&["state", id]));
    assert_eq!(status, 0, "state {id}: {err}");
    serde_json::from_str(&out).expect("state prints JSON")
}

/// The fd numbers in an `ls -l /proc/N/fd` listing.
pub fn fds_in_listing(listing: &str) -> Vec<u32> {
    let mut fds: Vec<u32> = listing
        .lines()
        .filter_map(|l| l.split_once(" -> "))
        .filter_map(|(left, _)| left.split_whitespace().last()?.parse().ok())
        .collect();
    fds.sort();
    fds
}
