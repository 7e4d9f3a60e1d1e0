//! cpu: shares/weight, CFS quota/period/burst, realtime runtime/period, idle.

use std::path::Path;

use oci_spec::runtime::LinuxCpu;

use super::Target;
use crate::error::{Error, Result};
use crate::fs;
use crate::layout::Version;

const FIELD: &str = "cpu";

/// v1 cpu.shares -> v2 cpu.weight: the linear conversion of runc 1.1 (this project's
/// compatibility reference; newer runc and crun releases moved to a curve that maps 1024 to 100).
pub fn shares_to_weight(shares: u64) -> u64 {
    match shares {
        0 => 0,
        // runc's documented mapping of [2, 262144] onto [1, 10000] (docs/cgroup-v2.md), which
        // the runc on these hosts applies and callers compare against.
        _ => 1 + (shares.clamp(2, 262_144) - 2) * 9_999 / 262_142,
    }
}

pub(crate) fn set(t: &Target<'_>, c: &LinuxCpu) -> Result<()> {
    let shares = c.shares().filter(|&s| s != 0);
    let quota = c.quota().filter(|&q| q != 0);
    let period = c.period().filter(|&p| p != 0);
    let rt_runtime = c.realtime_runtime().filter(|&r| r != 0);
    let rt_period = c.realtime_period().filter(|&p| p != 0);
    let anything = shares.is_some()
        || quota.is_some()
        || period.is_some()
        || c.burst().is_some()
        || rt_runtime.is_some()
        || rt_period.is_some()
        || c.idle().is_some();
    if !anything {
        return Ok(());
    }
    let (dir, version) = t.get(FIELD)?;
    match version {
        Version::V1 => set_v1(dir, c, shares, quota, period, rt_runtime, rt_period),
        Version::V2 => {
            if rt_runtime.is_some() || rt_period.is_some() {
                return Err(Error::InvalidResource {
                    field: "cpu.realtimeRuntime",
                    reason: "realtime scheduling limits do not exist on cgroup v2".into(),
                });
            }
            set_v2(dir, c, shares, quota, period)
        }
    }
}

fn set_v1(
    dir: &Path,
    c: &LinuxCpu,
    shares: Option<u64>,
    quota: Option<i64>,
    period: Option<u64>,
    rt_runtime: Option<i64>,
    rt_period: Option<u64>,
) -> Result<()> {
    if let Some(s) = shares {
        fs::write(dir, "cpu.shares", &s.to_string())?;
        // The kernel clamps silently; report it instead of running with another value.
        let got = fs::read_u64(dir, "cpu.shares")?;
        if got != s {
            return Err(Error::InvalidResource {
                field: "cpu.shares",
                reason: format!(
                    "{s} is out of range: the kernel set {got} in {}",
                    dir.join("cpu.shares").display()
                ),
            });
        }
    }
    // The period can be refused (EINVAL) until the quota fits it; then write it after.
    let mut period_pending = None;
    if let Some(p) = period {
        match fs::write(dir, "cpu.cfs_period_us", &p.to_string()) {
            Err(e) if e.errno() == Some(libc::EINVAL) && quota.is_some() => {
                period_pending = Some(p)
            }
            other => other?,
        }
    }
    if let Some(q) = quota {
        fs::write(dir, "cpu.cfs_quota_us", &q.to_string())?;
    }
    if let Some(p) = period_pending {
        fs::write(dir, "cpu.cfs_period_us", &p.to_string())?;
    }
    if let Some(b) = c.burst() {
        fs::write(dir, "cpu.cfs_burst_us", &b.to_string())?;
    }
    if let Some(p) = rt_period {
        fs::write(dir, "cpu.rt_period_us", &p.to_string())?;
    }
    if let Some(r) = rt_runtime {
        fs::write(dir, "cpu.rt_runtime_us", &r.to_string())?;
    }
    if let Some(i) = c.idle() {
        fs::write(dir, "cpu.idle", &i.to_string())?;
    }
    Ok(())
}

fn set_v2(
    dir: &Path,
    c: &LinuxCpu,
    shares: Option<u64>,
    quota: Option<i64>,
    period: Option<u64>,
) -> Result<()> {
    if let Some(s) = shares {
        fs::write(dir, "cpu.weight", &shares_to_weight(s).to_string())?;
    }
    let burst = c.burst().map(|b| b.to_string());
    if quota.is_some() || period.is_some() {
        let mut max = match quota {
            Some(q) if q > 0 => q.to_string(),
            _ => "max".to_string(),
        };
        if let Some(p) = period {
            max.push(' ');
            max.push_str(&p.to_string());
        }
        match fs::write(dir, "cpu.max", &max) {
            // A lower quota can be refused while the old burst exceeds it: burst first then.
            Err(e) if e.errno() == Some(libc::EINVAL) && burst.is_some() => {
                if let Some(b) = &burst {
                    fs::write(dir, "cpu.max.burst", b)?;
                }
                fs::write(dir, "cpu.max", &max)?;
            }
            other => other?,
        }
    }
    if let Some(b) = &burst {
        fs::write(dir, "cpu.max.burst", b)?;
    }
    if let Some(i) = c.idle() {
        fs::write(dir, "cpu.idle", &i.to_string())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_to_weight_fixed_points() {
        assert_eq!(shares_to_weight(0), 0);
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(512), 20);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(shares_to_weight(1_000_000), 10_000);
        // Monotonic in between.
        let mut last = 0;
        for s in (2..262_144).step_by(997) {
            let w = shares_to_weight(s);
            assert!(w >= last && (1..=10_000).contains(&w), "{s} -> {w}");
            last = w;
        }
    }
}
