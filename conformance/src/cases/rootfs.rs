//! config.md "Root", config-linux.md "Rootfs Mount Propagation", the
//! `--no-pivot` flag, and the masked and read-only paths.

use super::Entry;
use crate::bundle::Bundle;
use crate::harness::{Ctx, Fail, R};
use crate::report::Report;
use crate::{ensure, ensure_eq};

pub const CASES: &[Entry] = &[
    ("rootfs.readonly", readonly),
    ("rootfs.readwrite", readwrite),
    ("rootfs.absolute-path", absolute),
    ("rootfs.host-hidden", host_hidden),
    ("rootfs.no-pivot", no_pivot),
    ("rootfs.propagation-shared", |c| propagation(c, "shared")),
    ("rootfs.propagation-slave", |c| propagation(c, "slave")),
    ("rootfs.propagation-private", |c| propagation(c, "private")),
    ("rootfs.masked-paths", masked),
    ("rootfs.readonly-paths", readonly_paths),
];

fn readonly(ctx: &mut Ctx) -> R {
    let mut b = ctx.bundle()?;
    b.config["root"]["readonly"] = true.into();
    b.report(&["--ro", "/", "--ro", "/bin"]);
    let r = ctx.report(&b)?;
    ensure_eq!(r.probe("ro", "/").as_bool(), Some(true), "/ read-only");
    ensure_eq!(
        r.probe("ro", "/bin").as_bool(),
        Some(true),
        "/bin read-only"
    );
    let root = r.mount("/").ok_or("no / in mountinfo")?;
    ensure!(
        crate::report::opts(root, "options").contains(&"ro".to_string()),
        "/ mount not ro: {root}"
    );
    Ok(())
}

fn readwrite(ctx: &mut Ctx) -> R {
    let mut b = ctx.bundle()?;
    b.config["root"]["readonly"] = false.into();
    b.report(&["--mkdir", "/made-inside"]);
    let r = ctx.report(&b)?;
    ensure_eq!(
        r.probe("mkdir", "/made-inside").as_str().unwrap_or(""),
        "ok",
        "mkdir in a writable root"
    );
    ensure!(
        b.rootfs().join("made-inside").is_dir(),
        "the directory is not in the bundle's rootfs"
    );
    Ok(())
}

fn absolute(ctx: &mut Ctx) -> R {
    let mut b = ctx.bundle()?;
    b.config["root"]["path"] = b.rootfs().display().to_string().into();
    ctx.report(&b)?;
    Ok(())
}

/// A file beside the bundle must not be reachable at its host path.
fn hidden(ctx: &mut Ctx, b: &mut Bundle) -> Result<String, Fail> {
    let marker = ctx.dir.join("host-marker");
    std::fs::write(&marker, "host")?;
    let m = marker.display().to_string();
    b.report(&["--stat", &m, "--stat", "/oci-checker"]);
    Ok(m)
}

fn host_hidden(ctx: &mut Ctx) -> R {
    let mut b = ctx.bundle()?;
    let m = hidden(ctx, &mut b)?;
    let r = ctx.report(&b)?;
    ensure_eq!(
        r.probe("stat", &m)["error"].as_str().unwrap_or("visible"),
        "ENOENT",
        "host file seen from inside"
    );
    Ok(())
}

fn no_pivot(ctx: &mut Ctx) -> R {
    let mut b = ctx.bundle()?;
    let m = hidden(ctx, &mut b)?;
    b.save()?;
    let id = ctx.new_id();
    let out = ctx.rt(&["create", "--no-pivot", "--bundle", &b.path(), &id]);
    ensure!(out.success(), "create --no-pivot: {}", out.describe());
    ctx.rt_ok(&["start", &id])?;
    ctx.wait_status(&id, "stopped")?;
    let r = Report::parse(&out.stdout_now())?;
    ensure_eq!(
        r.probe("stat", &m)["error"].as_str().unwrap_or("visible"),
        "ENOENT",
        "host file seen from inside"
    );
    ensure_eq!(
        r.probe("stat", "/oci-checker")["type"]
            .as_str()
            .unwrap_or(""),
        "file",
        "/oci-checker"
    );
    Ok(())
}

fn propagation(ctx: &mut Ctx, mode: &str) -> R {
    let mut b = ctx.bundle()?;
    b.config["linux"]["rootfsPropagation"] = mode.into();
    let r = ctx.report(&b)?;
    let root = r.mount("/").ok_or("no / in mountinfo")?;
    let optional = root["optional"].as_str().unwrap_or("");
    let (shared, slave) = (optional.contains("shared:"), optional.contains("master:"));
    // A slave of a mount that is not shared on the host has no master: private.
    let host_shared = crate::host::propagation_of(&b.rootfs()).contains("shared:");
    let ok = match mode {
        "shared" => shared,
        "slave" => !shared && slave == host_shared,
        _ => !shared && !slave,
    };
    ensure!(
        ok,
        "rootfsPropagation {mode}: / has propagation {optional:?}"
    );
    Ok(())
}

fn masked(ctx: &mut Ctx) -> R {
    let mut b = ctx.bundle()?;
    let paths = [
        "/proc/kcore",
        "/proc/keys",
        "/proc/timer_list",
        "/sys/firmware",
        "/proc/acpi",
        "/proc/scsi",
    ];
    b.config["linux"]["maskedPaths"] = serde_json::json!(paths);
    let mut probes = Vec::new();
    for p in paths {
        probes.extend(["--stat", p, "--read", p]);
    }
    b.report(&probes);
    let r = ctx.report(&b)?;
    let mut checked = 0;
    for p in paths {
        let st = r.probe("stat", p);
        match st["type"].as_str() {
            None => continue, // absent on this kernel: nothing to mask
            Some("dir") => {
                let m = r
                    .mount(p)
                    .ok_or(format!("{p}: masked directory is not a mount"))?;
                ensure!(
                    crate::report::opts(m, "options").contains(&"ro".to_string()),
                    "{p}: masked directory not ro: {m}"
                );
            }
            Some(_) => {
                ensure!(
                    st["type"] == "char" && st["major"] == 1 && st["minor"] == 3,
                    "{p}: masked file is not /dev/null: {st}"
                );
                ensure_eq!(
                    r.probe("read", p).as_str().unwrap_or("?"),
                    "",
                    format!("{p} contents")
                );
            }
        }
        checked += 1;
    }
    ensure!(checked > 0, "none of the masked paths exist here");
    Ok(())
}

fn readonly_paths(ctx: &mut Ctx) -> R {
    let mut b = ctx.bundle()?;
    let paths = ["/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus"];
    b.config["linux"]["readonlyPaths"] = serde_json::json!(paths);
    let mut probes = Vec::new();
    for p in paths {
        probes.extend(["--ro", p, "--stat", p]);
    }
    b.report(&probes);
    let r = ctx.report(&b)?;
    for p in paths {
        if r.probe("stat", p)["error"].is_string() {
            continue;
        }
        ensure_eq!(
            r.probe("ro", p).as_bool(),
            Some(true),
            format!("{p} read-only")
        );
    }
    Ok(())
}
