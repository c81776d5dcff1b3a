//! `skiff`: the command line of skiffd, with ctr's habits for images, containers and
//! snapshots (`skiff image import`, `skiff container ls`) and docker's for running
//! (`skiff run`, `skiff ps`). Parsed by clap, which also writes `--help` and the shell
//! completions (`skiff completion bash`). Errors are one line on stderr and exit 1.

mod args;
mod conn;
mod containers;
mod images;
mod progress;
mod pull;
mod run;
mod snapshots;
mod task_commands;

use args::{Cli, Command};
use clap::{CommandFactory, Parser};
use conn::Conn;

pub fn main() -> i32 {
    let cli = Cli::parse();
    match run_command(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("skiff: {e}");
            1
        }
    }
}

fn run_command(cli: Cli) -> Result<i32, String> {
    let done = |r: Result<(), String>| r.map(|_| 0);
    if let Command::Completion { shell } = cli.command {
        // Into memory first: clap_complete panics on a write error (a closed pipe).
        let mut script = Vec::new();
        clap_complete::generate(shell, &mut Cli::command(), "skiff", &mut script);
        use std::io::Write;
        let _ = std::io::stdout().write_all(&script);
        return Ok(0);
    }
    let c = Conn::open(&cli.address, &cli.namespace)?;
    match cli.command {
        Command::Image(cmd) => done(images::image(&c, cmd)),
        Command::Container(cmd) => done(containers::container(&c, cmd)),
        Command::Snapshot(cmd) => done(snapshots::snapshot(&c, cmd)),
        Command::Content(cmd) => done(snapshots::content(&c, cmd)),
        Command::Run(a) => run::run(&c, a),
        Command::Exec(a) => run::exec(&c, a),
        Command::Ps => task_commands::ps(&c),
        Command::Kill { signal, all, ids } => task_commands::kill(&c, signal, all, &ids),
        Command::Stop { time, ids } => task_commands::stop(&c, time, &ids),
        Command::Rm { force, ids } => task_commands::rm(&c, force, &ids),
        Command::Logs { id } => task_commands::logs(&c, &id),
        Command::Stats { ids } => task_commands::stats(&c, &ids),
        Command::Events => task_commands::events(&c),
        Command::Pause { ids } => task_commands::pause(&c, &ids, false),
        Command::Resume { ids } => task_commands::pause(&c, &ids, true),
        Command::Completion { .. } => Ok(0),
    }
}
