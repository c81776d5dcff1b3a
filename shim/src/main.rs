//! containerd-shim-skiff-v2: a containerd shim-v2 runtime (`io.containerd.skiff.v2`).

use skiff_shim::cli::{Action, Flags};
use skiff_shim::{delete, serve, start};
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
