//! Bundles: a busybox rootfs with the checker in it, and a default config in the
//! shape of `runc spec` (terminal off) that each case edits.

use serde_json::{Value, json};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Where the checker lives inside every rootfs.
pub const CHECKER: &str = "/oci-checker";

/// What goes into every rootfs.
pub struct RootfsSource {
    pub busybox: PathBuf,
    pub checker: PathBuf,
    /// Applet paths relative to `/`, e.g. `bin/sh`, from `busybox --list-full`.
    pub applets: Vec<String>,
}

impl RootfsSource {
    pub fn new(busybox: PathBuf, checker: PathBuf) -> Result<RootfsSource, String> {
        let out = std::process::Command::new(&busybox)
            .arg("--list-full")
            .output()
            .map_err(|e| format!("running {} --list-full: {e}", busybox.display()))?;
        let applets: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.trim().trim_start_matches('/').to_string())
            .filter(|l| !l.is_empty() && !l.contains(".."))
            .collect();
        if !applets.iter().any(|a| a == "bin/sh") {
            return Err(format!(
                "{} has no sh applet (is it busybox?)",
                busybox.display()
            ));
        }
        Ok(RootfsSource {
            busybox,
            checker,
            applets,
        })
    }

    /// Lays out a fresh rootfs at `dir`.
    pub fn build(&self, dir: &Path) -> std::io::Result<()> {
        for d in [
            "bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev", "tmp", "root",
            "home",
        ] {
            std::fs::create_dir_all(dir.join(d))?;
        }
        std::fs::set_permissions(dir.join("tmp"), std::fs::Permissions::from_mode(0o1777))?;
        std::fs::copy(&self.busybox, dir.join("bin/busybox"))?;
        std::fs::copy(&self.checker, dir.join(CHECKER.trim_start_matches('/')))?;
        for a in &self.applets {
            let link = dir.join(a);
            if a == "bin/busybox" || link.exists() {
                continue;
            }
            if let Some(parent) = link.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::os::unix::fs::symlink("/bin/busybox", &link)?;
        }
        std::fs::write(
            dir.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home:/bin/sh\n",
        )?;
        std::fs::write(dir.join("etc/group"), "root:x:0:\ntty:x:5:\nuser:x:1000:\n")?;
        Ok(())
    }
}

/// A bundle directory and the config that `save` writes into it.
pub struct Bundle {
    pub dir: PathBuf,
    pub config: Value,
}

impl Bundle {
    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    pub fn save(&self) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(&self.config).map_err(std::io::Error::other)?;
        std::fs::write(self.dir.join("config.json"), text)
    }

    pub fn path(&self) -> String {
        self.dir.display().to_string()
    }

    /// Sets `process.args`.
    pub fn args(&mut self, args: &[&str]) {
        self.config["process"]["args"] = json!(args);
    }

    /// Makes the process a shell script.
    pub fn sh(&mut self, script: &str) {
        self.args(&["/bin/sh", "-c", script]);
    }

    /// Makes the process `oci-checker report` with the given probes.
    pub fn report(&mut self, probes: &[&str]) {
        let mut a = vec![CHECKER, "report"];
        a.extend_from_slice(probes);
        self.args(&a);
    }

    /// Appends a mount.
    pub fn mount(&mut self, m: Value) {
        if let Some(list) = self.config["mounts"].as_array_mut() {
            list.push(m);
        }
    }

    /// Drops the mount at `destination`.
    pub fn unmount(&mut self, destination: &str) {
        if let Some(list) = self.config["mounts"].as_array_mut() {
            list.retain(|m| m["destination"] != destination);
        }
    }

    /// Adds a namespace entry (replacing one of the same type).
    pub fn namespace(&mut self, ty: &str, path: Option<&str>) {
        self.drop_namespace(ty);
        let mut ns = json!({ "type": ty });
        if let Some(p) = path {
            ns["path"] = json!(p);
        }
        if let Some(list) = self.config["linux"]["namespaces"].as_array_mut() {
            list.push(ns);
        }
    }

    pub fn drop_namespace(&mut self, ty: &str) {
        if let Some(list) = self.config["linux"]["namespaces"].as_array_mut() {
            list.retain(|n| n["type"] != ty);
        }
    }
}

/// The default config: what `runc spec` generates (the project's fixture of it), with
/// `terminal` off and the checker as the process.
pub fn default_config() -> Value {
    let mut config: Value =
        serde_json::from_str(include_str!("../../fixtures/runc-spec-default.json"))
            .expect("the runc spec fixture is JSON");
    config["process"]["terminal"] = json!(false);
    config["process"]["args"] = json!([CHECKER, "report"]);
    config["hostname"] = json!("oci-conformance");
    config
}
