//! Cases a given runtime is known to get wrong, each with the reason. A known
//! failure is reported as skipped; if it starts passing, the line says so.
//! The runc table is what proves the suite: everything else passes on runc.

use std::collections::BTreeMap;
use std::path::Path;

/// runc 1.1.5 (Debian 12), checked on a hybrid cgroup host.
const RUNC: &[(&str, &str)] = &[
    (
        "lifecycle.delete-created-errors",
        "runc deletes a `created` container without --force (it kills it); runtime.md: deleting a container that is not stopped MUST generate an error",
    ),
    (
        "cli.list-json-empty",
        "runc 1.1 prints `null` for `list --format json` with no containers (callers expect `[]`)",
    ),
    (
        "process.io-priority",
        "runc 1.1 ignores process.ioPriority (runtime-spec 1.1; runc 1.2)",
    ),
    (
        "system.domainname",
        "runc 1.1.5 does not set `domainname` (/proc/sys/kernel/domainname stays \"(none)\")",
    ),
    (
        "namespaces.time",
        "runc 1.1 has no time namespace (runc 1.2): `namespace {\"time\" \"\"} does not exist`",
    ),
    (
        "rootfs.propagation-shared",
        "runc 1.1 makes the rootfs private for pivot_root and does not re-apply rootfsPropagation to / afterwards (fixed in later runc)",
    ),
    (
        "hooks.order",
        "runc 1.1 runs poststart hooks at the end of `create`, before `start` and before the startContainer hooks; runtime.md orders startContainer, the process, then poststart",
    ),
    (
        "hooks.state-on-stdin",
        "runc 1.1 gives createContainer/startContainer hooks the pid as seen in the container (1), not the host pid; poststart (run during create) sees status `created`",
    ),
    (
        "hooks.startContainer-failure",
        "runc 1.1 runs startContainer hooks in init after `start` has returned 0; a failing hook is not reported as an error of start",
    ),
    (
        "hooks.poststart-failure-continues",
        "runc 1.1 runs poststart hooks during `create` and fails create (and removes the container) when one fails; the spec says log a warning and continue",
    ),
    (
        "hooks.poststop-failure-continues",
        "runc 1.1 stops at the first failing poststop hook and skips the rest; the spec says the remaining hooks continue",
    ),
];

/// crun 1.8.1 (Debian 12), run under a pure-v1 view of a hybrid host; observed, optional.
const CRUN: &[(&str, &str)] = &[
    (
        "lifecycle.delete-created-errors",
        "crun deletes a `created` container without --force; runtime.md: deleting a container that is not stopped MUST generate an error",
    ),
    (
        "state.runc-fields",
        "crun reports `rootfs` as written in config.json (relative), not as an absolute path like runc",
    ),
    (
        "errors.state-missing-container",
        "crun's message for a missing container lacks \"does not exist\" (containerd matches it)",
    ),
    (
        "errors.start-missing-container",
        "crun's message for a missing container lacks \"does not exist\"",
    ),
    (
        "errors.kill-missing-container",
        "crun's message for a missing container lacks \"does not exist\"",
    ),
    (
        "errors.delete-missing-container",
        "crun's message for a missing container lacks \"does not exist\"",
    ),
    ("process.io-priority", "crun 1.8 ignores process.ioPriority"),
    (
        "namespaces.time",
        "crun 1.8.1 fails to create a container with a time namespace here: `write to sync socket: Connection reset by peer`",
    ),
    (
        "mounts.propagation-shared",
        "crun 1.8.1 leaves a tmpfs mount with the `shared` option private",
    ),
    (
        "hooks.order",
        "crun 1.8.1: the startContainer hook and the process are not logged before poststart (observed order differs from runtime.md)",
    ),
    (
        "hooks.state-on-stdin",
        "crun 1.8.1 gives createContainer/startContainer hooks pid 0, and startContainer bundle \"/\" and status \"starting\"",
    ),
    (
        "hooks.prestart-failure",
        "crun exits 255, not 1, when a prestart hook fails",
    ),
    (
        "hooks.createRuntime-failure",
        "crun exits 255, not 1, when a createRuntime hook fails",
    ),
    (
        "hooks.startContainer-failure",
        "crun `start` exits 0 when a startContainer hook fails",
    ),
    (
        "fds.listen-fds",
        "crun passes LISTEN_PID=1 and the fd but not LISTEN_FDS",
    ),
];

/// ocirun: deliberate deviations, each kept for compatibility with the callers.
const OCIRUN: &[(&str, &str)] = &[(
    "lifecycle.delete-created-errors",
    "deliberate, as runc and crun: containerd's shim deletes a created, never-started container without --force (createdState.Delete), so refusing would leave it behind; the init has run no user code",
)];

pub fn builtin(runtime_name: &str) -> BTreeMap<String, String> {
    let table: &[(&str, &str)] = match runtime_name {
        n if n.starts_with("runc") => RUNC,
        n if n.starts_with("crun") => CRUN,
        n if n.starts_with("ocirun") => OCIRUN,
        _ => &[],
    };
    table
        .iter()
        .map(|(c, r)| (c.to_string(), r.to_string()))
        .collect()
}

/// Reads `case-name reason...` lines; `#` starts a comment.
pub fn from_file(path: &Path) -> Result<BTreeMap<String, String>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| match l.split_once(char::is_whitespace) {
            Some((c, r)) => (c.to_string(), r.trim().to_string()),
            None => (l.to_string(), "listed".to_string()),
        })
        .collect())
}
