//! `ocirun`: the runc-compatible command line over libsandbox.

mod alloc;
mod cgroup_cmds;
mod cli;
mod commands;
mod exec_cmd;
mod fastcli;
mod features;
mod log;
mod signal;
mod spec_template;

use clap::Parser;

use cli::{Cli, Command};
use libsandbox::Runtime;
use log::Logger;

#[global_allocator]
static ALLOC: alloc::Pooled = alloc::Pooled::new();

/// Prints a line to stdout, ignoring a closed pipe (the reader went away: nothing to do).
#[macro_export]
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($t)*);
    }};
}

/// A command that failed: the message (already naming the command and container) and the exit
/// status.
pub struct Failure {
    pub msg: String,
    pub status: i32,
}

impl Failure {
    pub fn new(msg: impl Into<String>) -> Failure {
        Failure {
            msg: msg.into(),
            status: 1,
        }
    }
}

const VERSION: &str = env!("CARGO_PKG_VERSION");

fn main() {
    let args = cli::normalize_args(std::env::args());
    // Commands that fork into a container first make sure this executable cannot be written
    // from inside it (CVE-2019-5736). Doing it before any parsing keeps the work that the
    // re-executed image repeats to a minimum.
    let protected = matches!(cli::subcommand(&args), Some("create" | "run" | "exec"));
    if protected {
        if let Err(e) = libsandbox::protect_executable() {
            let (log_file, format) = cli::log_options(&args);
            Logger::new(log_file, format, false).error(&e.to_string());
            std::process::exit(1);
        }
    }
    // The log file exists from the start (callers open it to read our error), and errors in the
    // arguments themselves are logged there too, as runc does.
    let (early_log, early_format) = cli::log_options(&args);
    let early = Logger::new(early_log, early_format, false);
    early.touch();
    // The managers' usual command lines without building clap's command (see fastcli).
    let cli = match fastcli::parse(&args) {
        Some(cli) => cli,
        None => match Cli::try_parse_from(args) {
            Ok(cli) => cli,
            Err(e) => {
                if !e.use_stderr() {
                    // --help and the like: not an error.
                    let _ = e.print();
                    std::process::exit(0);
                }
                let text = e.render().to_string();
                let first = text
                    .lines()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("invalid arguments")
                    .trim_start_matches("error: ")
                    .to_owned();
                early.log_only(log::Level::Error, &first);
                let _ = e.print();
                std::process::exit(1);
            }
        },
    };
    if cli.version {
        out!("ocirun version {VERSION}");
        out!(
            "commit: {}",
            option_env!("OCIRUN_COMMIT").unwrap_or("unknown")
        );
        out!("spec: {}", libsandbox::OCI_VERSION);
        return;
    }
    let log = Logger::new(cli.log.clone(), cli.log_format, cli.debug);
    log.log(
        log::Level::Debug,
        &format!(
            "ocirun {VERSION}: {:?}",
            std::env::args().collect::<Vec<_>>()
        ),
    );
    let Some(command) = cli.command else {
        use clap::CommandFactory;
        let _ = Cli::command().print_help();
        std::process::exit(1);
    };
    // (Already done before parsing when the subcommand was recognisable; this covers the rest.)
    if !protected
        && matches!(
            command,
            Command::Create(_) | Command::Run(_) | Command::Exec(_)
        )
    {
        if let Err(e) = libsandbox::protect_executable() {
            log.error(&e.to_string());
            std::process::exit(1);
        }
    }
    let rt = Runtime::new(&cli.root);
    let result = match command {
        Command::Create(cli::Deferred(a)) => commands::create(&rt, a, cli.systemd_cgroup),
        Command::Start(cli::Deferred(a)) => commands::start(&rt, a, &log),
        Command::Run(cli::Deferred(a)) => commands::run(&rt, a, cli.systemd_cgroup, &log),
        Command::State(cli::Deferred(a)) => commands::state(&rt, a),
        Command::List(cli::Deferred(a)) => commands::list(&rt, a),
        Command::Kill(cli::Deferred(a)) => commands::kill(&rt, a),
        Command::Delete(cli::Deferred(a)) => commands::delete(&rt, a, &log),
        Command::Exec(cli::Deferred(a)) => exec_cmd::exec(&rt, a),
        Command::Pause(cli::Deferred(a)) => cgroup_cmds::pause(&rt, a),
        Command::Resume(cli::Deferred(a)) => cgroup_cmds::resume(&rt, a),
        Command::Ps(cli::Deferred(a)) => cgroup_cmds::ps(&rt, a),
        Command::Update(cli::Deferred(a)) => cgroup_cmds::update(&rt, a),
        Command::Events(cli::Deferred(a)) => cgroup_cmds::events(&rt, a),
        Command::Spec(cli::Deferred(a)) => commands::spec(
            a,
            matches!(cli.rootless.as_deref(), Some("true") | Some("")),
        ),
        Command::Features => features::print(),
    };
    match result {
        Ok(status) => std::process::exit(status),
        Err(f) => {
            log.error(&f.msg);
            std::process::exit(f.status);
        }
    }
}
