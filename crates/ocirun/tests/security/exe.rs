//! CVE-2019-5736: a process inside the container opens the runtime's executable through
//! `/proc/<pid>/exe` while a runtime process is visible in the container, keeps the fd, and
//! writes through it once every runtime process is gone. The host binary must stay intact.
//!
//! The runtime under test is a private copy of the binary in the test's temp dir, so a
//! successful attack overwrites only that copy.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::json;

use crate::support;
use crate::world::{World, add_caps, md5, runtime_cmd, state, wait_for_file};

/// The attacker, pid 1 of its container. With `fifo` it first makes the fifo `/fifo`, so that
/// a runtime started inside the container as `ocirun --debug --log /fifo ...` blocks opening
/// its log until the attacker opens the fifo too: the runtime stays visible as long as the
/// attacker wants. It finds the first process whose executable is not busybox, keeps that executable
/// open as fd 3, reports what it holds, and after the test says `go` (every runtime process has
/// exited) tries to write it.
const ATTACKER: &str = r#"
set -u
if [ "${1:-}" = fifo ]; then mkfifo /fifo; fi
echo ready > /ready
p=
while [ -z "$p" ]; do
  for d in /proc/[0-9]*; do
    e=$(readlink "$d/exe" 2>/dev/null) || continue
    case "$e" in ""|/bin/busybox) continue ;; esac
    p=${d#/proc/}
    break
  done
  [ -n "$p" ] || usleep 10000
done
exec 3<"/proc/$p/exe"
md5sum /proc/self/fd/3 | cut -d' ' -f1 > /handle.md5
echo "pid $p exe $(readlink /proc/$p/exe)" > /found
# From now on the fifo always has a reader (this shell), so every open of it succeeds.
if [ "${1:-}" = fifo ]; then exec 4<>/fifo; fi
while [ ! -e /go ]; do usleep 10000; done
if (echo PWNED >/proc/self/fd/3) 2>/write.err; then
  echo WROTE > /result
else
  echo "REFUSED $(cat /write.err)" > /result
fi
exec sleep 100000
"#;

/// A copy of the binary under test in the test's directory, used as the runtime.
struct RuntimeCopy {
    path: PathBuf,
    md5: String,
    len: u64,
}

impl RuntimeCopy {
    fn new(w: &World) -> RuntimeCopy {
        let dir = w.sb.dir.join("runtime");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ocirun");
        std::fs::copy(support::ocirun_bin(), &path).unwrap();
        let md5 = md5(&path);
        let len = std::fs::metadata(&path).unwrap().len();
        RuntimeCopy { path, md5, len }
    }

    fn cmd(&self, w: &World, args: &[&str]) -> Command {
        runtime_cmd(&self.path, &w.sb.root, args)
    }

    fn assert_intact(&self, what: &str) {
        let len = std::fs::metadata(&self.path).unwrap().len();
        let now = md5(&self.path);
        assert!(
            len == self.len && now == self.md5,
            "{what}: the runtime executable on the host was overwritten from inside the \
             container (size {} -> {len}, md5 {} -> {now})",
            self.len,
            self.md5
        );
    }
}

/// Copies the shared libraries the binary needs into the rootfs, so that the runtime can run
/// inside the container (as the CVE's `#!/proc/self/exe` script makes it).
fn copy_libraries(binary: &Path, rootfs: &Path) {
    let out = Command::new("ldd").arg(binary).output();
    let Ok(out) = out else {
        return; // no ldd: assume a static binary
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(path) = line
            .split_whitespace()
            .find(|w| w.starts_with('/'))
            .map(Path::new)
        else {
            continue;
        };
        let dest = rootfs.join(path.strip_prefix("/").unwrap());
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(path, &dest).unwrap();
    }
}

fn attacker_config(w: &World, fifo: bool) -> serde_json::Value {
    std::fs::write(w.in_rootfs("/attack.sh"), ATTACKER).unwrap();
    let mut args = vec!["sh", "/attack.sh"];
    if fifo {
        args.push("fifo");
    }
    let mut cfg = w.sb.config(&args);
    cfg["root"]["readonly"] = json!(false);
    // Opening another process's exe needs ptrace access; give the attacker all it could ask
    // for, so that only the runtime's protection can stop the attack.
    add_caps(&mut cfg, &["CAP_SYS_PTRACE", "CAP_DAC_OVERRIDE"]);
    cfg
}

/// After the attacker holds the runtime's executable: lets it write, and checks the result.
fn finish_attack(w: &World, rt: &RuntimeCopy, what: &str) {
    let found = std::fs::read_to_string(w.in_rootfs("/found")).unwrap();
    std::fs::write(w.in_rootfs("/go"), "go\n").unwrap();
    let result = wait_for_file(
        &w.in_rootfs("/result"),
        Duration::from_secs(60),
        "the attacker's write attempt",
    );
    let held = std::fs::read_to_string(w.in_rootfs("/handle.md5")).unwrap();
    assert_eq!(
        held.trim(),
        rt.md5,
        "{what}: the attacker's fd ({}) is not the runtime executable, so the attack did not \
         reach it; the test is broken",
        found.trim()
    );
    assert!(
        result.starts_with("REFUSED"),
        "{what}: the container wrote through its fd on the runtime executable ({}): {result}",
        found.trim()
    );
    rt.assert_intact(what);
}

#[test]
fn exec_cannot_overwrite_the_runtime_executable() {
    let w = World::new("exe-exec");
    let rt = RuntimeCopy::new(&w);
    copy_libraries(&rt.path, &w.rootfs());
    // The CVE's trick: a script whose interpreter is /proc/self/exe, so that exec'ing it runs the
    // runtime's own executable inside the container. `--root` swallows the script's path;
    // `--debug --log /fifo` makes the runtime open the attacker's fifo first thing.
    let evil = w.in_rootfs("/evil");
    std::fs::write(&evil, "#!/proc/self/exe --root\n").unwrap();
    std::fs::set_permissions(&evil, std::fs::Permissions::from_mode(0o755)).unwrap();

    let cfg = attacker_config(&w, true);
    w.sb.write_config(&cfg);
    let id = w.sb.id("c");
    let bundle = w.sb.bundle.to_str().unwrap().to_owned();
    let (status, out, err) = w.output(rt.cmd(&w, &["run", "-d", "--bundle", &bundle, &id]));
    assert_eq!(status, 0, "run -d: {out} {err}");
    wait_for_file(
        &w.in_rootfs("/ready"),
        Duration::from_secs(60),
        "the attacker to start",
    );

    let mut process = cfg["process"].clone();
    process["args"] = json!(["/evil", "--debug", "--log", "/fifo", "state", "c"]);
    let pf = w.process_file("evil-process.json", &process);
    let (status, out, err) =
        w.output(rt.cmd(&w, &["exec", "--process", pf.to_str().unwrap(), &id]));
    assert!(
        w.in_rootfs("/found").exists(),
        "no runtime process became visible inside the container during exec, so the attack \
         could not start (exec exited {status}: {out} {err})"
    );
    finish_attack(&w, &rt, "exec");
}

#[test]
fn a_created_init_in_a_shared_pid_namespace_cannot_be_overwritten() {
    // Container B joins the pid namespace of container A (as pods and `--pid container:`
    // do), and its init waits there for `start`: the attacker in A sees it the whole time.
    let w = World::new("exe-create");
    let rt = RuntimeCopy::new(&w);
    let cfg = attacker_config(&w, false);
    w.sb.write_config(&cfg);
    let a = w.sb.id("a");
    let bundle = w.sb.bundle.to_str().unwrap().to_owned();
    let (status, out, err) = w.output(rt.cmd(&w, &["run", "-d", "--bundle", &bundle, &a]));
    assert_eq!(status, 0, "run -d: {out} {err}");
    wait_for_file(
        &w.in_rootfs("/ready"),
        Duration::from_secs(60),
        "the attacker to start",
    );
    let a_pid = state(&w, &a)["pid"].as_i64().unwrap();

    let bundle_b = w.sb.dir.join("bundle-b");
    support::make_rootfs(&bundle_b.join("rootfs"));
    let mut cfg_b = w.sb.config(&["true"]);
    for ns in cfg_b["linux"]["namespaces"].as_array_mut().unwrap() {
        if ns["type"] == "pid" {
            ns["path"] = json!(format!("/proc/{a_pid}/ns/pid"));
        }
    }
    std::fs::write(
        bundle_b.join("config.json"),
        serde_json::to_vec_pretty(&cfg_b).unwrap(),
    )
    .unwrap();
    let b = w.sb.id("b");
    let (status, out, err) =
        w.output(rt.cmd(&w, &["create", "--bundle", bundle_b.to_str().unwrap(), &b]));
    assert_eq!(status, 0, "create in A's pid namespace: {out} {err}");
    wait_for_file(
        &w.in_rootfs("/found"),
        Duration::from_secs(60),
        "the attacker to find the waiting init",
    );
    // Let B's init exec and go away, so that no process runs the runtime any more.
    let (status, out, err) = w.output(rt.cmd(&w, &["start", &b]));
    assert_eq!(status, 0, "start: {out} {err}");
    let (status, out, err) = w.output(rt.cmd(&w, &["delete", "--force", &b]));
    assert_eq!(status, 0, "delete: {out} {err}");
    finish_attack(&w, &rt, "create");
}
