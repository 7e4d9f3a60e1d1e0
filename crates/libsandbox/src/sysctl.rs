//! `linux.sysctl`: which keys are namespaced, and writing them through verified procfs.

use std::collections::HashSet;
use std::path::PathBuf;

use oci_spec::runtime::LinuxNamespaceType;

use crate::errno::Errno;
use crate::procfs::ProcFs;

const IPC_KEYS: &[&str] = &[
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

/// Refuses a sysctl that would change the host because the namespace it belongs to is not the
/// container's own (runc's rule). Returns the reason.
pub fn check_namespaced(key: &str, namespaces: &HashSet<LinuxNamespaceType>) -> Result<(), String> {
    // A key names one file below /proc/sys: no `..`, no empty or absolute parts, nothing that
    // could walk from a namespaced directory into a global one ("net/../kernel/hostname").
    let parts: Vec<&str> = key.split(['/', '.']).collect();
    let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/');
    if key.starts_with('/')
        || key.contains("..")
        || key.split('/').any(str::is_empty)
        || parts.iter().any(|p| p.is_empty())
        || !key.chars().all(plain)
    {
        return Err(
            "not a sysctl name (letters, digits, '_', '-', separated by '.' or '/')".into(),
        );
    }
    let key = key.replace('/', ".");
    let needs = if IPC_KEYS.contains(&key.as_str()) || key.starts_with("fs.mqueue.") {
        LinuxNamespaceType::Ipc
    } else if key.starts_with("net.") {
        LinuxNamespaceType::Network
    } else if key == "kernel.hostname" || key == "kernel.domainname" {
        LinuxNamespaceType::Uts
    } else {
        return Err("not in a namespace the container owns, so it would change the host".into());
    };
    if namespaces.contains(&needs) {
        Ok(())
    } else {
        Err(format!(
            "needs a private {} namespace",
            crate::spec::ns_name(needs)
        ))
    }
}

/// The procfs-relative file of a sysctl key (`net.ipv4.ip_forward` -> `sys/net/ipv4/ip_forward`).
pub fn key_path(key: &str) -> PathBuf {
    let rel = if key.contains('/') {
        key.to_owned()
    } else {
        key.replace('.', "/")
    };
    PathBuf::from("sys").join(rel.trim_start_matches('/'))
}

/// Writes one sysctl from inside the container's namespaces.
pub fn apply(proc: &ProcFs, key: &str, value: &str) -> Result<(), Errno> {
    proc.write(&key_path(key), value.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaced_keys_need_their_namespace() {
        let mut ns = HashSet::new();
        assert!(check_namespaced("net.ipv4.ip_forward", &ns).is_err());
        assert!(check_namespaced("kernel.shmmax", &ns).is_err());
        assert!(check_namespaced("vm.swappiness", &ns).is_err());
        ns.insert(LinuxNamespaceType::Network);
        ns.insert(LinuxNamespaceType::Ipc);
        for escape in [
            "net/../kernel/hostname",
            "net.ipv4/../../kernel/domainname",
            "/net/ipv4/ip_forward",
            "net//ipv4",
            "net.ipv4.",
            "net.ipv4.conf.eth0 .x",
        ] {
            assert!(check_namespaced(escape, &ns).is_err(), "{escape}");
        }
        assert!(check_namespaced("net.ipv4.ip_forward", &ns).is_ok());
        assert!(check_namespaced("kernel.shmmax", &ns).is_ok());
        assert!(check_namespaced("fs.mqueue.queues_max", &ns).is_ok());
        assert!(check_namespaced("kernel.hostname", &ns).is_err());
        assert!(check_namespaced("vm.swappiness", &ns).is_err());
    }

    #[test]
    fn keys_map_to_proc_sys_files() {
        assert_eq!(
            key_path("net.ipv4.ip_forward"),
            PathBuf::from("sys/net/ipv4/ip_forward")
        );
        assert_eq!(
            key_path("net/ipv4/conf/eth0.1/forwarding"),
            PathBuf::from("sys/net/ipv4/conf/eth0.1/forwarding")
        );
    }
}
