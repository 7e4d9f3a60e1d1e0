//! `process.rlimits`.

use oci_spec::runtime::{PosixRlimit, PosixRlimitType};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::errno::{Errno, check};

/// An rlimit that could not be set.
#[derive(Debug, Error, Serialize, Deserialize)]
#[error("set {name} (soft {soft}, hard {hard}): {errno}{hint}")]
pub struct RlimitError {
    pub name: String,
    pub soft: u64,
    pub hard: u64,
    pub errno: Errno,
    pub hint: String,
}

#[cfg(target_env = "gnu")]
type Resource = libc::__rlimit_resource_t;
#[cfg(not(target_env = "gnu"))]
type Resource = libc::c_int;

fn resource(t: PosixRlimitType) -> (Resource, &'static str) {
    use PosixRlimitType::*;
    match t {
        RlimitCpu => (libc::RLIMIT_CPU, "RLIMIT_CPU"),
        RlimitFsize => (libc::RLIMIT_FSIZE, "RLIMIT_FSIZE"),
        RlimitData => (libc::RLIMIT_DATA, "RLIMIT_DATA"),
        RlimitStack => (libc::RLIMIT_STACK, "RLIMIT_STACK"),
        RlimitCore => (libc::RLIMIT_CORE, "RLIMIT_CORE"),
        RlimitRss => (libc::RLIMIT_RSS, "RLIMIT_RSS"),
        RlimitNproc => (libc::RLIMIT_NPROC, "RLIMIT_NPROC"),
        RlimitNofile => (libc::RLIMIT_NOFILE, "RLIMIT_NOFILE"),
        RlimitMemlock => (libc::RLIMIT_MEMLOCK, "RLIMIT_MEMLOCK"),
        RlimitAs => (libc::RLIMIT_AS, "RLIMIT_AS"),
        RlimitLocks => (libc::RLIMIT_LOCKS, "RLIMIT_LOCKS"),
        RlimitSigpending => (libc::RLIMIT_SIGPENDING, "RLIMIT_SIGPENDING"),
        RlimitMsgqueue => (libc::RLIMIT_MSGQUEUE, "RLIMIT_MSGQUEUE"),
        RlimitNice => (libc::RLIMIT_NICE, "RLIMIT_NICE"),
        RlimitRtprio => (libc::RLIMIT_RTPRIO, "RLIMIT_RTPRIO"),
        RlimitRttime => (libc::RLIMIT_RTTIME, "RLIMIT_RTTIME"),
    }
}

/// Sets each limit on the calling process.
pub fn apply(limits: &[PosixRlimit]) -> Result<(), RlimitError> {
    for rl in limits {
        let (res, name) = resource(rl.typ());
        let lim = libc::rlimit {
            rlim_cur: rl.soft(),
            rlim_max: rl.hard(),
        };
        // SAFETY: `lim` is a valid rlimit.
        if let Err(errno) = check(unsafe { libc::setrlimit(res, &lim) }) {
            let hint = if errno.0 == libc::EPERM {
                " (raising a hard limit above the current one needs CAP_SYS_RESOURCE)".to_owned()
            } else {
                String::new()
            };
            return Err(RlimitError {
                name: name.to_owned(),
                soft: rl.soft(),
                hard: rl.hard(),
                errno,
                hint,
            });
        }
    }
    Ok(())
}
