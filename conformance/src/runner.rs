//! Runs the selected cases (each in its own thread, with a backstop deadline) and
//! prints the verdicts and the closing count.

use crate::bundle::RootfsSource;
use crate::harness::{Case, Ctx, Env, Fail};
use crate::host::{Cgroups, is_static_elf};
use crate::known;
use crate::options::Options;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

#[derive(Default)]
pub struct Tally {
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
    pub known: usize,
    /// Per case (in `cases` order): ok, FAIL, skip or known.
    pub verdicts: Vec<&'static str>,
}

/// Runs every case on one runtime.
pub fn run(opts: &Options, runtime: &Path, name: &str, cases: &[&Case]) -> Result<Tally, String> {
    if !is_static_elf(&opts.checker)? {
        return Err(format!(
            "{} is dynamically linked; build it for x86_64-unknown-linux-musl",
            opts.checker.display()
        ));
    }
    let known = match (&opts.known_file, opts.no_known) {
        (Some(f), _) => known::from_file(f)?,
        (None, true) => BTreeMap::new(),
        (None, false) => known::builtin(name),
    };
    let work = opts
        .workdir
        .join(format!("oci-conformance.{}", std::process::id()));
    std::fs::create_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
    let runtime =
        std::fs::canonicalize(runtime).map_err(|e| format!("{}: {e}", runtime.display()))?;
    let mut host_ns = BTreeMap::new();
    for ty in ["cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts"] {
        if let Some(ino) = crate::host::ns_inode("self", ty) {
            host_ns.insert(ty.to_string(), ino);
        }
    }
    let env = Arc::new(Env {
        runtime,
        busybox: opts.busybox.clone(),
        rootfs: RootfsSource::new(opts.busybox.clone(), opts.checker.clone())?,
        work: work.clone(),
        cmd_timeout: Duration::from_secs(opts.timeout),
        cgroups: Cgroups::detect(),
        host_ns,
        id_prefix: format!("oc{}", std::process::id()),
    });
    println!(
        "# runtime {} ({name}), {} cases",
        env.runtime.display(),
        cases.len()
    );

    let next = AtomicUsize::new(0);
    let tally = Mutex::new(Tally {
        verdicts: vec![""; cases.len()],
        ..Tally::default()
    });
    let case_timeout = Duration::from_secs(opts.timeout * 6);
    std::thread::scope(|s| {
        for _ in 0..opts.jobs.min(cases.len().max(1)) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(case) = cases.get(i) else { break };
                    let verdict = run_one(&env, case, i, case_timeout, opts.keep);
                    let mut t = tally.lock().unwrap_or_else(|e| e.into_inner());
                    let (word, line) = judge(
                        &mut t,
                        case.name,
                        verdict,
                        known.get(case.name).map(String::as_str),
                    );
                    t.verdicts[i] = word;
                    println!("{line}");
                    let _ = std::io::stdout().flush();
                }
            });
        }
    });
    if !opts.keep {
        let _ = std::fs::remove_dir(&work);
    }
    let t = tally.into_inner().unwrap_or_else(|e| e.into_inner());
    if t.known > 0 {
        println!("# {} known failures of {name} counted as skipped", t.known);
    }
    println!(
        "# {name}: {} passed, {} failed, {} skipped",
        t.passed, t.failed, t.skipped
    );
    Ok(t)
}

/// Runs one case in its own thread; a panic or a hang fails the case.
fn run_one(
    env: &Arc<Env>,
    case: &Case,
    index: usize,
    timeout: Duration,
    keep: bool,
) -> Result<(), Fail> {
    let (tx, rx) = mpsc::channel();
    let env = env.clone();
    let f = case.run;
    std::thread::spawn(move || {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut ctx = Ctx::new(env, index)?;
            let r = f(&mut ctx);
            let problems = ctx.cleanup();
            if keep && r.is_err() {
                eprintln!("# kept {}", ctx.dir.display());
                std::mem::forget(ctx);
            }
            match r {
                Ok(()) if !problems.is_empty() => Err(Fail::Fail(problems.join("; "))),
                other => other,
            }
        }));
        let r = result.unwrap_or_else(|p| {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()));
            Err(Fail::Fail(format!("panic: {}", msg.unwrap_or_default())))
        });
        let _ = tx.send(r);
    });
    rx.recv_timeout(timeout).unwrap_or_else(|_| {
        Err(Fail::Fail(format!(
            "case did not finish within {}s",
            timeout.as_secs()
        )))
    })
}

fn judge(
    t: &mut Tally,
    name: &str,
    verdict: Result<(), Fail>,
    known: Option<&str>,
) -> (&'static str, String) {
    let one_line = |s: &str| s.replace('\n', " ").chars().take(600).collect::<String>();
    match (verdict, known) {
        (Ok(()), None) => {
            t.passed += 1;
            ("ok", format!("ok {name}"))
        }
        (Ok(()), Some(why)) => {
            t.passed += 1;
            (
                "ok",
                format!("ok {name} (listed as a known failure, now passes: {why})"),
            )
        }
        (Err(Fail::Skip(why)), _) => {
            t.skipped += 1;
            ("skip", format!("skip {name} ({})", one_line(&why)))
        }
        (Err(Fail::Fail(msg)), Some(why)) => {
            t.skipped += 1;
            t.known += 1;
            (
                "known",
                format!(
                    "skip {name} (known failure: {why}; got: {})",
                    one_line(&msg)
                ),
            )
        }
        (Err(Fail::Fail(msg)), None) => {
            t.failed += 1;
            ("FAIL", format!("FAIL {name} ({})", one_line(&msg)))
        }
    }
}
