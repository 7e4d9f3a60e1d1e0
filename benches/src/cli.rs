//! Command-line options of the harness.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};

/// Side-by-side benchmarks of ocirun against the OCI runtimes installed on this machine.
///
/// Every runtime runs the same busybox bundle (runc's default template, `terminal: false`) with
/// its own `--root`, alternating between runtimes inside each round so that drift affects all
/// of them alike. Results are medians and p90s, with ratios to the baseline (ocirun).
/// Needs root.
#[derive(Debug, Parser)]
#[command(name = "ocirun-benches", version, about, long_about)]
pub struct Options {
    /// The ocirun binary to measure (or the environment variable OCIRUN_BIN).
    #[arg(long, value_name = "PATH")]
    pub ocirun: Option<PathBuf>,

    /// Runtimes to measure, by name, comma-separated (default: ocirun and every one of runc,
    /// crun, youki found on PATH, plus every --runtime).
    #[arg(long, value_delimiter = ',', value_name = "NAMES")]
    pub runtimes: Vec<String>,

    /// An extra runtime binary to measure under a name of your choice, e.g. to compare two
    /// ocirun builds: `--runtime ocirun-old=PATH`; repeatable. It takes runc's command line.
    #[arg(long = "runtime", value_name = "NAME=PATH")]
    pub extra: Vec<String>,

    /// The runtime the ratios are computed against.
    #[arg(long, default_value = "ocirun", value_name = "NAME")]
    pub baseline: String,

    /// Benchmarks to run, comma-separated.
    #[arg(long, value_delimiter = ',', value_enum, default_values_t = Bench::all())]
    pub bench: Vec<Bench>,

    /// Measured rounds (each round takes one sample of every benchmark from every runtime).
    #[arg(long, default_value_t = 30)]
    pub rounds: usize,

    /// Unmeasured rounds first (page cache, dentries, lazily made kernel state).
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,

    /// Containers started at once by the `concurrent` benchmark.
    #[arg(long, default_value_t = 50)]
    pub concurrency: usize,

    /// Rounds of the `concurrent` benchmark (it is slow: one round starts `concurrency`
    /// containers per runtime).
    #[arg(long, default_value_t = 5)]
    pub concurrent_rounds: usize,

    /// Sleep this long before each timed invocation, so that kernel state warmed up by the
    /// previous one (any runtime's) has gone cold again: a cgroup v1 migration waits for an
    /// RCU grace period unless another one happened in the last few milliseconds, so
    /// back-to-back samples hide a cost that sporadic container starts pay, and let one
    /// runtime's work speed up the next one's. 0 measures back to back.
    #[arg(long, default_value_t = 50, value_name = "MS")]
    pub settle_ms: u64,

    /// Leave out the floor (the same namespaces made by `unshare`, no runtime).
    #[arg(long)]
    pub no_floor: bool,

    /// The static busybox to build the rootfs from (default: `busybox` on PATH).
    #[arg(long, value_name = "PATH")]
    pub busybox: Option<PathBuf>,

    /// Where bundles, runtime state roots and logs go (default: $TMPDIR/ocirun-benches).
    /// Containers left there by an interrupted run are deleted first.
    #[arg(long, value_name = "DIR")]
    pub workdir: Option<PathBuf>,

    /// Keep the runtimes' state roots (`<workdir>/roots`) on the workdir's own filesystem
    /// instead of a tmpfs mounted there (a production host keeps runtime state on the /run
    /// tmpfs; a disk filesystem adds journal waits to every figure).
    #[arg(long)]
    pub no_tmpfs: bool,

    /// The cgroup layout the runtimes see. `auto`: on a hybrid host (v1 controllers plus a v2
    /// hierarchy at /sys/fs/cgroup/unified), hide the v2 part in a private mount namespace so
    /// the host looks pure v1 to every runtime (crun 1.8 refuses hybrid hosts); elsewhere, the
    /// host's own. `host`: never change it.
    #[arg(long, value_enum, default_value_t = CgroupView::Auto)]
    pub cgroup_view: CgroupView,

    /// Also write every sample and summary as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,

    /// Write the markdown report to this file instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,

    /// Only delete the containers an interrupted run left in the workdir, then exit.
    #[arg(long)]
    pub cleanup_only: bool,

    /// Print progress to stderr.
    #[arg(short, long)]
    pub verbose: bool,
}

/// One benchmark.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Bench {
    /// `run` of /bin/true until the runtime exits (also gives the runtime's peak RSS).
    Run,
    /// `create`, `start`, wait for the process to exit (not timed), `delete`.
    Lifecycle,
    /// `exec` of /bin/true into a running container.
    Exec,
    /// `concurrency` containers started with `run -d` at once; wall time until all run, then
    /// the same number of concurrent `delete --force`.
    Concurrent,
    /// Size of the binary and its shared-library dependencies.
    Size,
}

impl Bench {
    fn all() -> Vec<Bench> {
        vec![
            Bench::Run,
            Bench::Lifecycle,
            Bench::Exec,
            Bench::Concurrent,
            Bench::Size,
        ]
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CgroupView {
    Auto,
    Host,
}
