//! containerd-shim-skiff-v2: a containerd shim-v2 runtime (`io.containerd.skiff.v2`).

mod address;
mod cli;
mod container;
mod delete;
mod error;
mod events;
mod logging;
mod mount;
mod oom;
mod options;
mod process;
mod reaper;
mod rpc;
mod serve;
mod service;
mod shim_cgroup;
mod start;
mod stdio;
mod validate;

use cli::{Action, Flags};
use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    let flags = match Flags::parse(std::env::args().skip(1)) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("containerd-shim-skiff-v2: {e}");
            return ExitCode::from(2);
        }
    };
    let result = match flags.action {
        Action::Version => {
            println!(
                "containerd-shim-skiff-v2 version {}",
                env!("CARGO_PKG_VERSION")
            );
            Ok(())
        }
        Action::Start => start::run(&flags).map(|addr| {
            print!("{addr}");
            let _ = std::io::stdout().flush();
        }),
        Action::Delete => delete::run(&flags).map(|bytes| {
            let _ = std::io::stdout().write_all(&bytes);
            let _ = std::io::stdout().flush();
        }),
        Action::Serve => serve::run(&flags),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("containerd-shim-skiff-v2: {e}");
            ExitCode::FAILURE
        }
    }
}
