//! pause, resume, update, ps and events on a running container, checked against the cgroup
//! files of its init (works on v1, hybrid and v2 hosts).

mod support;

use serde_json::{Value, json};
use support::{Sandbox, stderr, stdout};

/// The host path of `file` in the init's cgroup for `controller` (v1), or in its v2 cgroup.
fn cgroup_file(pid: i32, controller: &str, file: &str) -> std::path::PathBuf {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, ctrls, path) = (parts.next(), parts.next().unwrap(), parts.next().unwrap());
        if ctrls.split(',').any(|c| c == controller) {
            let p = std::path::Path::new("/sys/fs/cgroup").join(controller);
            return p.join(path.trim_start_matches('/')).join(file);
        }
    }
    let v2 = text.lines().find_map(|l| l.strip_prefix("0::")).unwrap();
    std::path::Path::new("/sys/fs/cgroup")
        .join(v2.trim_start_matches('/'))
        .join(file)
}

fn state(sb: &Sandbox, id: &str) -> Value {
    serde_json::from_slice(&sb.ocirun(&["state", id]).stdout).unwrap()
}

#[test]
fn pause_resume_update_ps_events() {
    let sb = Sandbox::new("cgcmds");
    let mut cfg = sb.config(&["sleep", "1000"]);
    cfg["linux"]["resources"]["pids"] = json!({"limit": 100});
    sb.write_config(&cfg);
    let id = sb.id("c");
    let out = sb.ocirun(&["run", "-d", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let pid = state(&sb, &id)["pid"].as_i64().unwrap() as i32;
    let pids_max = cgroup_file(pid, "pids", "pids.max");
    assert_eq!(std::fs::read_to_string(&pids_max).unwrap().trim(), "100");

    // pause / resume
    assert!(sb.ocirun(&["pause", &id]).status.success());
    assert_eq!(state(&sb, &id)["status"], "paused");
    let out = sb.ocirun(&["pause", &id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("already paused"), "{}", stderr(&out));
    let out = sb.ocirun(&["exec", &id, "true"]);
    assert_eq!(out.status.code(), Some(255));
    assert!(stderr(&out).contains("paused"), "{}", stderr(&out));
    assert!(sb.ocirun(&["resume", &id]).status.success());
    assert_eq!(state(&sb, &id)["status"], "running");
    let out = sb.ocirun(&["resume", &id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not paused"), "{}", stderr(&out));

    // update from flags and from a resources file
    let out = sb.ocirun(&["update", "--pids-limit", "50", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&pids_max).unwrap().trim(), "50");
    let file = sb.dir.join("res.json");
    std::fs::write(&file, r#"{"pids":{"limit":42}}"#).unwrap();
    let out = sb.ocirun(&["update", "--resources", file.to_str().unwrap(), &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&pids_max).unwrap().trim(), "42");
    let out = sb.ocirun(&["update", "--memory", "lots", &id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("--memory"), "{}", stderr(&out));

    // ps: the init's host pid, plus an exec'd process while it runs
    let out = sb.ocirun(&["ps", "--format", "json", &id]);
    let pids: Vec<i32> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(pids, vec![pid]);
    let out = sb.ocirun(&["ps", &id]);
    let text = stdout(&out);
    assert!(text.lines().next().unwrap().contains("PID"), "{text}");
    assert!(text.contains("sleep 1000"), "{text}");

    // events --stats: runc's shape
    let out = sb.ocirun(&["events", "--stats", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let ev: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(ev["type"], "stats");
    assert_eq!(ev["id"], id);
    assert_eq!(ev["data"]["pids"]["current"], 1);
    assert_eq!(ev["data"]["pids"]["limit"], 42);
    assert!(ev["data"]["memory"]["usage"]["usage"].as_u64().unwrap() > 0);

    assert!(sb.ocirun(&["delete", "--force", &id]).status.success());
    sb.assert_clean(&id);
    for cmd in ["pause", "resume"] {
        let out = sb.ocirun(&[cmd, &id]);
        assert!(stderr(&out).contains("does not exist"), "{}", stderr(&out));
    }
}

#[test]
fn exec_runs_in_the_container() {
    let sb = Sandbox::new("execcmd");
    let mut cfg = sb.config(&["sleep", "1000"]);
    cfg["process"]["env"] = json!(["PATH=/bin", "FROM_CONFIG=1"]);
    sb.write_config(&cfg);
    let id = sb.id("c");
    assert!(sb.ocirun(&["run", "-d", &id]).status.success());
    let init: i32 = state(&sb, &id)["pid"].as_i64().unwrap() as i32;

    let out = sb.ocirun(&[
        "exec",
        "--env",
        "EXTRA=2",
        "--cwd",
        "/tmp",
        "--user",
        "65534:65534",
        &id,
        "sh",
        "-c",
        "echo $FROM_CONFIG $EXTRA $(pwd) $(id -u):$(id -g); readlink /proc/self/ns/pid",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "1 2 /tmp 65534:65534");
    // exec joins the init's pid namespace.
    let host_ns = std::fs::read_link(format!("/proc/{init}/ns/pid")).unwrap();
    assert_eq!(lines[1], host_ns.to_str().unwrap());

    let out = sb.ocirun(&["exec", &id, "sh", "-c", "exit 9"]);
    assert_eq!(out.status.code(), Some(9));

    let pid_file = sb.dir.join("exec.pid");
    let out = sb.ocirun(&[
        "exec",
        "-d",
        "--pid-file",
        pid_file.to_str().unwrap(),
        &id,
        "sleep",
        "100",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let epid: i32 = std::fs::read_to_string(&pid_file).unwrap().parse().unwrap();
    let comm = std::fs::read_to_string(format!("/proc/{epid}/comm")).unwrap();
    assert_eq!(comm.trim(), "sleep");
    let out = sb.ocirun(&["ps", "--format", "json", &id]);
    let pids: Vec<i32> = serde_json::from_slice(&out.stdout).unwrap();
    assert!(pids.contains(&epid), "{pids:?} lacks {epid}");

    let proc_file = sb.dir.join("process.json");
    std::fs::write(
        &proc_file,
        serde_json::to_vec(&json!({"args": ["sh", "-c", "echo $A"], "env": ["PATH=/bin", "A=from-file"], "cwd": "/", "user": {"uid": 0, "gid": 0}})).unwrap(),
    )
    .unwrap();
    let out = sb.ocirun(&["exec", "--process", proc_file.to_str().unwrap(), &id]);
    assert_eq!(stdout(&out), "from-file", "{}", stderr(&out));

    // Unlike the init's, an exec'd process's cwd must exist (runc's behaviour).
    let out = sb.ocirun(&["exec", "--cwd", "/no/such/dir", &id, "pwd"]);
    assert_eq!(out.status.code(), Some(255));
    assert!(
        stderr(&out).contains("no such file or directory"),
        "{}",
        stderr(&out)
    );
    let out = sb.ocirun(&["exec", &id, "test", "-e", "/no"]);
    assert_eq!(out.status.code(), Some(1), "exec created the missing cwd");

    let out = sb.ocirun(&["exec", &id, "no-such-binary"]);
    assert_eq!(out.status.code(), Some(255));
    assert!(
        stderr(&out).contains("executable file not found"),
        "{}",
        stderr(&out)
    );
    std::fs::write(&proc_file, b"{\"args\": 5}").unwrap();
    let out = sb.ocirun(&["exec", "--process", proc_file.to_str().unwrap(), &id]);
    assert_eq!(out.status.code(), Some(255));
    assert!(stderr(&out).contains("args"), "{}", stderr(&out));
}

#[test]
fn many_concurrent_execs_into_one_container() {
    let sb = Sandbox::new("execmany");
    sb.write_config(&sb.config(&["sleep", "1000"]));
    let id = sb.id("c");
    assert!(sb.ocirun(&["run", "-d", &id]).status.success());
    let outputs: Vec<(i32, String)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..12)
            .map(|i| {
                let sb = &sb;
                let id = &id;
                s.spawn(move || {
                    let script = format!("echo exec-{i}; exit {}", i % 3);
                    let out = sb.ocirun(&["exec", id, "sh", "-c", &script]);
                    (out.status.code().unwrap_or(-1), stdout(&out))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (i, (status, out)) in outputs.iter().enumerate() {
        assert_eq!(*status, (i % 3) as i32, "exec {i}: {out}");
        assert_eq!(out, &format!("exec-{i}"));
    }
    // Only the init is left.
    let out = sb.ocirun(&["ps", "--format", "json", &id]);
    let pids: Vec<i32> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(pids.len(), 1, "{pids:?}");
}

/// Kills and reaps a spawned `ocirun events` when the test ends, also when it fails.
struct Reaped(std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn events_stream_stats_and_oom_until_the_container_is_gone() {
    use std::io::BufRead;
    use std::sync::mpsc;
    use std::time::Duration;

    let sb = Sandbox::new("events");
    let mut cfg = sb.config(&["sleep", "1000"]);
    let limit = 16 << 20;
    cfg["linux"]["resources"]["memory"] = json!({"limit": limit, "swap": limit});
    sb.write_config(&cfg);
    let id = sb.id("c");
    let out = sb.ocirun(&["run", "-d", &id]);
    assert!(out.status.success(), "{}", stderr(&out));

    let out = sb.ocirun(&["events", "--interval", "soon", &id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("--interval"), "{}", stderr(&out));

    let mut child = sb
        .cmd(&["events", "--interval", "200ms", &id])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let events = Reaped(child);
    let (tx, rx) = mpsc::channel::<Value>();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let line = line.unwrap();
            let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
            if tx.send(v).is_err() {
                break;
            }
        }
    });
    // The bound only keeps a broken runtime from hanging the suite; nothing here is timed.
    let next = || {
        rx.recv_timeout(Duration::from_secs(60))
            .expect("an event line")
    };

    // The stream starts with stats and repeats them every interval.
    for _ in 0..2 {
        let ev = next();
        assert_eq!(ev["type"], "stats", "{ev}");
        assert_eq!(ev["id"], id);
        assert_eq!(ev["data"]["memory"]["usage"]["limit"], limit, "{ev}");
    }

    // A process that outgrows the limit is OOM-killed, and the stream says so.
    let out = sb.ocirun(&[
        "exec",
        &id,
        "sh",
        "-c",
        "x=0123456789abcdef; while :; do x=$x$x; done",
    ]);
    assert_eq!(out.status.code(), Some(137), "{}", stderr(&out));
    let oom = std::iter::repeat_with(next)
        .take(1000)
        .find(|ev| ev["type"] != "stats")
        .expect("an oom event");
    assert_eq!(oom, json!({"type": "oom", "id": id}));

    // Once the container is deleted the stream ends by itself, with status 0.
    assert!(sb.ocirun(&["delete", "--force", &id]).status.success());
    while rx.recv_timeout(Duration::from_secs(60)).is_ok() {}
    reader.join().unwrap();
    let mut events = events;
    assert_eq!(events.0.wait().unwrap().code(), Some(0));
    sb.assert_clean(&id);
}

#[test]
fn delete_force_kills_a_paused_container_and_its_children() {
    // Frozen processes die of SIGKILL only once thawed: delete --force must thaw the init it
    // kills, and the cgroup's removal must kill, thaw and wait for what is left (here a child
    // of the init, and a process of the container's own pid namespace).
    let sb = Sandbox::new("pausedel");
    let cfg = sb.config(&["sh", "-c", "sleep 1000 & sleep 1000"]);
    sb.write_config(&cfg);
    let id = sb.id("c");
    let out = sb.ocirun(&["run", "-d", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let init = state(&sb, &id)["pid"].as_i64().unwrap() as i32;
    let out = sb.ocirun(&["exec", "-d", &id, "sleep", "1000"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(sb.ocirun(&["pause", &id]).status.success());
    assert_eq!(state(&sb, &id)["status"], "paused");
    let procs = cgroup_file(init, "pids", "cgroup.procs");
    let pids = std::fs::read_to_string(&procs).unwrap();
    assert!(pids.lines().count() >= 3, "{pids}");

    let out = sb.ocirun(&["delete", "--force", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    sb.assert_clean(&id);
    for pid in pids.lines() {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists()
                || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .is_ok_and(|s| s.contains(") Z ")),
            "pid {pid} is still alive"
        );
    }
}
