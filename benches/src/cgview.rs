//! The cgroup layout every runtime sees.
//!
//! On a hybrid host (v1 controllers at `/sys/fs/cgroup/<controller>`, a v2 hierarchy at
//! `/sys/fs/cgroup/unified`), crun 1.8 refuses to run. The harness then moves itself into a
//! private mount namespace (slave propagation, so nothing leaks back to the host) and unmounts
//! `/sys/fs/cgroup/unified` there: every runtime it starts, and the floor, sees a pure v1 host.
//! Nothing outside the harness's mount namespace changes.

use std::ffi::CString;
use std::path::Path;

const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;
const UNIFIED: &str = "/sys/fs/cgroup/unified";

/// The layout the runtimes will see.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    V1,
    V2,
    Hybrid,
    /// Hybrid host seen as v1 through a private mount namespace.
    HybridAsV1,
}

impl std::fmt::Display for Layout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Layout::V1 => "cgroup v1",
            Layout::V2 => "cgroup v2",
            Layout::Hybrid => "hybrid (v1 + v2 at /sys/fs/cgroup/unified)",
            Layout::HybridAsV1 => "hybrid host seen as pure v1 (unified hierarchy hidden)",
        })
    }
}

fn fs_magic(path: &str) -> Option<i64> {
    let c = CString::new(path).ok()?;
    // SAFETY: statfs is plain data, filled in by the call.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is NUL-terminated and `st` is a valid out-pointer.
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    Some(st.f_type as i64)
}

/// The host's layout.
pub fn detect() -> Layout {
    if fs_magic("/sys/fs/cgroup") == Some(CGROUP2_SUPER_MAGIC) {
        Layout::V2
    } else if Path::new(UNIFIED).is_dir() && fs_magic(UNIFIED) == Some(CGROUP2_SUPER_MAGIC) {
        Layout::Hybrid
    } else {
        Layout::V1
    }
}

/// On a hybrid host, hides the unified hierarchy from this process and all its children.
/// Must be called while the process has one thread (`unshare(CLONE_NEWNS)` requires it).
pub fn hide_unified() -> Result<Layout, String> {
    let layout = detect();
    if layout != Layout::Hybrid {
        return Ok(layout);
    }
    // SAFETY: unshare with a constant flag; the process is single-threaded (documented).
    if unsafe { libc::unshare(libc::CLONE_NEWNS) } != 0 {
        return Err(format!(
            "unshare(CLONE_NEWNS): {}",
            std::io::Error::last_os_error()
        ));
    }
    // Like `unshare -m --propagation slave`: host mounts still arrive, ours never leave.
    // SAFETY: valid C strings; a propagation change takes no source, type or data.
    let rc = unsafe {
        libc::mount(
            std::ptr::null(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_SLAVE | libc::MS_REC,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(format!(
            "make / rslave: {}",
            std::io::Error::last_os_error()
        ));
    }
    let unified = CString::new(UNIFIED).expect("no NUL");
    // SAFETY: valid C string.
    let mut rc = unsafe { libc::umount2(unified.as_ptr(), 0) };
    if rc != 0 {
        // SAFETY: as above; a busy mount is detached instead.
        rc = unsafe { libc::umount2(unified.as_ptr(), libc::MNT_DETACH) };
    }
    if rc != 0 {
        return Err(format!(
            "umount {UNIFIED}: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(Layout::HybridAsV1)
}
