//! `features`: what this runtime really supports, in the runtime spec's features.md shape.

use serde_json::json;

use crate::Failure;

const MOUNT_OPTIONS: &[&str] = &[
    "async",
    "atime",
    "bind",
    "defaults",
    "dev",
    "diratime",
    "dirsync",
    "exec",
    "lazytime",
    "mand",
    "noatime",
    "nodev",
    "nodiratime",
    "noexec",
    "nolazytime",
    "nomand",
    "norelatime",
    "nostrictatime",
    "nosuid",
    "nosymfollow",
    "private",
    "ratime",
    "rbind",
    "rdev",
    "rdiratime",
    "relatime",
    "remount",
    "rexec",
    "rnoatime",
    "rnodev",
    "rnodiratime",
    "rnoexec",
    "rnorelatime",
    "rnostrictatime",
    "rnosuid",
    "rnosymfollow",
    "ro",
    "rprivate",
    "rrelatime",
    "rro",
    "rrw",
    "rshared",
    "rslave",
    "rstrictatime",
    "rsuid",
    "rsymfollow",
    "runbindable",
    "rw",
    "shared",
    "silent",
    "slave",
    "strictatime",
    "suid",
    "symfollow",
    "sync",
    "tmpcopyup",
    "unbindable",
];

pub fn print() -> Result<i32, Failure> {
    let caps: Vec<&str> = libsandbox_caps();
    let host = cgroups::host_features().ok();
    let lsm = libsandbox::Lsm::detect();
    let v = json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": libsandbox::OCI_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": MOUNT_OPTIONS,
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
            "capabilities": caps,
            "cgroup": {
                "v1": host.as_ref().is_some_and(|h| h.v1),
                "v2": host.as_ref().is_some_and(|h| h.v2),
                "systemd": host.as_ref().is_some_and(|h| h.systemd_driver),
                "systemdUser": false,
                "rdma": host.as_ref().is_some_and(|h| h.rdma),
            },
            "seccomp": seccomp::features(),
            "apparmor": {"enabled": lsm.apparmor},
            "selinux": {"enabled": lsm.selinux},
            "intelRdt": {"enabled": false},
            "mountExtensions": {"idmap": {"enabled": false}},
        },
    });
    crate::out!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    Ok(0)
}

fn libsandbox_caps() -> Vec<&'static str> {
    libsandbox::CAPABILITY_NAMES.to_vec()
}
