//! skiff's commands and flags, as clap derives them (help text from these comments).

use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "skiff", version, about = "The command line of skiffd")]
pub struct Cli {
    /// skiffd's socket (before the command).
    #[arg(short = 'a', long, env = "SKIFF_ADDRESS", default_value = crate::daemon::DEFAULT_ADDRESS)]
    pub address: String,
    /// The namespace of every request (before the command).
    #[arg(short = 'n', long, env = "SKIFF_NAMESPACE", default_value = "default")]
    pub namespace: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Images: import an OCI layout or docker save archive, list, inspect, remove.
    #[command(subcommand, visible_aliases = ["images", "i"])]
    Image(ImageCommand),
    /// Containers: create, list, inspect, label, remove.
    #[command(subcommand, visible_aliases = ["containers", "c"])]
    Container(ContainerCommand),
    /// Snapshots: list, prepare, view, commit, mounts, usage, remove.
    #[command(subcommand, visible_alias = "snapshots")]
    Snapshot(SnapshotCommand),
    /// Content: list the blobs of the namespace's images.
    #[command(subcommand)]
    Content(ContentCommand),
    /// Creates a container and runs it; exits with the container's status.
    Run(RunArgs),
    /// Runs a process in a running container; exits with its status.
    Exec(ExecArgs),
    /// Lists containers and their tasks.
    Ps,
    /// Sends a signal to tasks.
    Kill {
        /// A name (TERM, SIGKILL) or number.
        #[arg(short, long, default_value = "TERM", value_parser = parse_signal)]
        signal: u32,
        /// Every process of the task.
        #[arg(short, long)]
        all: bool,
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// SIGTERM, then SIGKILL after a grace period.
    Stop {
        /// Seconds to wait before SIGKILL.
        #[arg(short, long, default_value_t = 10)]
        time: u64,
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Removes containers (with their stopped tasks).
    Rm {
        /// Kill running tasks first.
        #[arg(short, long)]
        force: bool,
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Prints a detached container's output.
    Logs { id: String },
    /// Memory, CPU and pids of tasks.
    Stats {
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Prints task events as they come, until killed.
    Events,
    /// Freezes tasks.
    Pause {
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Thaws tasks.
    Resume {
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Prints a shell completion script (e.g. `skiff completion bash`).
    Completion { shell: clap_complete::Shell },
}

#[derive(Subcommand, Debug)]
pub enum ImageCommand {
    /// Imports an OCI image layout or `docker save` archive.
    Import {
        file: String,
        /// The image's name (for an archive of one image).
        #[arg(long)]
        name: Option<String>,
        /// No progress.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Pulls an image from its registry (`busybox` is docker.io/library/busybox:latest).
    Pull {
        reference: String,
        #[command(flatten)]
        registry: RegistryFlags,
    },
    #[command(visible_alias = "list")]
    Ls,
    Info {
        name: String,
    },
    #[command(visible_aliases = ["remove", "delete"])]
    Rm {
        #[arg(required = true)]
        names: Vec<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum ContainerCommand {
    Create(CreateArgs),
    #[command(visible_alias = "list")]
    Ls {
        /// KEY=VALUE, or KEY for any value.
        #[arg(long)]
        label: Vec<String>,
    },
    Info {
        id: String,
    },
    /// Sets labels (an empty value removes one).
    Label {
        id: String,
        #[arg(value_parser = key_value)]
        labels: Vec<(String, String)>,
    },
    #[command(visible_aliases = ["remove", "delete"])]
    Rm {
        #[arg(required = true)]
        ids: Vec<String>,
    },
}

/// How to reach a registry.
#[derive(Args, Debug, Clone, Default)]
pub struct RegistryFlags {
    /// Plain HTTP to the registry (a loopback registry may answer in it anyway).
    #[arg(long)]
    pub plain_http: bool,
    /// USER:PASSWORD for the registry (default: docker's config.json, if it has them).
    #[arg(short, long, value_name = "USER:PASSWORD")]
    pub user: Option<String>,
    /// No progress.
    #[arg(short, long)]
    pub quiet: bool,
}

/// What the new container is.
#[derive(Args, Debug)]
pub struct ContainerFlags {
    /// KEY=VALUE.
    #[arg(long, value_parser = key_value)]
    pub label: Vec<(String, String)>,
    /// KEY=VALUE, over the image's.
    #[arg(short, long)]
    pub env: Vec<String>,
    /// A runtime name (io.containerd.skiff.v2) or a shim binary's path.
    #[arg(long)]
    pub runtime: Option<String>,
    /// Allocate a terminal.
    #[arg(short, long)]
    pub tty: bool,
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    #[command(flatten)]
    pub container: ContainerFlags,
    /// Memory limit in bytes.
    #[arg(long)]
    pub memory: Option<i64>,
    /// IMAGE ID [CMD ARG...]
    #[arg(value_name = "IMAGE ID [CMD]", num_args = 2.., required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub words: Vec<String>,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub container: ContainerFlags,
    /// Remove the container when it exits.
    #[arg(long)]
    pub rm: bool,
    /// Start it and print its id; output goes to its log (`skiff logs`).
    #[arg(short, long)]
    pub detach: bool,
    /// Attach stdin.
    #[arg(short, long)]
    pub interactive: bool,
    /// The container's id (generated if not given).
    #[arg(long)]
    pub name: Option<String>,
    /// SOURCE:DESTINATION[:ro], a bind mount.
    #[arg(short = 'v', long)]
    pub mount: Vec<String>,
    /// Memory limit (e.g. 64m).
    #[arg(short, long, value_parser = crate::units::parse_size)]
    pub memory: Option<u64>,
    /// Pull the image: when it is missing, always, or never.
    #[arg(long, default_value = "missing", value_parser = ["missing", "always", "never"])]
    pub pull: String,
    #[command(flatten)]
    pub registry: RegistryFlags,
    /// IMAGE [CMD ARG...]
    #[arg(value_name = "IMAGE [CMD]", num_args = 1.., required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub words: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ExecArgs {
    /// Allocate a terminal.
    #[arg(short, long)]
    pub tty: bool,
    /// Attach stdin.
    #[arg(short, long)]
    pub interactive: bool,
    #[arg(long)]
    pub exec_id: Option<String>,
    /// KEY=VALUE added to the container's environment.
    #[arg(short, long)]
    pub env: Vec<String>,
    /// ID CMD [ARG...]
    #[arg(value_name = "ID CMD", num_args = 2.., required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub words: Vec<String>,
}

#[derive(Subcommand, Debug)]
pub enum SnapshotCommand {
    #[command(visible_alias = "list")]
    Ls,
    /// An active snapshot on PARENT (or empty).
    Prepare {
        key: String,
        parent: Option<String>,
    },
    /// A read-only view of PARENT.
    View {
        key: String,
        parent: String,
    },
    /// Commits active snapshot KEY as NAME.
    Commit {
        name: String,
        key: String,
    },
    Mounts {
        key: String,
    },
    Usage {
        key: String,
    },
    #[command(visible_alias = "remove")]
    Rm {
        key: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum ContentCommand {
    #[command(visible_alias = "list")]
    Ls,
}

fn key_value(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?} is not KEY=VALUE"))?;
    Ok((k.to_string(), v.to_string()))
}

/// "TERM", "SIGTERM" or "15".
pub fn parse_signal(s: &str) -> Result<u32, String> {
    if let Ok(n) = s.parse() {
        return Ok(n);
    }
    let n = match s.trim_start_matches("SIG") {
        "HUP" => 1,
        "INT" => 2,
        "QUIT" => 3,
        "KILL" => 9,
        "USR1" => 10,
        "USR2" => 12,
        "TERM" => 15,
        "CONT" => 18,
        "STOP" => 19,
        "WINCH" => 28,
        _ => return Err(format!("unknown signal {s:?}")),
    };
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn commands_parse_as_before() {
        Cli::command().debug_assert();
        assert_eq!(parse_signal("SIGKILL"), Ok(9));
        assert_eq!(parse_signal("TERM"), Ok(15));
        assert_eq!(parse_signal("2"), Ok(2));
        assert!(parse_signal("NOPE").is_err());
        let cli = Cli::parse_from([
            "skiff",
            "run",
            "--rm",
            "-it",
            "--name",
            "x",
            "busybox",
            "sh",
            "-c",
            "echo --rm",
        ]);
        let Command::Run(r) = cli.command else {
            panic!()
        };
        assert!(r.rm && r.interactive && r.container.tty);
        assert_eq!(r.words, ["busybox", "sh", "-c", "echo --rm"]);
        let cli = Cli::parse_from([
            "skiff", "-n", "b", "c", "create", "--label", "a=b", "img", "id", "ls", "-l",
        ]);
        let Command::Container(ContainerCommand::Create(c)) = cli.command else {
            panic!()
        };
        assert_eq!((cli.namespace.as_str(), c.words.len()), ("b", 4));
        assert_eq!(c.container.label, [("a".to_string(), "b".to_string())]);
        assert!(
            Cli::try_parse_from(["skiff", "kill"]).is_err(),
            "kill needs an id"
        );
    }
}
