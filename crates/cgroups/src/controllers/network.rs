//! net_cls class id and net_prio interface priorities (v1 only: v2 has no such controllers).

use oci_spec::runtime::LinuxNetwork;

use super::Target;
use crate::error::Result;
use crate::fs;

pub(crate) fn set(cls: &Target<'_>, prio: &Target<'_>, n: &LinuxNetwork) -> Result<()> {
    if let Some(id) = n.class_id() {
        let (dir, _) = cls.get("network.classID")?;
        fs::write(dir, "net_cls.classid", &id.to_string())?;
    }
    let priorities = n.priorities().as_deref().unwrap_or(&[]);
    if !priorities.is_empty() {
        let (dir, _) = prio.get("network.priorities")?;
        for p in priorities {
            // The kernel takes one "ifname prio" per write.
            fs::write(
                dir,
                "net_prio.ifpriomap",
                &format!("{} {}", p.name(), p.priority()),
            )?;
        }
    }
    Ok(())
}
