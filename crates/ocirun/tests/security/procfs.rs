//! CVE-2019-16884, CVE-2023-27561, CVE-2025-52881: the runtime writes (and decides things from
//! what it reads) in procfs. A rootfs whose `/proc` or `/sys` is a symlink, or a mount that
//! shadows `/proc`, would point those accesses at files the container made. `/proc` and `/sys`
//! must be the real filesystems, procfs writes must land where they are meant to, and nothing
//! the runtime does may depend on a fake procfs file.

use std::os::unix::fs::symlink;

use serde_json::{Value, json};

use crate::world::{World, add_mount, drop_mounts, with_groups};

/// Replaces the rootfs directory `dir` with a symlink to `target`.
fn make_symlink(w: &World, dir: &str, target: &str) {
    let p = w.in_rootfs(dir);
    if p.is_dir() && !p.is_symlink() {
        std::fs::remove_dir(&p).unwrap();
    } else {
        let _ = std::fs::remove_file(&p);
    }
    symlink(target, &p).unwrap();
}

fn restore_dir(w: &World, dir: &str) {
    let p = w.in_rootfs(dir);
    let _ = std::fs::remove_file(&p);
    std::fs::create_dir_all(&p).unwrap();
}

/// A directory in the bundle that looks like procfs to a reader: `self/setgroups` says "deny",
/// `sys/kernel/domainname` exists.
fn fake_proc(w: &World, name: &str) -> String {
    let dir = w.sb.bundle.join(name);
    std::fs::create_dir_all(dir.join("self")).unwrap();
    std::fs::create_dir_all(dir.join("sys/kernel")).unwrap();
    std::fs::write(dir.join("self/setgroups"), "deny\n").unwrap();
    std::fs::write(dir.join("sys/kernel/domainname"), "fake\n").unwrap();
    name.to_owned()
}

#[test]
fn proc_and_sys_symlinks_are_refused() {
    let w = World::new("proc-symlink");
    let outside = w.outside.to_str().unwrap().to_owned();
    // The symlinks' targets exist inside the rootfs too: refusal must come from the check,
    // not from a missing directory.
    std::fs::create_dir_all(w.in_rootfs(&outside)).unwrap();
    std::fs::create_dir_all(w.in_rootfs("/fakeproc")).unwrap();
    let before = w.snapshot();
    let cases = [
        ("/proc", outside.clone()),
        ("/proc", "fakeproc".to_owned()),
        ("/proc", w.outside_via_dotdot()),
        ("/sys", outside.clone()),
        ("/sys", "fakeproc".to_owned()),
    ];
    for (i, (dir, target)) in cases.iter().enumerate() {
        make_symlink(&w, dir, target);
        let cfg = w.config_sh("echo RAN");
        let (status, out, err) = w.run(&cfg, &w.sb.id(&format!("s{i}")));
        assert!(
            status != 0 && !out.contains("RAN"),
            "a rootfs whose {dir} is a symlink to {target} was not refused: {out} {err}"
        );
        assert!(
            err.contains(&format!("{dir:?}")),
            "{dir} -> {target}: the error does not name {dir}: {err}"
        );
        w.assert_outside_untouched(&before, &format!("{dir} -> {target}"));
        restore_dir(&w, dir);
    }
}

#[test]
fn mounts_over_proc_are_refused() {
    let w = World::new("proc-overmount");
    let fake = fake_proc(&w, "fakeproc");
    std::fs::write(w.sb.bundle.join("file"), "fake\n").unwrap();
    let bind = |dest: &str, src: &str| json!({"destination": dest, "type": "bind", "source": src, "options": ["rbind"]});
    let cases: Vec<Value> = vec![
        bind("/proc", &fake),
        json!({"destination": "/proc", "type": "tmpfs", "source": "tmpfs"}),
        json!({"destination": "/proc/sys", "type": "tmpfs", "source": "tmpfs"}),
        json!({"destination": "/proc/self", "type": "tmpfs", "source": "tmpfs"}),
        bind("/proc/sys/kernel/core_pattern", "file"),
        bind("/proc/sysrq-trigger", "file"),
        bind("/proc/1/setgroups", "file"),
        bind("//proc/./sys/../sys", &fake),
        // `..` in the destination itself.
        bind("/tmp/../proc", &fake),
        json!({"destination": "/dev/../proc/sys", "type": "tmpfs", "source": "tmpfs"}),
    ];
    let mut holes = Vec::new();
    for (i, m) in cases.into_iter().enumerate() {
        let mut cfg = w.config_sh("echo RAN");
        add_mount(&mut cfg, m.clone());
        let (status, out, err) = w.run(&cfg, &w.sb.id(&format!("m{i}")));
        if status == 0 || out.contains("RAN") {
            holes.push(format!(
                "mount {m} over procfs was not refused: {out} {err}"
            ));
        } else if !err.contains("/proc") {
            holes.push(format!("mount {m}: the error does not name it: {err}"));
        }
    }
    assert!(holes.is_empty(), "{}", holes.join("\n"));
}

#[test]
fn symlinked_destinations_cannot_shadow_proc() {
    // The destinations do not start with /proc, but resolve there inside the rootfs.
    let w = World::new("proc-shadow");
    let fake = fake_proc(&w, "fakeproc");
    symlink("/proc", w.in_rootfs("/evil")).unwrap();
    symlink("proc/sys", w.in_rootfs("/evil-sys")).unwrap();
    symlink("../../../../../proc/self", w.in_rootfs("/evil-self")).unwrap();
    // What is at procfs's places (pid 1 is the init, which resolved `self` at mount time).
    let show = "for p in /proc /proc/sys /proc/sys/kernel /proc/1; do \
                echo \"$p=$(stat -f -c %T $p 2>/dev/null || echo missing)\"; done; echo RAN";
    let cases = [
        json!({"destination": "/evil", "type": "bind", "source": fake, "options": ["rbind"]}),
        json!({"destination": "/evil", "type": "tmpfs", "source": "tmpfs"}),
        json!({"destination": "/evil-sys", "type": "tmpfs", "source": "tmpfs"}),
        json!({"destination": "/evil-sys/kernel", "type": "bind", "source": fake, "options": ["rbind"]}),
        json!({"destination": "/evil-self", "type": "bind", "source": fake, "options": ["rbind"]}),
    ];
    let mut holes = Vec::new();
    for (i, m) in cases.into_iter().enumerate() {
        let mut cfg = w.config_sh(show);
        add_mount(&mut cfg, m.clone());
        let dest = m["destination"].as_str().unwrap().to_owned();
        let (status, out, err) = w.run(&cfg, &w.sb.id(&format!("v{i}")));
        if status == 0 || out.contains("RAN") {
            let seen = out.lines().take(4).collect::<Vec<_>>().join(" ");
            holes.push(format!(
                "mount {m} shadows procfs through a symlink and was not refused (the \
                 container sees {seen})"
            ));
        } else if !err.contains(&dest) {
            holes.push(format!("mount {m}: the error does not name {dest}: {err}"));
        }
    }
    assert!(holes.is_empty(), "{}", holes.join("\n"));
}

#[test]
fn sysctl_writes_stay_in_proc_sys_of_their_namespace() {
    // Keys that pass as "net." but climb out of /proc/sys/net. The target here is the
    // container's own domainname (a private UTS namespace), so the test is harmless; with a
    // shared UTS namespace, or kernel/core_pattern, the same write changes the host.
    let w = World::new("sysctl-escape");
    let mut holes = Vec::new();
    for (i, key) in [
        "net/../kernel/domainname",
        "net/ipv4/../../kernel/domainname",
        "net.ipv4.conf.all/../../../../kernel/domainname",
    ]
    .iter()
    .enumerate()
    {
        let mut cfg = w.config_sh("echo domainname=$(cat /proc/sys/kernel/domainname)");
        cfg["linux"]["sysctl"] = json!({ *key: "pwned-by-sysctl" });
        let (status, out, err) = w.run(&cfg, &w.sb.id(&format!("k{i}")));
        if out.contains("pwned-by-sysctl") {
            holes.push(format!(
                "sysctl key {key:?} wrote outside /proc/sys/net (status {status}): {}",
                out.trim()
            ));
        } else if status == 0 || !err.contains(key) {
            holes.push(format!(
                "sysctl key {key:?} escaping /proc/sys/net was not refused by name (status \
                 {status}): {out} {err}"
            ));
        }
    }
    assert!(holes.is_empty(), "{}", holes.join("\n"));
}

/// The process's supplementary groups (`id -G`), for a uid 1000 process, with the runtime
/// itself holding group 4242 (as a caller's runtime may).
const GROUPS: &str = "echo groups=$(id -G)";
const CALLER_GROUPS: &[libc::gid_t] = &[4242];

fn as_user_1000(cfg: &mut Value) {
    cfg["process"]["user"] = json!({"uid": 1000, "gid": 1000});
}

#[test]
fn a_fake_proc_cannot_make_run_skip_setgroups() {
    // The config mounts no procfs (the spec allows it): the image's /proc is plain files. The
    // image says setgroups is denied; the runtime must still drop its own groups.
    let w = World::new("setgroups-run");
    std::fs::create_dir_all(w.in_rootfs("/proc/self")).unwrap();
    std::fs::write(w.in_rootfs("/proc/self/setgroups"), "deny\n").unwrap();
    let mut cfg = w.config_sh(GROUPS);
    drop_mounts(&mut cfg, "/proc");
    as_user_1000(&mut cfg);
    w.sb.write_config(&cfg);
    let mut cmd = w.cmd(&[
        "run",
        "--bundle",
        w.sb.bundle.to_str().unwrap(),
        &w.sb.id("a"),
    ]);
    with_groups(&mut cmd, CALLER_GROUPS);
    let (status, out, err) = w.output(cmd);
    assert_eq!(status, 0, "{err}");
    assert_eq!(
        out.trim(),
        "groups=1000",
        "the container process kept the runtime's supplementary groups because the image's \
         /proc/self/setgroups said \"deny\""
    );
}

#[test]
fn a_fake_proc_cannot_make_exec_skip_setgroups() {
    // Same, but the running container writes the fake file itself before the exec.
    let w = World::new("setgroups-exec");
    let mut cfg =
        w.config_sh("mkdir -p /proc/self && echo deny > /proc/self/setgroups && echo ok > /ready && exec sleep 100000");
    drop_mounts(&mut cfg, "/proc");
    w.sb.write_config(&cfg);
    let id = w.sb.id("c");
    let (status, _, err) =
        w.output(w.cmd(&["run", "-d", "--bundle", w.sb.bundle.to_str().unwrap(), &id]));
    assert_eq!(status, 0, "{err}");
    crate::world::wait_for_file(
        &w.in_rootfs("/ready"),
        std::time::Duration::from_secs(60),
        "the container to write its fake setgroups",
    );
    let mut cmd = w.cmd(&["exec", "--user", "1000:1000", &id, "sh", "-c", GROUPS]);
    with_groups(&mut cmd, CALLER_GROUPS);
    let (status, out, err) = w.output(cmd);
    assert_eq!(status, 0, "{err}");
    assert_eq!(
        out.trim(),
        "groups=1000",
        "the exec'd process kept the runtime's supplementary groups because the container's \
         /proc/self/setgroups said \"deny\""
    );
}
