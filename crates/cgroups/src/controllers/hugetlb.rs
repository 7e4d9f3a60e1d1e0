//! hugetlb: per page-size limits. v1 `hugetlb.<size>.limit_in_bytes`, v2 `hugetlb.<size>.max`,
//! and the reservation limits (`.rsvd.`) too when the kernel has them, so a reservation cannot
//! overrun the limit either. On hybrid hosts hugetlb may live on the unified hierarchy; it is
//! enabled for the container's cgroup the first time a limit needs it.

use oci_spec::runtime::LinuxHugepageLimit;

use super::Target;
use crate::error::{Error, Result};
use crate::fs;
use crate::layout::Version;

pub(crate) fn set(t: &Target<'_>, limits: &[LinuxHugepageLimit]) -> Result<()> {
    if limits.is_empty() {
        return Ok(());
    }
    let (dir, version) = t.get("hugepageLimits")?;
    for l in limits {
        let size = l.page_size();
        if size.is_empty() || size.contains('/') || size.contains('.') {
            return Err(Error::InvalidResource {
                field: "hugepageLimits.pageSize",
                reason: format!("{size:?} is not a page size like \"2MB\""),
            });
        }
        let (limit_file, rsvd_file, value) = match version {
            Version::V1 => (
                format!("hugetlb.{size}.limit_in_bytes"),
                format!("hugetlb.{size}.rsvd.limit_in_bytes"),
                l.limit().to_string(),
            ),
            Version::V2 => (
                format!("hugetlb.{size}.max"),
                format!("hugetlb.{size}.rsvd.max"),
                fs::v2_limit(l.limit()),
            ),
        };
        if version == Version::V2 && !fs::exists(dir, &limit_file) {
            crate::controllers::enable_for_leaf(t.mount(), dir, "hugetlb")?;
        }
        if !fs::exists(dir, &limit_file) {
            return Err(Error::InvalidResource {
                field: "hugepageLimits.pageSize",
                reason: format!(
                    "page size {size:?} is not supported on this host (no {})",
                    dir.join(&limit_file).display()
                ),
            });
        }
        fs::write(dir, &limit_file, &value)?;
        if fs::exists(dir, &rsvd_file) {
            fs::write(dir, &rsvd_file, &value)?;
        }
    }
    Ok(())
}
