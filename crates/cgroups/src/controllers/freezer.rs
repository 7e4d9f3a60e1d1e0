//! Freezing (pause/resume): v1 `freezer.state`, v2 `cgroup.freeze` + `cgroup.events`.
//!
//! Freezing is not instant: v1 passes through FREEZING, v2 reports "frozen 1" in cgroup.events
//! when done. v2 waits with poll(2) on cgroup.events (the kernel signals changes with
//! POLLPRI); v1 has no notification, so it re-reads with a short, bounded back-off.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::AsRawFd;
use std::path::Path;

use super::Target;
use crate::error::{Errno, Error, Result};
use crate::fs;
use crate::layout::Version;
use crate::manager::FreezerState;

const FIELD: &str = "freezer (pause/resume)";

pub(crate) fn freeze(t: &Target<'_>) -> Result<()> {
    let (dir, version) = t.get(FIELD)?;
    match version {
        Version::V1 => freeze_v1(dir),
        Version::V2 => freeze_v2(dir),
    }
}

pub(crate) fn thaw(t: &Target<'_>) -> Result<()> {
    let (dir, version) = t.get(FIELD)?;
    match version {
        Version::V1 => fs::write(dir, "freezer.state", "THAWED"),
        Version::V2 => fs::write(dir, "cgroup.freeze", "0"),
    }
}

pub(crate) fn state(t: &Target<'_>) -> Result<FreezerState> {
    let (dir, version) = t.get(FIELD)?;
    match version {
        Version::V1 => Ok(match fs::read(dir, "freezer.state")?.trim() {
            "FROZEN" => FreezerState::Frozen,
            "FREEZING" => FreezerState::Freezing,
            _ => FreezerState::Thawed,
        }),
        Version::V2 => {
            if fs::read(dir, "cgroup.freeze")?.trim() != "1" {
                return Ok(FreezerState::Thawed);
            }
            Ok(if frozen_v2(&fs::read(dir, "cgroup.events")?) {
                FreezerState::Frozen
            } else {
                FreezerState::Freezing
            })
        }
    }
}

fn freeze_v1(dir: &Path) -> Result<()> {
    const TRIES: u32 = 1000;
    fs::write(dir, "freezer.state", "FROZEN")?;
    let mut current = String::new();
    for i in 0..TRIES {
        current = fs::read(dir, "freezer.state")?.trim().to_string();
        if current == "FROZEN" {
            return Ok(());
        }
        // A task in the middle of a fork or a vfork can keep the cgroup FREEZING; asking again
        // now and then lets the kernel retry it.
        if i % 50 == 49 {
            fs::write(dir, "freezer.state", "FROZEN")?;
        }
        let micros = if i < 10 { 100 } else { 1000 };
        std::thread::sleep(std::time::Duration::from_micros(micros));
    }
    // Leave nothing half-frozen behind.
    let _ = fs::write(dir, "freezer.state", "THAWED");
    Err(Error::Freeze {
        path: dir.join("freezer.state"),
        state: "FROZEN",
        current,
    })
}

fn frozen_v2(events: &str) -> bool {
    events.lines().any(|l| l.trim() == "frozen 1")
}

fn freeze_v2(dir: &Path) -> Result<()> {
    // Poll rounds of 100 ms: about 30 s in all, enough for a slow, emulated guest.
    const ROUNDS: u32 = 300;
    fs::write(dir, "cgroup.freeze", "1")?;
    let path = dir.join("cgroup.events");
    let mut file = File::open(&path).map_err(|e| Error::Open {
        path: path.clone(),
        errno: Errno::from_io(&e),
    })?;
    let mut text = String::new();
    for _ in 0..ROUNDS {
        text.clear();
        file.seek(SeekFrom::Start(0))
            .and_then(|_| file.read_to_string(&mut text))
            .map_err(|e| Error::Read {
                path: path.clone(),
                errno: Errno::from_io(&e),
            })?;
        if frozen_v2(&text) {
            return Ok(());
        }
        let mut pfd = libc::pollfd {
            fd: file.as_raw_fd(),
            events: libc::POLLPRI,
            revents: 0,
        };
        // SAFETY: pfd is a valid pollfd array of length 1 for the duration of the call.
        let rc = unsafe { libc::poll(&mut pfd, 1, 100) };
        if rc < 0 && Errno::last().0 != libc::EINTR {
            return Err(Error::Sys {
                what: format!("poll {}", path.display()),
                errno: Errno::last(),
            });
        }
    }
    let _ = fs::write(dir, "cgroup.freeze", "0");
    Err(Error::Freeze {
        path,
        state: "frozen 1",
        current: text,
    })
}
