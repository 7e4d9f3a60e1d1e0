//! The host side of a test: cgroups, processes, sockets and mounts, and the teardown that
//! removes what a test left of them.

use std::collections::BTreeSet;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Undoes everything a test made: kills processes whose command line names a path under `dir`
/// and processes in the `tag`'s cgroups (thawed first), removes the sockets of killed shims,
/// unmounts everything under `dir`, removes the tag's cgroups and `dir`. Never panics.
pub fn teardown(dir: &Path, tag: &str) {
    // Paths under the directory, not another test's directory sharing a prefix.
    let under = format!("{}/", dir.display());
    let cgroups = tag_cgroups(tag);
    // Paused containers are frozen, and a frozen process does not die: thaw first.
    for cg in &cgroups {
        let _ = std::fs::write(cg.join("freezer.state"), "THAWED");
        let _ = std::fs::write(cg.join("cgroup.freeze"), "0");
    }
    let mut pids: BTreeSet<i32> = cgroups.iter().flat_map(|cg| cgroup_procs(cg)).collect();
    pids.extend(procs_naming(&under));
    let mut sockets = Vec::new();
    for &pid in &pids {
        sockets.extend(shim_sockets(pid));
        eprintln!("e2e: teardown kills leftover pid {pid} ({})", cmdline(pid));
        // SAFETY: kill has no memory effects; the pid is a process this test started (it
        // names our private directory) or one in a cgroup only this test made.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while pids.iter().any(|p| alive(*p)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    for s in sockets {
        let _ = std::fs::remove_file(s);
    }
    unmount_under(dir);
    remove_cgroups(tag);
    if let Err(e) = std::fs::remove_dir_all(dir) {
        eprintln!("e2e: cannot remove {}: {e}", dir.display());
    }
}

/// Asserts that a torn-down test left nothing: `pids` are gone, no process names `dir`, nothing
/// is mounted under it, it is removed, and the tag's cgroups are removed.
#[track_caller]
pub fn assert_torn_down(dir: &Path, tag: &str, pids: &[u32]) {
    let alive: Vec<_> = pids.iter().filter(|p| alive(**p as i32)).collect();
    assert!(alive.is_empty(), "processes left: {alive:?}");
    let procs: Vec<_> = procs_naming(&format!("{}/", dir.display()))
        .into_iter()
        .map(|p| format!("{p}: {}", cmdline(p)))
        .collect();
    assert!(procs.is_empty(), "processes left: {procs:?}");
    let mounts = mounts_under(dir);
    assert!(mounts.is_empty(), "mounts left: {mounts:?}");
    assert!(!dir.exists(), "{} left", dir.display());
    let cgroups = tag_cgroups(tag);
    assert!(cgroups.is_empty(), "cgroups left: {cgroups:?}");
}

/// Whether the host has a pure cgroup v2 hierarchy at /sys/fs/cgroup.
pub fn cgroup_v2_only() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// The file of cgroup `rel` (like `/tag/id`): `v1_file` of `controller` on v1 and hybrid hosts,
/// `v2_file` on a pure v2 host.
pub fn cgroup_file(rel: &str, controller: &str, v1_file: &str, v2_file: &str) -> PathBuf {
    let rel = rel.trim_start_matches('/');
    if cgroup_v2_only() {
        Path::new("/sys/fs/cgroup").join(rel).join(v2_file)
    } else {
        Path::new("/sys/fs/cgroup")
            .join(controller)
            .join(rel)
            .join(v1_file)
    }
}

/// The trimmed content of a cgroup file, or a description of why it cannot be read.
pub fn read_cgroup(path: &Path) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|e| format!("<{}: {e}>", path.display()))
}

/// Every cgroup directory at or below `/<tag>` in every hierarchy, deepest first.
pub fn tag_cgroups(tag: &str) -> Vec<PathBuf> {
    let root = Path::new("/sys/fs/cgroup");
    let mut tops = vec![root.join(tag)];
    if let Ok(rd) = std::fs::read_dir(root) {
        for e in rd.filter_map(|e| e.ok()) {
            tops.push(e.path().join(tag));
        }
    }
    let mut found = Vec::new();
    for top in tops {
        collect_dirs(&top, &mut found);
    }
    found.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    found
}

fn collect_dirs(dir: &Path, found: &mut Vec<PathBuf>) {
    if !dir.is_dir() {
        return;
    }
    found.push(dir.to_owned());
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.filter_map(|e| e.ok()) {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                collect_dirs(&e.path(), found);
            }
        }
    }
}

/// Cgroups at or below `/<tag>` other than `/<tag>` itself and `keep`, relative to their
/// hierarchy (deduplicated over the hierarchies), e.g. `tag/abc`.
pub fn tag_cgroups_left(tag: &str, keep: &[&str]) -> Vec<String> {
    let mut left = BTreeSet::new();
    for p in tag_cgroups(tag) {
        let s = p.to_string_lossy().into_owned();
        if let Some(i) = s.find(&format!("/{tag}/")) {
            let rel = s[i + 1..].to_owned();
            if !keep.iter().any(|k| rel == format!("{tag}/{k}")) {
                left.insert(rel);
            }
        }
    }
    left.into_iter().collect()
}

fn cgroup_procs(cg: &Path) -> Vec<i32> {
    std::fs::read_to_string(cg.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// Removes the tag's cgroups, deepest first, waiting a little for exiting processes.
fn remove_cgroups(tag: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = tag_cgroups(tag);
        if left.is_empty() {
            return;
        }
        for cg in &left {
            let _ = std::fs::remove_dir(cg);
        }
        if Instant::now() > deadline {
            eprintln!("e2e: cgroups left behind: {left:?}");
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The command line of `pid`, arguments separated by spaces.
pub fn cmdline(pid: i32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            String::from_utf8_lossy(&b)
                .trim_end_matches('\0')
                .replace('\0', " ")
        })
        .unwrap_or_default()
}

fn alive(pid: i32) -> bool {
    // A zombie is dead for our purposes.
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit(')')
            .next()
            .is_some_and(|r| !r.trim_start().starts_with('Z'))
    })
}

/// Processes (other than this one) whose command line contains `needle`.
pub fn procs_naming(needle: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    let mut pids = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.filter_map(|e| e.ok()) {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
                continue;
            };
            if pid != me && alive(pid) && cmdline(pid).contains(needle) {
                pids.push(pid);
            }
        }
    }
    pids
}

/// The paths of the unix sockets that `pid` listens on under containerd's shim socket
/// directory (a shim killed here cannot remove its own socket).
fn shim_sockets(pid: i32) -> Vec<PathBuf> {
    let mut inodes = BTreeSet::new();
    if let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
        for e in rd.filter_map(|e| e.ok()) {
            if let Ok(t) = std::fs::read_link(e.path()) {
                let t = t.to_string_lossy().into_owned();
                if let Some(n) = t.strip_prefix("socket:[").and_then(|r| r.strip_suffix(']')) {
                    inodes.insert(n.to_owned());
                }
            }
        }
    }
    let table = std::fs::read_to_string(format!("/proc/{pid}/net/unix")).unwrap_or_default();
    table
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 8 && inodes.contains(f[6]) && f[7].starts_with("/run/containerd/s/"))
                .then(|| PathBuf::from(f[7]))
        })
        .filter(|p| std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_socket()))
        .collect()
}

/// Mount points at or below `dir`, deepest (latest) first.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let prefix = dir.to_string_lossy().into_owned();
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut found: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape_mountinfo)
        .filter(|m| m == &prefix || m.starts_with(&format!("{prefix}/")))
        .map(PathBuf::from)
        .collect();
    found.reverse();
    found
}

fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 4 <= b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let d = |k: usize| u32::from(b[i + k] - b'0');
            out.push((d(1) * 64 + d(2) * 8 + d(3)) as u8);
            i += 4;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Detaches every mount at or below `dir`.
fn unmount_under(dir: &Path) {
    for _ in 0..10 {
        let mounts = mounts_under(dir);
        if mounts.is_empty() {
            return;
        }
        for m in mounts {
            let Ok(c) = std::ffi::CString::new(m.to_string_lossy().as_bytes()) else {
                continue;
            };
            eprintln!("e2e: teardown unmounts {}", m.display());
            // SAFETY: c is a valid NUL-terminated path; umount2 does not keep the pointer.
            unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        }
    }
}
