//! `ocirun-benches`: side-by-side benchmarks of ocirun against the OCI runtimes installed on
//! the machine (runc, crun, youki), plus the floor (the same namespaces with no runtime).
//! See `benches/README.md` and `--help`.

mod bundle;
mod cgview;
mod cleanup;
mod cli;
mod elf;
mod measure;
mod report;
mod runtimes;
mod state;
mod stats;
mod suite;

use std::path::{Path, PathBuf};

use clap::Parser;

use cli::{Bench, CgroupView, Options};
use report::{Host, Report};
use suite::{Results, Suite};

fn main() {
    let mut opts = Options::parse();
    if opts.ocirun.is_none() {
        opts.ocirun = std::env::var_os("OCIRUN_BIN")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        die("needs root (the runtimes make namespaces, mounts and cgroups)");
    }
    let workdir = opts
        .workdir
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join("ocirun-benches"));
    if let Err(e) = std::fs::create_dir_all(&workdir) {
        die(&format!("create {}: {e}", workdir.display()));
    }
    let workdir = std::fs::canonicalize(&workdir).unwrap_or(workdir);
    // In the host's mount namespace, so that it outlives a crash (see state.rs).
    let state = state::prepare(&workdir, !opts.no_tmpfs).unwrap_or_else(|e| die(&e));
    // While the process still has a single thread (unshare(CLONE_NEWNS) needs it).
    let layout = match opts.cgroup_view {
        CgroupView::Auto => match cgview::hide_unified() {
            Ok(l) => l,
            Err(e) => die(&format!("cgroup view: {e} (or pass --cgroup-view host)")),
        },
        CgroupView::Host => cgview::detect(),
    };
    let outcome = real_main(&opts, layout, &workdir, &state.roots);
    // Every thread has ended: the state tmpfs can be unmounted in the host's namespace.
    let left = cleanup::count_in(&state.roots);
    let finished = state.finish(left);
    if let Err(e) = outcome.and(finished) {
        die(&e);
    }
}

fn die(msg: &str) -> ! {
    eprintln!("ocirun-benches: {msg}");
    std::process::exit(1);
}

/// The run itself.
fn real_main(
    opts: &Options,
    layout: cgview::Layout,
    workdir: &Path,
    roots: &Path,
) -> Result<(), String> {
    if opts.rounds == 0 {
        return Err("--rounds must be at least 1".into());
    }
    let runtimes = runtimes::discover(
        opts.ocirun.as_deref(),
        &opts.extra,
        &opts.runtimes,
        &opts.baseline,
        roots,
    )?;
    cleanup::install_handlers();
    let left = cleanup::delete_all(&runtimes);
    if left > 0 {
        eprintln!("ocirun-benches: deleted {left} containers an earlier run left behind");
    }
    for stray in cleanup::stray_roots(roots, &runtimes) {
        eprintln!(
            "ocirun-benches: warning: roots/{stray} still holds containers of a runtime not \
             measured now (run --cleanup-only with it)"
        );
    }
    if opts.cleanup_only {
        return Ok(());
    }
    let busybox = bundle::find_busybox(opts.busybox.as_deref())?;
    let bundles = bundle::make(workdir, &busybox)?;
    let logs = workdir.join("logs");
    std::fs::create_dir_all(&logs).map_err(|e| format!("create {}: {e}", logs.display()))?;
    let floor = if opts.no_floor || !opts.bench.contains(&Bench::Run) {
        None
    } else {
        match runtimes::which("unshare") {
            Some(u) => Some(suite::floor_command(&u, &bundles.rootfs)),
            None => {
                eprintln!("ocirun-benches: no `unshare` on PATH: no floor");
                None
            }
        }
    };
    let host = Host::probe(layout);
    if opts.verbose {
        eprintln!("ocirun-benches: {}", host.layout);
        for r in &runtimes {
            eprintln!(
                "ocirun-benches: {} = {} ({})",
                r.name,
                r.path.display(),
                r.version
            );
        }
    }

    let mut suite = Suite {
        opts,
        runtimes: &runtimes,
        bundles: &bundles,
        floor,
        logs,
        results: Results::default(),
    };
    let outcome = suite.run_all();
    let deleted = cleanup::delete_all(&runtimes);
    if deleted > 0 && opts.verbose {
        eprintln!("ocirun-benches: deleted {deleted} leftover containers");
    }
    outcome?;

    let sizes: Vec<Option<report::Size>> = runtimes
        .iter()
        .map(|r| {
            opts.bench
                .contains(&Bench::Size)
                .then(|| report::size_of(&r.path).ok())
                .flatten()
        })
        .collect();
    let report = Report {
        opts,
        host: &host,
        runtimes: &runtimes,
        results: &suite.results,
        sizes: &sizes,
        floor: suite.floor.is_some(),
    };
    let md = report.markdown();
    write_or_print(opts.markdown.as_ref(), &md)?;
    if let Some(path) = &opts.json {
        let text = serde_json::to_string_pretty(&report.json()).expect("serialisable");
        std::fs::write(path, text + "\n").map_err(|e| format!("write {}: {e}", path.display()))?;
    }
    Ok(())
}

fn write_or_print(path: Option<&PathBuf>, text: &str) -> Result<(), String> {
    match path {
        Some(p) => std::fs::write(p, text).map_err(|e| format!("write {}: {e}", p.display())),
        None => {
            print!("{text}");
            Ok(())
        }
    }
}
