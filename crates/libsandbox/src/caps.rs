//! Process capabilities: the five sets of `process.capabilities`.
//!
//! Applied in runc's order: the bounding set is cut first (needs CAP_SETPCAP, which we still
//! hold), identity changes keep the permitted set (`PR_SET_KEEPCAPS`), then effective, permitted
//! and inheritable are set in one `capset`, and ambient capabilities are raised last.

use oci_spec::runtime::{Capabilities, Capability, LinuxCapabilities};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::errno::{Errno, check};

/// A capability step that failed.
#[derive(Debug, Error, Serialize, Deserialize)]
pub enum CapsError {
    #[error("drop {cap} from the bounding set: {errno}")]
    Bounding { cap: String, errno: Errno },
    #[error("set capabilities (capset): {errno}")]
    Capset { errno: Errno },
    #[error("raise ambient capability {cap}: {errno}")]
    Ambient { cap: String, errno: Errno },
    #[error("keep capabilities across the user switch: {errno}")]
    KeepCaps { errno: Errno },
}

/// Every capability name the kernel knows, by number.
pub const NAMES: [&str; 41] = [
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

/// CAP_SYS_ADMIN's number (needed to install seccomp without no_new_privs).
pub const CAP_SYS_ADMIN: u32 = 21;

/// The number of a capability name (`CAP_SYS_ADMIN` or `SYS_ADMIN`, any case).
pub fn number(name: &str) -> Option<u32> {
    let upper = name.to_ascii_uppercase();
    let full = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    NAMES.iter().position(|n| *n == full).map(|i| i as u32)
}

fn cap_number(cap: &Capability) -> Option<u32> {
    number(&cap.to_string())
}

/// The highest capability this kernel supports.
pub fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

/// A capability set as a bit mask, skipping capabilities this kernel lacks (runc does the same).
pub fn mask(set: Option<&Capabilities>, last: u32) -> u64 {
    set.into_iter()
        .flatten()
        .filter_map(cap_number)
        .filter(|n| *n <= last)
        .fold(0u64, |m, n| m | (1u64 << n))
}

/// The five sets as masks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapSets {
    pub bounding: u64,
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
    pub ambient: u64,
    /// The kernel's highest capability (read once per process).
    pub last: u32,
}

impl CapSets {
    /// From the spec's capabilities (a missing object means no capabilities at all).
    pub fn from_spec(caps: Option<&LinuxCapabilities>) -> CapSets {
        let last = last_cap();
        let Some(c) = caps else {
            return CapSets {
                last,
                ..CapSets::default()
            };
        };
        CapSets {
            last,
            bounding: mask(c.bounding().as_ref(), last),
            effective: mask(c.effective().as_ref(), last),
            permitted: mask(c.permitted().as_ref(), last),
            inheritable: mask(c.inheritable().as_ref(), last),
            ambient: mask(c.ambient().as_ref(), last),
        }
    }
}

/// Drops every capability not in `bounding` from the bounding set.
pub fn apply_bounding(bounding: u64, last: u32) -> Result<(), CapsError> {
    for cap in 0..=last {
        if bounding & (1u64 << cap) != 0 {
            continue;
        }
        // SAFETY: prctl with integer arguments.
        check(unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) })
            .map_err(|errno| CapsError::Bounding {
                cap: NAMES[cap as usize].to_owned(),
                errno,
            })?;
    }
    Ok(())
}

/// Keeps the permitted set across a switch away from uid 0.
pub fn keep_caps(on: bool) -> Result<(), CapsError> {
    // SAFETY: prctl with integer arguments.
    check(unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, libc::c_ulong::from(on), 0, 0, 0) })
        .map(|_| ())
        .map_err(|errno| CapsError::KeepCaps { errno })
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// Sets effective, permitted and inheritable in one call.
pub fn capset(effective: u64, permitted: u64, inheritable: u64) -> Result<(), CapsError> {
    let header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let data = [
        CapData {
            effective: effective as u32,
            permitted: permitted as u32,
            inheritable: inheritable as u32,
        },
        CapData {
            effective: (effective >> 32) as u32,
            permitted: (permitted >> 32) as u32,
            inheritable: (inheritable >> 32) as u32,
        },
    ];
    // SAFETY: header and a two-element data array of the v3 layout, as capset expects.
    check(unsafe { libc::syscall(libc::SYS_capset, &header, data.as_ptr()) })
        .map(|_| ())
        .map_err(|errno| CapsError::Capset { errno })
}

/// Raises each ambient capability (they must already be permitted and inheritable).
pub fn raise_ambient(ambient: u64, last: u32) -> Result<(), CapsError> {
    if ambient == 0 {
        return Ok(());
    }
    for cap in 0..=last {
        if ambient & (1u64 << cap) == 0 {
            continue;
        }
        // SAFETY: prctl with integer arguments.
        check(unsafe {
            libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
                cap as libc::c_ulong,
                0,
                0,
            )
        })
        .map_err(|errno| CapsError::Ambient {
            cap: NAMES[cap as usize].to_owned(),
            errno,
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_kernel_numbers() {
        assert_eq!(number("CAP_CHOWN"), Some(0));
        assert_eq!(number("sys_admin"), Some(21));
        assert_eq!(number("CAP_CHECKPOINT_RESTORE"), Some(40));
        assert_eq!(number("CAP_BOGUS"), None);
    }

    #[test]
    fn spec_sets_become_masks() {
        let caps: LinuxCapabilities = serde_json::from_str(
            r#"{"bounding":["CAP_KILL","CAP_CHOWN"],"effective":["CAP_KILL"]}"#,
        )
        .unwrap();
        let sets = CapSets::from_spec(Some(&caps));
        assert_eq!(sets.bounding, (1 << 5) | 1);
        assert_eq!(sets.effective, 1 << 5);
        assert_eq!(sets.ambient, 0);
    }
}
