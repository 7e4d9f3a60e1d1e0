//! Runs the whole conformance suite against the runtime named by `OCI_RUNTIME`.
//!
//!     cargo build -p ocirun-conformance --bin oci-checker --target x86_64-unknown-linux-musl
//!     OCI_RUNTIME=/path/to/runtime cargo test -p ocirun-conformance --test suite -- --nocapture
//!
//! Optional: `OCI_CHECKER` (default: the musl build in the same target directory),
//! `OCI_BUSYBOX` (default /bin/busybox), `OCI_FILTER` (one substring),
//! `OCI_KNOWN_FAILURES` (a file), `OCI_JOBS`. Without `OCI_RUNTIME` the test
//! only checks that the case list is sound.

use std::process::Command;

fn runner() -> Command {
    Command::new(env!("CARGO_BIN_EXE_oci-conformance"))
}

#[test]
fn case_names_are_unique_and_grouped() {
    let out = runner()
        .arg("--list")
        .output()
        .expect("run oci-conformance --list");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let names: Vec<&str> = text.lines().collect();
    assert!(names.len() > 100, "only {} cases", names.len());
    let mut sorted = names.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), names.len(), "duplicate case names");
    assert!(
        names.iter().all(|n| n.contains('.')),
        "every case is `group.name`"
    );
}

#[test]
fn suite_against_runtime() {
    let Some(runtime) = std::env::var_os("OCI_RUNTIME") else {
        // CI always names the runtime; a run without one must not look like a pass there.
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but OCI_RUNTIME is not: the conformance suite would not run"
        );
        eprintln!("OCI_RUNTIME not set: not running the suite");
        return;
    };
    let mut cmd = runner();
    cmd.arg("--runtime").arg(runtime);
    for (var, flag) in [
        ("OCI_FILTER", "--filter"),
        ("OCI_KNOWN_FAILURES", "--known-failures"),
        ("OCI_JOBS", "--jobs"),
    ] {
        if let Some(v) = std::env::var_os(var) {
            cmd.arg(flag).arg(v);
        }
    }
    let status = cmd.status().expect("run oci-conformance");
    assert!(status.success(), "conformance suite failed: {status}");
}
