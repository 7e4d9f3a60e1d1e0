//! The benchmarks, run round-robin: inside every round each runtime (and the floor) takes one
//! sample of each benchmark, the order rotating from round to round, so drift in the machine's
//! load hits every runtime alike.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use crate::bundle::Bundles;
use crate::cleanup;
use crate::cli::{Bench, Options};
use crate::measure::{self, Sample};
use crate::runtimes::Runtime;

/// One measured quantity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Metric {
    /// `run` of /bin/true to exit, ms.
    Run,
    /// Peak RSS of the `run` process, MiB.
    RunRss,
    /// CPU time (user + system) of `run` and the processes it waited for, ms.
    RunCpu,
    Create,
    Start,
    Delete,
    /// create + start + delete, ms.
    Lifecycle,
    Exec,
    /// CPU time of `exec` and the processes it waited for, ms.
    ExecCpu,
    /// Wall time until `concurrency` containers run, ms.
    ConcurrentStart,
    /// Wall time of as many concurrent `delete --force`, ms.
    ConcurrentDelete,
}

/// Who a sample is of: a runtime (by index) or the floor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Who {
    Runtime(usize),
    Floor,
}

/// Everything measured.
#[derive(Default)]
pub struct Results {
    pub samples: BTreeMap<(Metric, Who), Vec<f64>>,
    /// The first failure of a participant in a benchmark; it takes no more samples there.
    pub failures: BTreeMap<(Bench, Who), String>,
}

impl Results {
    fn add(&mut self, m: Metric, who: Who, v: f64) {
        self.samples.entry((m, who)).or_default().push(v);
    }
    fn failed(&self, b: Bench, who: Who) -> bool {
        self.failures.contains_key(&(b, who))
    }
    fn fail(&mut self, b: Bench, who: Who, msg: String) {
        self.failures.entry((b, who)).or_insert(msg);
    }
}

/// The floor: the container's namespaces (pid, mount, uts, ipc, net: those of runc's
/// template) and a chroot into the same rootfs, made by util-linux `unshare`, no runtime.
pub fn floor_command(unshare: &Path, rootfs: &Path) -> Vec<OsString> {
    let mut root = OsString::from("--root=");
    root.push(rootfs);
    vec![
        unshare.into(),
        "--fork".into(),
        "--pid".into(),
        "--mount".into(),
        "--uts".into(),
        "--ipc".into(),
        "--net".into(),
        root,
        "/bin/true".into(),
    ]
}

pub struct Suite<'a> {
    pub opts: &'a Options,
    pub runtimes: &'a [Runtime],
    pub bundles: &'a Bundles,
    pub floor: Option<Vec<OsString>>,
    pub logs: PathBuf,
    pub results: Results,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn rotated<T: Copy>(v: &[T], by: usize) -> Vec<T> {
    if v.is_empty() {
        return Vec::new();
    }
    let k = by % v.len();
    v[k..].iter().chain(&v[..k]).copied().collect()
}

impl Suite<'_> {
    fn progress(&self, msg: &str) {
        if self.opts.verbose {
            eprintln!("ocirun-benches: {msg}");
        }
    }

    fn errlog(&self, who: &str, what: &str) -> PathBuf {
        self.logs.join(format!("{who}-{what}.stderr"))
    }

    /// The pause before a timed invocation (`--settle-ms`).
    fn settle(&self) {
        if self.opts.settle_ms > 0 {
            std::thread::sleep(Duration::from_millis(self.opts.settle_ms));
        }
    }

    fn wants(&self, b: Bench) -> bool {
        self.opts.bench.contains(&b)
    }

    /// Runs every selected benchmark.
    pub fn run_all(&mut self) -> Result<(), String> {
        let exec_ids = if self.wants(Bench::Exec) {
            self.start_exec_targets()?
        } else {
            Vec::new()
        };
        let mut who: Vec<Who> = (0..self.runtimes.len()).map(Who::Runtime).collect();
        let with_floor = {
            let mut v = who.clone();
            if self.floor.is_some() {
                v.push(Who::Floor);
            }
            v
        };
        let total = self.opts.warmup + self.opts.rounds;
        for round in 0..total {
            let measured = round >= self.opts.warmup;
            self.progress(&format!(
                "round {}/{}{}",
                round + 1,
                total,
                if measured { "" } else { " (warm-up)" }
            ));
            if self.wants(Bench::Run) {
                for w in rotated(&with_floor, round) {
                    cleanup::check_interrupted()?;
                    self.sample_run(w, round, measured);
                }
            }
            if self.wants(Bench::Lifecycle) {
                for w in rotated(&who, round) {
                    cleanup::check_interrupted()?;
                    self.sample_lifecycle(w, round, measured);
                }
            }
            if self.wants(Bench::Exec) {
                for w in rotated(&who, round) {
                    cleanup::check_interrupted()?;
                    if let Who::Runtime(i) = w {
                        if let Some(id) = &exec_ids[i] {
                            self.sample_exec(i, id, measured);
                        }
                    }
                }
            }
        }
        for (i, id) in exec_ids.iter().enumerate() {
            if let Some(id) = id {
                measure::quietly(&self.runtimes[i].cmd(["delete", "--force", id.as_str()]));
            }
        }
        if self.wants(Bench::Concurrent) {
            who.retain(|w| matches!(w, Who::Runtime(_)));
            for round in 0..self.opts.concurrent_rounds {
                self.progress(&format!(
                    "concurrent round {}/{}",
                    round + 1,
                    self.opts.concurrent_rounds
                ));
                for w in rotated(&who, round) {
                    cleanup::check_interrupted()?;
                    if let Who::Runtime(i) = w {
                        self.sample_concurrent(i, round);
                    }
                }
            }
        }
        Ok(())
    }

    fn sample_run(&mut self, who: Who, round: usize, measured: bool) {
        if self.results.failed(Bench::Run, who) {
            return;
        }
        let (argv, name) = match who {
            Who::Floor => (
                self.floor.clone().expect("floor is set"),
                "floor".to_owned(),
            ),
            Who::Runtime(i) => {
                let rt = &self.runtimes[i];
                let id = format!("ob-run-{round}");
                (
                    rt.cmd([
                        OsString::from("run"),
                        "--bundle".into(),
                        self.bundles.true_.clone().into(),
                        id.into(),
                    ]),
                    rt.name.clone(),
                )
            }
        };
        self.settle();
        match measure::invoke(&argv, &self.errlog(&name, "run")) {
            Ok(Sample {
                wall,
                maxrss_kib,
                cpu,
            }) if measured => {
                self.results.add(Metric::Run, who, ms(wall));
                self.results.add(Metric::RunCpu, who, ms(cpu));
                self.results
                    .add(Metric::RunRss, who, maxrss_kib as f64 / 1024.0);
            }
            Ok(_) => {}
            Err(e) => {
                if let Who::Runtime(i) = who {
                    let id = format!("ob-run-{round}");
                    measure::quietly(&self.runtimes[i].cmd(["delete", "--force", id.as_str()]));
                }
                self.results.fail(Bench::Run, who, e);
            }
        }
    }

    fn sample_lifecycle(&mut self, who: Who, round: usize, measured: bool) {
        let Who::Runtime(i) = who else { return };
        if self.results.failed(Bench::Lifecycle, who) {
            return;
        }
        let rt = &self.runtimes[i];
        let id = format!("ob-life-{round}");
        let pid_file = self.logs.join(format!("{}-life.pid", rt.name));
        let log = self.errlog(&rt.name, "lifecycle");
        let outcome = (|| -> Result<[Duration; 3], String> {
            let _ = std::fs::remove_file(&pid_file);
            self.settle();
            let create = measure::invoke(
                &rt.cmd([
                    OsString::from("create"),
                    "--bundle".into(),
                    self.bundles.true_.clone().into(),
                    "--pid-file".into(),
                    pid_file.clone().into(),
                    id.clone().into(),
                ]),
                &log,
            )?;
            let pid: libc::pid_t = std::fs::read_to_string(&pid_file)
                .map_err(|e| format!("read the pid file of {}: {e}", rt.name))?
                .trim()
                .parse()
                .map_err(|e| format!("pid file of {}: {e}", rt.name))?;
            self.settle();
            let start = measure::invoke(&rt.cmd(["start", id.as_str()]), &log)?;
            // Not timed: the container's own /bin/true.
            measure::wait_exit(pid, Duration::from_secs(10))?;
            self.settle();
            let delete = measure::invoke(&rt.cmd(["delete", id.as_str()]), &log)?;
            Ok([create.wall, start.wall, delete.wall])
        })();
        match outcome {
            Ok([c, s, d]) if measured => {
                self.results.add(Metric::Create, who, ms(c));
                self.results.add(Metric::Start, who, ms(s));
                self.results.add(Metric::Delete, who, ms(d));
                self.results.add(Metric::Lifecycle, who, ms(c + s + d));
            }
            Ok(_) => {}
            Err(e) => {
                measure::quietly(&rt.cmd(["delete", "--force", id.as_str()]));
                self.results.fail(Bench::Lifecycle, who, e);
            }
        }
    }

    /// One long-running container per runtime, for `exec`.
    fn start_exec_targets(&mut self) -> Result<Vec<Option<String>>, String> {
        let mut ids = Vec::new();
        for (i, rt) in self.runtimes.iter().enumerate() {
            cleanup::check_interrupted()?;
            let id = "ob-exec-target".to_owned();
            let argv = rt.cmd([
                OsString::from("run"),
                "--detach".into(),
                "--bundle".into(),
                self.bundles.sleep.clone().into(),
                id.clone().into(),
            ]);
            match measure::invoke(&argv, &self.errlog(&rt.name, "exec-target")) {
                Ok(_) => ids.push(Some(id)),
                Err(e) => {
                    measure::quietly(&rt.cmd(["delete", "--force", id.as_str()]));
                    self.results.fail(
                        Bench::Exec,
                        Who::Runtime(i),
                        format!("start the container to exec into: {e}"),
                    );
                    ids.push(None);
                }
            }
        }
        Ok(ids)
    }

    fn sample_exec(&mut self, i: usize, id: &str, measured: bool) {
        let who = Who::Runtime(i);
        if self.results.failed(Bench::Exec, who) {
            return;
        }
        let rt = &self.runtimes[i];
        let argv = rt.cmd(["exec", id, "/bin/true"]);
        self.settle();
        match measure::invoke(&argv, &self.errlog(&rt.name, "exec")) {
            Ok(s) if measured => {
                self.results.add(Metric::Exec, who, ms(s.wall));
                self.results.add(Metric::ExecCpu, who, ms(s.cpu));
            }
            Ok(_) => {}
            Err(e) => self.results.fail(Bench::Exec, who, e),
        }
    }

    /// `concurrency` `run -d` at once, then as many `delete --force` at once.
    fn sample_concurrent(&mut self, i: usize, round: usize) {
        let who = Who::Runtime(i);
        if self.results.failed(Bench::Concurrent, who) {
            return;
        }
        let rt = &self.runtimes[i];
        let n = self.opts.concurrency;
        let ids: Vec<String> = (0..n).map(|k| format!("ob-conc-{round}-{k}")).collect();
        let starts: Vec<Vec<OsString>> = ids
            .iter()
            .map(|id| {
                rt.cmd([
                    OsString::from("run"),
                    "--detach".into(),
                    "--bundle".into(),
                    self.bundles.sleep.clone().into(),
                    id.into(),
                ])
            })
            .collect();
        let deletes: Vec<Vec<OsString>> = ids
            .iter()
            .map(|id| rt.cmd(["delete", "--force", id.as_str()]))
            .collect();
        let logs: Vec<PathBuf> = (0..n)
            .map(|k| self.errlog(&rt.name, &format!("concurrent-{k}")))
            .collect();
        let started = all_at_once(&starts, &logs);
        let deleted = all_at_once(&deletes, &logs);
        match (started, deleted) {
            (Ok(s), Ok(d)) => {
                self.results.add(Metric::ConcurrentStart, who, ms(s));
                self.results.add(Metric::ConcurrentDelete, who, ms(d));
            }
            (Err(e), _) | (_, Err(e)) => {
                for argv in &deletes {
                    measure::quietly(argv);
                }
                self.results.fail(Bench::Concurrent, who, e);
            }
        }
    }
}

/// Runs every command at once (one thread each, released together); the wall time from the
/// release until the last one exited.
fn all_at_once(cmds: &[Vec<OsString>], logs: &[PathBuf]) -> Result<Duration, String> {
    let gate = Barrier::new(cmds.len() + 1);
    std::thread::scope(|s| {
        let handles: Vec<_> = cmds
            .iter()
            .zip(logs)
            .map(|(argv, log)| {
                let gate = &gate;
                s.spawn(move || {
                    gate.wait();
                    measure::invoke(argv, log)
                })
            })
            .collect();
        gate.wait();
        let t0 = Instant::now();
        let mut first_err = None;
        for h in handles {
            match h.join() {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    first_err.get_or_insert(e);
                }
                Err(_) => {
                    first_err.get_or_insert("a harness thread panicked".to_owned());
                }
            }
        }
        let wall = t0.elapsed();
        match first_err {
            Some(e) => Err(e),
            None => Ok(wall),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_starts_each_round_elsewhere() {
        assert_eq!(rotated(&[1, 2, 3], 0), [1, 2, 3]);
        assert_eq!(rotated(&[1, 2, 3], 1), [2, 3, 1]);
        assert_eq!(rotated(&[1, 2, 3], 5), [3, 1, 2]);
    }

    #[test]
    fn floor_makes_the_templates_namespaces_in_the_rootfs() {
        let argv = floor_command(Path::new("unshare"), Path::new("/r"));
        let s: Vec<String> = argv
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            s,
            [
                "unshare",
                "--fork",
                "--pid",
                "--mount",
                "--uts",
                "--ipc",
                "--net",
                "--root=/r",
                "/bin/true"
            ]
        );
    }
}
