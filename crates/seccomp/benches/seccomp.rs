//! Benchmarks (`cargo bench -p ocirun-seccomp`), printed, not asserted:
//!
//! 1. time to compile Docker's default profile;
//! 2. per-syscall cost inside a runc container under Docker's profile: no
//!    filter, runc's filter (libseccomp + ENOSYS patch) and ours (installed by
//!    the probe), for `getppid()` (allowed without looking at arguments, so
//!    the kernel's constant-action cache applies) and `personality(0xffffffff)`
//!    (argument checks: the filter really runs).

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use support::{FilterSource, fixture_seccomp, have_runc, run_probe_in_container};

const ITERATIONS: u64 = 1_000_000;
const ROUNDS: u64 = 3;
/// Each configuration runs this many times, interleaved with the others, so
/// drift of the machine hits all of them alike; the best round counts.
const REPEATS: usize = 3;

fn main() {
    let spec = fixture_seccomp("docker-20.10-default.json").expect("docker profile");

    // 1. Compile time.
    for _ in 0..50 {
        std::hint::black_box(seccomp::compile(&spec).unwrap());
    }
    let runs = 2000u32;
    let mut best = Duration::MAX;
    let start = Instant::now();
    for _ in 0..runs {
        let one = Instant::now();
        std::hint::black_box(seccomp::compile(&spec).unwrap());
        best = best.min(one.elapsed());
    }
    let mean = start.elapsed() / runs;
    let filter = seccomp::compile(&spec).unwrap();
    println!(
        "compile docker-20.10-default: mean {:.1} us, best {:.1} us ({} instructions, {} runs)",
        mean.as_secs_f64() * 1e6,
        best.as_secs_f64() * 1e6,
        filter.len(),
        runs
    );

    // 2. Per-syscall cost in a container.
    if !have_runc() {
        println!("runc not installed: skipping the in-container syscall benchmark");
        return;
    }
    let runc = Path::new("runc");
    let no_filter = support::profile(r#"{"defaultAction":"SCMP_ACT_ALLOW"}"#);
    let allow_all = seccomp::compile(&no_filter).unwrap();
    if std::env::var_os("SECCOMP_BENCH_COMPILE_ONLY").is_some() {
        return;
    }
    for (label, nr, arg) in [
        ("getppid()", libc::SYS_getppid, 0u64),
        (
            "personality(0xffffffff)",
            libc::SYS_personality,
            0xffff_ffff,
        ),
    ] {
        let args: Vec<String> = [
            "--bench".to_string(),
            nr.to_string(),
            arg.to_string(),
            ITERATIONS.to_string(),
            ROUNDS.to_string(),
        ]
        .into();
        let measure = |source: FilterSource<'_>| -> f64 {
            let out = run_probe_in_container(runc, source, &args, &[]).expect("bench run");
            out.lines()
                .filter_map(|l| l.strip_prefix("ns=")?.parse::<f64>().ok())
                .fold(f64::MAX, f64::min)
        };
        let (mut base, mut runc_ns, mut ours_ns) = (f64::MAX, f64::MAX, f64::MAX);
        for _ in 0..REPEATS {
            // Baseline: a one-instruction allow-all filter, so every run pays the
            // seccomp entry the same way and only the filter body differs.
            base = base.min(measure(FilterSource::Probe(&allow_all)));
            runc_ns = runc_ns.min(measure(FilterSource::Runtime(&spec)));
            ours_ns = ours_ns.min(measure(FilterSource::Probe(&filter)));
        }
        println!(
            "{label} in a runc container, best of {}x{ITERATIONS} calls: allow-all filter {base:.1} ns, \
             runc/libseccomp filter {runc_ns:.1} ns (+{:.1}), ocirun-seccomp filter {ours_ns:.1} ns (+{:.1})",
            REPEATS as u64 * ROUNDS,
            runc_ns - base,
            ours_ns - base
        );
    }
}
