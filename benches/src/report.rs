//! The results as a markdown table (medians, p90s, ratios to the baseline, the targets) and as
//! JSON (every sample).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::cgview::Layout;
use crate::cli::{Bench, Options};
use crate::elf::{self, ElfInfo};
use crate::runtimes::Runtime;
use crate::stats::{Summary, summarize};
use crate::suite::{Metric, Results, Who};

/// A binary and the shared libraries it loads.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Size {
    pub elf: ElfInfo,
    /// Every shared library `ldd` resolves (transitively), without the loader and vdso.
    pub libs: Vec<PathBuf>,
    pub libs_bytes: u64,
}

/// Size and linkage of `path`.
pub fn size_of(path: &Path) -> Result<Size, String> {
    let elf = elf::inspect(path)?;
    let mut libs = Vec::new();
    if !elf.is_static() {
        if let Ok(out) = Command::new("ldd")
            .arg(&elf.path)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
        {
            for line in String::from_utf8_lossy(&out.stdout).lines() {
                if let Some((_, rest)) = line.split_once("=> ") {
                    if let Some(p) = rest.split(" (").next().filter(|p| p.starts_with('/')) {
                        libs.push(PathBuf::from(p));
                    }
                }
            }
        }
    }
    let libs_bytes = libs
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    Ok(Size {
        elf,
        libs,
        libs_bytes,
    })
}

/// The host the run happened on.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Host {
    pub kernel: String,
    pub cpus: usize,
    pub layout: Layout,
}

impl Host {
    pub fn probe(layout: Layout) -> Host {
        // SAFETY: utsname is plain data, filled in by uname.
        let mut u: libc::utsname = unsafe { std::mem::zeroed() };
        // SAFETY: a valid out-pointer.
        let kernel = if unsafe { libc::uname(&mut u) } == 0 {
            // SAFETY: uname NUL-terminates release.
            unsafe { std::ffi::CStr::from_ptr(u.release.as_ptr()) }
                .to_string_lossy()
                .into_owned()
        } else {
            "unknown".to_owned()
        };
        Host {
            kernel,
            cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
            layout,
        }
    }
}

pub struct Report<'a> {
    pub opts: &'a Options,
    pub host: &'a Host,
    pub runtimes: &'a [Runtime],
    pub results: &'a Results,
    pub sizes: &'a [Option<Size>],
    pub floor: bool,
}

/// A value with three significant digits or so.
fn num(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn mb(bytes: u64) -> String {
    num(bytes as f64 / 1e6)
}

impl Report<'_> {
    fn summary(&self, m: Metric, who: Who) -> Option<Summary> {
        self.results
            .samples
            .get(&(m, who))
            .and_then(|v| summarize(v))
    }

    fn baseline(&self) -> Who {
        Who::Runtime(0)
    }

    fn columns(&self) -> Vec<Who> {
        let mut v: Vec<Who> = (0..self.runtimes.len()).map(Who::Runtime).collect();
        if self.floor {
            v.push(Who::Floor);
        }
        v
    }

    fn name(&self, who: Who) -> &str {
        match who {
            Who::Runtime(i) => &self.runtimes[i].name,
            Who::Floor => "floor",
        }
    }

    fn cell(&self, m: Metric, bench: Bench, who: Who) -> String {
        if self.results.failures.contains_key(&(bench, who)) {
            return "failed¹".to_owned();
        }
        let Some(s) = self.summary(m, who) else {
            return "–".to_owned();
        };
        let mut c = format!("{} [{}]", num(s.median), num(s.p90));
        if who != self.baseline() {
            if let Some(b) = self.summary(m, self.baseline()) {
                if b.median > 0.0 {
                    let _ = write!(c, " ×{:.2}", s.median / b.median);
                }
            }
        }
        c
    }

    fn size_cell(&self, i: usize) -> String {
        let Some(s) = &self.sizes[i] else {
            return "–".to_owned();
        };
        let mut c = if s.elf.is_static() {
            format!("{} static", mb(s.elf.size))
        } else {
            format!(
                "{} + {} in {} libs",
                mb(s.elf.size),
                mb(s.libs_bytes),
                s.libs.len()
            )
        };
        if i != 0 {
            if let Some(b) = &self.sizes[0] {
                let total = |s: &Size| (s.elf.size + s.libs_bytes) as f64;
                let _ = write!(c, " ×{:.2}", total(s) / total(b));
            }
        }
        c
    }

    /// The markdown report.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let o = self.opts;
        let _ = writeln!(
            out,
            "Host: Linux {}, {} CPUs; cgroups: {}. {} rounds (+{} warm-up), runtimes alternating \
             round-robin; concurrent: {} rounds of {} containers.",
            self.host.kernel,
            self.host.cpus,
            self.host.layout,
            o.rounds,
            o.warmup,
            o.concurrent_rounds,
            o.concurrency
        );
        if o.settle_ms > 0 {
            let _ = writeln!(
                out,
                "Each timed invocation follows a {} ms pause (cold kernel state, as for sporadic \
                 starts).",
                o.settle_ms
            );
        }
        let versions: Vec<String> = self
            .runtimes
            .iter()
            .map(|r| format!("{}: {}", r.name, r.version))
            .collect();
        let _ = writeln!(out, "Runtimes: {}.", versions.join("; "));
        let _ = writeln!(
            out,
            "Cells: median [p90]; ×r = that runtime's median ÷ {}'s (above 1: {} is faster or \
             smaller). The floor is `unshare --fork --pid --mount --uts --ipc --net \
             --root=ROOTFS /bin/true` (the config's namespaces and root, no runtime).\n",
            self.runtimes[0].name, self.runtimes[0].name
        );
        let cols = self.columns();
        let _ = write!(out, "| benchmark |");
        for w in &cols {
            let _ = write!(out, " {} |", self.name(*w));
        }
        let _ = write!(out, "\n|---|");
        for _ in &cols {
            let _ = write!(out, "---:|");
        }
        out.push('\n');
        let n = o.concurrency;
        let row = |b, m, label: &str, floor| (b, m, label.to_owned(), floor);
        let rows = [
            row(Bench::Run, Metric::Run, "`run` /bin/true to exit, ms", true),
            row(
                Bench::Run,
                Metric::RunCpu,
                "  CPU time of `run` (user + sys), ms",
                true,
            ),
            row(
                Bench::Lifecycle,
                Metric::Lifecycle,
                "`create` + `start` + `delete`, ms",
                false,
            ),
            row(Bench::Lifecycle, Metric::Create, "  `create`, ms", false),
            row(Bench::Lifecycle, Metric::Start, "  `start`, ms", false),
            row(Bench::Lifecycle, Metric::Delete, "  `delete`, ms", false),
            row(Bench::Exec, Metric::Exec, "`exec` /bin/true, ms", false),
            row(
                Bench::Exec,
                Metric::ExecCpu,
                "  CPU time of `exec` (user + sys), ms",
                false,
            ),
            row(
                Bench::Concurrent,
                Metric::ConcurrentStart,
                &format!("{n} × `run -d` at once, wall ms"),
                false,
            ),
            row(
                Bench::Concurrent,
                Metric::ConcurrentDelete,
                &format!("{n} × `delete --force` at once, wall ms"),
                false,
            ),
            row(Bench::Run, Metric::RunRss, "peak RSS of `run`, MiB", true),
        ];
        for (bench, metric, label, floor) in rows {
            if !o.bench.contains(&bench) {
                continue;
            }
            let _ = write!(out, "| {label} |");
            for w in &cols {
                let c = if *w == Who::Floor && !floor {
                    String::new()
                } else {
                    self.cell(metric, bench, *w)
                };
                let _ = write!(out, " {c} |");
            }
            out.push('\n');
        }
        if o.bench.contains(&Bench::Size) {
            let _ = write!(out, "| binary (+ shared libraries), MB |");
            for w in &cols {
                let c = match w {
                    Who::Runtime(i) => self.size_cell(*i),
                    Who::Floor => String::new(),
                };
                let _ = write!(out, " {c} |");
            }
            out.push('\n');
        }
        let targets = self.targets();
        if !targets.is_empty() {
            let _ = writeln!(
                out,
                "\n| target ({}) | measured | met |\n|---|---|---|",
                self.runtimes[0].name
            );
            for (t, v, ok) in targets {
                let _ = writeln!(out, "| {t} | {v} | {} |", if ok { "yes" } else { "**no**" });
            }
        }
        if !self.results.failures.is_empty() {
            out.push('\n');
            for ((bench, who), e) in &self.results.failures {
                let _ = writeln!(
                    out,
                    "¹ {} `{}`: {e}",
                    self.name(*who),
                    format!("{bench:?}").to_lowercase()
                );
            }
        }
        out
    }

    fn median(&self, m: Metric, who: Who) -> Option<f64> {
        self.summary(m, who).map(|s| s.median)
    }

    fn crun(&self) -> Option<Who> {
        self.runtimes
            .iter()
            .position(|r| r.name == "crun")
            .map(Who::Runtime)
    }

    /// The targets of issue 8, as far as this run measured them.
    fn targets(&self) -> Vec<(String, String, bool)> {
        let me = self.baseline();
        let mut t = Vec::new();
        if let Some(crun) = self.crun() {
            for (m, label) in [(Metric::Run, "`run`"), (Metric::Exec, "`exec`")] {
                if let (Some(a), Some(b)) = (self.median(m, me), self.median(m, crun)) {
                    let r = a / b;
                    t.push((
                        format!("{label} ≤ 0.6 × crun"),
                        format!("{r:.2} × crun"),
                        r <= 0.6,
                    ));
                }
            }
            if let (Some(a), Some(b)) = (
                self.median(Metric::RunRss, me),
                self.median(Metric::RunRss, crun),
            ) {
                t.push((
                    "peak RSS ≤ crun".into(),
                    format!("{} MiB vs {} MiB", num(a), num(b)),
                    a <= b,
                ));
            }
        }
        if let (Some(a), Some(f)) = (
            self.median(Metric::Run, me),
            self.median(Metric::Run, Who::Floor),
        ) {
            let r = a / f;
            t.push((
                "`run` ≤ 2 × floor".into(),
                format!("{r:.2} × floor"),
                r <= 2.0,
            ));
        }
        if let Some(Some(s)) = self.sizes.first() {
            t.push((
                "static binary, no shared libraries".into(),
                if s.elf.is_static() {
                    format!("static, {} MB", mb(s.elf.size))
                } else {
                    format!("needs {}", s.elf.needed.join(", "))
                },
                s.elf.is_static(),
            ));
        }
        t
    }

    /// Every sample and summary.
    pub fn json(&self) -> Value {
        let metrics: Vec<Value> = self
            .results
            .samples
            .iter()
            .map(|((m, who), v)| {
                json!({
                    "metric": m,
                    "unit": if *m == Metric::RunRss { "MiB" } else { "ms" },
                    "who": self.name(*who),
                    "summary": summarize(v),
                    "ratio_to_baseline": self.median(*m, *who).zip(self.median(*m, self.baseline()))
                        .map(|(a, b)| a / b),
                    "samples": v,
                })
            })
            .collect();
        let failures: Vec<Value> = self
            .results
            .failures
            .iter()
            .map(|((b, who), e)| json!({"bench": b, "who": self.name(*who), "error": e}))
            .collect();
        let targets: Vec<Value> = self
            .targets()
            .into_iter()
            .map(|(t, v, ok)| json!({"target": t, "measured": v, "met": ok}))
            .collect();
        json!({
            "host": self.host,
            "options": {
                "rounds": self.opts.rounds,
                "warmup": self.opts.warmup,
                "concurrency": self.opts.concurrency,
                "concurrent_rounds": self.opts.concurrent_rounds,
                "benches": self.opts.bench,
            },
            "baseline": self.runtimes[0].name,
            "runtimes": self.runtimes,
            "sizes": self.sizes,
            "metrics": metrics,
            "targets": targets,
            "failures": failures,
        })
    }
}
