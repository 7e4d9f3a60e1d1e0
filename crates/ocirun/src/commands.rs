//! One function per lifecycle command: argument handling and output; the work is libsandbox's.

use std::io::Write;

use libsandbox::{CreateOptions, Runtime};

use crate::cli::{
    ContainerArgs, CreateArgs, DeleteArgs, IdArg, KillArgs, ListArgs, ListFormat, RunArgs, SpecArgs,
};
use crate::log::Logger;
use crate::{Failure, signal};

type Outcome = Result<i32, Failure>;

fn fail(cmd: &str, id: &str, e: impl std::fmt::Display) -> Failure {
    Failure::new(format!("{cmd} {id}: {e}"))
}

fn warn_all(log: &Logger, cmd: &str, id: &str, warnings: &[libsandbox::HookError]) {
    for w in warnings {
        log.warn(&format!("{cmd} {id}: {w}"));
    }
}

/// What `create` and `run` hand to the runtime.
fn create_options(c: ContainerArgs, id: &str, systemd: bool) -> CreateOptions {
    CreateOptions {
        id: id.to_owned(),
        bundle: c.bundle,
        pid_file: c.pid_file,
        console_socket: c.console_socket,
        no_pivot: c.no_pivot,
        no_new_keyring: c.no_new_keyring,
        preserve_fds: c.preserve_fds,
        systemd_cgroup: systemd,
    }
}

pub fn create(rt: &Runtime, args: CreateArgs, systemd: bool) -> Outcome {
    let opts = create_options(args.container, &args.id, systemd);
    rt.create(&opts).map_err(|e| fail("create", &args.id, e))?;
    Ok(0)
}

pub fn run(rt: &Runtime, args: RunArgs, systemd: bool, log: &Logger) -> Outcome {
    let opts = create_options(args.container, &args.id, systemd);
    let _ = args.keep;
    let (status, warnings) = rt
        .run(&opts, args.detach)
        .map_err(|e| fail("run", &args.id, e))?;
    warn_all(log, "run", &args.id, &warnings);
    Ok(status)
}

pub fn start(rt: &Runtime, args: IdArg, log: &Logger) -> Outcome {
    let warnings = rt.start(&args.id).map_err(|e| fail("start", &args.id, e))?;
    warn_all(log, "start", &args.id, &warnings);
    Ok(0)
}

pub fn state(rt: &Runtime, args: IdArg) -> Outcome {
    let st = rt.state(&args.id).map_err(|e| fail("state", &args.id, e))?;
    print_json(&st);
    Ok(0)
}

fn print_json<T: serde::Serialize>(v: &T) {
    let text = serde_json::to_string_pretty(v).unwrap_or_default();
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
}

pub fn list(rt: &Runtime, args: ListArgs) -> Outcome {
    let states = rt.list().map_err(|e| Failure::new(format!("list: {e}")))?;
    let mut out = std::io::stdout().lock();
    if args.quiet {
        for s in &states {
            let _ = writeln!(out, "{}", s.id);
        }
        return Ok(0);
    }
    match args.format {
        ListFormat::Json => {
            let _ = writeln!(
                out,
                "{}",
                serde_json::to_string(&states).unwrap_or_default()
            );
        }
        ListFormat::Table => {
            let mut rows = vec![[
                "ID".to_owned(),
                "PID".to_owned(),
                "STATUS".to_owned(),
                "BUNDLE".to_owned(),
                "CREATED".to_owned(),
                "OWNER".to_owned(),
            ]];
            for s in &states {
                rows.push([
                    s.id.clone(),
                    s.pid.to_string(),
                    s.status.to_string(),
                    s.bundle.display().to_string(),
                    s.created.clone(),
                    if s.owner.is_empty() {
                        "root".to_owned()
                    } else {
                        s.owner.clone()
                    },
                ]);
            }
            // Like Go's tabwriter with minwidth 12 and padding 3, as runc prints it.
            let widths: Vec<usize> = (0..6)
                .map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0).max(9) + 3)
                .collect();
            for row in rows {
                let mut line = String::new();
                for (c, cell) in row.iter().enumerate() {
                    if c == 5 {
                        line.push_str(cell);
                    } else {
                        line.push_str(&format!("{cell:<width$}", width = widths[c]));
                    }
                }
                let _ = writeln!(out, "{line}");
            }
        }
    }
    Ok(0)
}

pub fn kill(rt: &Runtime, args: KillArgs) -> Outcome {
    let sig = signal::parse(&args.signal).ok_or_else(|| {
        fail(
            "kill",
            &args.id,
            format!("invalid signal {:?}", args.signal),
        )
    })?;
    rt.kill(&args.id, sig, args.all)
        .map_err(|e| fail("kill", &args.id, e))?;
    Ok(0)
}

pub fn delete(rt: &Runtime, args: DeleteArgs, log: &Logger) -> Outcome {
    match rt.delete(&args.id, args.force) {
        Ok(warnings) => {
            warn_all(log, "delete", &args.id, &warnings);
            Ok(0)
        }
        Err(libsandbox::Error::Store(libsandbox::StoreError::NotFound(_))) if args.force => Ok(0),
        Err(e) => Err(fail("delete", &args.id, e)),
    }
}

pub fn spec(args: SpecArgs, rootless: bool) -> Outcome {
    let path = args.bundle.join("config.json");
    if path.exists() {
        return Err(Failure::new(format!(
            "spec: {} already exists; remove it first",
            path.display()
        )));
    }
    let text =
        serde_json::to_string_pretty(&crate::spec_template::template(rootless)).unwrap_or_default();
    std::fs::write(&path, text + "\n")
        .map_err(|e| Failure::new(format!("spec: write {}: {e}", path.display())))?;
    Ok(0)
}
