//! memory: limit, reservation, swap, swappiness, OOM killer, kernel TCP.
//!
//! v1 keeps memory and memory+swap limits that must stay ordered (memsw >= limit at every
//! moment), so the write order depends on the current limit (runc's rule). v2 has separate
//! memory and swap limits: `memory.swap.max = swap - limit`.

use std::path::Path;

use oci_spec::runtime::LinuxMemory;

use super::Target;
use crate::error::{Error, Result};
use crate::fs;
use crate::layout::Version;

const FIELD: &str = "memory";

pub(crate) fn set(t: &Target<'_>, m: &LinuxMemory, update: bool) -> Result<()> {
    // 0 means "unset" in runc's reading of the spec.
    let limit = m.limit().filter(|&v| v != 0);
    let reservation = m.reservation().filter(|&v| v != 0);
    let swap = m.swap().filter(|&v| v != 0);
    let kernel_tcp = m.kernel_tcp().filter(|&v| v != 0);
    let anything = limit.is_some()
        || reservation.is_some()
        || swap.is_some()
        || kernel_tcp.is_some()
        || m.swappiness().is_some()
        || m.disable_oom_killer() == Some(true);
    if !anything {
        return Ok(());
    }
    let (dir, version) = t.get(FIELD)?;
    if update && m.check_before_update() == Some(true) {
        check_usage(dir, version, limit)?;
    }
    match version {
        Version::V1 => set_v1(dir, m, limit, reservation, swap, kernel_tcp),
        Version::V2 => set_v2(dir, limit, reservation, swap),
    }
}

/// checkBeforeUpdate: refuse a new limit below what the cgroup already uses.
fn check_usage(dir: &Path, version: Version, limit: Option<i64>) -> Result<()> {
    let Some(limit) = limit.filter(|&l| l > 0) else {
        return Ok(());
    };
    let file = match version {
        Version::V1 => "memory.usage_in_bytes",
        Version::V2 => "memory.current",
    };
    let usage = fs::read_u64(dir, file)?;
    if usage >= limit as u64 {
        return Err(Error::InvalidResource {
            field: "memory.limit",
            reason: format!(
                "rejecting memory limit {limit} below current usage {usage} ({})",
                dir.join(file).display()
            ),
        });
    }
    Ok(())
}

fn set_v1(
    dir: &Path,
    m: &LinuxMemory,
    limit: Option<i64>,
    reservation: Option<i64>,
    mut swap: Option<i64>,
    kernel_tcp: Option<i64>,
) -> Result<()> {
    const LIMIT: &str = "memory.limit_in_bytes";
    const MEMSW: &str = "memory.memsw.limit_in_bytes";
    // Unlimited memory with no swap given means unlimited swap too (when swap accounting is on).
    if limit == Some(-1) && swap.is_none() && fs::exists(dir, MEMSW) {
        swap = Some(-1);
    }
    let write_limit = |v: i64| set_limit_v1(dir, LIMIT, v);
    let write_swap = |v: i64| fs::write(dir, MEMSW, &v.to_string());
    match (limit, swap) {
        (Some(l), Some(s)) => {
            // Raising: memsw first (it must stay >= limit); lowering: limit first.
            let current = fs::read_u64(dir, LIMIT)?;
            if s == -1 || current < s as u64 {
                write_swap(s)?;
                write_limit(l)?;
            } else {
                write_limit(l)?;
                write_swap(s)?;
            }
        }
        (Some(l), None) => write_limit(l)?,
        (None, Some(s)) => write_swap(s)?,
        (None, None) => {}
    }
    if let Some(r) = reservation {
        fs::write(dir, "memory.soft_limit_in_bytes", &r.to_string())?;
    }
    if let Some(k) = kernel_tcp {
        fs::write(dir, "memory.kmem.tcp.limit_in_bytes", &k.to_string())?;
    }
    if let Some(s) = m.swappiness() {
        if s > 100 {
            return Err(Error::InvalidResource {
                field: "memory.swappiness",
                reason: format!("{s} is out of the range 0-100"),
            });
        }
        fs::write(dir, "memory.swappiness", &s.to_string())?;
    }
    if m.disable_oom_killer() == Some(true) {
        fs::write(dir, "memory.oom_control", "1")?;
    }
    Ok(())
}

/// Writes the v1 limit; when the kernel says EBUSY (usage above the new limit), say so with the
/// numbers.
fn set_limit_v1(dir: &Path, file: &str, value: i64) -> Result<()> {
    match fs::write(dir, file, &value.to_string()) {
        Err(e) if e.errno() == Some(libc::EBUSY) => {
            let usage = fs::read_u64(dir, "memory.usage_in_bytes").unwrap_or(0);
            Err(Error::InvalidResource {
                field: "memory.limit",
                reason: format!("{e} (current usage {usage} is above the new limit {value})"),
            })
        }
        other => other,
    }
}

/// runc's conversion of the spec's memory+swap to v2's swap-only limit. `None`: leave alone.
pub(crate) fn swap_v2(swap: i64, limit: i64) -> Result<Option<i64>> {
    // Unlimited memory with swap unset: unlimited swap too.
    if limit == -1 && swap == 0 {
        return Ok(Some(-1));
    }
    if swap == 0 {
        return Ok(None);
    }
    if swap == -1 {
        return Ok(Some(-1));
    }
    let bad = |reason: String| {
        Err(Error::InvalidResource {
            field: "memory.swap",
            reason,
        })
    };
    if limit == 0 || limit == -1 {
        return bad("a swap limit needs a memory limit".into());
    }
    if limit < 0 || swap < 0 {
        return bad(format!("invalid memory {limit} or swap {swap}"));
    }
    if swap < limit {
        return bad(format!(
            "memory+swap limit {swap} must be at least the memory limit {limit}"
        ));
    }
    Ok(Some(swap - limit))
}

fn set_v2(
    dir: &Path,
    limit: Option<i64>,
    reservation: Option<i64>,
    swap: Option<i64>,
) -> Result<()> {
    if let Some(s) = swap_v2(swap.unwrap_or(0), limit.unwrap_or(0))? {
        let value = fs::v2_limit(s);
        if let Err(e) = fs::write(dir, "memory.swap.max", &value) {
            // Without swap accounting, "no swap limit" and "no swap" are already true.
            let harmless = e.errno() == Some(libc::ENOENT) && (s == -1 || s == 0);
            if !harmless {
                return Err(e);
            }
        }
    }
    if let Some(l) = limit {
        fs::write(dir, "memory.max", &fs::v2_limit(l))?;
    }
    if let Some(r) = reservation {
        fs::write(dir, "memory.low", &fs::v2_limit(r))?;
    }
    // swappiness, disableOOMKiller and kernelTCP have no v2 files; runc ignores them there.
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swap_conversion_matches_runc() {
        assert_eq!(swap_v2(0, -1).ok(), Some(Some(-1)));
        assert_eq!(swap_v2(0, 100).ok(), Some(None));
        assert_eq!(swap_v2(-1, 100).ok(), Some(Some(-1)));
        assert_eq!(swap_v2(300, 100).ok(), Some(Some(200)));
        assert_eq!(swap_v2(100, 100).ok(), Some(Some(0)));
        assert!(swap_v2(50, 100).is_err());
        assert!(swap_v2(200, 0).is_err());
        assert!(swap_v2(200, -1).is_err());
    }
}
