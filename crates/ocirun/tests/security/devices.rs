//! CVE-2025-31133: masked paths get a bind of `/dev/null`; if the runtime took the container's
//! `/dev/null`, a symlink there would bind any file (a host file, a procfs file) over the
//! masked paths and make it writable. CVE-2025-52565: `/dev/console` gets a bind of the
//! container's pty; if the runtime opened `/dev/pts/N` by name, a swapped `/dev/pts` would bind
//! something else. Here the image (or a directory the container controls) owns `/dev`.

use std::os::unix::fs::symlink;

use serde_json::{Value, json};

use crate::console::ConsoleSocket;
use crate::swap::Swapper;
use crate::world::{World, parse_mountinfo};

/// Replaces the config's `/dev` tmpfs with `with` (or with nothing: the image's /dev is used).
fn replace_dev_mount(cfg: &mut Value, with: Option<Value>) {
    let mounts = cfg["mounts"].as_array_mut().unwrap();
    let i = mounts
        .iter()
        .position(|m| m["destination"] == "/dev")
        .expect("the template mounts /dev");
    match with {
        Some(m) => mounts[i] = m,
        None => {
            mounts.remove(i);
        }
    }
}

const MASK_CHECK: &str = r#"
for f in /secret /proc/timer_list /proc/keys /proc/kcore; do
  [ -e "$f" ] || continue
  echo "$f: $(stat -c '%F %t:%T' "$f")"
  echo PWNED > "$f"
  echo "$f: read $(cat "$f" | wc -c)"
done
echo "/secretdir: entries $(ls -A /secretdir | wc -l)"
"#;

#[test]
fn masked_paths_bind_the_real_dev_null() {
    let w = World::new("mask-devnull");
    let marker = w.marker.to_str().unwrap().to_owned();
    std::fs::write(w.in_rootfs("/secret"), "secret\n").unwrap();
    std::fs::create_dir_all(w.in_rootfs("/secretdir")).unwrap();
    std::fs::write(w.in_rootfs("/secretdir/inner"), "secret\n").unwrap();
    let fakedev = w.sb.bundle.join("fakedev");
    std::fs::create_dir_all(&fakedev).unwrap();
    let before = w.snapshot();

    // (how /dev is provided, what the container's /dev/null is)
    let cases: [(&str, &str); 5] = [
        ("image", "symlink to the host marker"),
        ("bind", "symlink to the host marker"),
        ("bind", "symlink to a procfs file"),
        ("bind", "regular file"),
        ("bind", "missing"),
    ];
    for (i, (dev, null)) in cases.iter().enumerate() {
        let null_path = if *dev == "image" {
            w.in_rootfs("/dev/null")
        } else {
            fakedev.join("null")
        };
        let _ = std::fs::remove_file(&null_path);
        match *null {
            "symlink to the host marker" => symlink(&marker, &null_path).unwrap(),
            "symlink to a procfs file" => {
                symlink("/proc/sys/kernel/domainname", &null_path).unwrap()
            }
            "regular file" => std::fs::write(&null_path, "not null\n").unwrap(),
            _ => {}
        }
        let mut cfg = w.config_sh(MASK_CHECK);
        let dev_mount = (*dev == "bind").then(|| {
            json!({"destination": "/dev", "type": "bind", "source": "fakedev",
                   "options": ["rbind"]})
        });
        replace_dev_mount(&mut cfg, dev_mount);
        for p in ["/secret", "/secretdir"] {
            cfg["linux"]["maskedPaths"]
                .as_array_mut()
                .unwrap()
                .push(json!(p));
        }
        let what = format!("/dev from {dev}, /dev/null a {null}");
        let (status, out, err) = w.run(&cfg, &w.sb.id(&format!("m{i}")));
        assert_eq!(status, 0, "{what}: {err}");
        let files: Vec<&str> = out.lines().filter(|l| l.contains(": ")).collect();
        assert!(
            files.iter().any(|l| l.starts_with("/secret:")),
            "{what}: {out}"
        );
        for line in files {
            let ok = line.ends_with("character special file 1:3")
                || line.ends_with(": read 0")
                || line == "/secretdir: entries 0";
            assert!(
                ok,
                "{what}: a masked path is not the null device (or an empty directory): \
                 {line:?} in\n{out}"
            );
        }
        w.assert_outside_untouched(&before, &what);
        let _ = std::fs::remove_file(&null_path);
    }
}

/// `stat` of /dev/console and of the process's stdin (major:minor in hex), then a write to
/// the console, which must reach the pty the caller got.
const CONSOLE_CHECK: &str = "stat -L -c %t:%T /dev/console > /result.tmp; \
     stat -L -c %t:%T /proc/self/fd/0 >> /result.tmp; mv /result.tmp /result; \
     echo PWNED-CONSOLE > /dev/console";

fn terminal_config(w: &World, script: &str) -> Value {
    let mut cfg = w.config_sh(script);
    cfg["process"]["terminal"] = json!(true);
    replace_dev_mount(&mut cfg, None);
    cfg
}

/// The host side of the attack: `outside/pts` with entries that point at the marker.
fn fake_pts(w: &World) -> String {
    let pts = w.outside.join("pts");
    std::fs::create_dir_all(&pts).unwrap();
    for name in ["0", "1", "ptmx"] {
        symlink(&w.marker, pts.join(name)).unwrap();
    }
    pts.to_str().unwrap().to_owned()
}

#[test]
fn dev_console_is_the_pty_even_when_the_image_owns_dev() {
    let w = World::new("console-image");
    let outside = w.outside.to_str().unwrap().to_owned();
    let pts = fake_pts(&w);
    std::fs::write(w.outside.join("console"), "host console file\n").unwrap();
    // The image's /dev/console and /dev/pts point at the host; the same paths inside the rootfs
    // exist, so that every resolution succeeds (inside).
    symlink(format!("{outside}/console"), w.in_rootfs("/dev/console")).unwrap();
    symlink(&pts, w.in_rootfs("/dev/pts")).unwrap();
    std::fs::create_dir_all(w.in_rootfs(&pts)).unwrap();
    std::fs::write(w.in_rootfs(&format!("{outside}/console")), "").unwrap();
    let before = w.snapshot();

    let cfg = terminal_config(&w, CONSOLE_CHECK);
    w.sb.write_config(&cfg);
    let console = ConsoleSocket::new(&w.sb.dir.join("console.sock"));
    let (status, out, err) = w.output(w.cmd(&[
        "run",
        "--console-socket",
        console.path(),
        "--bundle",
        w.sb.bundle.to_str().unwrap(),
        &w.sb.id("a"),
    ]));
    let got = console.finish();
    assert_eq!(status, 0, "run: {out} {err}");
    let got = got.expect("the runtime sent no pty master");
    let result = std::fs::read_to_string(w.in_rootfs("/result")).unwrap();
    let expected = format!("88:{:x}", got.pty);
    assert_eq!(
        result.lines().collect::<Vec<_>>(),
        vec![expected.as_str(), expected.as_str()],
        "/dev/console and stdin must both be the pty /dev/pts/{} the caller got",
        got.pty
    );
    assert!(
        String::from_utf8_lossy(&got.output).contains("PWNED-CONSOLE"),
        "a write to /dev/console did not reach the caller's pty"
    );
    w.assert_outside_untouched(&before, "image-controlled /dev/console and /dev/pts");
}

/// Checks that every mount on a `console*` path in the container's mountinfo is the pty `pty`
/// of a devpts.
fn console_mounts_are_the_pty(mountinfo: &str, pty: u32) -> Result<(), String> {
    let mounts: Vec<_> = parse_mountinfo(mountinfo)
        .into_iter()
        .filter(|m| {
            m.mount_point
                .rsplit('/')
                .next()
                .is_some_and(|n| n.starts_with("console"))
        })
        .collect();
    if mounts.is_empty() {
        return Err(format!("no mount on /dev/console:\n{mountinfo}"));
    }
    for m in mounts {
        if m.fstype != "devpts" || m.root != format!("/{pty}") {
            return Err(format!(
                "{} is {} {} instead of pty {pty}:\n{mountinfo}",
                m.mount_point, m.fstype, m.root
            ));
        }
    }
    Ok(())
}

#[test]
fn dev_console_stays_the_pty_while_dev_pts_is_swapped() {
    const ATTEMPTS: usize = 100;
    let w = World::new("console-race");
    let pts = fake_pts(&w);
    std::fs::create_dir_all(w.in_rootfs("/dev/pts")).unwrap();
    symlink(&pts, w.in_rootfs("/dev/pts-alt")).unwrap();
    std::fs::write(w.in_rootfs("/dev/console"), "").unwrap();
    symlink(&w.marker, w.in_rootfs("/dev/console-alt")).unwrap();
    let before = w.snapshot();
    let cfg = terminal_config(&w, "cat /proc/self/mountinfo");
    w.sb.write_config(&cfg);
    let bundle = w.sb.bundle.to_str().unwrap().to_owned();

    let attempt = |id: &str| -> (i32, String, Option<crate::console::Console>) {
        let console = ConsoleSocket::new(&w.sb.dir.join("console.sock"));
        let (status, _out, err) = w.output(w.cmd(&[
            "run",
            "--console-socket",
            console.path(),
            "--bundle",
            &bundle,
            id,
        ]));
        (status, err, console.finish())
    };

    let (status, err, got) = attempt(&w.sb.id("base"));
    assert_eq!(status, 0, "baseline run: {err}");
    let got = got.expect("baseline: no pty master");
    console_mounts_are_the_pty(&String::from_utf8_lossy(&got.output), got.pty).unwrap();

    let swapper = Swapper::start(vec![
        (w.in_rootfs("/dev/pts"), w.in_rootfs("/dev/pts-alt")),
        (w.in_rootfs("/dev/console"), w.in_rootfs("/dev/console-alt")),
    ]);
    let (mut ok, mut refused) = (0, 0);
    for i in 0..ATTEMPTS {
        let (status, _err, got) = attempt(&w.sb.id(&format!("r{i}")));
        w.assert_outside_untouched(&before, &format!("attempt {i}"));
        if status != 0 {
            refused += 1;
            continue;
        }
        ok += 1;
        let got = got.unwrap_or_else(|| panic!("attempt {i}: ran without sending a pty master"));
        if let Err(e) = console_mounts_are_the_pty(&String::from_utf8_lossy(&got.output), got.pty) {
            panic!("attempt {i}: {e}");
        }
    }
    let swaps = swapper.finish();
    w.assert_outside_untouched(&before, "after the race");
    eprintln!("{ATTEMPTS} attempts while swapping {swaps} times: {ok} ran, {refused} refused");
}
