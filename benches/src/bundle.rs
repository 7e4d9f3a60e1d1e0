//! The bundles every runtime runs: one busybox rootfs (read-only, shared), and runc's default
//! `config.json` template with `terminal: false` and a process of `/bin/true` (or a long
//! `sleep` for the containers that must stay up).

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

/// `runc spec` of runc 1.1 (the template every runtime gets, so all do the same work).
const TEMPLATE: &str = include_str!("../../fixtures/runc-spec-default.json");

/// The applets the containers use.
const APPLETS: [&str; 3] = ["true", "sleep", "sh"];

/// The bundles of one benchmark run.
pub struct Bundles {
    pub rootfs: PathBuf,
    /// Runs `/bin/true`.
    pub true_: PathBuf,
    /// Runs `sleep` for an hour (for `exec` and `concurrent`).
    pub sleep: PathBuf,
}

/// Makes (or remakes) the rootfs and both bundles under `dir`.
pub fn make(dir: &Path, busybox: &Path) -> Result<Bundles, String> {
    let err = |what: &str, p: &Path, e: std::io::Error| format!("{what} {}: {e}", p.display());
    let rootfs = dir.join("rootfs");
    let _ = fs::remove_dir_all(&rootfs);
    for sub in ["bin", "proc", "sys", "dev", "etc", "tmp"] {
        let p = rootfs.join(sub);
        fs::create_dir_all(&p).map_err(|e| err("create", &p, e))?;
    }
    let bb = rootfs.join("bin/busybox");
    fs::copy(busybox, &bb).map_err(|e| err("copy busybox to", &bb, e))?;
    fs::set_permissions(&bb, fs::Permissions::from_mode(0o755))
        .map_err(|e| err("chmod", &bb, e))?;
    for applet in APPLETS {
        let p = rootfs.join("bin").join(applet);
        symlink("busybox", &p).map_err(|e| err("symlink", &p, e))?;
    }
    let true_ = dir.join("bundle-true");
    let sleep = dir.join("bundle-sleep");
    write_config(&true_, &rootfs, &["/bin/true"])?;
    write_config(&sleep, &rootfs, &["/bin/sleep", "3600"])?;
    Ok(Bundles {
        rootfs,
        true_,
        sleep,
    })
}

/// The template with `args`, no terminal, and an absolute root path.
pub fn config(rootfs: &Path, args: &[&str]) -> Value {
    let mut spec: Value = serde_json::from_str(TEMPLATE).expect("the template is valid JSON");
    spec["process"]["terminal"] = json!(false);
    spec["process"]["args"] = json!(args);
    spec["root"]["path"] = json!(rootfs.to_string_lossy());
    spec
}

fn write_config(bundle: &Path, rootfs: &Path, args: &[&str]) -> Result<(), String> {
    fs::create_dir_all(bundle).map_err(|e| format!("create {}: {e}", bundle.display()))?;
    let text = serde_json::to_string_pretty(&config(rootfs, args)).expect("serialisable");
    let path = bundle.join("config.json");
    fs::write(&path, text).map_err(|e| format!("write {}: {e}", path.display()))
}

/// The busybox to use: `explicit`, or `busybox` on PATH. It must be statically linked, since
/// the rootfs holds nothing else.
pub fn find_busybox(explicit: Option<&Path>) -> Result<PathBuf, String> {
    let path = match explicit {
        Some(p) => p.to_owned(),
        None => crate::runtimes::which("busybox").ok_or(
            "no busybox on PATH (install busybox-static, or pass --busybox PATH)".to_owned(),
        )?,
    };
    let info = crate::elf::inspect(&path)?;
    if !info.is_static() {
        return Err(format!(
            "{} is dynamically linked; the rootfs needs a static busybox (busybox-static)",
            path.display()
        ));
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_is_the_template_with_our_process() {
        let c = config(Path::new("/r"), &["/bin/true"]);
        assert_eq!(c["process"]["terminal"], json!(false));
        assert_eq!(c["process"]["args"], json!(["/bin/true"]));
        assert_eq!(c["root"]["path"], json!("/r"));
        assert_eq!(c["root"]["readonly"], json!(true));
        let ns: Vec<&str> = c["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["type"].as_str().unwrap())
            .collect();
        // The floor (`unshare -fpmuin`) makes exactly these.
        assert_eq!(ns, ["pid", "network", "ipc", "uts", "mount"]);
    }
}
