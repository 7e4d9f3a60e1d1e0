//! Running a command with a deadline, its output going to files (never pipes: a
//! container started by the command may keep its stdio open long after).

use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// What a finished (or abandoned) command left behind.
#[derive(Debug, Clone)]
pub struct Output {
    pub argv: String,
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub timed_out: bool,
    pub stdout: String,
    pub stderr: String,
    pub stdout_path: PathBuf,
}

impl Output {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// One line for failure messages.
    pub fn describe(&self) -> String {
        let how = if self.timed_out {
            "timed out".to_string()
        } else if let Some(c) = self.code {
            format!("exit {c}")
        } else {
            format!("signal {}", self.signal.unwrap_or(0))
        };
        let err = self.stderr.trim();
        let err: String = err.chars().take(400).collect();
        format!("`{}`: {how}; stderr: {err:?}", self.argv)
    }

    /// The stdout file read again (a container may have written more since).
    pub fn stdout_now(&self) -> String {
        std::fs::read_to_string(&self.stdout_path).unwrap_or_default()
    }
}

/// A command to run.
pub struct Exec {
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub stdin: Option<PathBuf>,
    /// Passed as fds 3, 4, ... to the child.
    pub extra_fds: Vec<OwnedFd>,
    pub timeout: Duration,
    /// unshare(2) flags applied in the child before exec (for helper processes).
    pub unshare: libc::c_int,
}

impl Exec {
    pub fn new(argv: Vec<String>, timeout: Duration) -> Exec {
        Exec {
            argv,
            env: Vec::new(),
            stdin: None,
            extra_fds: Vec::new(),
            timeout,
            unshare: 0,
        }
    }

    /// Starts the command; stdout and stderr go to `<log>.out` and `<log>.err`.
    pub fn spawn(self, log: &Path) -> std::io::Result<Running> {
        let out_path = log.with_extension("out");
        let err_path = log.with_extension("err");
        let mut cmd = Command::new(&self.argv[0]);
        cmd.args(&self.argv[1..])
            .stdout(File::create(&out_path)?)
            .stderr(File::create(&err_path)?)
            .stdin(match &self.stdin {
                Some(p) => Stdio::from(File::open(p)?),
                None => Stdio::null(),
            });
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        // Move the fds out of the way of their targets first (fds 3.. may be taken).
        let mut high = Vec::new();
        for fd in &self.extra_fds {
            // SAFETY: F_DUPFD_CLOEXEC on a valid fd returns a new fd or -1.
            let h = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 100) };
            if h < 0 {
                return Err(std::io::Error::last_os_error());
            }
            high.push(h);
        }
        if self.unshare != 0 {
            let flags = self.unshare;
            // SAFETY: the closure only calls unshare(2), which is async-signal-safe.
            unsafe {
                cmd.pre_exec(move || {
                    if libc::unshare(flags) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        if !high.is_empty() {
            let fds = high.clone();
            // SAFETY: the closure only calls dup2, which is async-signal-safe, and
            // touches no memory but the captured vector, allocated before fork.
            unsafe {
                cmd.pre_exec(move || {
                    for (i, &h) in fds.iter().enumerate() {
                        if libc::dup2(h, 3 + i as i32) < 0 {
                            return Err(std::io::Error::last_os_error());
                        }
                    }
                    Ok(())
                });
            }
        }
        let child = cmd.spawn();
        for h in high {
            // SAFETY: `h` was returned by fcntl above and is closed once, here.
            unsafe { libc::close(h) };
        }
        Ok(Running {
            child: child?,
            argv: self.argv.join(" "),
            out_path,
            err_path,
            deadline: Instant::now() + self.timeout,
        })
    }

    /// Runs to completion (or to the deadline, then kills it).
    pub fn run(self, log: &Path) -> Output {
        let argv = self.argv.join(" ");
        match self.spawn(log) {
            Ok(r) => r.wait(),
            Err(e) => Output {
                argv,
                code: Some(127),
                signal: None,
                timed_out: false,
                stdout: String::new(),
                stderr: format!("spawn failed: {e}"),
                stdout_path: log.with_extension("out"),
            },
        }
    }
}

/// A command that was started and not yet waited for.
pub struct Running {
    child: Child,
    argv: String,
    out_path: PathBuf,
    err_path: PathBuf,
    deadline: Instant,
}

impl Running {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// True once the command has exited (does not reap it for `wait`).
    pub fn finished(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits until exit or the deadline; on the deadline the command is killed.
    pub fn wait(mut self) -> Output {
        let mut timed_out = false;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(s)) => break Some(s),
                Ok(None) if Instant::now() >= self.deadline => {
                    timed_out = true;
                    let _ = self.child.kill();
                    break self.child.wait().ok();
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(5)),
                Err(_) => break None,
            }
        };
        Output {
            argv: self.argv,
            code: status.and_then(|s| s.code()),
            signal: status.and_then(|s| s.signal()),
            timed_out,
            stdout: std::fs::read_to_string(&self.out_path).unwrap_or_default(),
            stderr: std::fs::read_to_string(&self.err_path).unwrap_or_default(),
            stdout_path: self.out_path,
        }
    }
}

/// Polls `cond` until it holds or `timeout` passes. Only ever used to wait for a
/// state; never to decide a result from how long something took.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    let mut pause = Duration::from_millis(2);
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}
