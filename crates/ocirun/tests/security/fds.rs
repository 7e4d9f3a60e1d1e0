//! CVE-2024-21626: a host fd open in the container's process (leaked by the runtime, or by
//! the runtime's caller and passed on) gives the container the host's filesystem, for example
//! with `process.cwd` set to `/proc/self/fd/N`. The caller here leaks two host directories to
//! the runtime on purpose, as fds 7 and 9.

use std::process::Command;

use serde_json::json;

use crate::world::{World, fds_in_listing, leak_fd, open_dir};

/// Lists the shell's own fds (`ls` is a child, so its directory fd is not in the listing).
const LIST_FDS: &str = "ls -l /proc/$$/fd; exit 0";

/// A process that must never run: it would say so, and show where it is.
const ESCAPED: &str = "echo ESCAPED; pwd; ls ../../..";

const LEAKED: [i32; 2] = [7, 9];

/// `cmd` with the outside directory leaked as fd 7 and the test directory as fd 9; the fds
/// are returned and must be kept until the command has run.
fn leaking(w: &World, mut cmd: Command) -> (Command, Vec<std::os::fd::OwnedFd>) {
    let fds = vec![open_dir(&w.outside), open_dir(&w.sb.dir)];
    for (fd, target) in fds.iter().zip(LEAKED) {
        leak_fd(&mut cmd, fd, target);
    }
    (cmd, fds)
}

fn assert_only_fds(listing: &str, expected: &[u32], what: &str) {
    assert_eq!(
        fds_in_listing(listing),
        expected,
        "{what}: the container process has fds it was not given:\n{listing}"
    );
}

#[test]
fn run_leaks_no_host_fd_into_the_container() {
    let w = World::new("fds-run");
    w.sb.write_config(&w.config_sh(LIST_FDS));
    let bundle = w.sb.bundle.to_str().unwrap().to_owned();
    let (cmd, _fds) = leaking(&w, w.cmd(&["run", "--bundle", &bundle, &w.sb.id("a")]));
    let (status, out, err) = w.output(cmd);
    assert_eq!(status, 0, "{err}");
    assert_only_fds(&out, &[0, 1, 2], "run");

    // With --preserve-fds 1, fd 3 is passed on purpose, and still nothing else.
    let (mut cmd, _fds) = leaking(
        &w,
        w.cmd(&[
            "run",
            "--preserve-fds",
            "1",
            "--bundle",
            &bundle,
            &w.sb.id("b"),
        ]),
    );
    let three = open_dir(&w.sb.bundle);
    leak_fd(&mut cmd, &three, 3);
    let (status, out, err) = w.output(cmd);
    assert_eq!(status, 0, "{err}");
    assert_only_fds(&out, &[0, 1, 2, 3], "run --preserve-fds 1");
}

#[test]
fn exec_leaks_no_host_fd_into_the_process() {
    let w = World::new("fds-exec");
    w.sb.write_config(&w.config_sh("exec sleep 100000"));
    let id = w.sb.id("c");
    let (status, _, err) =
        w.output(w.cmd(&["run", "-d", "--bundle", w.sb.bundle.to_str().unwrap(), &id]));
    assert_eq!(status, 0, "{err}");

    let (cmd, _fds) = leaking(&w, w.cmd(&["exec", &id, "sh", "-c", LIST_FDS]));
    let (status, out, err) = w.output(cmd);
    assert_eq!(status, 0, "exec: {err}");
    assert_only_fds(&out, &[0, 1, 2], "exec");

    let (mut cmd, _fds) = leaking(
        &w,
        w.cmd(&["exec", "--preserve-fds", "1", &id, "sh", "-c", LIST_FDS]),
    );
    let three = open_dir(&w.sb.bundle);
    leak_fd(&mut cmd, &three, 3);
    let (status, out, err) = w.output(cmd);
    assert_eq!(status, 0, "exec --preserve-fds 1: {err}");
    assert_only_fds(&out, &[0, 1, 2, 3], "exec --preserve-fds 1");
}

/// The cwds of the attack: every `/proc/self/fd/N` a runtime could have open (the caller's
/// leaked 7 and 9 among them), and an image symlink to one.
fn attack_cwds() -> Vec<String> {
    let mut cwds: Vec<String> = (3..=24).map(|n| format!("/proc/self/fd/{n}")).collect();
    cwds.push("/fdlink".into());
    cwds.push("/fdlink/..".into());
    cwds
}

fn prepare_fdlink(w: &World) {
    std::os::unix::fs::symlink("/proc/self/fd/7", w.in_rootfs("/fdlink")).unwrap();
}

#[test]
fn run_refuses_a_cwd_through_proc_self_fd() {
    let w = World::new("cwd-run");
    prepare_fdlink(&w);
    let before = w.snapshot();
    let bundle = w.sb.bundle.to_str().unwrap().to_owned();
    for (i, cwd) in attack_cwds().iter().enumerate() {
        let mut cfg = w.config_sh(ESCAPED);
        cfg["process"]["cwd"] = json!(cwd);
        w.sb.write_config(&cfg);
        let (cmd, _fds) = leaking(
            &w,
            w.cmd(&["run", "--bundle", &bundle, &w.sb.id(&format!("r{i}"))]),
        );
        let (status, out, err) = w.output(cmd);
        assert!(
            status != 0 && !out.contains("ESCAPED"),
            "run with cwd {cwd} was not refused (status {status}): {out} {err}"
        );
        assert!(
            err.contains(&format!("{cwd:?}")),
            "run with cwd {cwd}: the error does not name the cwd: {err}"
        );
    }
    w.assert_outside_untouched(&before, "cwd attacks in run");
}

#[test]
fn exec_refuses_a_cwd_through_proc_self_fd() {
    let w = World::new("cwd-exec");
    prepare_fdlink(&w);
    let before = w.snapshot();
    let cfg = w.config_sh("exec sleep 100000");
    w.sb.write_config(&cfg);
    let id = w.sb.id("c");
    let (status, _, err) =
        w.output(w.cmd(&["run", "-d", "--bundle", w.sb.bundle.to_str().unwrap(), &id]));
    assert_eq!(status, 0, "{err}");

    for (i, cwd) in attack_cwds().iter().enumerate() {
        let mut process = cfg["process"].clone();
        process["args"] = json!(["sh", "-c", ESCAPED]);
        process["cwd"] = json!(cwd);
        let pf = w.process_file(&format!("p{i}.json"), &process);
        let (cmd, _fds) = leaking(&w, w.cmd(&["exec", "--process", pf.to_str().unwrap(), &id]));
        let (status, out, err) = w.output(cmd);
        assert!(
            status == 255 && !out.contains("ESCAPED"),
            "exec with cwd {cwd} was not refused with status 255 (status {status}): {out} {err}"
        );
        assert!(
            err.contains(&format!("{cwd:?}")),
            "exec with cwd {cwd}: the error does not name the cwd: {err}"
        );
    }
    // The same through the command line's --cwd.
    let (cmd, _fds) = leaking(
        &w,
        w.cmd(&["exec", "--cwd", "/proc/self/fd/7", &id, "sh", "-c", ESCAPED]),
    );
    let (status, out, err) = w.output(cmd);
    assert!(
        status == 255 && !out.contains("ESCAPED"),
        "exec --cwd /proc/self/fd/7 was not refused (status {status}): {out} {err}"
    );
    w.assert_outside_untouched(&before, "cwd attacks in exec");
}
