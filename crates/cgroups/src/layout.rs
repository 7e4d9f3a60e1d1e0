//! Which cgroup layout the host has, and where each hierarchy is mounted.
//!
//! Detection is cheap on purpose: one statfs(2) of /sys/fs/cgroup (and one of
//! /sys/fs/cgroup/unified when that is a tmpfs). The hierarchies come from /proc/self/cgroup,
//! which also gives our own cgroup for relative paths; mountinfo is only parsed when a v1
//! hierarchy is not at its usual place.

use std::ffi::CString;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::fs;

/// Where cgroup filesystems are mounted on every distribution we know.
pub(crate) const CGROUP_ROOT: &str = "/sys/fs/cgroup";
/// The v2 mount on hybrid hosts.
pub(crate) const HYBRID_UNIFIED: &str = "/sys/fs/cgroup/unified";

const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;
const CGROUP_SUPER_MAGIC: i64 = 0x0027_e0eb;
const TMPFS_MAGIC: i64 = 0x0102_1994;

/// The host's cgroup layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// Only v1 hierarchies.
    V1,
    /// Only the unified (v2) hierarchy at /sys/fs/cgroup.
    V2,
    /// v1 controllers plus a v2 hierarchy at /sys/fs/cgroup/unified.
    Hybrid,
}

/// cgroup version of one hierarchy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Version {
    V1,
    V2,
}

fn fs_type(path: &str) -> Option<i64> {
    let cpath = CString::new(path).ok()?;
    // SAFETY: statfs is plain data, so a zeroed value is valid.
    let mut buf: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: cpath is NUL-terminated and buf is a valid, writable statfs.
    let rc = unsafe { libc::statfs(cpath.as_ptr(), &mut buf) };
    // f_type's integer type differs between libc targets; widen it.
    #[allow(clippy::unnecessary_cast)]
    (rc == 0).then_some(buf.f_type as i64)
}

/// Detects the layout with one or two statfs calls.
pub fn detect() -> Result<Layout> {
    match fs_type(CGROUP_ROOT) {
        Some(CGROUP2_SUPER_MAGIC) => Ok(Layout::V2),
        Some(CGROUP_SUPER_MAGIC) => Ok(Layout::V1),
        Some(TMPFS_MAGIC) => match fs_type(HYBRID_UNIFIED) {
            Some(CGROUP2_SUPER_MAGIC) => Ok(Layout::Hybrid),
            _ => Ok(Layout::V1),
        },
        _ => Err(Error::NoCgroupFs),
    }
}

/// One line of /proc/self/cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OwnCgroup {
    /// Hierarchy id; 0 is the unified hierarchy.
    pub id: u32,
    /// Controllers bound to it ("cpu", "cpuacct", "name=systemd"); empty for v2.
    pub controllers: Vec<String>,
    /// Our cgroup inside that hierarchy.
    pub path: String,
}

pub(crate) fn parse_proc_cgroup(text: &str) -> Vec<OwnCgroup> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let id = parts.next()?.parse().ok()?;
            let controllers = parts.next()?;
            let path = parts.next()?.to_string();
            let controllers = controllers
                .split(',')
                .filter(|c| !c.is_empty())
                .map(str::to_string)
                .collect();
            Some(OwnCgroup {
                id,
                controllers,
                path,
            })
        })
        .collect()
}

pub(crate) fn read_own_cgroups() -> Result<Vec<OwnCgroup>> {
    Ok(parse_proc_cgroup(&fs::read_path(Path::new(
        "/proc/self/cgroup",
    ))?))
}

/// Finds the mount point of a v1 hierarchy. Tries the conventional names first (one statfs
/// each: the root of any cgroup v1 mount has cgroup.procs, so a stat of it would tell nothing
/// more) and falls back to /proc/self/mountinfo.
pub(crate) fn v1_mountpoint(controllers: &[String]) -> Result<Option<PathBuf>> {
    let joined = controllers
        .iter()
        .map(|c| c.strip_prefix("name=").unwrap_or(c))
        .collect::<Vec<_>>();
    let mut candidates = vec![joined.join(",")];
    candidates.extend(joined.iter().map(|c| c.to_string()));
    for name in candidates {
        let dir = Path::new(CGROUP_ROOT).join(&name);
        if fs_type(&dir.to_string_lossy()) == Some(CGROUP_SUPER_MAGIC) {
            return Ok(Some(dir));
        }
    }
    mountinfo_v1_mountpoint(controllers)
}

fn mountinfo_v1_mountpoint(controllers: &[String]) -> Result<Option<PathBuf>> {
    let text = fs::read_path(Path::new("/proc/self/mountinfo"))?;
    for line in text.lines() {
        // "id parent maj:min root mountpoint opts [optional...] - fstype source superopts"
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let mut r = right.split_whitespace();
        if r.next() != Some("cgroup") {
            continue;
        }
        let superopts: Vec<&str> = r.nth(1).unwrap_or("").split(',').collect();
        if controllers.iter().all(|c| superopts.contains(&c.as_str())) {
            if let Some(mp) = left.split_whitespace().nth(4) {
                return Ok(Some(PathBuf::from(unescape_mountinfo(mp))));
            }
        }
    }
    Ok(None)
}

fn unescape_mountinfo(s: &str) -> String {
    // mountinfo escapes space, tab, newline and backslash as \ooo.
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            let digits = std::str::from_utf8(&bytes[i + 1..i + 4]).unwrap_or("");
            if let Ok(v) = u8::from_str_radix(digits, 8) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Controllers listed in `dir/cgroup.controllers`.
pub(crate) fn v2_controllers(dir: &Path) -> Result<Vec<String>> {
    Ok(fs::read_optional(dir, "cgroup.controllers")?
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect())
}

/// Whether systemd is the init system (sd_booted(3): /run/systemd/system exists).
pub(crate) fn systemd_booted() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_self_cgroup() {
        let v = parse_proc_cgroup("9:name=systemd:/\n4:memory:/a/b\n1:cpu,cpuacct:/\n0::/x\n");
        assert_eq!(v.len(), 4);
        assert_eq!(v[0].controllers, vec!["name=systemd"]);
        assert_eq!(v[1].path, "/a/b");
        assert_eq!(v[2].controllers, vec!["cpu", "cpuacct"]);
        assert_eq!(v[3].id, 0);
        assert!(v[3].controllers.is_empty());
    }

    #[test]
    fn unescapes_mountinfo() {
        assert_eq!(unescape_mountinfo("/a\\040b"), "/a b");
        assert_eq!(unescape_mountinfo("/plain"), "/plain");
    }

    #[test]
    fn detects_this_host() {
        // Whatever the host is, detection must give an answer on a machine with cgroups.
        assert!(detect().is_ok());
    }
}
