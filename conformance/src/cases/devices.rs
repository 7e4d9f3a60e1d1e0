//! config-linux.md "Devices", "Default Devices", "Device allowlist", and the
//! /dev symlinks runtimes make.

use super::Entry;
use crate::harness::{Ctx, R, skip};
use crate::{ensure, ensure_eq};
use serde_json::json;

pub const CASES: &[Entry] = &[
    ("devices.default-devices", defaults),
    ("devices.ptmx", ptmx),
    ("devices.dev-symlinks", symlinks),
    ("devices.linux-devices", linux_devices),
    ("devices.cgroup-allow", |c| allow(c, true)),
    ("devices.cgroup-deny", |c| allow(c, false)),
];

const DEFAULTS: [(&str, u64, u64); 6] = [
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

fn defaults(ctx: &mut Ctx) -> R {
    let mut b = ctx.bundle()?;
    let mut probes = Vec::new();
    for (p, _, _) in DEFAULTS {
        probes.extend(["--stat", p, "--open", p]);
    }
    b.report(&probes);
    let r = ctx.report(&b)?;
    for (p, major, minor) in DEFAULTS {
        let st = r.probe("stat", p);
        ensure!(
            st["type"] == "char" && st["major"] == major && st["minor"] == minor,
            "{p}: want char {major}:{minor}, got {st}"
        );
        ensure_eq!(st["mode"].as_u64(), Some(0o666), format!("{p} mode"));
        if p != "/dev/tty" {
            ensure_eq!(
                r.probe("open", p).as_str().unwrap_or(""),
                "ok",
                format!("open {p}")
            );
        }
    }
    Ok(())
}

fn ptmx(ctx: &mut Ctx) -> R {
    let mut b = ctx.bundle()?;
    b.report(&["--stat", "/dev/ptmx"]);
    let r = ctx.report(&b)?;
    let st = r.probe("stat", "/dev/ptmx");
    let ok = st["link"] == "pts/ptmx"
        || st["link"] == "/dev/pts/ptmx"
        || (st["type"] == "char" && st["major"] == 5 && st["minor"] == 2);
    ensure!(
        ok,
        "/dev/ptmx is neither a link to pts/ptmx nor the device: {st}"
    );
    Ok(())
}

fn symlinks(ctx: &mut Ctx) -> R {
    let mut b = ctx.bundle()?;
    let links = [
        ("/dev/fd", "/proc/self/fd"),
        ("/dev/stdin", "/proc/self/fd/0"),
        ("/dev/stdout", "/proc/self/fd/1"),
        ("/dev/stderr", "/proc/self/fd/2"),
    ];
    let mut probes = Vec::new();
    for (l, _) in links {
        probes.extend(["--stat", l]);
    }
    b.report(&probes);
    let r = ctx.report(&b)?;
    for (l, target) in links {
        ensure_eq!(
            r.probe("stat", l)["link"].as_str().unwrap_or(""),
            target,
            format!("{l} link")
        );
    }
    Ok(())
}

fn linux_devices(ctx: &mut Ctx) -> R {
    let mut b = ctx.bundle()?;
    b.config["linux"]["devices"] = json!([
        { "path": "/dev/conf-null", "type": "c", "major": 1, "minor": 3, "fileMode": 0o640, "uid": 1000, "gid": 1001 },
        { "path": "/dev/sub/conf-zero", "type": "c", "major": 1, "minor": 5 },
        // A FIFO: made like the others, and no device cgroup rule (FIFOs are not devices
        // the cgroup controls; runtime-tools' linux_devices has one).
        { "path": "/dev/conf-fifo", "type": "p" },
    ]);
    b.report(&[
        "--stat",
        "/dev/conf-null",
        "--stat",
        "/dev/sub/conf-zero",
        "--stat",
        "/dev/conf-fifo",
    ]);
    let r = ctx.report(&b)?;
    let st = r.probe("stat", "/dev/conf-null");
    ensure!(
        st["type"] == "char" && st["major"] == 1 && st["minor"] == 3,
        "/dev/conf-null: {st}"
    );
    ensure_eq!(st["mode"].as_u64(), Some(0o640), "/dev/conf-null fileMode");
    ensure_eq!(
        (st["uid"].as_u64(), st["gid"].as_u64()),
        (Some(1000), Some(1001)),
        "/dev/conf-null owner"
    );
    let st = r.probe("stat", "/dev/sub/conf-zero");
    ensure!(
        st["type"] == "char" && st["major"] == 1 && st["minor"] == 5,
        "/dev/sub/conf-zero: {st}"
    );
    let st = r.probe("stat", "/dev/conf-fifo");
    ensure!(st["type"] == "fifo", "/dev/conf-fifo: {st}");
    Ok(())
}

/// A device node that is neither a default device nor in linux.devices (the
/// host's /dev/kmsg, bind-mounted; opened write-only, which needs no privilege
/// and writes nothing) opens only if the allowlist allows it.
fn allow(ctx: &mut Ctx, allowed: bool) -> R {
    let dev = std::path::Path::new("/dev/kmsg");
    if !dev.exists() {
        return skip("no /dev/kmsg on this host");
    }
    let mut b = ctx.bundle()?;
    b.mount(json!({ "destination": "/mnt/kmsg", "type": "bind", "source": "/dev/kmsg", "options": ["bind"] }));
    let mut rules = vec![json!({ "allow": false, "access": "rwm" })];
    if allowed {
        rules.push(json!({ "allow": true, "type": "c", "major": 1, "minor": 11, "access": "w" }));
    }
    b.config["linux"]["resources"]["devices"] = json!(rules);
    b.report(&["--open-w", "/mnt/kmsg", "--open", "/dev/null"]);
    let r = ctx.report(&b)?;
    let want = if allowed { "ok" } else { "EPERM" };
    ensure_eq!(
        r.probe("open-w", "/mnt/kmsg").as_str().unwrap_or(""),
        want,
        "write-only open of c 1:11"
    );
    ensure_eq!(
        r.probe("open", "/dev/null").as_str().unwrap_or(""),
        "ok",
        "open /dev/null (a default device)"
    );
    Ok(())
}
