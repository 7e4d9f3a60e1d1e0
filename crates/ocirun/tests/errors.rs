//! Bad input: each case gets exit status 1, one line naming the field or path and the reason,
//! and leaves nothing behind (no state directory, no cgroup, no process).

mod support;

use serde_json::{Value, json};
use support::{Sandbox, stderr};

/// Runs `create` of the sandbox's config as `id`; asserts failure, one error line containing
/// every `needle`, and a clean state.
fn create_fails(sb: &Sandbox, id: &str, needles: &[&str]) -> String {
    let out = sb.ocirun(&["create", id]);
    let err = stderr(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "create {id} should fail; stderr: {err}"
    );
    assert_eq!(
        err.lines().count(),
        1,
        "one error line expected, got: {err}"
    );
    assert!(err.starts_with("ocirun: create "), "{err}");
    for n in needles {
        assert!(err.contains(n), "error should mention {n:?}: {err}");
    }
    sb.assert_clean(id);
    assert!(
        sb.containers().is_empty(),
        "state left: {:?}",
        sb.containers()
    );
    err
}

fn with(sb: &Sandbox, edit: impl FnOnce(&mut Value)) {
    let mut cfg = sb.config(&["true"]);
    edit(&mut cfg);
    sb.write_config(&cfg);
}

#[test]
fn malformed_json() {
    let sb = Sandbox::new("badjson");
    std::fs::write(
        sb.bundle.join("config.json"),
        "{\"ociVersion\": \"1.0.2\", ",
    )
    .unwrap();
    create_fails(&sb, &sb.id("a"), &["config.json", "parse"]);
    std::fs::write(sb.bundle.join("config.json"), "not json at all").unwrap();
    create_fails(&sb, &sb.id("b"), &["config.json"]);
}

#[test]
fn wrong_types_name_the_field() {
    let sb = Sandbox::new("badtype");
    with(&sb, |c| c["process"]["user"]["uid"] = json!("root"));
    create_fails(&sb, &sb.id("a"), &["process.user.uid"]);
    with(&sb, |c| {
        c["linux"]["namespaces"][1]["type"] = json!("bogus")
    });
    create_fails(&sb, &sb.id("b"), &["linux.namespaces[1].type", "bogus"]);
    with(&sb, |c| {
        c["process"].as_object_mut().unwrap().remove("cwd");
    });
    create_fails(&sb, &sb.id("c"), &["process", "cwd"]);
}

#[test]
fn missing_config_and_rootfs() {
    let sb = Sandbox::new("missing");
    with(&sb, |c| c["root"]["path"] = json!("no-such-rootfs"));
    create_fails(
        &sb,
        &sb.id("a"),
        &["root.path", "no-such-rootfs", "no such file or directory"],
    );
    std::fs::remove_file(sb.bundle.join("config.json")).unwrap();
    create_fails(
        &sb,
        &sb.id("b"),
        &["config.json", "no such file or directory"],
    );
}

#[test]
fn semantic_errors_name_the_field() {
    let sb = Sandbox::new("semantic");
    with(&sb, |c| c["process"]["args"] = json!([]));
    create_fails(&sb, &sb.id("a"), &["process.args", "empty"]);
    with(&sb, |c| c["process"]["cwd"] = json!("relative/dir"));
    create_fails(&sb, &sb.id("b"), &["process.cwd", "absolute"]);
    with(&sb, |c| {
        c["linux"]["namespaces"] = json!([{"type": "pid"}, {"type": "mount"}, {"type": "pid"}])
    });
    create_fails(&sb, &sb.id("c"), &["linux.namespaces[2]", "duplicate"]);
    with(&sb, |c| {
        c["linux"]["sysctl"] = json!({"vm.swappiness": "10"})
    });
    create_fails(&sb, &sb.id("d"), &["linux.sysctl.vm.swappiness"]);
    with(&sb, |c| {
        c["linux"]["namespaces"] = json!([{"type": "pid"}, {"type": "mount"}]);
        c["hostname"] = json!("h");
    });
    create_fails(&sb, &sb.id("e"), &["hostname", "UTS"]);
    with(&sb, |c| {
        c["linux"]["namespaces"] = json!([{"type": "mount"}, {"type": "user"}])
    });
    create_fails(&sb, &sb.id("f"), &["linux.uidMappings"]);
    with(&sb, |c| {
        c["mounts"]
            .as_array_mut()
            .unwrap()
            .push(json!({"destination": "/proc/self", "type": "tmpfs", "source": "tmpfs"}))
    });
    create_fails(&sb, &sb.id("g"), &["mounts[7]", "/proc/self", "shadow"]);
}

#[test]
fn invalid_ids_are_refused() {
    let sb = Sandbox::new("badid");
    for id in ["a/b", "..", ".", "../escape", "a b", "x:y"] {
        let out = sb.ocirun(&["create", id]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{id}: {err}");
        assert!(err.contains("invalid container id"), "{id}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    assert!(sb.containers().is_empty());
    assert!(!sb.dir.join("escape").exists());
}

#[test]
fn a_container_that_does_not_exist() {
    let sb = Sandbox::new("nosuch");
    for cmd in [
        vec!["state", "ghost"],
        vec!["start", "ghost"],
        vec!["kill", "ghost", "KILL"],
        vec!["delete", "ghost"],
        vec!["pause", "ghost"],
        vec!["resume", "ghost"],
        vec!["ps", "ghost"],
        vec!["events", "--stats", "ghost"],
    ] {
        let out = sb.ocirun(&cmd);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{cmd:?}: {err}");
        assert!(err.contains("\"ghost\" does not exist"), "{cmd:?}: {err}");
    }
    // exec reports its failures with 255, like runc.
    let out = sb.ocirun(&["exec", "ghost", "true"]);
    assert_eq!(out.status.code(), Some(255));
    assert!(stderr(&out).contains("does not exist"), "{}", stderr(&out));
}

#[test]
fn an_id_in_use_is_refused() {
    let sb = Sandbox::new("inuse");
    with(&sb, |c| c["process"]["args"] = json!(["sleep", "100"]));
    let id = sb.id("a");
    assert!(sb.ocirun(&["create", &id]).status.success());
    let out = sb.ocirun(&["create", &id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
    // The first container is untouched.
    let st: Value = serde_json::from_slice(&sb.ocirun(&["state", &id]).stdout).unwrap();
    assert_eq!(st["status"], "created");
}

#[test]
fn failures_inside_the_init_leave_nothing() {
    let sb = Sandbox::new("initfail");
    // A filesystem type the kernel does not know.
    with(&sb, |c| {
        c["mounts"]
            .as_array_mut()
            .unwrap()
            .push(json!({"destination": "/x", "type": "nosuchfs", "source": "x"}))
    });
    create_fails(&sb, &sb.id("a"), &["mount", "\"/x\"", "no such device"]);
    // The same as the first mount: on v1 and hybrid hosts the init makes it while the runtime
    // is still making the cgroups, so the runtime may find the init gone when it hands them
    // over; the error must still be the init's.
    with(&sb, |c| {
        c["mounts"].as_array_mut().unwrap().insert(
            0,
            json!({"destination": "/x", "type": "nosuchfs", "source": "x"}),
        )
    });
    for n in 0..5 {
        create_fails(
            &sb,
            &sb.id(&format!("a{n}")),
            &["mount", "\"/x\"", "no such device"],
        );
    }
    // An option the filesystem refuses.
    with(&sb, |c| {
        c["mounts"]
            .as_array_mut()
            .unwrap()
            .push(json!({"destination": "/x", "type": "tmpfs", "source": "tmpfs", "options": ["bogusopt=1"]}))
    });
    create_fails(&sb, &sb.id("b"), &["tmpfs option", "bogusopt=1"]);
    // A program that is not in the image: a create-time error, as in runc.
    with(&sb, |c| c["process"]["args"] = json!(["no-such-program"]));
    create_fails(&sb, &sb.id("c"), &["no-such-program", "not found"]);
    // A hard limit above the runtime's own (no CAP_SYS_RESOURCE on this host).
    with(
        &sb,
        |c| {
            c["process"]["rlimits"] =
                json!([{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 1_073_741_816u64}])
        },
    );
    create_fails(
        &sb,
        &sb.id("d"),
        &["RLIMIT_NOFILE", "operation not permitted"],
    );
    // A prestart hook that fails.
    with(
        &sb,
        |c| c["hooks"] = json!({"prestart": [{"path": "/bin/sh", "args": ["sh", "-c", "echo nope >&2; exit 3"]}]}),
    );
    create_fails(
        &sb,
        &sb.id("e"),
        &["prestart hook #0", "exit status 3", "nope"],
    );
}
