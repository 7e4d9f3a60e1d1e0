//! A terminal without a console socket: `run` and `exec` in the foreground relay the
//! container's pty to their own stdio, as runc does. `script` gives them a terminal to run in.

mod support;

use std::process::Command;

use serde_json::json;
use support::{Sandbox, ocirun_bin};

/// Runs `ocirun --root R ARGS` under `script` (a pty); returns its output with CRs removed.
fn under_a_terminal(sb: &Sandbox, args: &str) -> String {
    let cmd = format!(
        "stty cols 91 rows 17; {} --root {} {args}; echo status=$?",
        ocirun_bin().display(),
        sb.root.display()
    );
    let out = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .current_dir(&sb.bundle)
        .output()
        .expect("script (util-linux) runs");
    String::from_utf8_lossy(&out.stdout).replace('\r', "")
}

#[test]
fn run_and_exec_relay_a_terminal() {
    let sb = Sandbox::new("tty");
    let mut cfg = sb.config(&["sh", "-c", "tty; stty size; exit 3"]);
    cfg["process"]["terminal"] = json!(true);
    sb.write_config(&cfg);
    let id = sb.id("run");
    let text = under_a_terminal(&sb, &format!("run {id}"));
    assert!(text.contains("/dev/pts/0"), "{text}");
    assert!(
        text.contains("17 91"),
        "the window size is passed on: {text}"
    );
    assert!(text.contains("status=3"), "{text}");
    sb.assert_clean(&id);

    sb.write_config(&sb.config(&["sleep", "1000"]));
    let id = sb.id("exec");
    assert!(sb.ocirun(&["run", "-d", &id]).status.success());
    let text = under_a_terminal(&sb, &format!("exec -t {id} sh -c 'tty; stty size; exit 5'"));
    assert!(text.contains("/dev/pts/"), "{text}");
    assert!(text.contains("17 91"), "{text}");
    assert!(text.contains("status=5"), "{text}");
    // Detached, a terminal needs somewhere to go.
    let out = sb.ocirun(&["exec", "-d", "-t", &id, "true"]);
    assert_eq!(out.status.code(), Some(255));
    assert!(support::stderr(&out).contains("--console-socket"));
}
