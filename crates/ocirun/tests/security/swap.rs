//! A thread that keeps exchanging pairs of paths with `renameat2(RENAME_EXCHANGE)`, the way a
//! container (or a second container sharing a volume) swaps a directory for a symlink while the
//! runtime resolves it. Stopped and joined when dropped, also when the test fails.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;

pub struct Swapper {
    stop: Arc<AtomicBool>,
    swaps: Arc<AtomicU64>,
    thread: Option<JoinHandle<Result<(), String>>>,
}

impl Swapper {
    /// Starts exchanging each pair of (existing) paths, in turn, until dropped.
    pub fn start(pairs: Vec<(PathBuf, PathBuf)>) -> Swapper {
        let stop = Arc::new(AtomicBool::new(false));
        let swaps = Arc::new(AtomicU64::new(0));
        let (s, n) = (stop.clone(), swaps.clone());
        let cpairs: Vec<(CString, CString)> = pairs
            .iter()
            .map(|(a, b)| {
                (
                    CString::new(a.as_os_str().as_bytes()).unwrap(),
                    CString::new(b.as_os_str().as_bytes()).unwrap(),
                )
            })
            .collect();
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                for (a, b) in &cpairs {
                    // SAFETY: both paths are NUL-terminated; renameat2 has no memory effects.
                    let r = unsafe {
                        libc::renameat2(
                            libc::AT_FDCWD,
                            a.as_ptr(),
                            libc::AT_FDCWD,
                            b.as_ptr(),
                            libc::RENAME_EXCHANGE,
                        )
                    };
                    if r != 0 {
                        return Err(format!(
                            "renameat2({a:?}, {b:?}, RENAME_EXCHANGE): {}",
                            std::io::Error::last_os_error()
                        ));
                    }
                    n.fetch_add(1, Ordering::Relaxed);
                }
                std::thread::yield_now();
            }
            Ok(())
        });
        Swapper {
            stop,
            swaps,
            thread: Some(thread),
        }
    }

    /// Stops the thread; returns how many exchanges it made (panics if one failed).
    pub fn finish(mut self) -> u64 {
        self.join();
        self.swaps.load(Ordering::Relaxed)
    }

    fn join(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            match t.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    if !std::thread::panicking() {
                        panic!("swapper: {e}");
                    }
                }
                Err(_) => {
                    if !std::thread::panicking() {
                        panic!("swapper thread panicked");
                    }
                }
            }
        }
    }
}

impl Drop for Swapper {
    fn drop(&mut self) {
        self.join();
    }
}
