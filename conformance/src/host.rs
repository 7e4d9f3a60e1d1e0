//! Facts about the host, seen from the runner: namespaces, cgroups, capabilities.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Namespace inode of `pid` (or "self") for a type name as in /proc/PID/ns.
pub fn ns_inode(pid: &str, ty: &str) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(format!("/proc/{pid}/ns/{ty}"))
        .ok()
        .map(|m| m.ino())
}

/// The /proc/PID/ns name of an OCI namespace type.
pub fn proc_ns_name(oci: &str) -> &str {
    match oci {
        "network" => "net",
        "mount" => "mnt",
        other => other,
    }
}

/// Capability names in kernel bit order.
pub const CAPS: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The bit mask of a list of capability names.
pub fn cap_mask(names: &[&str]) -> u64 {
    names
        .iter()
        .filter_map(|n| CAPS.iter().position(|c| c == n))
        .fold(0, |m, i| m | (1u64 << i))
}

/// Names of the bits set in a mask, for messages.
pub fn cap_names(mask: u64) -> Vec<&'static str> {
    (0..CAPS.len())
        .filter(|i| mask & (1 << i) != 0)
        .map(|i| CAPS[i])
        .collect()
}

/// The optional (propagation) fields of the host mount holding `path`.
pub fn propagation_of(path: &Path) -> String {
    let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut best = (0, String::new());
    for line in text.lines() {
        let Some((left, _)) = line.split_once(" - ") else {
            continue;
        };
        let l: Vec<&str> = left.split(' ').collect();
        if l.len() < 6 {
            continue;
        }
        let target = Path::new(l[4]);
        let len = l[4].len();
        if path.starts_with(target) && len >= best.0 {
            best = (len, l[6..].join(" "));
        }
    }
    best.1
}

/// The cgroup mounts of the host: v1 hierarchies by controller, and the v2 one.
#[derive(Debug, Default)]
pub struct Cgroups {
    v1: BTreeMap<String, (PathBuf, String)>,
    v2: Option<(PathBuf, String)>,
}

impl Cgroups {
    pub fn detect() -> Cgroups {
        let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut cg = Cgroups::default();
        for line in text.lines() {
            let Some((left, right)) = line.split_once(" - ") else {
                continue;
            };
            let l: Vec<&str> = left.split(' ').collect();
            let r: Vec<&str> = right.split(' ').collect();
            if l.len() < 5 || r.len() < 3 {
                continue;
            }
            let (root, target) = (l[3].to_string(), PathBuf::from(l[4]));
            match r[0] {
                "cgroup2" => cg.v2 = Some((target, root)),
                "cgroup" => {
                    for opt in r[2].split(',') {
                        cg.v1
                            .entry(opt.to_string())
                            .or_insert((target.clone(), root.clone()));
                    }
                }
                _ => {}
            }
        }
        cg
    }

    /// True when no v1 hierarchy exists (a pure v2 host).
    pub fn pure_v2(&self) -> bool {
        self.v1.is_empty() && self.v2.is_some()
    }

    /// The host directory of `pid`'s cgroup that holds `controller`, and whether
    /// it is a v2 directory.
    pub fn dir_of(&self, pid: u32, controller: &str) -> Option<(PathBuf, bool)> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
        for line in text.lines() {
            let mut parts = line.splitn(3, ':');
            let (id, ctrls, path) = (parts.next()?, parts.next()?, parts.next()?);
            if id != "0" && ctrls.split(',').any(|c| c == controller) {
                let (mnt, root) = self.v1.get(controller)?;
                return Some((join_cg(mnt, root, path), false));
            }
        }
        let (mnt, root) = self.v2.as_ref()?;
        let path = text.lines().find_map(|l| l.strip_prefix("0::"))?;
        let dir = join_cg(mnt, root, path);
        // On a hybrid host the v2 tree may not have the controller.
        let parent = dir.parent().unwrap_or(mnt).join("cgroup.controllers");
        let ctrls = std::fs::read_to_string(parent)
            .or_else(|_| std::fs::read_to_string(mnt.join("cgroup.controllers")))
            .unwrap_or_default();
        if controller == "devices"
            || controller == "freezer"
            || ctrls.split_whitespace().any(|c| c == controller)
        {
            Some((dir, true))
        } else {
            None
        }
    }

    /// Every cgroup directory of `pid` on this host.
    pub fn all_dirs(&self, pid: u32) -> Vec<PathBuf> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
        let mut dirs = Vec::new();
        for line in text.lines() {
            let mut parts = line.splitn(3, ':');
            let (Some(id), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let mount = if id == "0" {
                self.v2.as_ref()
            } else {
                let key = ctrls.split(',').next().unwrap_or("");
                self.v1.get(key).or_else(|| self.v1.get(ctrls))
            };
            if let Some((mnt, root)) = mount {
                dirs.push(join_cg(mnt, root, path));
            }
        }
        dirs
    }
}

fn join_cg(mnt: &Path, root: &str, path: &str) -> PathBuf {
    let rel = path.strip_prefix(root).unwrap_or(path);
    mnt.join(rel.trim_start_matches('/'))
}

/// Whether an ELF file has no program interpreter (is statically linked).
pub fn is_static_elf(path: &Path) -> Result<bool, String> {
    let b = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if b.len() < 64 || &b[..4] != b"\x7fELF" || b[4] != 2 {
        return Err(format!("{}: not a 64-bit ELF file", path.display()));
    }
    let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap_or([0; 8])) as usize;
    let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as usize;
    let (phoff, phentsize, phnum) = (u64_at(0x20), u16_at(0x36), u16_at(0x38));
    for i in 0..phnum {
        let o = phoff + i * phentsize;
        if o + 4 > b.len() {
            break;
        }
        if u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]) == 3 {
            return Ok(false);
        }
    }
    Ok(true)
}
