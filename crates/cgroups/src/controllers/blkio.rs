//! blkio (v1) / io (v2): weights, per-device weights, throttles.
//!
//! Weights go to BFQ's files when the kernel has them (CFQ is gone from current kernels). On
//! v2 without BFQ, the v1 weight range 10-1000 is mapped onto io.weight's 1-10000 (runc's
//! linear conversion).

use std::path::Path;

use oci_spec::runtime::{LinuxBlockIo, LinuxThrottleDevice};

use super::Target;
use crate::error::{Error, Result};
use crate::fs;
use crate::layout::Version;

const FIELD: &str = "blockIO";

/// v1 blkio weight (10-1000) -> v2 io.weight (1-10000).
pub fn blkio_weight_to_io_weight(weight: u16) -> u64 {
    if weight == 0 {
        return 0;
    }
    1 + (u64::from(weight).saturating_sub(10)) * 9999 / 990
}

fn nonempty(v: &Option<Vec<LinuxThrottleDevice>>) -> Option<&[LinuxThrottleDevice]> {
    v.as_deref().filter(|v| !v.is_empty())
}

pub(crate) fn set(t: &Target<'_>, b: &LinuxBlockIo) -> Result<()> {
    let weight = b.weight().filter(|&w| w != 0);
    let leaf = b.leaf_weight().filter(|&w| w != 0);
    let devices = b.weight_device().as_deref().unwrap_or(&[]);
    let throttles = [
        (
            nonempty(b.throttle_read_bps_device()),
            "blkio.throttle.read_bps_device",
            "rbps",
        ),
        (
            nonempty(b.throttle_write_bps_device()),
            "blkio.throttle.write_bps_device",
            "wbps",
        ),
        (
            nonempty(b.throttle_read_iops_device()),
            "blkio.throttle.read_iops_device",
            "riops",
        ),
        (
            nonempty(b.throttle_write_iops_device()),
            "blkio.throttle.write_iops_device",
            "wiops",
        ),
    ];
    let anything = weight.is_some()
        || leaf.is_some()
        || !devices.is_empty()
        || throttles.iter().any(|(d, _, _)| d.is_some());
    if !anything {
        return Ok(());
    }
    let (dir, version) = t.get(FIELD)?;
    match version {
        Version::V1 => {
            let bfq = fs::exists(dir, "blkio.bfq.weight");
            let (weight_file, device_file) = if bfq {
                ("blkio.bfq.weight", "blkio.bfq.weight_device")
            } else {
                ("blkio.weight", "blkio.weight_device")
            };
            if let Some(w) = weight {
                fs::write(dir, weight_file, &w.to_string())?;
            }
            if let Some(l) = leaf {
                fs::write(dir, "blkio.leaf_weight", &l.to_string())?;
            }
            for d in devices {
                if let Some(w) = d.weight() {
                    let line = format!("{}:{} {w}", d.major(), d.minor());
                    fs::write(dir, device_file, &line)?;
                }
                if let Some(l) = d.leaf_weight() {
                    let line = format!("{}:{} {l}", d.major(), d.minor());
                    fs::write(dir, "blkio.leaf_weight_device", &line)?;
                }
            }
            for (list, file, _) in throttles {
                for d in list.unwrap_or(&[]) {
                    let line = format!("{}:{} {}", d.major(), d.minor(), d.rate());
                    fs::write(dir, file, &line)?;
                }
            }
        }
        Version::V2 => {
            let bfq = fs::exists(dir, "io.bfq.weight");
            if let Some(w) = weight {
                set_weight_v2(dir, bfq, "", w)?;
            }
            for d in devices {
                if let Some(w) = d.weight() {
                    set_weight_v2(dir, bfq, &format!("{}:{} ", d.major(), d.minor()), w)?;
                }
                // Leaf weights have no v2 file; runc ignores them there too.
            }
            for (list, _, key) in throttles {
                for d in list.unwrap_or(&[]) {
                    // A rate of 0 removes the limit on v1; keep that meaning.
                    let rate = match d.rate() {
                        0 => "max".to_string(),
                        r => r.to_string(),
                    };
                    let line = format!("{}:{} {key}={rate}", d.major(), d.minor());
                    fs::write(dir, "io.max", &line)?;
                }
            }
        }
    }
    Ok(())
}

fn set_weight_v2(dir: &Path, bfq: bool, device: &str, weight: u16) -> Result<()> {
    if !(10..=1000).contains(&weight) {
        return Err(Error::InvalidResource {
            field: "blockIO.weight",
            reason: format!("{weight} is out of the range 10-1000"),
        });
    }
    if bfq {
        fs::write(dir, "io.bfq.weight", &format!("{device}{weight}"))
    } else {
        let w = blkio_weight_to_io_weight(weight);
        fs::write(dir, "io.weight", &format!("{device}{w}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weight_conversion_matches_runc() {
        assert_eq!(blkio_weight_to_io_weight(0), 0);
        assert_eq!(blkio_weight_to_io_weight(10), 1);
        assert_eq!(blkio_weight_to_io_weight(500), 1 + 490 * 9999 / 990);
        assert_eq!(blkio_weight_to_io_weight(1000), 10_000);
    }
}
