//! Linux security modules: the AppArmor profile and SELinux label of the container's process.
//!
//! As in runc, a profile or label is applied only when the module is enabled on the host, and
//! ignored otherwise (Docker, for one, sets them on hosts that have the module). Whether a module
//! is enabled is read by the runtime on the host side, and the label is written through a
//! private procfs instance, never through the container's /proc.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::errno::Errno;
use crate::procfs::ProcFs;

/// An LSM step that failed.
#[derive(Debug, Error, Serialize, Deserialize)]
pub enum LsmError {
    #[error("apply AppArmor profile {profile:?}: {errno}")]
    AppArmor { profile: String, errno: Errno },
    #[error("apply SELinux label {label:?}: {errno}")]
    SeLinux { label: String, errno: Errno },
}

/// Which modules the host has enabled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Lsm {
    pub apparmor: bool,
    pub selinux: bool,
}

impl Lsm {
    /// Reads the host's state (call on the runtime's side, before entering the container).
    pub fn detect() -> Lsm {
        Lsm {
            apparmor: std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
                .is_ok_and(|s| s.trim() == "Y"),
            selinux: std::path::Path::new("/sys/fs/selinux/enforce").exists(),
        }
    }
}

/// Sets what the next execve runs under: `exec <profile>` for AppArmor, the label for SELinux.
pub fn apply(lsm: Lsm, apparmor: Option<&str>, selinux: Option<&str>) -> Result<(), LsmError> {
    let apparmor = apparmor.filter(|p| !p.is_empty() && lsm.apparmor);
    let selinux = selinux.filter(|l| !l.is_empty() && lsm.selinux);
    if apparmor.is_none() && selinux.is_none() {
        return Ok(());
    }
    let pid = PathBuf::from(std::process::id().to_string());
    if let Some(profile) = apparmor {
        let err = |errno| LsmError::AppArmor {
            profile: profile.to_owned(),
            errno,
        };
        let proc = ProcFs::new_private().map_err(err)?;
        let data = format!("exec {profile}");
        proc.write(&pid.join("attr/apparmor/exec"), data.as_bytes())
            .or_else(|_| proc.write(&pid.join("attr/exec"), data.as_bytes()))
            .map_err(err)?;
    }
    if let Some(label) = selinux {
        let err = |errno| LsmError::SeLinux {
            label: label.to_owned(),
            errno,
        };
        let proc = ProcFs::new_private().map_err(err)?;
        proc.write(&pid.join("attr/exec"), label.as_bytes())
            .map_err(err)?;
    }
    Ok(())
}
