//! The cases, grouped by the part of the spec (or the CLI convention) they check.
//! Names are `group.what`; `--filter` matches substrings of them.

mod cgroups;
mod cli;
mod devices;
mod errors;
mod exec;
mod hooks;
mod lifecycle;
mod mounts;
mod namespaces;
mod process;
mod rootfs;
mod seccomp;
mod system;
mod terminal;

use crate::bundle::Bundle;
use crate::exec::{Output, wait_until};
use crate::harness::{Case, Ctx, Fail};

/// Every case, in the order they run.
pub fn all() -> Vec<Case> {
    let mut v = Vec::new();
    for group in [
        lifecycle::CASES,
        cli::CASES,
        errors::CASES,
        process::CASES,
        seccomp::CASES,
        system::CASES,
        namespaces::CASES,
        rootfs::CASES,
        mounts::CASES,
        devices::CASES,
        cgroups::CASES,
        hooks::CASES,
        terminal::CASES,
        exec::CASES,
    ] {
        v.extend(group.iter().map(|&(name, run)| Case { name, run }));
    }
    v
}

/// A case table entry.
pub type Entry = (&'static str, fn(&mut Ctx) -> crate::harness::R);

/// A process that says `ready`, then waits; on TERM, USR1 or HUP it prints
/// `got NAME` and exits 0.
pub const WAITER: &str = "trap 'echo got TERM; exit 0' TERM; trap 'echo got USR1; exit 0' USR1; \
     trap 'echo got HUP; exit 0' HUP; echo ready; sleep 1000 & wait";

/// Creates and starts `b` (whose process should print `ready` when it is set up)
/// and waits for `ready`. Returns the id and the create output (the container's stdout).
pub fn start_ready(ctx: &mut Ctx, b: &Bundle) -> Result<(String, Output), Fail> {
    let (id, out) = ctx.create(b)?;
    ctx.rt_ok(&["start", &id])?;
    wait_output(ctx, &out, "ready")?;
    Ok((id, out))
}

/// Waits until the container's stdout contains `needle`.
pub fn wait_output(ctx: &Ctx, out: &Output, needle: &str) -> Result<(), Fail> {
    let ok = wait_until(ctx.env.cmd_timeout, || out.stdout_now().contains(needle));
    crate::ensure!(
        ok,
        "container never printed {needle:?}; stdout {:?}",
        out.stdout_now()
    );
    Ok(())
}

/// A runtime error as callers see it: exit status 1 and a message on stderr
/// (or in the log).
pub fn expect_error(out: &Output, what: &str) -> Result<(), Fail> {
    crate::ensure!(!out.timed_out, "{what}: {}", out.describe());
    crate::ensure!(
        out.code == Some(1),
        "{what}: want exit 1 with an error; {}",
        out.describe()
    );
    crate::ensure!(
        !out.stderr.trim().is_empty(),
        "{what}: exit 1 but no error message on stderr"
    );
    Ok(())
}

/// Whether a host pid is alive (and not a zombie).
pub fn pid_alive(pid: u64) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s
            .rsplit_once(')')
            .map(|(_, r)| !r.trim_start().starts_with('Z'))
            .unwrap_or(false),
        Err(_) => false,
    }
}

/// Waits until a host pid is gone.
pub fn wait_pid_gone(ctx: &Ctx, pid: u64) -> Result<(), Fail> {
    let ok = wait_until(ctx.env.cmd_timeout, || !pid_alive(pid));
    crate::ensure!(ok, "process {pid} is still alive");
    Ok(())
}
