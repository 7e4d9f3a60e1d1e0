//! Command-line options of the runner.

use std::path::PathBuf;

pub const USAGE: &str = "\
usage: oci-conformance --runtime PATH [options]
  --runtime PATH         runtime binary under test (env OCI_RUNTIME); repeat it to
                         run every case on each and print a comparison table
  --runtime-name NAME    name of the runtime given just before, which picks the
                         built-in known-failures table (default: its file name)
  --checker PATH         static oci-checker binary (env OCI_CHECKER; default: the musl
                         build next to this binary's target directory)
  --busybox PATH         static busybox for the test rootfs (env OCI_BUSYBOX; default /bin/busybox)
  --filter SUBSTR        run only cases whose name contains SUBSTR (repeatable)
  --known-failures FILE  known failures, one `case-name reason...` a line (replaces the built-in table)
  --no-known-failures    ignore the built-in table
  --jobs N               cases run in parallel (default 1)
  --timeout SECS         deadline of one runtime command (default 30)
  --workdir DIR          where temporary bundles go (default $TMPDIR or /tmp)
  --keep                 keep the work directory of failed cases
  --list                 list the cases and exit";

pub struct Options {
    /// (path, name) of each runtime under test.
    pub runtimes: Vec<(PathBuf, String)>,
    pub checker: PathBuf,
    pub busybox: PathBuf,
    pub filters: Vec<String>,
    pub known_file: Option<PathBuf>,
    pub no_known: bool,
    pub jobs: usize,
    pub timeout: u64,
    pub workdir: PathBuf,
    pub keep: bool,
    pub list: bool,
}

impl Options {
    pub fn parse(args: impl Iterator<Item = String>) -> Result<Options, String> {
        let env = |k: &str| std::env::var_os(k).map(PathBuf::from);
        let mut runtimes: Vec<(PathBuf, String)> = Vec::new();
        let mut checker = env("OCI_CHECKER");
        let mut o = Options {
            runtimes: Vec::new(),
            checker: PathBuf::new(),
            busybox: env("OCI_BUSYBOX").unwrap_or_else(|| "/bin/busybox".into()),
            filters: Vec::new(),
            known_file: None,
            no_known: false,
            jobs: 1,
            timeout: 30,
            workdir: std::env::temp_dir(),
            keep: false,
            list: false,
        };
        let mut args = args.peekable();
        while let Some(a) = args.next() {
            let (flag, inline) = match a.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
                _ => (a.clone(), None),
            };
            let mut value = || {
                inline
                    .clone()
                    .or_else(|| args.next())
                    .ok_or(format!("{flag} needs a value"))
            };
            match flag.as_str() {
                "--runtime" => runtimes.push((value()?.into(), String::new())),
                "--runtime-name" => {
                    let name = value()?;
                    let last = runtimes
                        .last_mut()
                        .ok_or("--runtime-name must follow a --runtime")?;
                    last.1 = name;
                }
                "--checker" => checker = Some(value()?.into()),
                "--busybox" => o.busybox = value()?.into(),
                "--filter" => o.filters.push(value()?),
                "--known-failures" => o.known_file = Some(value()?.into()),
                "--no-known-failures" => o.no_known = true,
                "--jobs" => o.jobs = value()?.parse().map_err(|e| format!("--jobs: {e}"))?,
                "--timeout" => {
                    o.timeout = value()?.parse().map_err(|e| format!("--timeout: {e}"))?
                }
                "--workdir" => o.workdir = value()?.into(),
                "--keep" => o.keep = true,
                "--list" => o.list = true,
                "-h" | "--help" => return Err("help".into()),
                other => return Err(format!("unknown argument {other}")),
            }
        }
        o.jobs = o.jobs.max(1);
        if o.list {
            return Ok(o);
        }
        if runtimes.is_empty() {
            let rt = env("OCI_RUNTIME").ok_or("--runtime (or OCI_RUNTIME) is required")?;
            runtimes.push((rt, String::new()));
        }
        for (path, name) in &mut runtimes {
            if name.is_empty() {
                *name = path
                    .file_name()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default();
            }
        }
        o.runtimes = runtimes;
        o.checker = match checker {
            Some(c) => c,
            None => default_checker().ok_or("--checker (or OCI_CHECKER) is required: build it with `cargo build -p ocirun-conformance --bin oci-checker --target x86_64-unknown-linux-musl`")?,
        };
        Ok(o)
    }
}

/// `<target>/x86_64-unknown-linux-musl/<profile>/oci-checker`, next to our own
/// `<target>/<profile>/oci-conformance` (or `<target>/<profile>/deps/...` in tests).
fn default_checker() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    for dir in exe.ancestors().skip(1).take(3) {
        let (Some(profile), Some(target)) = (dir.file_name(), dir.parent()) else {
            continue;
        };
        let p = target
            .join("x86_64-unknown-linux-musl")
            .join(profile)
            .join("oci-checker");
        if p.is_file() {
            return Some(p);
        }
    }
    None
}
