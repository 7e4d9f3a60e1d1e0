//! `ocirun`: the runc-compatible command line over libsandbox.

mod cli;
mod commands;
mod features;
mod log;
mod signal;
mod spec_template;

use clap::Parser;

use cli::{Cli, Command};
use libsandbox::Runtime;
use log::Logger;

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
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 1 } else { 0 };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    if cli.version {
        println!("ocirun version {VERSION}");
        println!(
            "commit: {}",
            option_env!("OCIRUN_COMMIT").unwrap_or("unknown")
        );
        println!("spec: {}", libsandbox::OCI_VERSION);
        return;
    }
    let log = Logger::new(cli.log.clone(), cli.log_format, cli.debug);
    let Some(command) = cli.command else {
        use clap::CommandFactory;
        let _ = Cli::command().print_help();
        std::process::exit(1);
    };
    let rt = Runtime::new(&cli.root);
    let result = match command {
        Command::Create(a) => commands::create(&rt, a, cli.systemd_cgroup),
        Command::Start(a) => commands::start(&rt, a, &log),
        Command::Run(a) => commands::run(&rt, a, cli.systemd_cgroup, &log),
        Command::State(a) => commands::state(&rt, a),
        Command::List(a) => commands::list(&rt, a),
        Command::Kill(a) => commands::kill(&rt, a),
        Command::Delete(a) => commands::delete(&rt, a, &log),
        Command::Spec(a) => commands::spec(
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
