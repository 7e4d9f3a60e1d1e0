//! Lifecycle hooks: each hook runs with the container's state on stdin, its own args and env,
//! and an optional timeout. Output is captured so a failure can say what the hook printed.

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};

use oci_spec::runtime::Hook;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::errno::Errno;
use crate::sys;

/// The lifecycle points at which hooks run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HookKind {
    Prestart,
    CreateRuntime,
    CreateContainer,
    StartContainer,
    Poststart,
    Poststop,
}

impl HookKind {
    pub fn name(self) -> &'static str {
        match self {
            HookKind::Prestart => "prestart",
            HookKind::CreateRuntime => "createRuntime",
            HookKind::CreateContainer => "createContainer",
            HookKind::StartContainer => "startContainer",
            HookKind::Poststart => "poststart",
            HookKind::Poststop => "poststop",
        }
    }
}

/// A hook that failed.
#[derive(Debug, Error, Serialize, Deserialize)]
#[error("{kind} hook #{index} ({path}): {reason}")]
pub struct HookError {
    pub kind: String,
    pub index: usize,
    pub path: String,
    pub reason: String,
}

/// The hooks of one kind from the spec.
pub fn of_kind(hooks: Option<&oci_spec::runtime::Hooks>, kind: HookKind) -> Vec<Hook> {
    let Some(h) = hooks else {
        return Vec::new();
    };
    #[allow(deprecated)]
    let list = match kind {
        HookKind::Prestart => h.prestart(),
        HookKind::CreateRuntime => h.create_runtime(),
        HookKind::CreateContainer => h.create_container(),
        HookKind::StartContainer => h.start_container(),
        HookKind::Poststart => h.poststart(),
        HookKind::Poststop => h.poststop(),
    };
    list.clone().unwrap_or_default()
}

/// Runs `hooks` in order, stopping at the first failure.
pub fn run_all(kind: HookKind, hooks: &[Hook], state_json: &[u8]) -> Result<(), HookError> {
    for (index, hook) in hooks.iter().enumerate() {
        run(hook, state_json).map_err(|reason| HookError {
            kind: kind.name().to_owned(),
            index,
            path: hook.path().display().to_string(),
            reason,
        })?;
    }
    Ok(())
}

/// Runs one hook to completion; returns why it failed.
fn run(hook: &Hook, state_json: &[u8]) -> Result<(), String> {
    let mut cmd = Command::new(hook.path());
    if let Some(args) = hook.args().as_ref().filter(|a| !a.is_empty()) {
        cmd.arg0(&args[0]).args(&args[1..]);
    }
    // Like runc: the hook's own env when given; the runtime's when the field is absent.
    if let Some(env) = hook.env() {
        cmd.env_clear();
        for var in env {
            if let Some((k, v)) = var.split_once('=') {
                cmd.env(k, v);
            }
        }
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("start: {}", Errno::from(e)))?;
    let pidfd = sys::pidfd_open(child.id() as i32).map_err(|e| format!("pidfd_open: {e}"))?;

    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is fine (EPIPE is ignored); SIGPIPE is blocked for
        // the write since std ignores it process-wide.
        let _ = stdin.write_all(state_json);
    }

    let deadline = hook
        .timeout()
        .filter(|t| *t > 0)
        .map(|t| std::time::Instant::now() + std::time::Duration::from_secs(t as u64));
    let mut out = child.stdout.take().expect("piped");
    let mut err = child.stderr.take().expect("piped");
    let (mut out_buf, mut err_buf) = (Vec::new(), Vec::new());
    let (mut out_open, mut err_open) = (true, true);
    let mut exited = false;
    while out_open || err_open || !exited {
        let timeout_ms = match deadline {
            Some(d) => {
                let left = d.saturating_duration_since(std::time::Instant::now());
                if left.is_zero() {
                    let _ = sys::pidfd_send_signal(pidfd.as_fd(), libc::SIGKILL);
                    let _ = child.wait();
                    return Err(format!(
                        "did not finish within its timeout of {} seconds and was killed",
                        hook.timeout().unwrap_or(0)
                    ));
                }
                left.as_millis().min(i32::MAX as u128) as i32
            }
            None => -1,
        };
        let mut fds = [
            poll_entry(out.as_raw_fd(), out_open),
            poll_entry(err.as_raw_fd(), err_open),
            poll_entry(pidfd.as_raw_fd(), !exited),
        ];
        // SAFETY: `fds` is an array of three valid pollfd entries.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
        if n < 0 {
            let e = Errno::last();
            if e.0 == libc::EINTR {
                continue;
            }
            return Err(format!("poll: {e}"));
        }
        if fds[0].revents != 0 {
            out_open = drain(&mut out, &mut out_buf);
        }
        if fds[1].revents != 0 {
            err_open = drain(&mut err, &mut err_buf);
        }
        if fds[2].revents != 0 {
            exited = true;
        }
    }
    let status = child
        .wait()
        .map_err(|e| format!("wait: {}", Errno::from(e)))?;
    if status.success() {
        return Ok(());
    }
    let how = match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => "failed".to_owned(),
    };
    let mut reason = how;
    for (name, buf) in [("stdout", &out_buf), ("stderr", &err_buf)] {
        let text = String::from_utf8_lossy(buf);
        let text = text.trim();
        if !text.is_empty() {
            reason.push_str(&format!(", {name}: {text}"));
        }
    }
    Err(reason)
}

fn poll_entry(fd: i32, active: bool) -> libc::pollfd {
    libc::pollfd {
        fd: if active { fd } else { -1 },
        events: libc::POLLIN,
        revents: 0,
    }
}

/// Reads what is available; returns whether the pipe is still open.
fn drain(r: &mut impl Read, buf: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 4096];
    match r.read(&mut chunk) {
        Ok(0) => false,
        Ok(n) => {
            // Keep the output bounded: enough to explain a failure.
            if buf.len() < 64 * 1024 {
                buf.extend_from_slice(&chunk[..n]);
            }
            true
        }
        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => true,
        Err(_) => false,
    }
}
