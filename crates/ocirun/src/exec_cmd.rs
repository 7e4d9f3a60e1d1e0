//! `exec`: the process to run, from `--process` or from the command line on top of the
//! container's own process (as runc builds it), then the run itself. Any failure exits 255.

use std::path::Path;

use libsandbox::{ExecOptions, Runtime};
use oci_spec::runtime::{Capabilities, Capability, LinuxCapabilities, Process};

use crate::Failure;
use crate::cli::ExecArgs;

fn fail(id: &str, e: impl std::fmt::Display) -> Failure {
    Failure {
        msg: format!("exec {id}: {e}"),
        status: 255,
    }
}

pub fn exec(rt: &Runtime, args: ExecArgs) -> Result<i32, Failure> {
    let mut words = args.id_and_command.clone().into_iter();
    let id = words.next().unwrap_or_default();
    let command: Vec<String> = words.collect();
    let process = match &args.process {
        Some(path) => read_process(path).map_err(|e| fail(&id, e))?,
        None => {
            if command.is_empty() {
                return Err(fail(&id, "no command given (and no --process)"));
            }
            let spec = rt.config(&id).map_err(|e| fail(&id, e))?;
            let mut p = spec.process().clone().unwrap_or_default();
            p.set_args(Some(command));
            from_flags(&mut p, &args).map_err(|e| fail(&id, e))?;
            p
        }
    };
    let opts = ExecOptions {
        process,
        detach: args.detach,
        pid_file: args.pid_file.clone(),
        console_socket: args.console_socket.clone(),
        preserve_fds: args.preserve_fds,
        ignore_paused: args.ignore_paused,
    };
    if let Some(cg) = &args.cgroup {
        return Err(fail(
            &id,
            format!("--cgroup {cg:?}: sub-cgroups for exec are not supported"),
        ));
    }
    rt.exec(&id, &opts).map_err(|e| fail(&id, e))
}

fn read_process(path: &Path) -> Result<Process, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("read {}: {e}", path.display()))?;
    let mut de = serde_json::Deserializer::from_slice(&bytes);
    serde_path_to_error::deserialize(&mut de)
        .map_err(|e| format!("parse {}: {}: {}", path.display(), e.path(), e.inner()))
}

fn from_flags(p: &mut Process, args: &ExecArgs) -> Result<(), String> {
    p.set_terminal(Some(args.tty));
    let mut env = p.env().clone().unwrap_or_default();
    env.extend(args.env.iter().cloned());
    p.set_env(Some(env));
    if let Some(cwd) = &args.cwd {
        p.set_cwd(cwd.clone());
    }
    if let Some(user) = &args.user {
        let (uid, gid) = match user.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (user.as_str(), None),
        };
        let mut u = p.user().clone();
        u.set_uid(
            uid.parse()
                .map_err(|_| format!("--user {user:?}: UID must be a number"))?,
        );
        if let Some(g) = gid {
            u.set_gid(
                g.parse()
                    .map_err(|_| format!("--user {user:?}: GID must be a number"))?,
            );
        }
        p.set_user(u);
    }
    if !args.additional_gids.is_empty() {
        let mut u = p.user().clone();
        u.set_additional_gids(Some(args.additional_gids.clone()));
        p.set_user(u);
    }
    if args.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    if let Some(profile) = &args.apparmor {
        p.set_apparmor_profile(Some(profile.clone()));
    }
    if let Some(label) = &args.process_label {
        p.set_selinux_label(Some(label.clone()));
    }
    if !args.cap.is_empty() {
        let mut caps = p.capabilities().clone().unwrap_or_else(empty_caps);
        for name in &args.cap {
            let cap: Capability = serde_json::from_value(serde_json::Value::String(name.clone()))
                .map_err(|_| format!("--cap {name:?}: unknown capability"))?;
            for set in [
                caps.bounding().clone(),
                caps.effective().clone(),
                caps.permitted().clone(),
                caps.inheritable().clone(),
                caps.ambient().clone(),
            ]
            .iter()
            .enumerate()
            {
                let mut s: Capabilities = set.1.clone().unwrap_or_default();
                s.insert(cap);
                match set.0 {
                    0 => caps.set_bounding(Some(s)),
                    1 => caps.set_effective(Some(s)),
                    2 => caps.set_permitted(Some(s)),
                    3 => caps.set_inheritable(Some(s)),
                    _ => caps.set_ambient(Some(s)),
                };
            }
        }
        p.set_capabilities(Some(caps));
    }
    Ok(())
}

fn empty_caps() -> LinuxCapabilities {
    let mut c = LinuxCapabilities::default();
    c.set_bounding(Some(Capabilities::new()))
        .set_effective(Some(Capabilities::new()))
        .set_permitted(Some(Capabilities::new()))
        .set_inheritable(Some(Capabilities::new()))
        .set_ambient(Some(Capabilities::new()));
    c
}
