//! A private skiffd per test: temporary root, state and socket, started and killed by
//! its pid; `skiff` pointed at it.

use crate::bundle::TempDir;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A binary cargo built beside the test (target/<profile>/NAME).
pub fn built_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary in target/<profile>/deps");
    let bin = dir.join(name);
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build --workspace` first (make test does)",
        bin.display()
    );
    bin
}

pub struct Skiffd {
    pub dir: TempDir,
    child: Option<Child>,
    extra: Vec<String>,
}

impl Skiffd {
    pub fn start() -> Skiffd {
        Skiffd::start_with(&[])
    }

    pub fn start_with(extra: &[&str]) -> Skiffd {
        let mut d = Skiffd {
            dir: TempDir::new("skiffd").expect("temp dir"),
            child: None,
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        d.spawn();
        d
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// Unique per fixture, so tests in parallel never share a cgroup, and removed after.
    pub fn cgroup_parent(&self) -> String {
        format!(
            "/{}",
            self.dir.path().file_name().unwrap().to_string_lossy()
        )
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("state/skiffd.sock")
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("skiffd.log"))
            .expect("log file");
        let child = Command::new(built_binary("skiffd"))
            .arg("--root")
            .arg(self.root())
            .arg("--state")
            .arg(self.dir.path().join("state"))
            .arg("--address")
            .arg(self.socket())
            .args(["--log-level", "debug"])
            .arg("--cgroup-parent")
            .arg(self.cgroup_parent())
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("starting skiffd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if std::os::unix::net::UnixStream::connect(self.socket()).is_ok() {
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("skiffd exited with {status}:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("skiffd did not come up:\n{}", self.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("skiffd.log")).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    /// SIGKILL, as a crash.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM; returns the exit status.
    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        let mut c = self.child.take()?;
        // SAFETY: kill(2) of the skiffd this fixture started.
        unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
        crate::containerd::wait_with_timeout(&mut c, Duration::from_secs(10)).ok()
    }

    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    pub fn skiff_command(&self) -> Command {
        let mut cmd = Command::new(built_binary("skiff"));
        cmd.arg("--address").arg(self.socket());
        cmd
    }

    pub fn skiff(&self, args: &[&str]) -> Output {
        self.skiff_command()
            .args(args)
            .output()
            .expect("running skiff")
    }
}

impl Drop for Skiffd {
    fn drop(&mut self) {
        // Containers a failed test left: removed through skiffd while it runs, then any
        // shim still serving this skiffd is ended by its pid.
        if self.child.is_some() {
            let ps = self.skiff(&["ps"]);
            let ids: Vec<String> = String::from_utf8_lossy(&ps.stdout)
                .lines()
                .skip(1)
                .filter_map(|l| l.split_whitespace().next().map(str::to_string))
                .collect();
            for id in ids {
                let _ = self.skiff(&["rm", "-f", &id]);
            }
        }
        // Shims told to shut down may still be delivering their last events.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !self.shim_pids().is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill();
        for pid in self.shim_pids() {
            // SAFETY: kill(2) of a shim this skiffd started.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
        for m in crate::proc::mounts_under(self.dir.path()).into_iter().rev() {
            crate::proc::detach_mount(&m);
        }
        crate::containerd::remove_cgroup_tree(&self.cgroup_parent());
    }
}

impl Skiffd {
    /// Pids of the shims serving this skiffd (their `-address` is its socket), for
    /// container `id` or all.
    pub fn shim_pids_of(&self, id: Option<&str>) -> Vec<u32> {
        let address = self.socket().display().to_string();
        let mut out = Vec::new();
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
                continue;
            };
            let args: Vec<String> = cmdline
                .split(|b| *b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            let has =
                |flag: &str, value: &str| args.windows(2).any(|w| w[0] == flag && w[1] == value);
            if has("-address", &address)
                && id.map(|i| has("-id", i)).unwrap_or(true)
                && crate::proc::alive(pid)
            {
                out.push(pid);
            }
        }
        out
    }

    pub fn shim_pids(&self) -> Vec<u32> {
        self.shim_pids_of(None)
    }
}

/// Builds an image archive from layer directories with `integration/images/build-image.sh`.
pub fn build_image(out: &Path, name: &str, docker: bool, layers: &[&Path]) {
    let script = crate::containerd::workspace_dir().join("integration/images/build-image.sh");
    let mut cmd = Command::new("bash");
    cmd.arg(script);
    if docker {
        cmd.arg("--docker");
    }
    cmd.args(["--name", name]).arg(out).args(layers);
    let o = cmd.output().expect("build-image.sh");
    assert!(
        o.status.success(),
        "build-image.sh: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}
