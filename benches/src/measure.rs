//! One timed invocation: spawn, `wait4` (for the exit status and the peak RSS of the process
//! and of the children it waited for), wall time around both.

use std::ffi::OsString;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What one invocation cost.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    pub wall: Duration,
    /// `ru_maxrss` from `wait4`, in KiB.
    pub maxrss_kib: u64,
    /// User + system CPU time of the process and the children it waited for (`wait4`), which
    /// is less disturbed than wall time by other load on the machine.
    pub cpu: Duration,
}

fn tv(t: libc::timeval) -> Duration {
    Duration::new(t.tv_sec.max(0) as u64, (t.tv_usec.max(0) as u32) * 1000)
}

/// Runs `argv` with stdin and stdout on /dev/null and stderr into `errlog` (a file, never a
/// pipe: a detached container keeps its stdio open long after the runtime exits).
pub fn invoke(argv: &[OsString], errlog: &Path) -> Result<Sample, String> {
    let err_file = File::create(errlog).map_err(|e| format!("create {}: {e}", errlog.display()))?;
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err_file);
    // With a pre_exec hook, std forks instead of using posix_spawn (vfork). That matters for
    // the peak RSS: execve records the high-water mark of the mm it replaces into ru_maxrss,
    // and a vfork child's mm is the harness's own; a forked child's copy holds only the
    // harness's anonymous pages (a few hundred KiB), not its mapped files.
    // SAFETY: the hook does nothing, so it is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| Ok(()));
    }
    let start = Instant::now();
    let child = cmd
        .spawn()
        .map_err(|e| format!("{}: {e}", argv[0].to_string_lossy()))?;
    let pid = child.id() as libc::pid_t;
    // The child is reaped here, by wait4; `Child` is dropped without waiting (it does not kill).
    let (status, usage) = wait4(pid)?;
    let wall = start.elapsed();
    drop(child);
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        let text = std::fs::read_to_string(errlog).unwrap_or_default();
        let how = if libc::WIFEXITED(status) {
            format!("exit status {}", libc::WEXITSTATUS(status))
        } else {
            format!("signal {}", libc::WTERMSIG(status))
        };
        return Err(format!("`{}` failed ({how}): {}", show(argv), gist(&text)));
    }
    Ok(Sample {
        wall,
        maxrss_kib: usage.ru_maxrss.max(0) as u64,
        cpu: tv(usage.ru_utime) + tv(usage.ru_stime),
    })
}

/// Runs `argv` untimed, ignoring failure (cleanup).
pub fn quietly(argv: &[OsString]) {
    let _ = Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

fn wait4(pid: libc::pid_t) -> Result<(i32, libc::rusage), String> {
    let mut status = 0;
    // SAFETY: rusage is plain data, filled in by wait4.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: waiting for our own child with valid out-pointers.
        let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if rc == pid {
            return Ok((status, usage));
        }
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(format!("wait4({pid}): {e}"));
        }
    }
}

/// Waits until process `pid` (not necessarily our child) has exited, up to `timeout`.
pub fn wait_exit(pid: libc::pid_t, timeout: Duration) -> Result<(), String> {
    // SAFETY: pidfd_open with integer arguments; the result is a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as i32;
    if fd < 0 {
        let e = std::io::Error::last_os_error();
        // Already gone and reaped.
        if e.raw_os_error() == Some(libc::ESRCH) {
            return Ok(());
        }
        return Err(format!("pidfd_open({pid}): {e}"));
    }
    // SAFETY: a new fd we own.
    let fd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
    // SAFETY: one valid pollfd.
    let n = unsafe { libc::poll(&mut pfd, 1, ms) };
    match n {
        1 => Ok(()),
        0 => Err(format!("process {pid} still runs after {timeout:?}")),
        _ => Err(format!(
            "poll pidfd of {pid}: {}",
            std::io::Error::last_os_error()
        )),
    }
}

/// The command line, for messages: file names instead of absolute paths, and no `--root`
/// (so that reports name no directory of the machine they ran on).
pub fn show(argv: &[OsString]) -> String {
    let mut out = Vec::new();
    let mut skip = false;
    for a in argv {
        let a = a.to_string_lossy();
        if skip {
            skip = false;
            continue;
        }
        if a == "--root" {
            skip = true;
            continue;
        }
        let shown = if a.starts_with('/') {
            a.rsplit('/').next().unwrap_or(&a).to_owned()
        } else {
            a.into_owned()
        };
        out.push(shown);
    }
    out.join(" ")
}

/// The line of a runtime's stderr that says what went wrong: the first one mentioning an
/// error, else the last one.
fn gist(stderr: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines
        .iter()
        .find(|l| l.to_ascii_lowercase().contains("error"))
        .or(lines.last())
        .map(|l| l.chars().take(300).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_no_directories() {
        let argv: Vec<OsString> = ["/usr/bin/crun", "--root", "/x/roots/crun", "delete", "c1"]
            .iter()
            .map(OsString::from)
            .collect();
        assert_eq!(show(&argv), "crun delete c1");
        assert_eq!(gist("a\nERROR: boom\n  0: <unknown>\n"), "ERROR: boom");
        assert_eq!(gist("one\ntwo\n"), "two");
    }
}
