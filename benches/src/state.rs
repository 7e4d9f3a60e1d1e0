//! Where the runtimes keep their state: `<workdir>/roots/<runtime>`, on a tmpfs like the
//! `/run` of a production host (on a disk filesystem, journal waits in `unlink` and `rename`
//! show up in every figure). The tmpfs is mounted in the host's mount namespace, so that it
//! outlives a crashed run and the next run can still delete the containers it describes; it is
//! unmounted at the end once nothing is left in it.

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

const TMPFS_MAGIC: i64 = 0x0102_1994;
/// A file in the tmpfs saying the harness mounted it (and may unmount it).
const MARKER: &str = ".ocirun-benches-tmpfs";

fn cstr(p: &Path) -> Result<CString, String> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| format!("{}: NUL in path", p.display()))
}

fn is_tmpfs(p: &Path) -> bool {
    let Ok(c) = cstr(p) else { return false };
    // SAFETY: statfs is plain data, filled in by the call.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is NUL-terminated; `st` is a valid out-pointer.
    unsafe { libc::statfs(c.as_ptr(), &mut st) == 0 && st.f_type as i64 == TMPFS_MAGIC }
}

/// The state roots, and what it takes to put things back at the end.
pub struct StateDir {
    pub roots: PathBuf,
    /// The mount namespace the harness started in (the tmpfs is unmounted there).
    host_ns: Option<OwnedFd>,
}

/// Makes `<workdir>/roots`, on a tmpfs unless `tmpfs` is false. Must run before the harness
/// leaves the host's mount namespace.
pub fn prepare(workdir: &Path, tmpfs: bool) -> Result<StateDir, String> {
    let roots = workdir.join("roots");
    std::fs::create_dir_all(&roots).map_err(|e| format!("create {}: {e}", roots.display()))?;
    if tmpfs && !is_tmpfs(&roots) {
        let c = cstr(&roots)?;
        // SAFETY: valid C strings; the data string is a NUL-terminated option list.
        let rc = unsafe {
            libc::mount(
                c"tmpfs".as_ptr(),
                c.as_ptr(),
                c"tmpfs".as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                c"mode=0700,size=256m".as_ptr().cast(),
            )
        };
        if rc != 0 {
            return Err(format!(
                "mount a tmpfs on {}: {} (or pass --no-tmpfs)",
                roots.display(),
                std::io::Error::last_os_error()
            ));
        }
        std::fs::write(roots.join(MARKER), b"")
            .map_err(|e| format!("write {}: {e}", roots.join(MARKER).display()))?;
    }
    // Ours (now, or left by an interrupted run): remember where to unmount it.
    let host_ns = if roots.join(MARKER).exists() {
        let f = std::fs::File::open("/proc/self/ns/mnt")
            .map_err(|e| format!("open /proc/self/ns/mnt: {e}"))?;
        Some(OwnedFd::from(f))
    } else {
        None
    };
    Ok(StateDir { roots, host_ns })
}

impl StateDir {
    /// Unmounts the tmpfs the harness mounted, unless containers are still recorded in it.
    /// Call with one thread only (it returns to the host's mount namespace).
    pub fn finish(self, containers_left: usize) -> Result<(), String> {
        let Some(ns) = &self.host_ns else {
            return Ok(());
        };
        if containers_left > 0 {
            return Ok(());
        }
        // SAFETY: setns with a mount namespace fd we opened; the process is single-threaded
        // here (documented).
        if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNS) } != 0 {
            return Err(format!(
                "return to the host mount namespace: {}",
                std::io::Error::last_os_error()
            ));
        }
        let c = cstr(&self.roots)?;
        // SAFETY: valid C string.
        if unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) } != 0 {
            return Err(format!(
                "unmount {}: {}",
                self.roots.display(),
                std::io::Error::last_os_error()
            ));
        }
        Ok(())
    }
}
