//! config.md "Process" terminal and consoleSize with `--console-socket` (the pty
//! master arrives over the unix socket via SCM_RIGHTS), `--preserve-fds`, and
//! socket activation (`LISTEN_FDS`), as runc callers use them.

use super::Entry;
use crate::console::{is_pty_master, read_all, receive_fd};
use crate::harness::{Ctx, R};
use crate::report::Report;
use crate::{ensure, ensure_eq};
use serde_json::json;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixListener;

pub const CASES: &[Entry] = &[
    ("terminal.console-socket", |c| console(c, false)),
    ("terminal.console-size", |c| console(c, true)),
    ("terminal.dev-console", dev_console),
    ("fds.preserve-fds", preserve_fds),
    ("fds.no-leaked-fds", no_leaks),
    ("fds.listen-fds", listen_fds),
];

/// Runs the bundle with a terminal; returns what the container wrote to it.
fn with_terminal(
    ctx: &mut Ctx,
    b: &mut crate::bundle::Bundle,
) -> Result<String, crate::harness::Fail> {
    b.config["process"]["terminal"] = true.into();
    b.save()?;
    let sock = ctx.dir.join("console.sock");
    let listener = UnixListener::bind(&sock)?;
    let id = ctx.new_id();
    let sock_s = sock.display().to_string();
    let e = ctx.exec(&[
        "create",
        "--bundle",
        &b.path(),
        "--console-socket",
        &sock_s,
        &id,
    ]);
    let mut create = ctx.spawn_exec(e, "create")?;
    let master = receive_fd(&listener, ctx.env.cmd_timeout, || !create.finished());
    let out = create.wait();
    ensure!(out.success(), "create with a terminal: {}", out.describe());
    let master: OwnedFd = master?;
    ensure!(
        is_pty_master(&master),
        "the fd received over the console socket is not a pty master"
    );
    ctx.rt_ok(&["start", &id])?;
    let text = read_all(&master, ctx.env.cmd_timeout);
    ctx.wait_status(&id, "stopped")?;
    Ok(text)
}

fn console(ctx: &mut Ctx, sized: bool) -> R {
    let mut b = ctx.bundle()?;
    if sized {
        b.config["process"]["consoleSize"] = json!({ "height": 37, "width": 111 });
    }
    let text = with_terminal(ctx, &mut b)?;
    let r = Report::parse(&text)?;
    ensure_eq!(
        r.0["tty"]["isatty"],
        json!([true, true, true]),
        "stdin, stdout, stderr are the terminal"
    );
    if sized {
        ensure_eq!(
            r.0["tty"]["winsize"],
            json!([37, 111]),
            "window size [rows, cols]"
        );
    }
    Ok(())
}

fn dev_console(ctx: &mut Ctx) -> R {
    let mut b = ctx.bundle()?;
    b.report(&["--stat", "/dev/console", "--stat", "/proc/self/fd/0"]);
    let text = with_terminal(ctx, &mut b)?;
    let r = Report::parse(&text)?;
    let st = r.probe("stat", "/dev/console");
    ensure!(
        st["type"] == "char" && st["major"] == 136,
        "/dev/console is not a pty slave: {st}"
    );
    Ok(())
}

fn open_null() -> std::io::Result<OwnedFd> {
    Ok(std::fs::File::open("/dev/null")?.into())
}

fn preserve_fds(ctx: &mut Ctx) -> R {
    let b = ctx.bundle()?;
    b.save()?;
    let id = ctx.new_id();
    let mut e = ctx.exec(&["run", "--preserve-fds", "2", "--bundle", &b.path(), &id]);
    e.extra_fds = vec![open_null()?, open_null()?, open_null()?];
    let out = ctx.run_exec(e, "run");
    ensure!(out.success(), "run --preserve-fds: {}", out.describe());
    let r = Report::parse(&out.stdout)?;
    let fds = &r.0["fds"];
    ensure_eq!(fds["3"].as_str().unwrap_or("closed"), "/dev/null", "fd 3");
    ensure_eq!(fds["4"].as_str().unwrap_or("closed"), "/dev/null", "fd 4");
    ensure!(
        fds.get("5").is_none(),
        "fd 5 was not preserved but is open: {}",
        fds["5"]
    );
    Ok(())
}

fn no_leaks(ctx: &mut Ctx) -> R {
    let b = ctx.bundle()?;
    b.save()?;
    let id = ctx.new_id();
    let mut e = ctx.exec(&["run", "--bundle", &b.path(), &id]);
    e.extra_fds = vec![open_null()?];
    let out = ctx.run_exec(e, "run");
    ensure!(out.success(), "run: {}", out.describe());
    let r = Report::parse(&out.stdout)?;
    let fds = r.0["fds"].as_object().cloned().unwrap_or_default();
    let extra: Vec<String> = fds
        .iter()
        .filter(|(k, _)| !["0", "1", "2"].contains(&k.as_str()))
        .map(|(k, v)| format!("{k} -> {v}"))
        .collect();
    ensure!(extra.is_empty(), "fds leaked into the container: {extra:?}");
    Ok(())
}

fn listen_fds(ctx: &mut Ctx) -> R {
    let b = ctx.bundle()?;
    b.save()?;
    let id = ctx.new_id();
    // LISTEN_PID must be the runtime's own pid: a shell exports it and execs.
    let mut argv = vec![
        ctx.env.busybox.display().to_string(),
        "sh".into(),
        "-c".into(),
        "export LISTEN_PID=$$ LISTEN_FDS=1; exec \"$@\"".into(),
        "sh".into(),
    ];
    let rt = ctx.exec(&["run", "--bundle", &b.path(), &id]);
    argv.extend(rt.argv.iter().cloned());
    let mut e = crate::exec::Exec::new(argv, ctx.env.cmd_timeout);
    e.extra_fds = vec![open_null()?];
    let out = ctx.run_exec(e, "run");
    ensure!(out.success(), "run with LISTEN_FDS=1: {}", out.describe());
    let r = Report::parse(&out.stdout)?;
    ensure_eq!(
        r.0["fds"]["3"].as_str().unwrap_or("closed"),
        "/dev/null",
        "fd 3 (the listen fd)"
    );
    let env = r.env();
    ensure!(
        env.contains(&"LISTEN_FDS=1".to_string()),
        "LISTEN_FDS not passed: {env:?}"
    );
    ensure!(
        env.contains(&"LISTEN_PID=1".to_string()),
        "LISTEN_PID is not 1: {env:?}"
    );
    Ok(())
}
