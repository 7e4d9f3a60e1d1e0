//! rdma: per-device HCA handle/object limits (same file on v1 and v2).

use std::collections::HashMap;

use oci_spec::runtime::LinuxRdma;

use super::Target;
use crate::error::Result;
use crate::fs;

pub(crate) fn set(t: &Target<'_>, limits: &HashMap<String, LinuxRdma>) -> Result<()> {
    for (device, l) in limits {
        let mut line = device.clone();
        if let Some(h) = l.hca_handles() {
            line.push_str(&format!(" hca_handle={h}"));
        }
        if let Some(o) = l.hca_objects() {
            line.push_str(&format!(" hca_object={o}"));
        }
        if line.len() == device.len() {
            continue;
        }
        let (dir, _) = t.get("rdma")?;
        fs::write(dir, "rdma.max", &line)?;
    }
    Ok(())
}
