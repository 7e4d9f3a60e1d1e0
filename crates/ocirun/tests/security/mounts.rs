//! CVE-2021-30465, CVE-2024-45310: mount destinations (and the directories and device nodes the
//! runtime creates for them) reached through symlinks in the rootfs, static or swapped while
//! `create` runs. Nothing may be created, changed or mounted outside the rootfs.
//!
//! Every tmpfs of these configs has its own size, so that the container's mountinfo shows where
//! each one landed; after `pivot_root` the container only sees mounts inside its root, so a
//! tmpfs missing there was mounted somewhere else.

use std::os::unix::fs::{FileTypeExt, symlink};

use serde_json::{Value, json};

use crate::swap::Swapper;
use crate::world::{World, add_mount, drop_mounts, parse_mountinfo};

const SHOW_MOUNTS: &str = "cat /proc/self/mountinfo";

fn tmpfs(dest: &str, size_k: u32) -> Value {
    json!({"destination": dest, "type": "tmpfs", "source": "tmpfs",
           "options": [format!("size={size_k}k")]})
}

fn bind(dest: &str, source: &str) -> Value {
    json!({"destination": dest, "type": "bind", "source": source, "options": ["rbind"]})
}

/// The mount point of the tmpfs of `size_k` in a mountinfo, if any.
fn tmpfs_at(mountinfo: &str, size_k: u32) -> Option<String> {
    let want = format!("size={size_k}k");
    parse_mountinfo(mountinfo)
        .into_iter()
        .find(|m| m.fstype == "tmpfs" && m.super_options.split(',').any(|o| o == want))
        .map(|m| m.mount_point)
}

fn bind_sources(w: &World) {
    std::fs::write(w.sb.bundle.join("srcfile"), "bind source\n").unwrap();
    std::fs::create_dir_all(w.sb.bundle.join("srcdir")).unwrap();
}

#[test]
fn symlinked_mount_destinations_stay_in_the_rootfs() {
    let w = World::new("mnt-symlink");
    let outside = w.outside.to_str().unwrap().to_owned();
    bind_sources(&w);
    // Absolute and climbing symlinks to the host directory, and the image's /dev as one too (with
    // no /dev mount in the config, the device nodes are made through it).
    symlink(&outside, w.in_rootfs("/evil-abs")).unwrap();
    symlink(w.outside_via_dotdot(), w.in_rootfs("/evil-rel")).unwrap();
    std::fs::remove_dir(w.in_rootfs("/dev")).unwrap();
    symlink(&outside, w.in_rootfs("/dev")).unwrap();
    // The same path inside the rootfs exists, so that every resolution succeeds and the
    // mounts really happen (inside).
    let inside = w.in_rootfs(&outside);
    std::fs::create_dir_all(&inside).unwrap();
    std::fs::write(inside.join("marker"), "the rootfs's own file\n").unwrap();
    let before = w.snapshot();

    let mut cfg = w.config_sh(SHOW_MOUNTS);
    drop_mounts(&mut cfg, "/dev");
    add_mount(&mut cfg, tmpfs("/evil-abs/t1", 12));
    add_mount(&mut cfg, tmpfs("/evil-rel/deep/er/t2", 20));
    add_mount(&mut cfg, bind("/evil-abs/file", "srcfile"));
    add_mount(&mut cfg, bind("/evil-rel/bdir", "srcdir"));
    cfg["linux"]["devices"] =
        json!([{"path": "/evil-abs/zero2", "type": "c", "major": 1, "minor": 5}]);
    cfg["linux"]["maskedPaths"]
        .as_array_mut()
        .unwrap()
        .push(json!("/evil-rel/marker"));
    cfg["linux"]["readonlyPaths"]
        .as_array_mut()
        .unwrap()
        .push(json!("/evil-abs/deep"));
    let (status, out, err) = w.run(&cfg, &w.sb.id("a"));
    assert_eq!(status, 0, "run: {err}");
    w.assert_outside_untouched(&before, "mounts through symlinks");
    assert_eq!(
        tmpfs_at(&out, 12).as_deref(),
        Some(format!("{outside}/t1").as_str()),
        "tmpfs for /evil-abs/t1 is not where the symlink leads inside the rootfs:\n{out}"
    );
    assert_eq!(
        tmpfs_at(&out, 20).as_deref(),
        Some(format!("{outside}/deep/er/t2").as_str()),
        "tmpfs for /evil-rel/deep/er/t2 is not inside the rootfs:\n{out}"
    );
    // What the runtime created went into the rootfs.
    assert!(inside.join("deep/er/t2").is_dir());
    assert!(inside.join("file").is_file());
    assert!(
        std::fs::symlink_metadata(inside.join("null"))
            .unwrap()
            .file_type()
            .is_char_device(),
        "the default devices were not made inside the rootfs"
    );
    assert!(
        std::fs::symlink_metadata(inside.join("zero2"))
            .unwrap()
            .file_type()
            .is_char_device()
    );
}

#[test]
fn dangling_symlinked_destinations_create_nothing_outside() {
    // The symlinks lead to paths that exist neither in the rootfs nor on the host: a runtime
    // that follows them on the host would create them there.
    let w = World::new("mnt-dangling");
    let target = w.outside.join("created-by-runtime");
    symlink(&target, w.in_rootfs("/dangle-abs")).unwrap();
    symlink(
        format!("{}/created-by-runtime", w.outside_via_dotdot()),
        w.in_rootfs("/dangle-rel"),
    )
    .unwrap();
    bind_sources(&w);
    let before = w.snapshot();
    for (i, m) in [
        tmpfs("/dangle-abs/sub/t", 12),
        tmpfs("/dangle-rel/t", 12),
        bind("/dangle-abs/file", "srcfile"),
        bind("/dangle-rel", "srcdir"),
    ]
    .into_iter()
    .enumerate()
    {
        let mut cfg = w.config_sh(SHOW_MOUNTS);
        add_mount(&mut cfg, m.clone());
        let (status, out, err) = w.run(&cfg, &w.sb.id(&format!("d{i}")));
        w.assert_outside_untouched(&before, &format!("mount {m}"));
        if status == 0 && m["type"] == "tmpfs" {
            assert!(
                tmpfs_at(&out, 12).is_some(),
                "mount {m} succeeded but the tmpfs is not inside the container:\n{out}"
            );
        }
        let _ = err;
    }
}

#[test]
fn mount_destinations_swapped_during_create_never_escape() {
    const ATTEMPTS: usize = 200;
    let w = World::new("mnt-race");
    let outside = w.outside.to_str().unwrap().to_owned();
    bind_sources(&w);
    std::fs::create_dir_all(w.in_rootfs("/swap")).unwrap();
    symlink(&outside, w.in_rootfs("/swap-alt")).unwrap();
    std::fs::create_dir_all(w.in_rootfs("/swap2")).unwrap();
    symlink(w.outside_via_dotdot(), w.in_rootfs("/swap2-alt")).unwrap();
    let before = w.snapshot();

    let mut cfg = w.config_sh(SHOW_MOUNTS);
    add_mount(&mut cfg, tmpfs("/swap/t", 12));
    add_mount(&mut cfg, tmpfs("/swap2/new/deeper", 20));
    add_mount(&mut cfg, bind("/swap/f", "srcfile"));
    add_mount(&mut cfg, bind("/swap2/d", "srcdir"));
    cfg["linux"]["devices"] = json!([{"path": "/swap/zero2", "type": "c", "major": 1, "minor": 5}]);

    // Without the swapper the config works: the attempts below really exercise the mounts.
    let (status, out, err) = w.run(&cfg, &w.sb.id("base"));
    assert_eq!(status, 0, "baseline run: {err}");
    assert!(
        tmpfs_at(&out, 12).is_some() && tmpfs_at(&out, 20).is_some(),
        "{out}"
    );

    let swapper = Swapper::start(vec![
        (w.in_rootfs("/swap"), w.in_rootfs("/swap-alt")),
        (w.in_rootfs("/swap2"), w.in_rootfs("/swap2-alt")),
    ]);
    let (mut ok, mut refused) = (0, 0);
    for i in 0..ATTEMPTS {
        let (status, out, _err) = w.run(&cfg, &w.sb.id(&format!("r{i}")));
        w.assert_outside_untouched(&before, &format!("attempt {i}"));
        if status == 0 {
            ok += 1;
            for size in [12, 20] {
                assert!(
                    tmpfs_at(&out, size).is_some(),
                    "attempt {i}: the tmpfs of {size}k was mounted outside the container's root:\n{out}"
                );
            }
        } else {
            refused += 1;
        }
    }
    let swaps = swapper.finish();
    w.assert_outside_untouched(&before, "after the race");
    eprintln!("{ATTEMPTS} attempts while swapping {swaps} times: {ok} ran, {refused} refused");
}
