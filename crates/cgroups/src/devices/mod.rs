//! Device access control: v1 devices.allow/devices.deny lists, v2 an eBPF program.

pub(crate) mod bpf;
pub(crate) mod rules;

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use crate::controllers::Target;
use crate::error::Result;
use crate::fs;
use crate::layout::Version;
use rules::DeviceState;

/// Applies the rule list (default deny, then the rules in order).
pub(crate) fn set(t: &Target<'_>, rules: &[LinuxDeviceCgroup]) -> Result<()> {
    let state = DeviceState::from_rules(rules)?;
    let (dir, version) = t.get("devices")?;
    match version {
        Version::V1 => {
            // Reset to the default, then the exceptions with the opposite verdict.
            let (reset, add) = if state.default_allow {
                ("devices.allow", "devices.deny")
            } else {
                ("devices.deny", "devices.allow")
            };
            fs::write(dir, reset, "a")?;
            let lines: Vec<String> = state.exceptions.iter().map(|e| e.v1_line()).collect();
            // One open for all the exceptions (the file takes one rule per write).
            fs::write_each(dir, add, &lines)
        }
        Version::V2 => {
            let prog = bpf::load(&bpf::program(&state))?;
            let cgroup = crate::manager::open_cgroup_dir_fd(dir)?;
            bpf::attach(&cgroup, &prog)
        }
    }
}

/// The device rules runc adds after the spec's own (mknod of anything; null, zero, full,
/// random, urandom, tty, ptmx and the pty slaves). Append them, and an allow rule per
/// `linux.devices` entry, to get runc's behaviour.
pub fn default_device_rules() -> Vec<LinuxDeviceCgroup> {
    let entry = |t: LinuxDeviceType, major: i64, minor: i64, access: &str| {
        let mut r = LinuxDeviceCgroup::default();
        r.set_allow(true)
            .set_typ(Some(t))
            .set_major(Some(major))
            .set_minor(Some(minor))
            .set_access(Some(access.to_string()));
        r
    };
    use LinuxDeviceType::{B, C};
    vec![
        entry(C, -1, -1, "m"),
        entry(B, -1, -1, "m"),
        entry(C, 1, 3, "rwm"),    // null
        entry(C, 1, 8, "rwm"),    // random
        entry(C, 1, 7, "rwm"),    // full
        entry(C, 5, 0, "rwm"),    // tty
        entry(C, 1, 5, "rwm"),    // zero
        entry(C, 1, 9, "rwm"),    // urandom
        entry(C, 136, -1, "rwm"), // pts
        entry(C, 5, 2, "rwm"),    // ptmx
    ]
}

#[cfg(test)]
mod host_tests {
    //! The eBPF program on a real v2 cgroup. Hybrid hosts have a v2 hierarchy too, and the
    //! kernel runs device programs of a task's v2 cgroup whatever the v1 layout, so this runs
    //! on hybrid hosts as well as in the pure v2 guest.

    use std::io::{Read, Write};
    use std::path::PathBuf;
    use std::process::{Command, Stdio};

    use super::rules::rule;
    use super::*;
    use crate::layout::{Layout, detect};
    use oci_spec::runtime::LinuxDeviceType::{A, C};

    struct Dir(PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir(&self.0);
        }
    }

    #[test]
    fn ebpf_program_denies_dev_null() {
        let root = match detect() {
            Ok(Layout::V2) => "/sys/fs/cgroup",
            Ok(Layout::Hybrid) => "/sys/fs/cgroup/unified",
            _ => {
                let msg = "SKIP ebpf_program_denies_dev_null: needs a cgroup v2 hierarchy\n";
                // SAFETY: writes a valid buffer to fd 2 (past the harness's capture).
                unsafe { libc::write(2, msg.as_ptr() as *const libc::c_void, msg.len()) };
                return;
            }
        };
        let dir = PathBuf::from(format!("{root}/ocirun-test-bpf-{}", std::process::id()));
        if let Err(e) = std::fs::create_dir(&dir) {
            panic!("mkdir {}: {e}", dir.display());
        }
        let guard = Dir(dir.clone());
        let state =
            DeviceState::from_rules(&[rule(false, A, -1, -1, "rwm"), rule(true, C, 1, 5, "rw")]);
        let Ok(state) = state else { panic!("rules") };
        let prog = bpf::load(&bpf::program(&state)).unwrap_or_else(|e| panic!("{e}"));
        let cg = crate::manager::open_cgroup_dir_fd(&dir).unwrap_or_else(|e| panic!("{e}"));
        bpf::attach(&cg, &prog).unwrap_or_else(|e| panic!("{e}"));
        // Attaching again replaces the program instead of stacking a second one.
        bpf::attach(&cg, &prog).unwrap_or_else(|e| panic!("{e}"));
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(
                "read _go; if true </dev/null 2>&-; then echo null-ok; else echo null-denied; fi; \
                 if true </dev/zero 2>&-; then echo zero-ok; else echo zero-denied; fi",
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn: {e}"));
        let moved = crate::fs::write(&dir, "cgroup.procs", &child.id().to_string());
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(b"go\n");
        }
        let mut out = String::new();
        if let Some(mut stdout) = child.stdout.take() {
            let _ = stdout.read_to_string(&mut out);
        }
        let _ = child.wait();
        drop(guard);
        moved.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            out.split_whitespace().collect::<Vec<_>>(),
            ["null-denied", "zero-ok"]
        );
    }
}
