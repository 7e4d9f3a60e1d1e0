//! `oci-checker`: runs inside a container and reports, as one JSON object, what
//! the process sees of its environment. The runner compares the report with the
//! config it gave the runtime.
//!
//! Usage: `oci-checker report [--out FILE] [PROBE PATH]...` where PROBE is one of
//! `--stat`, `--read`, `--writable`, `--ro`, `--open`, `--open-w` (write-only),
//! `--mkdir`.
//! Built static (musl) so that it runs in a busybox rootfs.

mod probes;
mod sys;

use serde_json::{Map, Value, json};
use std::io::Write;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) != Some("report") {
        eprintln!(
            "usage: oci-checker report [--out FILE] [--stat|--read|--writable|--ro|--open|--open-w|--mkdir PATH]..."
        );
        std::process::exit(2);
    }
    let mut report = base_report();
    let mut out: Option<String> = None;
    let mut probes = Map::new();
    let mut it = args[2..].iter();
    while let Some(flag) = it.next() {
        let Some(path) = it.next() else {
            eprintln!("oci-checker: {flag} needs a value");
            std::process::exit(2);
        };
        if flag == "--out" {
            out = Some(path.clone());
            continue;
        }
        let Some(value) = probes::run(flag, path) else {
            eprintln!("oci-checker: unknown flag {flag}");
            std::process::exit(2);
        };
        let entry = probes
            .entry(flag.trim_start_matches("--").to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(m) = entry {
            m.insert(path.clone(), value);
        }
    }
    report.insert("probes".into(), Value::Object(probes));
    let text = Value::Object(report).to_string();
    let result = match out {
        Some(path) => std::fs::write(&path, text + "\n"),
        None => writeln!(std::io::stdout(), "{text}"),
    };
    if let Err(e) = result {
        eprintln!("oci-checker: writing report: {e}");
        std::process::exit(1);
    }
}

/// Everything that is reported without being asked for.
fn base_report() -> Map<String, Value> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| -> String {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(':')))
            .map(|v| v.trim().to_string())
            .unwrap_or_default()
    };
    let ids = |name: &str| -> Value {
        field(name)
            .split_whitespace()
            .filter_map(|s| s.parse::<u64>().ok())
            .collect::<Vec<_>>()
            .into()
    };
    let (nodename, domainname) = sys::uts_names();
    let mut m = Map::new();
    m.insert("pid".into(), json!(std::process::id()));
    m.insert("args".into(), json!(std::env::args().collect::<Vec<_>>()));
    m.insert(
        "env".into(),
        json!(
            std::env::vars_os()
                .map(|(k, v)| format!("{}={}", k.to_string_lossy(), v.to_string_lossy()))
                .collect::<Vec<_>>()
        ),
    );
    m.insert(
        "cwd".into(),
        json!(
            std::env::current_dir()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        ),
    );
    m.insert("uid".into(), ids("Uid"));
    m.insert("gid".into(), ids("Gid"));
    m.insert("groups".into(), ids("Groups"));
    m.insert("umask".into(), json!(field("Umask")));
    m.insert(
        "caps".into(),
        json!({
            "inheritable": field("CapInh"),
            "permitted": field("CapPrm"),
            "effective": field("CapEff"),
            "bounding": field("CapBnd"),
            "ambient": field("CapAmb"),
        }),
    );
    m.insert("no_new_privs".into(), json!(field("NoNewPrivs")));
    m.insert("seccomp".into(), json!(field("Seccomp")));
    m.insert(
        "oom_score_adj".into(),
        json!(read_trim("/proc/self/oom_score_adj")),
    );
    m.insert("hostname".into(), json!(nodename));
    m.insert("domainname".into(), json!(domainname));
    m.insert("ns".into(), namespaces());
    m.insert("rlimits".into(), sys::rlimits());
    m.insert("mounts".into(), mounts());
    m.insert("fds".into(), fds());
    m.insert("cgroup".into(), json!(read_trim("/proc/self/cgroup")));
    m.insert("uid_map".into(), json!(read_trim("/proc/self/uid_map")));
    m.insert("gid_map".into(), json!(read_trim("/proc/self/gid_map")));
    m.insert(
        "timens_offsets".into(),
        json!(read_trim("/proc/self/timens_offsets")),
    );
    m.insert("tty".into(), sys::tty());
    m.insert("ioprio".into(), json!(sys::ioprio()));
    m
}

fn read_trim(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|e| format!("error: {e}"))
}

/// Namespace inode numbers by type, from the /proc/self/ns links.
fn namespaces() -> Value {
    let mut m = Map::new();
    for ty in ["cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts"] {
        if let Ok(target) = std::fs::read_link(format!("/proc/self/ns/{ty}")) {
            let t = target.to_string_lossy();
            if let Some(ino) = t
                .split('[')
                .nth(1)
                .and_then(|s| s.trim_end_matches(']').parse::<u64>().ok())
            {
                m.insert(ty.to_string(), json!(ino));
            }
        }
    }
    Value::Object(m)
}

/// /proc/self/mountinfo, one object per line.
fn mounts() -> Value {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut list = Vec::new();
    for line in text.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let l: Vec<&str> = left.split(' ').collect();
        let r: Vec<&str> = right.split(' ').collect();
        if l.len() < 6 || r.len() < 3 {
            continue;
        }
        list.push(json!({
            "root": unescape(l[3]),
            "target": unescape(l[4]),
            "options": l[5],
            "optional": l[6..].join(" "),
            "fstype": r[0],
            "source": unescape(r[1]),
            "super": r[2],
        }));
    }
    Value::Array(list)
}

/// mountinfo escapes space, tab, newline and backslash as octal.
fn unescape(s: &str) -> String {
    let mut out = String::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() {
            if let Ok(n) = u8::from_str_radix(&s[i + 1..i + 4], 8) {
                out.push(n as char);
                i += 4;
                continue;
            }
        }
        out.push(b[i] as char);
        i += 1;
    }
    out
}

/// Open file descriptors and what they point at (less the one listing them).
fn fds() -> Value {
    let mut m = Map::new();
    let own = format!("/proc/{}/fd", std::process::id());
    if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
        for e in dir.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            let target = std::fs::read_link(e.path())
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            if target != own {
                m.insert(name, json!(target));
            }
        }
    }
    Value::Object(m)
}
