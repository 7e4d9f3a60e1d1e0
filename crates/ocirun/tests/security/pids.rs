//! Pid reuse: a container's init dies, an unrelated process gets its pid, and `kill` or
//! `delete` must not signal that process (the runtime identifies the init by pidfd and start
//! time, not by pid alone).
//!
//! Everything runs inside a private pid namespace (`busybox unshare`), where pids are small
//! and `ns_last_pid` places the victim exactly at the dead init's pid without touching the
//! host's pid allocation. The namespace dies with its first process, taking every process of
//! the test with it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use crate::support;
use crate::world::World;

/// `$1` ocirun, `$2` state root, `$3` bundle, `$4` and `$5` the ids of containers "a" and
/// "b". Prints `key=value` lines.
const SCRIPT: &str = r#"
set -u
O=$1 R=$2 B=$3 A=$4 BB=$5
# "<state letter>:<start time>" of a pid, or "gone".
info() {
  set -- $(cat /proc/$1/stat 2>/dev/null)
  if [ $# -ge 22 ]; then echo "$3:${22}"; else echo gone; fi
}
# Runs container $2 (called $1 in the output), kills its init, and starts a victim at the
# init's pid: sets V.
victim_for() {
  $O --root $R run -d --bundle $B $2 >/dev/null || { echo "error=run -d $1 failed"; exit 1; }
  P=$($O --root $R state $2 | sed -n 's/.*"pid": *\([0-9]*\).*/\1/p')
  [ -n "$P" ] && [ "$P" -gt 1 ] || { echo "error=no init pid for $1"; exit 1; }
  $O --root $R kill $2 KILL || { echo "error=first kill of $1 failed"; exit 1; }
  i=0
  while [ -e /proc/$P ]; do
    i=$((i+1))
    [ $i -lt 3000 ] || { echo "error=the init $P of $1 never went away"; exit 1; }
    usleep 10000
  done
  echo $((P-1)) > /proc/sys/kernel/ns_last_pid
  sleep 100000 &
  V=$!
  [ "$V" = "$P" ] || { echo "error=the victim got pid $V, not $P"; exit 1; }
  echo "$1.pid=$P"
  echo "$1.victim=$(info $V)"
}

victim_for a $A
$O --root $R state $A | sed -n 's/.*"status": *"\([a-z]*\)".*/state=\1/p'
$O --root $R kill $A KILL; echo "kill.rc=$?"; echo "kill=$(info $V)"
$O --root $R kill $A TERM; echo "kill-term.rc=$?"; echo "kill-term=$(info $V)"
$O --root $R kill --all $A KILL; echo "kill-all.rc=$?"; echo "kill-all=$(info $V)"
$O --root $R delete $A; echo "delete.rc=$?"; echo "delete=$(info $V)"
kill -9 $V; wait $V

victim_for b $BB
$O --root $R delete --force $BB; echo "delete-force.rc=$?"; echo "delete-force=$(info $V)"
kill -9 $V; wait $V
echo done=yes
"#;

/// Removes what a failed script may have left: state and cgroups of its containers.
struct Leftovers {
    root: PathBuf,
    ids: Vec<String>,
}

impl Drop for Leftovers {
    fn drop(&mut self) {
        // The pid namespace is gone, so no process of these containers is left: their cgroups
        // are empty and can be removed directly (never signal a pid recorded in that namespace
        // from this one).
        for id in &self.ids {
            let mut dirs = support::cgroup_dirs_named(id);
            dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
            for d in dirs {
                let _ = std::fs::remove_dir(d);
            }
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

#[test]
fn kill_and_delete_never_signal_a_recycled_pid() {
    let w = World::new("pidreuse");
    w.sb.write_config(&w.sb.config(&["sleep", "100000"]));
    let root = w.sb.dir.join("pidns-root");
    let ids = [w.sb.id("a"), w.sb.id("b")];
    let _leftovers = Leftovers {
        root: root.clone(),
        ids: ids.to_vec(),
    };
    let busybox = support::busybox();
    let mut cmd = Command::new(&busybox);
    cmd.args(["unshare", "--pid", "--fork", "--mount-proc"])
        .args(["--propagation", "private"])
        .arg(&busybox)
        .args(["sh", "-c", SCRIPT, "pidreuse"])
        .arg(support::ocirun_bin())
        .arg(&root)
        .arg(&w.sb.bundle)
        .args(&ids);
    let (_status, text, stderr) = w.output(cmd);
    let log = format!("{text}\nstderr:\n{stderr}");
    let kv: BTreeMap<&str, &str> = text.lines().filter_map(|l| l.split_once('=')).collect();
    assert!(!kv.contains_key("error"), "setup failed: {log}");
    assert_eq!(
        kv.get("done"),
        Some(&"yes"),
        "the script did not finish: {log}"
    );
    assert_eq!(kv["state"], "stopped", "{log}");

    // "<state>:<start time>": the same process, not killed, has the same start time and is
    // not a zombie (or gone).
    let start_of = |info: &str| -> Option<String> {
        let (state, start) = info.split_once(':')?;
        (!matches!(state, "Z" | "X")).then(|| start.to_owned())
    };
    for (container, ops) in [
        ("a", &["kill", "kill-term", "kill-all", "delete"][..]),
        ("b", &["delete-force"][..]),
    ] {
        let victim = kv[format!("{container}.victim").as_str()];
        let start = start_of(victim).unwrap_or_else(|| panic!("no victim: {log}"));
        for op in ops {
            assert_eq!(
                start_of(kv[op]).as_deref(),
                Some(start.as_str()),
                "`{op}` of container {container} signalled the unrelated process that reused \
                 its init's pid {} (before {victim}, after {}):\n{log}",
                kv[format!("{container}.pid").as_str()],
                kv[op]
            );
        }
    }
    // kill of a dead container fails as runc's callers expect; delete succeeds.
    assert_eq!(kv["kill.rc"], "1", "{log}");
    assert_eq!(kv["delete.rc"], "0", "{log}");
    assert_eq!(kv["delete-force.rc"], "0", "{log}");
    assert!(
        std::fs::read_dir(&root).map_or(true, |mut d| d.next().is_none()),
        "delete left state behind: {log}"
    );
}
