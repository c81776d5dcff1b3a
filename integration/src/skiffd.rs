//! A private skiffd per test: temporary root, state and socket, started and killed by
//! its pid; `skiff` pointed at it.

use skiff_test_support::bundle::TempDir;
use std::collections::HashSet;
use std::fs;
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
    /// Environment of the next start (e.g. SKIFFD_CRASH_AT), cleared by `restart`.
    env: Vec<(String, String)>,
    /// The API socket when not the usual one in the state directory.
    address: Option<PathBuf>,
}

impl Skiffd {
    pub fn start() -> Skiffd {
        Skiffd::start_with(&[])
    }

    pub fn start_with(extra: &[&str]) -> Skiffd {
        Skiffd::start_env(extra, &[])
    }

    pub fn start_env(extra: &[&str], env: &[(&str, &str)]) -> Skiffd {
        Skiffd::start_full(extra, env, None)
    }

    /// With its API socket at `address` (e.g. in a directory anyone can write).
    pub fn start_at(address: &Path, extra: &[&str]) -> Skiffd {
        Skiffd::start_full(extra, &[], Some(address.to_path_buf()))
    }

    fn start_full(extra: &[&str], env: &[(&str, &str)], address: Option<PathBuf>) -> Skiffd {
        let mut d = Skiffd {
            address,
            dir: TempDir::new("skiffd").expect("temp dir"),
            child: None,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        d.spawn();
        d
    }

    /// Peak resident memory of the running skiffd (VmHWM), in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        let status = fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    /// Whether skiffd is still running (not crashed).
    pub fn running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
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
        self.address
            .clone()
            .unwrap_or_else(|| self.dir.path().join("state/skiffd.sock"))
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
            .envs(self.env.iter().map(|(k, v)| (k, v)))
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
        self.env.clear();
        self.spawn();
    }

    /// Waits for a skiffd that is to crash by itself (SKIFFD_CRASH_AT), then starts it
    /// again without the crash.
    pub fn restart_after_crash(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = crate::containerd::wait_with_timeout(&mut c, Duration::from_secs(30));
        }
        self.env.clear();
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

/// The stdout of a skiff command that must succeed (else its status and output).
pub fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "skiff failed ({:?}): {}{}",
        o.status.code(),
        crate::containerd::stdout(o),
        crate::containerd::stderr(o)
    );
    crate::containerd::stdout(o)
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

/// Rows of a table, read from skiffd's database.
pub fn rows(d: &Skiffd, sql: &str) -> Vec<String> {
    let conn = rusqlite::Connection::open(d.root().join("meta.db")).unwrap();
    let mut stmt = conn.prepare(sql).unwrap();
    let out = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    out
}

pub fn files(dir: &Path) -> HashSet<String> {
    fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Rows against files, both ways: every blob and snapshot row has its file or
/// directory, and every file or directory has its row; nothing half-made remains.
pub fn assert_consistent(d: &Skiffd) {
    let blob_rows: HashSet<String> = rows(d, "SELECT digest FROM content")
        .into_iter()
        .map(|x| x.trim_start_matches("sha256:").to_string())
        .collect();
    let blob_files = files(&d.root().join("content/blobs/sha256"));
    assert_eq!(blob_rows, blob_files, "content rows and blob files differ");
    for hex in &blob_files {
        let size: i64 = rusqlite::Connection::open(d.root().join("meta.db"))
            .unwrap()
            .query_row(
                "SELECT size FROM content WHERE digest = ?1",
                [format!("sha256:{hex}")],
                |r| r.get(0),
            )
            .unwrap();
        let on_disk = fs::metadata(d.root().join("content/blobs/sha256").join(hex))
            .unwrap()
            .len();
        assert_eq!(
            size as u64, on_disk,
            "blob {hex}: row says {size} bytes, file has {on_disk}"
        );
    }
    let dir_rows: HashSet<String> = rows(d, "SELECT dir FROM snapshots").into_iter().collect();
    assert_eq!(
        dir_rows,
        files(&d.root().join("snapshots")),
        "snapshot rows and directories differ"
    );
    assert!(
        rows(d, "SELECT key FROM snapshots WHERE key LIKE 'extract-%'").is_empty(),
        "an unfinished unpack survived"
    );
    assert!(
        files(&d.root().join("content/ingest")).is_empty(),
        "partial ingest files survived"
    );
    assert!(
        crate::proc::mounts_under(&d.root()).is_empty(),
        "mounts left under the root"
    );
    for target in rows(d, "SELECT target_digest FROM images") {
        assert!(
            blob_files.contains(target.trim_start_matches("sha256:")),
            "an image's manifest is missing"
        );
    }
}

pub fn assert_empty(d: &Skiffd, what: &str) {
    assert!(
        rows(d, "SELECT digest FROM content").is_empty(),
        "{what}: content rows left"
    );
    assert!(
        rows(d, "SELECT key FROM snapshots").is_empty(),
        "{what}: snapshot rows left"
    );
    assert!(
        rows(d, "SELECT name FROM images").is_empty(),
        "{what}: image rows left"
    );
    assert!(
        files(&d.root().join("content/blobs/sha256")).is_empty(),
        "{what}: blobs left"
    );
    assert!(
        files(&d.root().join("snapshots")).is_empty(),
        "{what}: snapshot directories left"
    );
    assert_consistent(d);
}
