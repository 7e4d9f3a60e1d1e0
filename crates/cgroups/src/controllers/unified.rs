//! `linux.resources.unified`: raw v2 files ("memory.high" = "1G"). Refused on v1; on hybrid
//! hosts accepted only for controllers the unified hierarchy has.

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::fs;
use crate::layout::{Layout, Version};
use crate::manager::Manager;

pub(crate) fn set(m: &Manager, unified: &HashMap<String, String>) -> Result<()> {
    if unified.is_empty() {
        return Ok(());
    }
    // Sorted, so the writes happen in a stable order.
    let mut keys: Vec<&String> = unified.keys().collect();
    keys.sort();
    for key in keys {
        let value = &unified[key];
        if key.is_empty() || key.contains('/') || key.starts_with('.') {
            return Err(Error::InvalidResource {
                field: "unified",
                reason: format!("{key:?} must be a file name in the cgroup directory"),
            });
        }
        let controller = key.split('.').next().unwrap_or("");
        let v2 = m
            .hierarchies()
            .iter()
            .find(|h| h.version == Version::V2)
            .filter(|h| m.layout() == Layout::V2 || h.controllers.iter().any(|c| c == controller));
        let Some(h) = v2 else {
            return Err(Error::UnifiedOnV1 { key: key.clone() });
        };
        if let Err(e) = fs::write(&h.path, key, value) {
            if e.errno() == Some(libc::ENOENT) && controller != "cgroup" {
                let parent = h.path.parent().unwrap_or(&h.path);
                let enabled =
                    fs::read_optional(parent, "cgroup.subtree_control")?.unwrap_or_default();
                if !enabled.split_whitespace().any(|c| c == controller) {
                    return Err(Error::InvalidResource {
                        field: "unified",
                        reason: format!(
                            "{key:?} can't be set: controller {controller:?} is not available"
                        ),
                    });
                }
            }
            return Err(e);
        }
    }
    Ok(())
}
