//! Leaving nothing behind: every container in the harness's state roots is deleted with
//! `delete --force` at the start (what an interrupted run left) and at the end; SIGINT and
//! SIGTERM stop the run between two samples so that the end-of-run cleanup still happens.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::measure;
use crate::runtimes::Runtime;

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Installs the SIGINT/SIGTERM handlers.
pub fn install_handlers() {
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { libc::signal(sig, on_signal as *const () as libc::sighandler_t) };
    }
}

/// An error once a stop was asked for.
pub fn check_interrupted() -> Result<(), String> {
    if INTERRUPTED.load(Ordering::SeqCst) {
        Err("interrupted".to_owned())
    } else {
        Ok(())
    }
}

/// Container ids in a runtime's state root (every runtime here keeps one directory per
/// container there).
fn ids_in(root: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().into_string().ok())
        .collect()
}

/// Deletes (forcibly) every container in the state root of each runtime; returns how many.
pub fn delete_all(runtimes: &[Runtime]) -> usize {
    let mut n = 0;
    for rt in runtimes {
        for id in ids_in(&rt.root) {
            measure::quietly(&rt.cmd(["delete", "--force", id.as_str()]));
            n += 1;
        }
    }
    n
}

/// How many containers are still recorded under `roots_dir`, whichever runtime they belong to.
pub fn count_in(roots_dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(roots_dir) else {
        return 0;
    };
    entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| ids_in(&e.path()).len())
        .sum()
}

/// Roots under `roots_dir` that still hold containers but belong to no runtime of this run (a
/// runtime measured last time and not now); they are reported, so that their owner can delete
/// them with `--cleanup-only` and the same runtimes.
pub fn stray_roots(roots_dir: &Path, runtimes: &[Runtime]) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(roots_dir) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|name| !runtimes.iter().any(|r| &r.name == name))
        .filter(|name| !ids_in(&roots_dir.join(name)).is_empty())
        .collect()
}
