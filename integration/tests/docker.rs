//! Docker through dockerd and containerd: `docker run --runtime skiff`, with daemon.json's
//! `"runtimes": {"skiff": {"runtimeType": "io.containerd.skiff.v2"}}`. dockerd (Debian
//! testing's docker.io, unpacked by scripts/docker-release.sh, not installed) runs as
//! root with a temporary data root and exec root, no iptables and no bridge, against a
//! private containerd of the tests (`--containerd SOCK`). The busybox image is built
//! here and loaded with `docker load`.

use skiff_integration::bundle::TempDir;
use skiff_integration::containerd::{
    default_state_root, shim_binary, shim_file_name, shim_runtime_type, stderr, stdout,
    workspace_dir, CgroupCleanup, Containerd, Options,
};
use skiff_integration::proc;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Where scripts/docker-release.sh unpacks Docker (`$SKIFF_DOCKER_DIR` overrides).
fn docker_root() -> PathBuf {
    std::env::var_os("SKIFF_DOCKER_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/docker-release/current"))
}

struct Docker {
    // Dropped in this order: dockerd first, then its containerd, then the files.
    child: Child,
    containerd: Containerd,
    dir: TempDir,
    socket: PathBuf,
    _cgroups: CgroupCleanup,
}

impl Docker {
    /// Starts dockerd, or says why it cannot run here.
    fn start() -> Result<Docker, String> {
        let root = docker_root();
        let dockerd = root.join("usr/sbin/dockerd");
        if !dockerd.exists() {
            return Err(format!(
                "{} is missing: run scripts/docker-release.sh",
                dockerd.display()
            ));
        }
        let containerd = Containerd::start_with(Options {
            // containerd finds io.containerd.NAME.v2 as containerd-shim-NAME-v2 here.
            path_prefix: Some(shim_binary().parent().unwrap().to_path_buf()),
            ..Default::default()
        });
        let dir = TempDir::new("skiff-docker").map_err(|e| e.to_string())?;
        let socket = dir.path().join("docker.sock");
        let cgroup_parent = format!("/skiff-docker-{}", std::process::id());
        // Runtime options reach a shim-v2 runtime other than runc's as a ConfigPath.
        let options = dir.path().join("skiff-runtime.toml");
        fs::write(
            &options,
            format!("Root = \"{}\"\n", dir.path().join("runc").display()),
        )
        .map_err(|e| e.to_string())?;
        fs::write(
            dir.path().join("daemon.json"),
            format!(
                r#"{{"runtimes": {{"skiff": {{"runtimeType": "{}", "options": {{"ConfigPath": "{}"}}}}}}}}"#,
                shim_runtime_type(),
                options.display()
            ),
        )
        .map_err(|e| e.to_string())?;
        let log = fs::File::create(dir.path().join("dockerd.log")).map_err(|e| e.to_string())?;
        let path = format!(
            "{}:{}:{}",
            root.join("usr/bin").display(),
            root.join("usr/sbin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let ns = format!("{}-docker", containerd.namespace);
        let child = Command::new(&dockerd)
            .env("PATH", path)
            .arg("--host")
            .arg(format!("unix://{}", socket.display()))
            .arg("--data-root")
            .arg(dir.path().join("data"))
            .arg("--exec-root")
            .arg(dir.path().join("exec"))
            .arg("--pidfile")
            .arg(dir.path().join("dockerd.pid"))
            .arg("--config-file")
            .arg(dir.path().join("daemon.json"))
            .arg("--containerd")
            .arg(&containerd.socket)
            .args(["--containerd-namespace", &ns])
            .args(["--containerd-plugins-namespace", &format!("{ns}-plugins")])
            .args(["--cgroup-parent", &cgroup_parent])
            .args([
                "--iptables=false",
                "--ip6tables=false",
                "--ip-forward=false",
                "--ip-masq=false",
                "--bridge=none",
                "--userland-proxy=false",
                "--log-level=debug",
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("starting {}: {e}", dockerd.display()))?;
        let mut docker = Docker {
            child,
            containerd,
            dir,
            socket,
            _cgroups: CgroupCleanup(cgroup_parent),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = docker.child.try_wait() {
                return Err(format!(
                    "dockerd exited ({status}):\n{}",
                    tail(&docker.log(), 15)
                ));
            }
            if docker.socket.exists() && docker.run(&["version"]).status.success() {
                return Ok(docker);
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "dockerd did not answer within 30 s:\n{}",
                    tail(&docker.log(), 15)
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("dockerd.log")).unwrap_or_default()
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(docker_root().join("usr/bin/docker"))
            .env("DOCKER_CONFIG", self.dir.path().join("cli"))
            .arg("--host")
            .arg(format!("unix://{}", self.socket.display()))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("running docker")
    }

    /// `docker ARGS` with `input` on its stdin, at most `limit` long.
    fn run_with_input(&self, args: &[&str], input: &[u8], limit: Duration) -> Output {
        let mut child = Command::new(docker_root().join("usr/bin/docker"))
            .env("DOCKER_CONFIG", self.dir.path().join("cli"))
            .arg("--host")
            .arg(format!("unix://{}", self.socket.display()))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("running docker");
        let mut stdin = child.stdin.take().unwrap();
        let input = input.to_vec();
        let writer = std::thread::spawn(move || {
            let _ = std::io::Write::write_all(&mut stdin, &input);
        });
        let pid = child.id();
        let waiter = std::thread::spawn(move || child.wait_with_output().expect("docker's output"));
        let deadline = Instant::now() + limit;
        while !waiter.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        if !waiter.is_finished() {
            // SAFETY: kill(2) of the docker client this test started and still waits for.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
        writer.join().unwrap();
        waiter.join().unwrap()
    }

    /// The container's state as `docker inspect` reports it (running, paused, exited...).
    fn status(&self, name: &str) -> String {
        self.ok(&["inspect", "-f", "{{.State.Status}}", name])
            .trim()
            .to_string()
    }

    /// `docker ARGS`, which must succeed; returns its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "docker {args:?}: {}\n{}",
            stderr(&out),
            tail(&self.log(), 20)
        );
        stdout(&out)
    }
}

impl Drop for Docker {
    fn drop(&mut self) {
        let _ = self.run(&["rm", "-f", "web"]);
        proc::terminate(&mut self.child, Duration::from_secs(15));
        // Layer and network-namespace mounts dockerd left under its roots.
        for m in proc::mounts_under(self.dir.path()).into_iter().rev() {
            proc::detach_mount(&m);
        }
        // dockerd's containerd namespace, should a runtime have made its state directory
        // in the default place (rmdir: only if empty).
        let ns = format!("{}-docker", self.containerd.namespace);
        let _ = fs::remove_dir(default_state_root().join(&ns));
        let _ = fs::remove_dir(Path::new("/run/containerd/runc").join(&ns));
    }
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The busybox image in `docker save` form, built once.
fn busybox_docker_archive(dir: &Path) -> PathBuf {
    let out = dir.join("busybox-docker.tar");
    let status = Command::new("bash")
        .arg(workspace_dir().join("integration/images/build-busybox-image.sh"))
        .arg("--docker")
        .arg(&out)
        .stdout(Stdio::null())
        .status()
        .expect("running build-busybox-image.sh");
    assert!(status.success(), "building the busybox archive failed");
    out
}

#[test]
fn docker_runs_containers_with_the_skiff_runtime() {
    let docker = match Docker::start() {
        Ok(d) => d,
        Err(why) => {
            skiff_integration::skip("docker_runs_containers_with_the_skiff_runtime", &why);
            return;
        }
    };
    let archive = busybox_docker_archive(docker.dir.path());
    let loaded = docker.ok(&["load", "-i", &archive.to_string_lossy()]);
    assert!(loaded.contains("busybox"), "docker load: {loaded}");

    let run = ["run", "--rm", "--runtime", "skiff", "--network", "none"];
    let hi = docker.ok(&[&run[..], &["busybox", "echo", "hi"]].concat());
    assert_eq!(hi, "hi\n");
    // docker run -i: input through the container and back; the input ends (Docker
    // closes its FIFO writer, then CloseIO) and so does cat.
    let input: Vec<u8> = (0..256 * 1024u32).map(|i| (i % 251) as u8).collect();
    let interactive = [&run[..], &["-i", "busybox", "cat"]].concat();
    for data in [&b"hi\n"[..], &input[..]] {
        let out = docker.run_with_input(&interactive, data, Duration::from_secs(30));
        assert_eq!(
            out.status.code(),
            Some(0),
            "docker run -i: {}",
            stderr(&out)
        );
        assert!(
            out.stdout == data,
            "docker run -i cat gave back {} bytes of {}",
            out.stdout.len(),
            data.len()
        );
    }
    let out = docker.run(&[&run[..], &["busybox", "sh", "-c", "echo oops >&2; exit 3"]].concat());
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(stderr(&out), "oops\n", "the container's stderr");

    let id = docker.ok(&[
        "run",
        "-d",
        "--runtime",
        "skiff",
        "--network",
        "none",
        "--name",
        "web",
        "busybox",
        "sh",
        "-c",
        "echo started; exec sleep 3000",
    ]);
    assert_eq!(id.trim().len(), 64, "docker run -d prints the id: {id}");
    assert_eq!(
        docker
            .ok(&["inspect", "-f", "{{.HostConfig.Runtime}}", "web"])
            .trim(),
        "skiff"
    );

    // The container's process is a child of a skiff shim.
    let pid: u32 = docker
        .ok(&["inspect", "-f", "{{.State.Pid}}", "web"])
        .trim()
        .parse()
        .expect("a pid");
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let ppid: u32 = status
        .lines()
        .find_map(|l| l.strip_prefix("PPid:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("PPid");
    let parent = fs::read_link(format!("/proc/{ppid}/exe")).unwrap();
    assert!(
        parent.to_string_lossy().ends_with(&shim_file_name()),
        "the container's parent is {}",
        parent.display()
    );
    assert_eq!(docker.containerd.shim_pids(), vec![ppid]);
    // The options file's Root holds runc's state of the container.
    let state = docker
        .dir
        .path()
        .join("runc")
        .join(format!("{}-docker", docker.containerd.namespace))
        .join(id.trim())
        .join("state.json");
    assert!(state.exists(), "{} is missing", state.display());

    // logs, exec, stats.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !docker.ok(&["logs", "web"]).contains("started") {
        assert!(
            Instant::now() < deadline,
            "docker logs never showed the output"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = docker.run(&["exec", "web", "sh", "-c", "echo inside; exit 4"]);
    assert_eq!(stdout(&out), "inside\n");
    assert_eq!(out.status.code(), Some(4));
    let mem = docker.ok(&["stats", "--no-stream", "--format", "{{.MemUsage}}", "web"]);
    let used = mem.split('/').next().unwrap_or_default().trim();
    assert!(
        !used.is_empty() && !used.starts_with("0B"),
        "docker stats memory: {mem:?}"
    );

    // pause and unpause.
    docker.ok(&["pause", "web"]);
    assert_eq!(docker.status("web"), "paused");
    docker.ok(&["unpause", "web"]);
    assert_eq!(docker.status("web"), "running");

    // stop: sleep as pid 1 ignores SIGTERM, so the SIGKILL after 1 s ends it.
    docker.ok(&["stop", "-t", "1", "web"]);
    assert_eq!(docker.status("web"), "exited");
    assert_eq!(
        docker
            .ok(&["inspect", "-f", "{{.State.ExitCode}}", "web"])
            .trim(),
        "137"
    );
    docker.ok(&["rm", "web"]);
    let out = docker.run(&["inspect", "web"]);
    assert!(!out.status.success(), "the container is gone");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !docker.containerd.shim_pids().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(docker.containerd.shim_pids().is_empty(), "no shim is left");
}
