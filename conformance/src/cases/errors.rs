//! Errors (runtime.md "Errors", "Operations"): bad input is refused with exit
//! status 1 and a message, and leaves nothing behind.

use super::{Entry, expect_error};
use crate::bundle::Bundle;
use crate::harness::{Ctx, R};
use crate::{ensure, ensure_eq};

pub const CASES: &[Entry] = &[
    ("errors.malformed-config", |c| {
        bad_bundle(c, |b| b.save_raw("{\"ociVersion\": "))
    }),
    ("errors.missing-config", |c| {
        bad_bundle(c, |b| std::fs::remove_file(b.dir.join("config.json")))
    }),
    ("errors.missing-rootfs", |c| {
        bad_config(c, |b| b.config["root"]["path"] = "no-such-dir".into())
    }),
    ("errors.unknown-namespace-type", |c| {
        bad_config(c, |b| b.namespace("foo", None))
    }),
    ("errors.empty-args", |c| {
        bad_config(c, |b| b.config["process"]["args"] = serde_json::json!([]))
    }),
    ("errors.id-with-slash", |c| bad_id(c, "a/b")),
    ("errors.id-dotdot", |c| bad_id(c, "..")),
    ("errors.id-empty", |c| bad_id(c, "")),
    ("errors.duplicate-id", duplicate_id),
    ("errors.state-missing-container", |c| missing(c, &["state"])),
    ("errors.start-missing-container", |c| missing(c, &["start"])),
    ("errors.kill-missing-container", |c| missing(c, &["kill"])),
    ("errors.delete-missing-container", |c| {
        missing(c, &["delete"])
    }),
    ("errors.missing-executable", missing_executable),
];

impl Bundle {
    fn save_raw(&self, text: &str) -> std::io::Result<()> {
        std::fs::write(self.dir.join("config.json"), text)
    }
}

/// A create that must fail: exit 1, a message, no state, nothing in --root.
fn refused_create(ctx: &mut Ctx, b: &Bundle, id: &str) -> R {
    let pid_file = ctx.dir.join("refused.pid");
    let out = ctx.rt(&[
        "create",
        "--bundle",
        &b.path(),
        "--pid-file",
        &pid_file.display().to_string(),
        id,
    ]);
    expect_error(&out, "create")?;
    ensure!(
        !pid_file.exists(),
        "pid file written although create failed"
    );
    if !id.is_empty() && !id.contains('/') && id != ".." {
        expect_error(&ctx.rt(&["state", id]), "state after failed create")?;
    }
    Ok(())
}

fn bad_bundle(ctx: &mut Ctx, spoil: impl Fn(&Bundle) -> std::io::Result<()>) -> R {
    let mut b = ctx.bundle()?;
    b.sh("true");
    b.save()?;
    spoil(&b)?;
    let id = ctx.new_id();
    refused_create(ctx, &b, &id)
}

fn bad_config(ctx: &mut Ctx, spoil: impl Fn(&mut Bundle)) -> R {
    let mut b = ctx.bundle()?;
    b.sh("true");
    spoil(&mut b);
    b.save()?;
    let id = ctx.new_id();
    refused_create(ctx, &b, &id)
}

fn bad_id(ctx: &mut Ctx, id: &str) -> R {
    let mut b = ctx.bundle()?;
    b.sh("true");
    b.save()?;
    refused_create(ctx, &b, id)?;
    let parent = ctx
        .root
        .parent()
        .map(|p| p.to_path_buf())
        .unwrap_or_default();
    ensure!(
        !parent.join("b").exists() && !ctx.root.join("a").exists(),
        "the id made a path outside its place"
    );
    Ok(())
}

fn duplicate_id(ctx: &mut Ctx) -> R {
    let mut b = ctx.bundle()?;
    b.sh("true");
    let (id, _) = ctx.create(&b)?;
    let pid_before = ctx.state(&id)?["pid"].clone();
    let out = ctx.rt(&["create", "--bundle", &b.path(), &id]);
    expect_error(&out, "second create with the same id")?;
    let st = ctx.state(&id)?;
    ensure_eq!(
        st["status"].as_str().unwrap_or(""),
        "created",
        "status of the first container"
    );
    ensure_eq!(st["pid"], pid_before, "pid of the first container");
    Ok(())
}

fn missing(ctx: &mut Ctx, op: &[&str]) -> R {
    let mut args = op.to_vec();
    args.push("no-such-container");
    if op == ["kill"] {
        args.push("KILL");
    }
    let out = ctx.rt(&args);
    expect_error(&out, op[0])?;
    ensure!(
        out.stderr.contains("does not exist"),
        "{}: message lacks \"does not exist\": {:?}",
        op[0],
        out.stderr
    );
    Ok(())
}

fn missing_executable(ctx: &mut Ctx) -> R {
    let mut b = ctx.bundle()?;
    b.args(&["/no/such/binary"]);
    b.save()?;
    let id = ctx.new_id();
    let out = ctx.rt(&["create", "--bundle", &b.path(), &id]);
    if out.success() {
        let start = ctx.rt(&["start", &id]);
        ensure!(
            !start.success(),
            "create and start of a missing executable both succeeded"
        );
        ensure!(
            !start.stderr.trim().is_empty(),
            "start failed without a message"
        );
    } else {
        expect_error(&out, "create of a missing executable")?;
    }
    Ok(())
}
