//! The command line, as runc spells it.

use std::path::PathBuf;

use clap::{ArgMatches, Args, FromArgMatches, Parser, Subcommand, ValueEnum};

/// ocirun: an OCI container runtime, compatible with runc's command line.
#[derive(Debug, Parser)]
#[command(name = "ocirun", disable_version_flag = true, about, long_about = None)]
pub struct Cli {
    /// Directory holding container state (a tmpfs is best).
    #[arg(long, global = true, default_value = "/run/ocirun", value_name = "DIR")]
    pub root: PathBuf,
    /// Write log messages to this file instead of stderr.
    #[arg(long, global = true, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Log format.
    #[arg(long = "log-format", global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Log debug messages too.
    #[arg(long, global = true)]
    pub debug: bool,
    /// Use the systemd cgroup driver.
    #[arg(long = "systemd-cgroup", global = true)]
    pub systemd_cgroup: bool,
    /// With `spec`: write a rootless template. Otherwise accepted for runc compatibility
    /// ("true", "false" or "auto").
    #[arg(long, global = true, value_name = "VALUE", num_args = 0..=1, default_missing_value = "true")]
    pub rootless: Option<String>,
    /// Accepted for runc compatibility (path to criu).
    #[arg(long, global = true, value_name = "PATH", hide = true)]
    pub criu: Option<PathBuf>,
    /// Print the version.
    #[arg(short = 'v', long)]
    pub version: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a container whose process waits for `start`.
    Create(Deferred<CreateArgs>),
    /// Start the process of a created container.
    Start(Deferred<IdArg>),
    /// Create and start a container, wait for it, and delete it.
    Run(Deferred<RunArgs>),
    /// Print the state of a container as JSON.
    State(Deferred<IdArg>),
    /// List containers.
    #[command(alias = "ls")]
    List(Deferred<ListArgs>),
    /// Send a signal to a container's process (default SIGTERM).
    Kill(Deferred<KillArgs>),
    /// Delete a container and everything the runtime made for it.
    Delete(Deferred<DeleteArgs>),
    /// Run a new process in a running container.
    Exec(Deferred<ExecArgs>),
    /// Freeze every process of a container.
    Pause(Deferred<IdArg>),
    /// Thaw a paused container.
    Resume(Deferred<IdArg>),
    /// List the processes of a container.
    Ps(Deferred<PsArgs>),
    /// Change a container's resource limits.
    Update(Deferred<UpdateArgs>),
    /// Print a container's resource usage and OOM events as JSON.
    Events(Deferred<EventsArgs>),
    /// Write a template config.json.
    Spec(Deferred<SpecArgs>),
    /// Print the features this runtime supports, as JSON.
    Features,
}

/// A subcommand's arguments, defined only when that subcommand is the one invoked. clap otherwise
/// builds every subcommand's arguments on each invocation, which is most of its start-up work
/// (about a third of a millisecond in each of a `run`'s two process images).
#[derive(Debug)]
pub struct Deferred<T>(pub T);

impl<T: Args> Args for Deferred<T> {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        cmd.defer(T::augment_args)
    }
    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        cmd.defer(T::augment_args_for_update)
    }
    fn group_id() -> Option<clap::Id> {
        T::group_id()
    }
}

impl<T: FromArgMatches> FromArgMatches for Deferred<T> {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        T::from_arg_matches(matches).map(Deferred)
    }
    fn from_arg_matches_mut(matches: &mut ArgMatches) -> Result<Self, clap::Error> {
        T::from_arg_matches_mut(matches).map(Deferred)
    }
    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        self.0.update_from_arg_matches(matches)
    }
    fn update_from_arg_matches_mut(&mut self, matches: &mut ArgMatches) -> Result<(), clap::Error> {
        self.0.update_from_arg_matches_mut(matches)
    }
}

#[derive(Debug, Args)]
pub struct IdArg {
    /// The container id.
    pub id: String,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    #[command(flatten)]
    pub container: ContainerArgs,
    /// Accepted for runc compatibility (create always detaches).
    #[arg(short, long, hide = true)]
    pub detach: bool,
    /// The container id.
    pub id: String,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub container: ContainerArgs,
    /// Return once the container runs instead of waiting for it.
    #[arg(short, long)]
    pub detach: bool,
    /// Keep the container's state after it exits.
    #[arg(long)]
    pub keep: bool,
    /// The container id.
    pub id: String,
}

// The options `create` and `run` share. A plain comment: clap would make a doc comment on a
// flattened struct the help text of both commands.
#[derive(Debug, Args)]
pub struct ContainerArgs {
    /// The bundle directory (holding config.json).
    #[arg(short, long, default_value = ".", value_name = "DIR")]
    pub bundle: PathBuf,
    /// A unix socket that receives the pty master when process.terminal is true.
    #[arg(long = "console-socket", value_name = "PATH")]
    pub console_socket: Option<PathBuf>,
    /// Write the container init's pid to this file.
    #[arg(long = "pid-file", value_name = "PATH")]
    pub pid_file: Option<PathBuf>,
    /// Use move + chroot instead of pivot_root (for a ramfs root).
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Do not give the container its own session keyring.
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    /// Pass N extra fds (3 .. 3+N-1) to the container.
    #[arg(long = "preserve-fds", default_value_t = 0, value_name = "N")]
    pub preserve_fds: u32,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = ListFormat::Table)]
    pub format: ListFormat,
    /// Print only the ids.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    Table,
    Json,
}

#[derive(Debug, Args)]
pub struct KillArgs {
    /// Signal every process of the container, not just its init.
    #[arg(short, long)]
    pub all: bool,
    /// The container id.
    pub id: String,
    /// A signal number, name (TERM) or SIG-name (SIGTERM).
    #[arg(default_value = "SIGTERM")]
    pub signal: String,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Kill a running container first; a missing container is not an error.
    #[arg(short, long)]
    pub force: bool,
    /// The container id.
    pub id: String,
}

#[derive(Debug, Args)]
pub struct SpecArgs {
    /// Where to write config.json (`--rootless` makes a template for an unprivileged user).
    #[arg(short, long, default_value = ".", value_name = "DIR")]
    pub bundle: PathBuf,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// A unix socket that receives the pty master (with --tty).
    #[arg(long = "console-socket", value_name = "PATH")]
    pub console_socket: Option<PathBuf>,
    /// Working directory of the process.
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<PathBuf>,
    /// Set an environment variable (NAME=value); repeatable.
    #[arg(short, long = "env", value_name = "NAME=VALUE")]
    pub env: Vec<String>,
    /// Allocate a pseudo-terminal.
    #[arg(short, long)]
    pub tty: bool,
    /// The user to run as: UID[:GID].
    #[arg(short, long, value_name = "UID[:GID]")]
    pub user: Option<String>,
    /// Additional group ids; repeatable.
    #[arg(short = 'g', long = "additional-gids", value_name = "GID")]
    pub additional_gids: Vec<u32>,
    /// A JSON file describing the process (runtime spec `process` object); overrides the rest.
    #[arg(short, long, value_name = "FILE")]
    pub process: Option<PathBuf>,
    /// Return once the process runs.
    #[arg(short, long)]
    pub detach: bool,
    /// Write the process's pid to this file.
    #[arg(long = "pid-file", value_name = "PATH")]
    pub pid_file: Option<PathBuf>,
    /// SELinux label of the process.
    #[arg(long = "process-label", value_name = "LABEL")]
    pub process_label: Option<String>,
    /// AppArmor profile of the process.
    #[arg(long, value_name = "PROFILE")]
    pub apparmor: Option<String>,
    /// Set no_new_privs.
    #[arg(long = "no-new-privs")]
    pub no_new_privs: bool,
    /// Add a capability to the process's sets; repeatable.
    #[arg(short, long = "cap", value_name = "CAP")]
    pub cap: Vec<String>,
    /// Pass N extra fds (3 .. 3+N-1) to the process.
    #[arg(long = "preserve-fds", default_value_t = 0, value_name = "N")]
    pub preserve_fds: u32,
    /// Exec into a paused container too.
    #[arg(long = "ignore-paused")]
    pub ignore_paused: bool,
    /// Accepted for runc compatibility: run in this sub-cgroup (unsupported values fail).
    #[arg(long, value_name = "PATH", hide = true)]
    pub cgroup: Option<String>,
    /// The container id, then the command and its arguments.
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true, num_args = 1..)]
    pub id_and_command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PsArgs {
    /// Output format: table (runs ps with the given options) or json (pids).
    #[arg(short, long, value_enum, default_value_t = ListFormat::Table)]
    pub format: ListFormat,
    /// The container id, then options for ps (default -ef).
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true, num_args = 1..)]
    pub id_and_ps_args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// A JSON file of linux.resources ("-" reads stdin); the flags below override it.
    #[arg(short, long, value_name = "FILE")]
    pub resources: Option<PathBuf>,
    #[arg(long = "blkio-weight", value_name = "N")]
    pub blkio_weight: Option<u16>,
    #[arg(long = "cpu-period", value_name = "US")]
    pub cpu_period: Option<u64>,
    #[arg(long = "cpu-quota", value_name = "US", allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    #[arg(long = "cpu-burst", value_name = "US")]
    pub cpu_burst: Option<u64>,
    #[arg(long = "cpu-rt-period", value_name = "US")]
    pub cpu_rt_period: Option<u64>,
    #[arg(long = "cpu-rt-runtime", value_name = "US", allow_hyphen_values = true)]
    pub cpu_rt_runtime: Option<i64>,
    #[arg(long = "cpu-share", value_name = "N")]
    pub cpu_share: Option<u64>,
    #[arg(long = "cpuset-cpus", value_name = "LIST")]
    pub cpuset_cpus: Option<String>,
    #[arg(long = "cpuset-mems", value_name = "LIST")]
    pub cpuset_mems: Option<String>,
    #[arg(long = "memory", value_name = "BYTES", allow_hyphen_values = true)]
    pub memory: Option<String>,
    #[arg(
        long = "memory-reservation",
        value_name = "BYTES",
        allow_hyphen_values = true
    )]
    pub memory_reservation: Option<String>,
    #[arg(long = "memory-swap", value_name = "BYTES", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    #[arg(long = "kernel-memory", value_name = "BYTES", hide = true)]
    pub kernel_memory: Option<String>,
    #[arg(
        long = "kernel-memory-tcp",
        value_name = "BYTES",
        allow_hyphen_values = true
    )]
    pub kernel_memory_tcp: Option<String>,
    #[arg(long = "pids-limit", value_name = "N", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// The container id.
    pub id: String,
}

#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Print one stats event and exit.
    #[arg(long)]
    pub stats: bool,
    /// Interval between stats events (like 5s, 500ms, 1m).
    #[arg(long, default_value = "5s", value_name = "DURATION")]
    pub interval: String,
    /// The container id.
    pub id: String,
}

/// The subcommand's name: the first argument that is neither an option nor the value of a
/// global option that takes one.
pub fn subcommand(args: &[String]) -> Option<&str> {
    let mut it = args.iter().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--root" | "--log" | "--log-format" | "--criu" => {
                it.next();
            }
            a if a.starts_with('-') => {}
            a => return Some(a),
        }
    }
    None
}

/// `--log` and `--log-format` as given on the command line, before full parsing (so that even
/// a parse error can be logged where the caller expects it).
pub fn log_options(args: &[String]) -> (Option<PathBuf>, LogFormat) {
    let mut path = None;
    let mut format = LogFormat::Text;
    let mut it = args.iter().skip(1);
    while let Some(arg) = it.next() {
        if arg == "--" {
            break;
        }
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) => (n, Some(v.to_owned())),
            None => (arg.as_str(), None),
        };
        let mut value = || inline.clone().or_else(|| it.next().cloned());
        match name {
            "--log" => path = value().map(PathBuf::from),
            "--log-format" if value().as_deref() == Some("json") => format = LogFormat::Json,
            _ => {}
        }
    }
    (path, format)
}

/// Go's flag package, which runc uses, accepts `-flag` as well as `--flag`; some callers rely on
/// it (containerd passes `-no-subreaper`). Rewrite single-dash long options that this command
/// line knows to double-dash ones before clap sees them.
pub fn normalize_args(args: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = args.into_iter().collect();
    let end = out.iter().position(|a| a == "--").unwrap_or(out.len());
    // The names come from the clap command, which is costly to build: only when some argument
    // looks like a single-dash long option (containerd's callers; most pass double dashes).
    if !out[..end]
        .iter()
        .skip(1)
        .any(|a| single_dash_name(a).is_some())
    {
        return out;
    }
    let longs = long_names();
    for arg in out[..end].iter_mut().skip(1) {
        if single_dash_name(arg).is_some_and(|name| longs.iter().any(|l| l == name)) {
            arg.insert(0, '-');
        }
    }
    out
}

/// The name in `-name` or `-name=value`, when it is longer than one character (not a short
/// option and not `--name`).
fn single_dash_name(arg: &str) -> Option<&str> {
    arg.strip_prefix('-')
        .filter(|rest| !rest.starts_with('-'))
        .map(|rest| rest.split('=').next().unwrap_or(""))
        .filter(|name| name.len() > 1)
}

/// Every long option name of the command line, across subcommands.
fn long_names() -> Vec<String> {
    use clap::CommandFactory;
    let mut cmd = Cli::command();
    cmd.build(); // defines the deferred subcommand arguments too
    let mut names = Vec::new();
    let mut stack = vec![&cmd];
    while let Some(c) = stack.pop() {
        names.extend(
            c.get_arguments()
                .filter_map(|a| a.get_long())
                .map(str::to_owned),
        );
        stack.extend(c.get_subcommands());
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_consistent_with_its_deferred_subcommands() {
        use clap::CommandFactory;
        Cli::command().debug_assert(); // builds every subcommand, deferred parts included
        let cli =
            Cli::try_parse_from(["ocirun", "--root", "/r", "run", "-b", "/b", "-d", "c1"]).unwrap();
        let Some(Command::Run(Deferred(run))) = cli.command else {
            panic!("not parsed as run");
        };
        assert_eq!(run.container.bundle, PathBuf::from("/b"));
        assert!(run.detach);
        assert_eq!(run.id, "c1");
        assert_eq!(cli.root, PathBuf::from("/r"));
        let err = Cli::try_parse_from(["ocirun", "kill", "c1", "--bogus"]).unwrap_err();
        assert!(err.to_string().contains("--bogus"), "{err}");
    }

    fn norm(args: &[&str]) -> Vec<String> {
        normalize_args(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn single_dash_long_options_become_double_dash() {
        assert_eq!(
            norm(&[
                "ocirun",
                "-root",
                "/r",
                "create",
                "-bundle",
                "/b",
                "-pid-file",
                "p",
                "c1"
            ]),
            vec![
                "ocirun",
                "--root",
                "/r",
                "create",
                "--bundle",
                "/b",
                "--pid-file",
                "p",
                "c1"
            ]
        );
        assert_eq!(
            norm(&["ocirun", "kill", "c1", "-9"]),
            vec!["ocirun", "kill", "c1", "-9"]
        );
        assert_eq!(
            norm(&["ocirun", "delete", "-f", "c1"]),
            vec!["ocirun", "delete", "-f", "c1"]
        );
        assert_eq!(
            norm(&[
                "ocirun",
                "-log-format=json",
                "exec",
                "c1",
                "--",
                "sh",
                "-root"
            ]),
            vec![
                "ocirun",
                "--log-format=json",
                "exec",
                "c1",
                "--",
                "sh",
                "-root"
            ]
        );
        assert_eq!(
            norm(&["ocirun", "run", "-no-such-option", "c1"]),
            vec!["ocirun", "run", "-no-such-option", "c1"]
        );
    }
}
