//! The command lines that container managers send on every container start and stop, parsed
//! without clap.
//!
//! Building clap's command and parsing with it costs about 0.3 ms per process image, nearly all
//! of it first-touch page faults of clap's code and tables: a tenth of a `run`, an eighth of a
//! `start` or `delete`. The shapes containerd, Docker and podman use (global options, then
//! `create`, `start`, `run`, `exec`, `state`, `kill` or `delete` with their options, then the
//! id) are
//! parsed here into the same [`Cli`]. Anything else, or anything this does not take exactly (an
//! unknown or repeated option, a value that looks like an option, an option after the id,
//! `--help`), returns None and goes to clap, which has every answer and every error message. A
//! test checks that both agree wherever this answers.

use std::path::PathBuf;

use crate::cli::{
    Cli, Command, ContainerArgs, CreateArgs, Deferred, DeleteArgs, ExecArgs, IdArg, KillArgs,
    LogFormat, RunArgs,
};

/// The options of `create` and `run` (run's own flags included; `create` refuses `--keep`).
#[derive(Default)]
struct CreateOptions {
    bundle: Option<PathBuf>,
    console_socket: Option<PathBuf>,
    pid_file: Option<PathBuf>,
    no_pivot: bool,
    no_new_keyring: bool,
    preserve_fds: Option<u32>,
    detach: bool,
    keep: bool,
}

/// Reads arguments one by one; every accessor returns None for what clap must decide.
struct Words<'a> {
    args: &'a [String],
    next: usize,
}

impl<'a> Words<'a> {
    fn peek(&self) -> Option<&'a str> {
        self.args.get(self.next).map(String::as_str)
    }

    fn take(&mut self) -> Option<&'a str> {
        let word = self.peek()?;
        self.next += 1;
        Some(word)
    }

    /// The value of an option given as `--name VALUE` (`inline` is the `=VALUE` form's).
    fn value(&mut self, inline: Option<&'a str>) -> Option<&'a str> {
        let value = match inline {
            Some(v) => v,
            None => self.take()?,
        };
        // Empty, or looking like an option: clap's call.
        (!value.is_empty() && !value.starts_with('-')).then_some(value)
    }

    /// A count (`--preserve-fds`): plain decimal digits only, clap's parser decides the rest.
    fn count(&mut self, inline: Option<&'a str>) -> Option<u32> {
        let n = self.value(inline)?;
        if !n.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        n.parse().ok()
    }

    /// The last word, as a positional (an id): not an option, and nothing after it.
    fn last_positional(&mut self) -> Option<&'a str> {
        let word = self.take()?;
        (self.peek().is_none() && !word.is_empty() && !word.starts_with('-')).then_some(word)
    }
}

/// `--name=value` as its name and value; anything else as itself, without a value.
fn split_option(word: &str) -> (&str, Option<&str>) {
    match word.split_once('=') {
        Some((n, v)) if n.starts_with("--") => (n, Some(v)),
        _ => (word, None),
    }
}

/// Sets `slot` once; a second time is clap's to refuse.
fn once<T>(slot: &mut Option<T>, value: T) -> Option<()> {
    if slot.is_some() {
        return None;
    }
    *slot = Some(value);
    Some(())
}

fn flag(slot: &mut bool) -> Option<()> {
    if *slot {
        return None;
    }
    *slot = true;
    Some(())
}

/// `args` as clap would parse it, when it is one of the common shapes; None otherwise.
pub fn parse(args: &[String]) -> Option<Cli> {
    let mut words = Words { args, next: 1 };
    let mut root = None;
    let mut log = None;
    let mut log_format = None;
    let mut debug = false;
    let mut systemd_cgroup = false;
    let command = loop {
        let word = words.take()?;
        let (name, inline) = split_option(word);
        match name {
            "--root" => once(&mut root, PathBuf::from(words.value(inline)?))?,
            "--log" => once(&mut log, PathBuf::from(words.value(inline)?))?,
            "--log-format" => {
                let format = match words.value(inline)? {
                    "text" => LogFormat::Text,
                    "json" => LogFormat::Json,
                    _ => return None,
                };
                once(&mut log_format, format)?
            }
            "--debug" if inline.is_none() => flag(&mut debug)?,
            "--systemd-cgroup" if inline.is_none() => flag(&mut systemd_cgroup)?,
            "start" | "state" | "kill" | "delete" | "create" | "run" | "exec" => break name,
            _ => return None,
        }
    };
    let command = match command {
        "start" | "state" => {
            let id = IdArg {
                id: words.last_positional()?.to_owned(),
            };
            if command == "start" {
                Command::Start(Deferred(id))
            } else {
                Command::State(Deferred(id))
            }
        }
        "delete" => {
            let mut force = false;
            while let Some("-f" | "--force") = words.peek() {
                words.take();
                flag(&mut force)?;
            }
            Command::Delete(Deferred(DeleteArgs {
                force,
                id: words.last_positional()?.to_owned(),
            }))
        }
        "kill" => {
            let mut all = false;
            while let Some("-a" | "--all") = words.peek() {
                words.take();
                flag(&mut all)?;
            }
            let id = words.take()?;
            let signal = words
                .peek()
                .map_or(Some("SIGTERM"), |_| words.last_positional())?;
            if id.is_empty() || id.starts_with('-') || signal.is_empty() {
                return None;
            }
            Command::Kill(Deferred(KillArgs {
                all,
                id: id.to_owned(),
                signal: signal.to_owned(),
            }))
        }
        "exec" => Command::Exec(Deferred(exec_args(&mut words)?)),
        _ => {
            let o = create_options(&mut words)?;
            let id = words.last_positional()?.to_owned();
            let container = ContainerArgs {
                bundle: o.bundle.unwrap_or_else(|| PathBuf::from(".")),
                console_socket: o.console_socket,
                pid_file: o.pid_file,
                no_pivot: o.no_pivot,
                no_new_keyring: o.no_new_keyring,
                preserve_fds: o.preserve_fds.unwrap_or(0),
            };
            if command == "create" {
                if o.keep {
                    return None;
                }
                Command::Create(Deferred(CreateArgs {
                    container,
                    detach: o.detach,
                    id,
                }))
            } else {
                Command::Run(Deferred(RunArgs {
                    container,
                    detach: o.detach,
                    keep: o.keep,
                    id,
                }))
            }
        }
    };
    Some(Cli {
        root: root.unwrap_or_else(|| PathBuf::from("/run/ocirun")),
        log,
        log_format: log_format.unwrap_or(LogFormat::Text),
        debug,
        systemd_cgroup,
        rootless: None,
        criu: None,
        version: false,
        command: Some(command),
    })
}

/// The options of `create` and `run`, up to the id.
fn create_options(words: &mut Words<'_>) -> Option<CreateOptions> {
    let mut o = CreateOptions::default();
    while let Some(word) = words.peek() {
        if !word.starts_with('-') {
            break;
        }
        words.take();
        let (name, inline) = split_option(word);
        match name {
            "-b" | "--bundle" => once(&mut o.bundle, PathBuf::from(words.value(inline)?))?,
            "--console-socket" => once(&mut o.console_socket, PathBuf::from(words.value(inline)?))?,
            "--pid-file" => once(&mut o.pid_file, PathBuf::from(words.value(inline)?))?,
            "--preserve-fds" => once(&mut o.preserve_fds, words.count(inline)?)?,
            "--no-pivot" if inline.is_none() => flag(&mut o.no_pivot)?,
            "--no-new-keyring" if inline.is_none() => flag(&mut o.no_new_keyring)?,
            "-d" | "--detach" if inline.is_none() => flag(&mut o.detach)?,
            "--keep" if inline.is_none() => flag(&mut o.keep)?,
            _ => return None,
        }
    }
    Some(o)
}

/// The options of `exec`, the id and the command (words that do not look like options: a
/// command with options of its own is clap's to split).
fn exec_args(words: &mut Words<'_>) -> Option<ExecArgs> {
    let mut console_socket = None;
    let mut cwd = None;
    let mut env = Vec::new();
    let mut tty = false;
    let mut user = None;
    let mut process = None;
    let mut detach = false;
    let mut pid_file = None;
    let mut no_new_privs = false;
    let mut preserve_fds = None;
    while let Some(word) = words.peek() {
        if !word.starts_with('-') {
            break;
        }
        words.take();
        let (name, inline) = split_option(word);
        match name {
            "--console-socket" => once(&mut console_socket, PathBuf::from(words.value(inline)?))?,
            "--cwd" => once(&mut cwd, PathBuf::from(words.value(inline)?))?,
            "-e" | "--env" => env.push(words.value(inline)?.to_owned()),
            "-t" | "--tty" if inline.is_none() => flag(&mut tty)?,
            "-u" | "--user" => once(&mut user, words.value(inline)?.to_owned())?,
            "-p" | "--process" => once(&mut process, PathBuf::from(words.value(inline)?))?,
            "-d" | "--detach" if inline.is_none() => flag(&mut detach)?,
            "--pid-file" => once(&mut pid_file, PathBuf::from(words.value(inline)?))?,
            "--no-new-privs" if inline.is_none() => flag(&mut no_new_privs)?,
            "--preserve-fds" => once(&mut preserve_fds, words.count(inline)?)?,
            _ => return None,
        }
    }
    let mut id_and_command = Vec::new();
    while let Some(word) = words.take() {
        if word.is_empty() || word.starts_with('-') {
            return None;
        }
        id_and_command.push(word.to_owned());
    }
    if id_and_command.is_empty() {
        return None;
    }
    Some(ExecArgs {
        console_socket,
        cwd,
        env,
        tty,
        user,
        additional_gids: Vec::new(),
        process,
        detach,
        pid_file,
        process_label: None,
        apparmor: None,
        no_new_privs,
        cap: Vec::new(),
        preserve_fds: preserve_fds.unwrap_or(0),
        ignore_paused: false,
        cgroup: None,
        id_and_command,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn argv(line: &str) -> Vec<String> {
        std::iter::once("ocirun")
            .chain(line.split(' ').filter(|w| !w.is_empty()))
            .map(str::to_owned)
            .collect()
    }

    /// Both parsers on `line`: the fast one's result (None: left to clap) and clap's, which
    /// must be the same whenever the fast one answers.
    fn both(line: &str) -> Option<String> {
        let args = argv(line);
        let fast = parse(&args).map(|c| format!("{c:?}"));
        let clap = Cli::try_parse_from(&args).map(|c| format!("{c:?}"));
        if let Some(f) = &fast {
            match &clap {
                Ok(c) => assert_eq!(f, c, "fast and clap differ on {line:?}"),
                Err(e) => panic!("fast took {line:?}, which clap refuses: {e}"),
            }
        }
        fast
    }

    #[test]
    fn the_managers_command_lines_are_parsed_as_clap_parses_them() {
        let common = [
            // containerd's shim (runc v2)
            "--root /run/containerd/runc/k8s.io --log /run/containerd/log.json --log-format json create --bundle /b --pid-file /b/init.pid c1",
            "--root /r --log /l --log-format json --systemd-cgroup create --bundle /b --pid-file /b/init.pid --console-socket /tmp/s c1",
            "--root /r --log /l --log-format json start c1",
            "--root /r --log /l --log-format json state c1",
            "--root /r --log /l --log-format json kill c1 9",
            "--root /r --log /l --log-format json kill --all c1 15",
            "--root /r --log /l --log-format json delete --force c1",
            "--root /r --log /l --log-format json delete c1",
            "--root /r --log /l --log-format json exec --process /tmp/runc-process1 --console-socket /tmp/s --detach --pid-file /p c1",
            "--root /r --log /l --log-format json exec --process /tmp/runc-process1 --detach --pid-file /p c1",
            "exec --pid-file /p --process /x -d c1",
            "exec -t -e A=1 -e B=2 --cwd /tmp -u 1000:1000 --no-new-privs --preserve-fds 1 c1 env",
            "exec c1 ls /",
            // Docker, podman (conmon), by hand
            "--root=/r --log=/l --log-format=text create -b /b --no-pivot --no-new-keyring --preserve-fds 2 c1",
            "--debug run -d -b . --keep c1",
            "run c1",
            "run --bundle=/b --detach c1",
            "create -d c1",
            "kill c1",
            "kill -a c1 KILL",
            "kill c1 SIGUSR1",
            "delete -f c1",
            "state c1",
            "start c1",
        ];
        for line in common {
            assert!(both(line).is_some(), "not taken by the fast path: {line:?}");
        }
        // Left to clap: it parses them (or refuses them) itself.
        let others = [
            "",
            "--help",
            "run --help",
            "-v",
            "--version",
            "list",
            "ps c1",
            "exec c1 ls -l",
            "exec --cap CAP_SYS_ADMIN c1 true",
            "exec -g 10 c1 true",
            "exec --ignore-paused c1 true",
            "exec",
            "exec -p /a -p /b c1",
            "exec -e -x c1 true",
            "exec --tty --tty c1 true",
            "exec --user= c1 true",
            "spec --rootless",
            "--rootless=true run c1",
            "--criu /x run c1",
            "run --root /r c1",
            "run c1 --detach",
            "run c1 c2",
            "run",
            "run -b",
            "run -b -x c1",
            "run --bundle= c1",
            "run -b /a -b /b c1",
            "run --detach --detach c1",
            "run --keep=true c1",
            "run --preserve-fds x c1",
            "run --preserve-fds -1 c1",
            "run --preserve-fds 99999999999 c1",
            "run --preserve-fds +3 c1",
            "run --unknown c1",
            "create --keep c1",
            "run -- c1",
            "run -bd c1",
            "--log-format yaml run c1",
            "--root /a --root /b run c1",
            "--debug --debug run c1",
            "--debug=true run c1",
            "kill c1 -9",
            "kill c1 9 x",
            "kill",
            "delete c1 -f",
            "delete --force --force c1",
            "start c1 c2",
            "state -x",
            "start -- c1",
        ];
        for line in others {
            assert!(both(line).is_none(), "the fast path took {line:?}");
        }
    }
}
