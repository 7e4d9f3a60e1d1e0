//! config.md "Hostname", "Domainname"; config-linux.md "Sysctl".

use super::{Entry, expect_error};
use crate::harness::{Ctx, R};
use crate::{ensure, ensure_eq};
use serde_json::json;

pub const CASES: &[Entry] = &[
    ("system.hostname", hostname),
    ("system.domainname", domainname),
    ("system.sysctl", sysctl),
    (
        "system.hostname-without-uts-namespace-errors",
        hostname_shared_uts,
    ),
];

fn hostname(ctx: &mut Ctx) -> R {
    let mut b = ctx.bundle()?;
    b.config["hostname"] = "conformance-host".into();
    let r = ctx.report(&b)?;
    ensure_eq!(r.str("hostname"), "conformance-host", "hostname");
    Ok(())
}

fn domainname(ctx: &mut Ctx) -> R {
    let mut b = ctx.bundle()?;
    b.config["domainname"] = "conformance.example".into();
    let r = ctx.report(&b)?;
    ensure_eq!(r.str("domainname"), "conformance.example", "domainname");
    Ok(())
}

fn sysctl(ctx: &mut Ctx) -> R {
    let mut b = ctx.bundle()?;
    b.config["linux"]["sysctl"] = json!({
        "net.ipv4.ip_forward": "1",
        "net.ipv4.conf.all.forwarding": "1",
        "kernel.shmmni": "1234",
        "kernel.msgmax": "4321",
    });
    b.report(&[
        "--read",
        "/proc/sys/net/ipv4/ip_forward",
        "--read",
        "/proc/sys/kernel/shmmni",
        "--read",
        "/proc/sys/kernel/msgmax",
    ]);
    let r = ctx.report(&b)?;
    for (path, want) in [
        ("/proc/sys/net/ipv4/ip_forward", "1"),
        ("/proc/sys/kernel/shmmni", "1234"),
        ("/proc/sys/kernel/msgmax", "4321"),
    ] {
        ensure_eq!(
            r.probe("read", path).as_str().unwrap_or("?").trim(),
            want,
            path
        );
    }
    Ok(())
}

fn hostname_shared_uts(ctx: &mut Ctx) -> R {
    // config.md: "If hostname is set and there is no new UTS namespace, the runtime MUST generate an error"
    // is the reading of runtime-tools; a runtime that sets the host's name would change the host.
    let mut b = ctx.bundle()?;
    b.drop_namespace("uts");
    b.config["hostname"] = "must-not-reach-host".into();
    b.save()?;
    let id = ctx.new_id();
    let before = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let out = ctx.rt(&["create", "--bundle", &b.path(), &id]);
    let after = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    ensure_eq!(after, before, "host name");
    expect_error(&out, "create with hostname and a shared UTS namespace")?;
    ensure!(!ctx.root.join(&id).exists(), "state left in --root");
    Ok(())
}
