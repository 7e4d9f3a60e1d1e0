//! `process.user`: supplementary groups, gid, uid and umask.
//!
//! Raw system calls set the calling thread's credentials directly: the process is
//! single-threaded by construction, and the C library's multi-thread broadcast is neither needed
//! nor safe after a raw `clone3`.

use oci_spec::runtime::User;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::errno::{Errno, check};

/// An identity step that failed.
#[derive(Debug, Error, Serialize, Deserialize)]
pub enum IdentityError {
    #[error("setgroups {gids:?}: {errno}")]
    Groups { gids: Vec<u32>, errno: Errno },
    #[error("setgid {gid}: {errno}")]
    Gid { gid: u32, errno: Errno },
    #[error("setuid {uid}: {errno}")]
    Uid { uid: u32, errno: Errno },
}

/// Sets supplementary groups (when `set_groups`: a user namespace with `setgroups` denied cannot),
/// then gid, then uid.
pub fn switch(user: &User, set_groups: bool) -> Result<(), IdentityError> {
    let gids: Vec<u32> = user.additional_gids().clone().unwrap_or_default();
    if set_groups {
        // SAFETY: `gids` holds gids.len() gid_t values.
        check(unsafe { libc::syscall(libc::SYS_setgroups, gids.len(), gids.as_ptr()) }).map_err(
            |errno| IdentityError::Groups {
                gids: gids.clone(),
                errno,
            },
        )?;
    }
    let (uid, gid) = (user.uid(), user.gid());
    // SAFETY: integer arguments only.
    check(unsafe { libc::syscall(libc::SYS_setresgid, gid, gid, gid) })
        .map_err(|errno| IdentityError::Gid { gid, errno })?;
    // SAFETY: integer arguments only.
    check(unsafe { libc::syscall(libc::SYS_setresuid, uid, uid, uid) })
        .map_err(|errno| IdentityError::Uid { uid, errno })?;
    Ok(())
}

/// Sets the umask: the configured one, or 0022 as runc does.
pub fn set_umask(user: &User) {
    let mask = user.umask().unwrap_or(0o022);
    // SAFETY: umask cannot fail.
    unsafe { libc::umask(mask as libc::mode_t) };
}
