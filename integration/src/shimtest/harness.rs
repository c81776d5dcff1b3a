//! shimtest's parts for a test of its own: one shim binary launched as containerd
//! launches it, an events endpoint (served from the start, or only when the test says),
//! and a [`Ctx`] per test, which cleans up and checks that nothing is left.

use super::ctx::{Ctx, Target};
use super::events::{EventLog, EventServer};
use super::launch::{Manager, StartProtocol};
use skiff_test_support::bundle::TempDir;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub struct Harness {
    base: TempDir,
    log: Arc<EventLog>,
    server: std::sync::Mutex<Option<EventServer>>,
    manager: Manager,
    target: Target,
}

impl Harness {
    /// For `shim`, which keeps state under `state_root`, with events served.
    pub fn new(shim: &Path, state_root: &Path) -> Result<Harness, String> {
        let h = Harness::without_events(shim, state_root)?;
        h.serve_events()?;
        Ok(h)
    }

    /// The same, with the events endpoint down until [`Harness::serve_events`].
    pub fn without_events(shim: &Path, state_root: &Path) -> Result<Harness, String> {
        let base = TempDir::new("harness").map_err(|e| format!("temporary directory: {e}"))?;
        let manager = Manager {
            address: base.path().join("containerd.sock"),
            ttrpc_address: base
                .path()
                .join("containerd.sock.ttrpc")
                .display()
                .to_string(),
            publish_binary: PathBuf::from("/bin/false"),
            socket_dir: base.path().join("s"),
        };
        let target = Target {
            label: "under test".into(),
            path: std::fs::canonicalize(shim).map_err(|e| format!("{}: {e}", shim.display()))?,
            state_root: state_root.to_path_buf(),
            protocol: StartProtocol::Legacy,
            timings: Default::default(),
        };
        Ok(Harness {
            base,
            log: Arc::new(EventLog::default()),
            server: std::sync::Mutex::new(None),
            manager,
            target,
        })
    }

    /// Starts the shims as containerd 2.3 does: their sockets then go into the harness's
    /// own socket directory ([`Harness::socket_dir`]), not the machine's.
    pub fn bootstrap(mut self) -> Harness {
        self.target.protocol = StartProtocol::Bootstrap;
        self
    }

    /// Where the shims' sockets are under [`Harness::bootstrap`].
    pub fn socket_dir(&self) -> &Path {
        &self.manager.socket_dir
    }

    /// Starts serving the events endpoint the shims were told of.
    pub fn serve_events(&self) -> Result<(), String> {
        let path = PathBuf::from(&self.manager.ttrpc_address);
        *self.server.lock().unwrap() = Some(EventServer::start_with(&path, self.log.clone())?);
        Ok(())
    }

    pub fn events(&self) -> &EventLog {
        &self.log
    }

    /// A context for one test, in a namespace of its own.
    pub fn ctx(&self, name: &str) -> Result<Ctx<'_>, String> {
        let ns = format!("harness{}-{name}", std::process::id());
        Ctx::new(&self.target, &self.manager, &self.log, ns)
    }

    /// A directory for the test's own files, removed with the harness.
    pub fn dir(&self) -> &Path {
        self.base.path()
    }

    /// Runs `test` in a fresh context, for a `#[test]`: panics with its verdict (and the
    /// shim's log), then with whatever it left behind.
    pub fn run(&self, name: &str, test: impl FnOnce(&mut Ctx) -> super::ctx::Outcome) {
        let mut ctx = self.ctx(name).expect("context");
        let outcome = test(&mut ctx);
        let log = ctx.log_tail();
        let left = ctx.finish();
        if let Err(super::ctx::Verdict::Fail(why)) | Err(super::ctx::Verdict::Skip(why)) = outcome {
            panic!("{why}\nshim log:\n{log}");
        }
        if let Err(left) = left {
            panic!("{left}");
        }
    }
}
