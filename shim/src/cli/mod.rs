//! The command line: what containerd runs a shim binary with. `start` launches (or finds)
//! the serving shim and prints its address, `delete` cleans up after a shim that is gone,
//! `-info` describes the runtime, and with no action the binary serves (what `start`
//! launches).

pub mod address;
pub mod bootstrap;
pub mod delete;
pub mod flags;
pub mod info;
pub mod serve;
pub mod start;

use crate::options::driver::Driver;
use flags::{Action, Flags};

/// A shim binary's `main`: parses the command line and runs the action with `driver`.
pub fn main(driver: &'static Driver) -> std::process::ExitCode {
    use std::process::ExitCode;
    if crate::sandbox::holder::invoked() {
        return crate::sandbox::holder::run();
    }
    let name = driver.binary;
    let flags = match Flags::parse(std::env::args().skip(1)) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{name}: {e}");
            return ExitCode::from(2);
        }
    };
    match run(&flags, driver) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the action; what it answers goes to stdout whole (containerd reads it at exit).
fn run(flags: &Flags, driver: &'static Driver) -> Result<(), String> {
    use std::io::Write;
    let answer = match flags.action {
        Action::Version => {
            format!("{} version {}\n", driver.binary, env!("CARGO_PKG_VERSION")).into_bytes()
        }
        Action::Info => info::run(driver)?,
        Action::Start => start::run(flags)?,
        Action::Delete => delete::run(flags, driver)?,
        Action::Serve => return serve::run(flags, driver),
    };
    let mut out = std::io::stdout().lock();
    out.write_all(&answer)
        .and_then(|()| out.flush())
        .map_err(|e| format!("writing the answer to stdout: {e}"))
}
