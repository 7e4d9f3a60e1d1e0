//! Loading and validating `config.json`.
//!
//! Parsing goes through `serde_path_to_error`, so a malformed file is reported with the JSON path
//! of the offending field. Unknown properties are ignored, as the runtime spec requires. Semantic
//! checks then refuse what the runtime cannot honour, naming the field.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec};
use thiserror::Error;

use crate::sysctl;

/// Why a `config.json` was refused.
#[derive(Debug, Error)]
pub enum SpecError {
    #[error("read {}: {errno}", path.display())]
    Read { path: PathBuf, errno: crate::Errno },
    #[error("parse {}: {field}: {message}", path.display())]
    Parse {
        path: PathBuf,
        field: String,
        message: String,
    },
    #[error("config.json: {field}: {reason}")]
    Invalid { field: String, reason: String },
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> SpecError {
    SpecError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

/// Reads and parses `<bundle>/config.json`. Returns the spec and the file's bytes (kept so the
/// container's record can store them without serializing again).
pub fn load(bundle: &Path) -> Result<(Spec, Vec<u8>), SpecError> {
    let path = bundle.join("config.json");
    let bytes = std::fs::read(&path).map_err(|e| SpecError::Read {
        path: path.clone(),
        errno: crate::Errno::from(e),
    })?;
    let spec = parse(&path, &bytes)?;
    Ok((spec, bytes))
}

/// Parses config bytes; `path` only labels errors.
pub fn parse(path: &Path, bytes: &[u8]) -> Result<Spec, SpecError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let field = match err.path().to_string() {
            p if p == "." => "(top level)".to_owned(),
            p => p,
        };
        SpecError::Parse {
            path: path.to_owned(),
            field,
            message: err.into_inner().to_string(),
        }
    })
}

/// The namespaces a config asks for: new ones and ones to join by path.
pub fn namespace_set(spec: &Spec) -> HashSet<LinuxNamespaceType> {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .map(|ns| ns.iter().map(|n| n.typ()).collect())
        .unwrap_or_default()
}

/// Checks what parsing cannot: required fields, consistency between fields, and values the
/// runtime cannot apply. `bundle` resolves a relative `root.path`.
pub fn validate(spec: &Spec, bundle: &Path) -> Result<(), SpecError> {
    let version = spec.version();
    if !version.starts_with("1.") {
        return Err(invalid(
            "ociVersion",
            format!("unsupported version {version:?} (this runtime implements 1.x)"),
        ));
    }

    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| invalid("root", "missing"))?;
    if root.path().as_os_str().is_empty() {
        return Err(invalid("root.path", "must not be empty"));
    }
    let rootfs = bundle.join(root.path());
    match std::fs::metadata(&rootfs) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(invalid(
                "root.path",
                format!("{} is not a directory", rootfs.display()),
            ));
        }
        Err(e) => {
            return Err(invalid(
                "root.path",
                format!("{}: {}", rootfs.display(), crate::Errno::from_io(&e)),
            ));
        }
    }

    validate_process(spec)?;

    let Some(linux) = spec.linux().as_ref() else {
        return Ok(());
    };
    let mut seen = HashSet::new();
    for (i, ns) in linux.namespaces().iter().flatten().enumerate() {
        if !seen.insert(ns.typ()) {
            return Err(invalid(
                format!("linux.namespaces[{i}]"),
                format!("duplicate namespace type {}", ns_name(ns.typ())),
            ));
        }
        if let Some(path) = ns.path() {
            if !path.is_absolute() {
                return Err(invalid(
                    format!("linux.namespaces[{i}].path"),
                    format!("{} is not an absolute path", path.display()),
                ));
            }
        }
    }
    let has = |t| seen.contains(&t);

    let maps = linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty())
        || linux.gid_mappings().as_ref().is_some_and(|m| !m.is_empty());
    let new_userns = linux
        .namespaces()
        .iter()
        .flatten()
        .any(|n| n.typ() == LinuxNamespaceType::User && n.path().is_none());
    if maps && !has(LinuxNamespaceType::User) {
        return Err(invalid(
            "linux.uidMappings",
            "mappings given but no user namespace is configured",
        ));
    }
    if new_userns {
        if linux.uid_mappings().as_ref().is_none_or(|m| m.is_empty()) {
            return Err(invalid(
                "linux.uidMappings",
                "a new user namespace needs at least one uid mapping",
            ));
        }
        if linux.gid_mappings().as_ref().is_none_or(|m| m.is_empty()) {
            return Err(invalid(
                "linux.gidMappings",
                "a new user namespace needs at least one gid mapping",
            ));
        }
    }

    if spec.hostname().as_ref().is_some_and(|h| !h.is_empty()) && !has(LinuxNamespaceType::Uts) {
        return Err(invalid(
            "hostname",
            "setting the hostname needs a private UTS namespace",
        ));
    }
    if spec.domainname().as_ref().is_some_and(|h| !h.is_empty()) && !has(LinuxNamespaceType::Uts) {
        return Err(invalid(
            "domainname",
            "setting the domainname needs a private UTS namespace",
        ));
    }
    if linux.time_offsets().as_ref().is_some_and(|t| !t.is_empty()) {
        if !has(LinuxNamespaceType::Time) {
            return Err(invalid(
                "linux.timeOffsets",
                "offsets given but no time namespace is configured",
            ));
        }
        for clock in linux.time_offsets().iter().flat_map(|t| t.keys()) {
            if clock != "monotonic" && clock != "boottime" {
                return Err(invalid(
                    format!("linux.timeOffsets.{clock}"),
                    "only \"monotonic\" and \"boottime\" can be offset",
                ));
            }
        }
    }

    for (key, _) in linux.sysctl().iter().flatten() {
        sysctl::check_namespaced(key, &seen)
            .map_err(|reason| invalid(format!("linux.sysctl.{key}"), reason))?;
    }

    if let Some(prop) = linux.rootfs_propagation() {
        if crate::mounts::propagation_flag(prop).is_none() {
            return Err(invalid(
                "linux.rootfsPropagation",
                format!("unknown propagation {prop:?}"),
            ));
        }
    }

    for (i, p) in linux.masked_paths().iter().flatten().enumerate() {
        if !p.starts_with('/') {
            return Err(invalid(
                format!("linux.maskedPaths[{i}]"),
                format!("{p:?} is not an absolute path"),
            ));
        }
    }
    for (i, p) in linux.readonly_paths().iter().flatten().enumerate() {
        if !p.starts_with('/') {
            return Err(invalid(
                format!("linux.readonlyPaths[{i}]"),
                format!("{p:?} is not an absolute path"),
            ));
        }
    }
    for (i, d) in linux.devices().iter().flatten().enumerate() {
        if !d.path().is_absolute() {
            return Err(invalid(
                format!("linux.devices[{i}].path"),
                format!("{} is not an absolute path", d.path().display()),
            ));
        }
    }
    if linux.intel_rdt().is_some() {
        return Err(invalid("linux.intelRdt", "not supported by this runtime"));
    }
    if linux.memory_policy().is_some() {
        return Err(invalid(
            "linux.memoryPolicy",
            "not supported by this runtime",
        ));
    }
    if linux.net_devices().as_ref().is_some_and(|d| !d.is_empty()) {
        return Err(invalid("linux.netDevices", "not supported by this runtime"));
    }

    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        crate::mounts::validate(m).map_err(|reason| invalid(format!("mounts[{i}]"), reason))?;
    }
    Ok(())
}

fn validate_process(spec: &Spec) -> Result<(), SpecError> {
    let Some(process) = spec.process().as_ref() else {
        return Err(invalid("process", "missing (required to run a container)"));
    };
    if process.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err(invalid("process.args", "must not be empty"));
    }
    if !process.cwd().is_absolute() {
        return Err(invalid(
            "process.cwd",
            format!("{:?} is not an absolute path", process.cwd()),
        ));
    }
    for (i, var) in process.env().iter().flatten().enumerate() {
        if !var.contains('=') || var.starts_with('=') {
            return Err(invalid(
                format!("process.env[{i}]"),
                format!("{var:?} is not of the form NAME=value"),
            ));
        }
    }
    for (i, rl) in process.rlimits().iter().flatten().enumerate() {
        if rl.soft() > rl.hard() {
            return Err(invalid(
                format!("process.rlimits[{i}]"),
                format!("soft limit {} exceeds hard limit {}", rl.soft(), rl.hard()),
            ));
        }
    }
    if process.terminal() == Some(true) && process.console_size().is_some() {
        // fine: applied to the pty
    }
    if let Some(io) = process.io_priority() {
        if !(0..=7).contains(&io.priority()) {
            return Err(invalid(
                "process.ioPriority.priority",
                format!("{} is out of range (0 to 7)", io.priority()),
            ));
        }
    }
    if process.scheduler().is_some() {
        return Err(invalid(
            "process.scheduler",
            "not supported by this runtime",
        ));
    }
    if process.exec_cpu_affinity().is_some() {
        return Err(invalid(
            "process.execCPUAffinity",
            "not supported by this runtime",
        ));
    }
    Ok(())
}

/// The spec's name of a namespace type.
pub fn ns_name(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Mount => "mount",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "network",
        LinuxNamespaceType::Time => "time",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(s: &str) -> Result<Spec, SpecError> {
        parse(Path::new("config.json"), s.as_bytes())
    }

    #[test]
    fn malformed_json_names_the_field() {
        let err = parse_str(r#"{"ociVersion":"1.0.2","process":{"cwd":"/","user":{"uid":"x"}}}"#)
            .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("process.user.uid"), "{msg}");
    }

    #[test]
    fn unknown_namespace_type_names_the_field() {
        let err = parse_str(
            r#"{"ociVersion":"1.0.2","linux":{"namespaces":[{"type":"pid"},{"type":"bogus"}]}}"#,
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("linux.namespaces[1].type"), "{msg}");
        assert!(msg.contains("bogus"), "{msg}");
    }

    #[test]
    fn unknown_properties_are_ignored() {
        let spec = parse_str(r#"{"ociVersion":"1.0.2","somethingNew":{"a":1}}"#).unwrap();
        assert_eq!(spec.version(), "1.0.2");
    }

    #[test]
    fn not_json_is_a_parse_error() {
        let err = parse_str("{not json").unwrap_err();
        assert!(matches!(err, SpecError::Parse { .. }), "{err}");
    }
}
