//! pids: the process-number limit (same file on v1 and v2).

use oci_spec::runtime::LinuxPids;

use super::Target;
use crate::error::Result;
use crate::fs;

pub(crate) fn set(t: &Target<'_>, p: &LinuxPids) -> Result<()> {
    // runc: 0 is "unset", a negative limit is "no limit".
    let limit = p.limit();
    if limit == 0 {
        return Ok(());
    }
    let (dir, _) = t.get("pids.limit")?;
    fs::write(dir, "pids.max", &fs::v2_limit(limit))
}
