//! The runtimes under test: which ones, where, and the runc-style command lines they take.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The peers looked for on PATH.
pub const PEERS: [&str; 3] = ["crun", "runc", "youki"];

/// A runtime binary and its private state root.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Runtime {
    pub name: String,
    pub path: PathBuf,
    /// `--root` of every command (one per runtime, under the workdir).
    pub root: PathBuf,
    /// First line of `--version`.
    pub version: String,
}

impl Runtime {
    fn new(name: &str, path: PathBuf, roots: &Path) -> Runtime {
        let version = version_of(&path);
        Runtime {
            name: name.to_owned(),
            root: roots.join(name),
            path,
            version,
        }
    }

    /// `RUNTIME --root ROOT ARGS...`
    pub fn cmd<I, S>(&self, args: I) -> Vec<OsString>
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        let mut v: Vec<OsString> = vec![
            self.path.clone().into(),
            "--root".into(),
            self.root.clone().into(),
        ];
        v.extend(args.into_iter().map(Into::into));
        v
    }
}

fn version_of(path: &Path) -> String {
    Command::new(path)
        .arg("--version")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "unknown version".to_owned())
}

/// The first executable called `name` on PATH.
pub fn which(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// The runtimes to measure, the baseline first. `wanted` empty means every one found.
pub fn discover(
    ocirun: Option<&Path>,
    extra: &[String],
    wanted: &[String],
    baseline: &str,
    roots: &Path,
) -> Result<Vec<Runtime>, String> {
    let mut found: Vec<(String, PathBuf)> = Vec::new();
    match ocirun {
        Some(p) if p.is_file() => found.push(("ocirun".to_owned(), p.to_owned())),
        Some(p) => return Err(format!("--ocirun {}: no such file", p.display())),
        None => {}
    }
    for peer in PEERS {
        if let Some(p) = which(peer) {
            found.push((peer.to_owned(), p));
        }
    }
    for e in extra {
        let (name, path) = e
            .split_once('=')
            .ok_or_else(|| format!("--runtime {e:?}: expected NAME=PATH"))?;
        if name.is_empty()
            || name == "floor"
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(format!(
                "--runtime {e:?}: a name is letters, digits, - and _ (and not \"floor\")"
            ));
        }
        if !Path::new(path).is_file() {
            return Err(format!("--runtime {e:?}: no such file"));
        }
        found.retain(|(n, _)| n != name);
        found.push((name.to_owned(), PathBuf::from(path)));
    }
    let chosen: Vec<(String, PathBuf)> = if wanted.is_empty() {
        found
    } else {
        let mut v = Vec::new();
        for w in wanted {
            match found.iter().find(|(n, _)| n == w) {
                Some(f) => v.push(f.clone()),
                None if w == "ocirun" => {
                    return Err("ocirun: give its binary with --ocirun PATH or OCIRUN_BIN".into());
                }
                None => return Err(format!("runtime {w:?} not found (on PATH or --runtime)")),
            }
        }
        v
    };
    if !chosen.iter().any(|(n, _)| n == baseline) {
        return Err(format!(
            "the baseline {baseline:?} is not among the runtimes (for ocirun: --ocirun PATH or OCIRUN_BIN)"
        ));
    }
    let mut out: Vec<Runtime> = chosen
        .iter()
        .map(|(n, p)| Runtime::new(n, p.clone(), roots))
        .collect();
    out.sort_by_key(|r| r.name != baseline);
    Ok(out)
}
