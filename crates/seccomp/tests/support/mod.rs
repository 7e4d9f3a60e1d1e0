//! Helpers shared by the integration tests: fixtures, a temp dir that
//! cleans up, the syscall probe, and running it in containers.

#![allow(dead_code)] // each test binary uses a part

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use oci_spec::runtime::LinuxSeccomp;
use seccomp::{Filter, TargetArch, syscall_number};

/// The `linux.seccomp` section of a config.json fixture in the project's `fixtures/`.
pub fn fixture_seccomp(name: &str) -> Option<LinuxSeccomp> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()));
    let config: serde_json::Value = serde_json::from_str(&text).unwrap();
    let section = config.get("linux")?.get("seccomp")?.clone();
    Some(serde_json::from_value(section).unwrap())
}

pub fn profile(json: &str) -> LinuxSeccomp {
    serde_json::from_str(json).unwrap_or_else(|e| panic!("bad test profile: {e}\n{json}"))
}

/// A directory removed (with everything in it) when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "ocirun-seccomp-{tag}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// How the probe reaches a syscall.
#[derive(Clone, Copy, Debug)]
pub enum Mode {
    /// The 64-bit `syscall` instruction (x86_64 numbers).
    Sys,
    /// The 64-bit instruction with an x32 number (bit 30 set).
    X32,
    /// `int 0x80`: the i386 ABI.
    I386,
    /// Like Sys, for clone/fork: a child that gets 0 exits.
    Fork,
}

/// One probed call.
#[derive(Clone, Debug)]
pub struct Case {
    pub id: String,
    pub mode: Mode,
    pub nr: u32,
    pub args: [u64; 6],
}

impl Case {
    /// A case for syscall `name` resolved for `mode`'s ABI.
    pub fn named(mode: Mode, name: &str, args: &[u64]) -> Case {
        let arch = match mode {
            Mode::Sys | Mode::Fork => TargetArch::X86_64,
            Mode::X32 => TargetArch::X32,
            Mode::I386 => TargetArch::X86,
        };
        let nr = syscall_number(arch, name).unwrap_or_else(|| panic!("{name} on {arch:?}"));
        Case::number(mode, nr, args, name)
    }

    /// A case for a raw number (`tag` names it in the output).
    pub fn number(mode: Mode, nr: u32, args: &[u64], tag: &str) -> Case {
        let mut all = [0u64; 6];
        all[..args.len()].copy_from_slice(args);
        let args_text: Vec<String> = args.iter().map(|a| format!("{a:#x}")).collect();
        Case {
            id: format!("{mode:?}:{tag}({})", args_text.join(",")),
            mode,
            nr,
            args: all,
        }
    }

    fn line(&self) -> String {
        let mode = match self.mode {
            Mode::Sys | Mode::X32 => "sys",
            Mode::I386 => "int80",
            Mode::Fork => "fork",
        };
        let args: Vec<String> = self.args.iter().map(|a| format!("{a:#x}")).collect();
        format!("{} {mode} {:#x} {}\n", self.id, self.nr, args.join(" "))
    }
}

pub fn cases_file(cases: &[Case]) -> String {
    cases.iter().map(Case::line).collect()
}

/// Outcomes by case id: `ok`, `errno=N`, `signal=N`.
pub type Outcomes = BTreeMap<String, String>;

pub fn parse_outcomes(stdout: &str) -> Outcomes {
    stdout
        .lines()
        .filter_map(|line| line.split_once(' '))
        .map(|(id, outcome)| (id.to_string(), outcome.to_string()))
        .collect()
}

/// The probe binary, built once per test process with rustc for musl.
pub fn probe() -> &'static Path {
    static PROBE: OnceLock<PathBuf> = OnceLock::new();
    PROBE.get_or_init(|| {
        let out_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("seccomp-probe");
        std::fs::create_dir_all(&out_dir).unwrap();
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/probe/seccomp_probe.rs");
        // Build under a private name, then rename: test binaries may build it at once.
        let binary = out_dir.join("seccomp_probe");
        let building = out_dir.join(format!("seccomp_probe.{}.tmp", std::process::id()));
        let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_string());
        let status = Command::new(rustc)
            .args([
                "--edition",
                "2021",
                "-O",
                "--target",
                "x86_64-unknown-linux-musl",
            ])
            .args(["-C", "target-feature=+crt-static", "-o"])
            .arg(&building)
            .arg(&source)
            .status()
            .expect("run rustc");
        assert!(status.success(), "building the probe failed");
        std::fs::rename(&building, &binary).unwrap();
        binary
    })
}

/// Where the seccomp filter of a probe run comes from.
pub enum FilterSource<'a> {
    /// The runtime installs `linux.seccomp` from config.json.
    Runtime(&'a LinuxSeccomp),
    /// No `linux.seccomp`; the probe installs this compiled filter itself.
    Probe(&'a Filter),
}

/// Runs the probe in a busybox container under `runtime` (runc, ocirun, ...:
/// anything with runc's `spec`-compatible bundle and `run` command).
pub fn run_in_container(runtime: &Path, source: FilterSource<'_>, cases: &[Case]) -> Outcomes {
    try_run_in_container(runtime, source, cases).unwrap_or_else(|e| panic!("{e}"))
}

/// Like [`run_in_container`], but a failing run is an `Err` with its output.
pub fn try_run_in_container(
    runtime: &Path,
    source: FilterSource<'_>,
    cases: &[Case],
) -> Result<Outcomes, String> {
    let stdout = run_probe_in_container(runtime, source, &["/cases.txt".to_string()], cases)?;
    Ok(parse_outcomes(&stdout))
}

/// Runs the probe with `probe_args` (after `--filter` when the probe installs
/// the filter) in a fresh busybox container under `runtime`; returns its stdout.
pub fn run_probe_in_container(
    runtime: &Path,
    source: FilterSource<'_>,
    probe_args: &[String],
    cases: &[Case],
) -> Result<String, String> {
    static ID: AtomicU32 = AtomicU32::new(0);
    let dir = TempDir::new("bundle");
    let state_root = dir.path().join("state");
    let bundle = dir.path().join("bundle");
    let rootfs = bundle.join("rootfs");
    for sub in ["bin", "proc", "dev", "sys", "tmp"] {
        std::fs::create_dir_all(rootfs.join(sub)).unwrap();
    }
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", rootfs.join("bin/sh")).unwrap();
    std::fs::copy(probe(), rootfs.join("probe")).unwrap();
    std::fs::write(rootfs.join("cases.txt"), cases_file(cases)).unwrap();

    let spec_status = Command::new("runc")
        .args(["spec", "--bundle"])
        .arg(&bundle)
        .status()
        .unwrap();
    assert!(spec_status.success(), "runc spec");
    let config_path = bundle.join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&config_path).unwrap()).unwrap();
    let mut args = vec!["/probe".to_string()];
    match source {
        FilterSource::Runtime(seccomp) => {
            config["linux"]["seccomp"] = serde_json::to_value(seccomp).unwrap();
        }
        FilterSource::Probe(filter) => {
            std::fs::write(rootfs.join("filter.bin"), filter.to_bytes()).unwrap();
            args.extend(["--filter".to_string(), "/filter.bin".to_string()]);
        }
    }
    args.extend(probe_args.iter().cloned());
    config["process"]["args"] = serde_json::json!(args);
    config["process"]["terminal"] = serde_json::json!(false);
    config["process"]["noNewPrivileges"] = serde_json::json!(true);
    std::fs::write(&config_path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();

    let id = format!(
        "ocirun-seccomp-{}-{}",
        std::process::id(),
        ID.fetch_add(1, Ordering::Relaxed)
    );
    let _cleanup = ContainerCleanup {
        runtime: runtime.to_path_buf(),
        root: state_root.clone(),
        id: id.clone(),
    };
    let output = Command::new(runtime)
        .arg("--root")
        .arg(&state_root)
        .args(["run", "--bundle"])
        .arg(&bundle)
        .arg(&id)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "{} run failed: {}\nstdout: {stdout}\nstderr: {}",
            runtime.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(stdout.into_owned())
}

/// Deletes the container even when the test fails.
struct ContainerCleanup {
    runtime: PathBuf,
    root: PathBuf,
    id: String,
}

impl Drop for ContainerCleanup {
    fn drop(&mut self) {
        let _ = Command::new(&self.runtime)
            .arg("--root")
            .arg(&self.root)
            .args(["delete", "-f", &self.id])
            .output();
    }
}

/// Runs the probe on the host in a child that installs `filter` itself.
pub fn run_on_host(filter: &Filter, cases: &[Case]) -> Outcomes {
    let dir = TempDir::new("host");
    std::fs::write(dir.path().join("filter.bin"), filter.to_bytes()).unwrap();
    std::fs::write(dir.path().join("cases.txt"), cases_file(cases)).unwrap();
    let output = Command::new(probe())
        .arg("--filter")
        .arg(dir.path().join("filter.bin"))
        .arg(dir.path().join("cases.txt"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "probe: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    parse_outcomes(&String::from_utf8_lossy(&output.stdout))
}

/// Whether runc is installed (the differential tests need it).
pub fn have_runc() -> bool {
    Command::new("runc")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Asserts that two outcome maps agree on every case, listing all differences.
pub fn assert_same(
    left_name: &str,
    left: &Outcomes,
    right_name: &str,
    right: &Outcomes,
    cases: &[Case],
) {
    let mut differences = Vec::new();
    for case in cases {
        let (l, r) = (left.get(&case.id), right.get(&case.id));
        if l.is_none() || l != r {
            differences.push(format!(
                "  {}: {left_name}={l:?} {right_name}={r:?}",
                case.id
            ));
        }
    }
    assert!(
        differences.is_empty(),
        "{} of {} cases differ:\n{}",
        differences.len(),
        cases.len(),
        differences.join("\n")
    );
}
