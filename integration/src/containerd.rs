//! A private containerd for one test: its own root, state, sockets and namespace, CRI
//! off, the busybox image imported. Dropping it stops that containerd and removes
//! whatever a failed test left: shims it started, runc containers, mounts, cgroups.

use crate::proc;
use skiff_test_support::bundle::TempDir;
pub use skiff_test_support::cgroup::{
    cgroup_bases, kill_cgroup_tree, remove_cgroup_tree, CgroupCleanup,
};
use std::fs;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

pub const BUSYBOX_IMAGE: &str = "docker.io/library/busybox:latest";

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// The workspace's root directory.
pub fn workspace_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("integration/ has a parent")
        .to_path_buf()
}

/// Our shim binary: `$SKIFF_SHIM`, or the one cargo built beside this test.
pub fn shim_binary() -> PathBuf {
    if let Ok(p) = std::env::var("SKIFF_SHIM") {
        return PathBuf::from(p);
    }
    // Tests run from target/<profile>/deps/.
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary in target/<profile>/deps");
    let shim = profile_dir.join("containerd-shim-skiff-v2");
    assert!(
        shim.exists(),
        "{} is missing: run `cargo build --workspace` first (make test does)",
        shim.display()
    );
    shim
}

/// The runtime name containerd resolves to the shim under test by its file name:
/// `containerd-shim-NAME-v2` is `io.containerd.NAME.v2`.
pub fn shim_runtime_type() -> String {
    let file = shim_file_name();
    let name = file
        .strip_prefix("containerd-shim-")
        .and_then(|n| n.strip_suffix("-v2"))
        .unwrap_or("skiff");
    format!("io.containerd.{name}.v2")
}

/// Where the shim under test keeps its containers' state when no `Root` option is given:
/// runc's root, or the libcontainer shim's own.
pub fn default_state_root() -> &'static Path {
    if shim_uses_libcontainer() {
        Path::new("/run/containerd/youki")
    } else {
        Path::new("/run/containerd/runc")
    }
}

/// The file name of the shim under test.
pub fn shim_file_name() -> String {
    shim_binary()
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Whether the shim under test is the libcontainer one (`containerd-shim-skiff-youki-v2`),
/// whose runtime messages are libcontainer's words, not runc's.
pub fn shim_uses_libcontainer() -> bool {
    shim_file_name().contains("youki")
}

/// What the libcontainer shim must answer a `ctr run --runc-binary ...` of container
/// `id`: no runtime binary runs there, so the option is refused, saying so, and the
/// container record (all ctr leaves) can be removed.
pub fn assert_binary_name_refused(cd: &Containerd, out: &std::process::Output, id: &str) {
    assert!(!out.status.success(), "BinaryName was accepted");
    assert!(
        stderr(out).contains("libcontainer does not support create: BinaryName"),
        "{}",
        stderr(out)
    );
    let _ = cd.ctr(&["container", "delete", id]);
}

/// Where containerd and ctr come from: `$SKIFF_CONTAINERD_BIN` (a directory), else PATH.
fn containerd_bin(name: &str) -> PathBuf {
    match std::env::var("SKIFF_CONTAINERD_BIN") {
        Ok(dir) if !dir.is_empty() => Path::new(&dir).join(name),
        _ => PathBuf::from(name),
    }
}

/// The version of the containerd the tests use, as it prints it without a leading `v`
/// ("1.6.20~ds1", "2.3.4").
pub fn version_string() -> String {
    Command::new(containerd_bin("containerd"))
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .nth(2)
                .map(|v| v.trim_start_matches('v').to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// containerd's (major, minor) version.
pub fn version() -> (u32, u32) {
    let version = version_string();
    let mut parts = version.split(|c: char| !c.is_ascii_digit());
    let major = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let minor = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    (major, minor)
}

/// The busybox OCI archive, built once per test process.
pub fn busybox_archive() -> &'static Path {
    static ARCHIVE: OnceLock<PathBuf> = OnceLock::new();
    ARCHIVE.get_or_init(|| match std::env::var_os("SKIFF_BUSYBOX_ARCHIVE") {
        // Built once beforehand: the cgroup v2 VM stage does, as the script takes half a
        // minute per test process in the emulated VM.
        Some(prebuilt) => PathBuf::from(prebuilt),
        None => build_archive("build-busybox-image.sh", "busybox-oci.tar", &[]),
    })
}

/// The name `pause_archive` gives the pause image.
pub const PAUSE_IMAGE: &str = "registry.k8s.io/pause:3.9";

/// A pause image (a static /pause built with gcc), built once per test process.
pub fn pause_archive() -> &'static Path {
    static ARCHIVE: OnceLock<PathBuf> = OnceLock::new();
    ARCHIVE.get_or_init(|| match std::env::var_os("SKIFF_PAUSE_ARCHIVE") {
        // Built once beforehand, as the busybox archive (the VM stage's CRI jobs).
        Some(prebuilt) => PathBuf::from(prebuilt),
        None => build_archive("build-pause-image.sh", "pause-oci.tar", &[PAUSE_IMAGE]),
    })
}

/// Runs an image script of integration/images/ into target/NAME: into a temporary name,
/// then renamed, so test binaries running side by side never read a half-written one.
fn build_archive(script: &str, name: &str, extra: &[&str]) -> PathBuf {
    let dir = workspace_dir().join("target");
    fs::create_dir_all(&dir).expect("target dir");
    let out = dir.join(name);
    let tmp = dir.join(format!("{name}.{}", std::process::id()));
    let status = Command::new("bash")
        .arg(workspace_dir().join("integration/images").join(script))
        .arg(&tmp)
        .args(extra)
        .stdout(Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("running {script}: {e}"));
    assert!(status.success(), "{script} failed");
    fs::rename(&tmp, &out).unwrap_or_else(|e| panic!("renaming {}: {e}", tmp.display()));
    out
}

/// How to start a test's containerd.
#[derive(Debug, Default, Clone)]
pub struct Options {
    /// Put this directory first on containerd's PATH (where it looks up shims by name).
    pub path_prefix: Option<PathBuf>,
    /// Enable the CRI plugin, with runtime handler `skiff` (the shim under test's runtime type),
    /// this pause image as the sandbox image, and no CNI (host network pods only).
    /// The namespace is then CRI's own, `k8s.io`.
    pub cri_sandbox_image: Option<String>,
    /// A CNI network list for the CRI's pod networks (plugins from /usr/lib/cni):
    /// without one, only pods on the node's network can run.
    pub cni_conflist: Option<String>,
    /// The Go shim the CRI's `runc` handler runs (`runtime_path`); else containerd finds
    /// `containerd-shim-runc-v2` on its PATH.
    pub runc_runtime_path: Option<PathBuf>,
}

pub struct Containerd {
    dir: TempDir,
    pub socket: PathBuf,
    pub namespace: String,
    child: Child,
    opts: Options,
}

impl Containerd {
    /// Starts containerd and imports the busybox image.
    pub fn start() -> Containerd {
        Containerd::start_with(Options::default())
    }

    pub fn start_with(opts: Options) -> Containerd {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = TempDir::new(&format!("skiff-ctd{n}")).expect("temp dir");
        let root = dir.path();
        // Searchable by all, as containerd makes its own root and state (0711): a
        // container whose root is another host uid (a user-namespaced pod) reaches its
        // bundle's rootfs through them.
        fs::set_permissions(root, std::os::unix::fs::PermissionsExt::from_mode(0o711))
            .expect("chmod of the temp dir");
        let socket = root.join("containerd.sock");
        // containerd 2.x reads configuration version 3, and its CRI is three plugins.
        let v3 = version().0 >= 2;
        let base = format!(
            r#"version = {version}
root = "{root}/root"
state = "{root}/state"
[grpc]
  address = "{sock}"
[ttrpc]
  address = "{sock}.ttrpc"
[debug]
  address = "{root}/debug.sock"
  level = "debug"
[metrics]
  address = ""
# NRI's socket is one path for the whole machine (/var/run/nri/nri.sock): 2.x's CRI
# starts it, and two test containerds (or the system's) would fight over it.
[plugins."io.containerd.nri.v1.nri"]
  disable = true
  socket_path = "{root}/nri.sock"
"#,
            version = if v3 { 3 } else { 2 },
            root = root.display(),
            sock = socket.display()
        );
        let config = match &opts.cri_sandbox_image {
            Some(image) => format!("{base}{}", cri_config(root, image, v3, &opts)),
            // containerd 2.x reads configuration version 3, and its CRI is three plugins.
            None if v3 => format!(
                "disabled_plugins = [\"io.containerd.grpc.v1.cri\", \"io.containerd.cri.v1.runtime\", \"io.containerd.cri.v1.images\"]\n{base}"
            ),
            None => format!("disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n{base}"),
        };
        fs::write(root.join("config.toml"), config).expect("config");
        let child = spawn_containerd(root, &opts);
        let namespace = if opts.cri_sandbox_image.is_some() {
            "k8s.io".to_string()
        } else {
            format!("skiff-t{}-{n}", std::process::id())
        };
        let cd = Containerd {
            socket,
            namespace,
            child,
            dir,
            opts,
        };
        cd.wait_ready();
        let out = cd.ctr(&["images", "import", &busybox_archive().to_string_lossy()]);
        assert!(out.status.success(), "ctr images import: {}", stderr(&out));
        if cd.opts.cri_sandbox_image.is_some() {
            let out = cd.ctr(&["images", "import", &pause_archive().to_string_lossy()]);
            assert!(
                out.status.success(),
                "ctr images import (pause): {}",
                stderr(&out)
            );
        }
        cd
    }

    /// Kills containerd with SIGKILL, as a crash would, leaving its shims running.
    pub fn crash(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts containerd again on the same root, state and socket.
    pub fn restart(&mut self) {
        self.child = spawn_containerd(self.dir.path(), &self.opts);
        self.wait_ready();
    }

    /// Starts containerd again and follows its events from the first moment it accepts
    /// connections, so events shims deliver right after the restart are seen.
    pub fn restart_with_events(&mut self) -> EventStream {
        self.child = spawn_containerd(self.dir.path(), &self.opts);
        let events = self.events();
        self.wait_ready();
        events
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.socket.exists() && self.ctr(&["version"]).status.success() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("containerd did not come up; its log:\n{}", self.log());
    }

    /// containerd's (major, minor) version, from `containerd --version`.
    pub fn version(&self) -> (u32, u32) {
        version()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The containerd process's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir().join("containerd.log")).unwrap_or_default()
    }

    /// The bundle directory containerd makes for a task.
    pub fn bundle(&self, id: &str) -> PathBuf {
        self.dir()
            .join("state/io.containerd.runtime.v2.task")
            .join(&self.namespace)
            .join(id)
    }

    /// `ctr --address SOCK --namespace NS`, ready for more arguments.
    pub fn ctr_command(&self) -> Command {
        let mut cmd = Command::new(containerd_bin("ctr"));
        cmd.arg("--address")
            .arg(&self.socket)
            .arg("--namespace")
            .arg(&self.namespace);
        cmd
    }

    pub fn ctr(&self, args: &[&str]) -> Output {
        self.ctr_command()
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("running ctr")
    }

    /// Follows `ctr events` until dropped. While containerd is still starting, `ctr events`
    /// exits at once; it is started again until it stays connected.
    pub fn events(&self) -> EventStream {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut child = loop {
            let mut child = self
                .ctr_command()
                .arg("events")
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("ctr events");
            std::thread::sleep(Duration::from_millis(100));
            match child.try_wait() {
                Ok(None) => break child,
                _ if Instant::now() < deadline => continue,
                _ => panic!("ctr events could not connect to containerd"),
            }
        };
        let lines = Arc::new(Mutex::new(Vec::new()));
        let out = child.stdout.take().expect("piped");
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        // ctr events subscribes asynchronously; give it a moment to be listening.
        std::thread::sleep(Duration::from_millis(200));
        EventStream { child, lines }
    }

    /// Pids of the shim processes (ours, or a Go shim under test) serving this containerd:
    /// a `containerd-shim*` program whose command line names this containerd's socket,
    /// and whose parent is no such program (the libcontainer shim's forked helpers, and
    /// a container's init before it execs, are copies of the shim with its command line).
    pub fn shim_pids(&self) -> Vec<u32> {
        let candidates = self.shim_like_pids();
        candidates
            .iter()
            .copied()
            .filter(|pid| proc::parent(*pid).is_none_or(|parent| !candidates.contains(&parent)))
            .collect()
    }

    fn shim_like_pids(&self) -> Vec<u32> {
        let socket = self.socket.to_string_lossy().into_owned();
        let mut pids = Vec::new();
        for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            let Ok(cmdline) = fs::read(format!("/proc/{pid}/cmdline")) else {
                continue;
            };
            let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
            let argv0 = String::from_utf8_lossy(args.first().copied().unwrap_or_default());
            let name = argv0.rsplit('/').next().unwrap_or_default();
            if name.starts_with("containerd-shim")
                && args.contains(&socket.as_bytes())
                && proc::alive(pid)
            {
                pids.push(pid);
            }
        }
        pids.sort_unstable();
        pids
    }

    /// The socket a containerd-style shim serving `id` listens on (sha256 of containerd's
    /// address, the namespace and the id, under /run/containerd/s).
    pub fn shim_socket(&self, id: &str) -> PathBuf {
        use sha2::Digest;
        let key = format!("{}/{}/{id}", self.socket.display(), self.namespace);
        let hex: String = sha2::Sha256::digest(key.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Path::new("/run/containerd/s").join(hex)
    }

    /// The columns of `ctr task ls` for one task (id, pid, status), if it is listed.
    pub fn task_line(&self, id: &str) -> Option<Vec<String>> {
        stdout(&self.ctr(&["task", "ls"]))
            .lines()
            .map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
            .find(|cols| cols.first().map(String::as_str) == Some(id))
    }

    /// Waits until `ctr task ls` shows the task in `status`; returns its pid.
    pub fn wait_status(&self, id: &str, status: &str) -> u32 {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let line = self.task_line(id);
            if let Some(cols) = &line {
                if cols.get(2).map(String::as_str) == Some(status) {
                    return cols[1].parse().expect("pid column");
                }
            }
            assert!(
                Instant::now() < deadline,
                "task {id} never reached {status}: {line:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `ctr run -d --runtime OUR_SHIM [extra...] busybox ID ARGS...`, then waits for it to
    /// run; returns the task's pid.
    pub fn run_detached(&self, id: &str, extra: &[&str], args: &[&str]) -> u32 {
        let shim = shim_binary().to_string_lossy().into_owned();
        let mut a = vec!["run", "-d", "--runtime", shim.as_str()];
        a.extend_from_slice(extra);
        a.push(BUSYBOX_IMAGE);
        a.push(id);
        a.extend_from_slice(args);
        let out = self.ctr(&a);
        assert!(out.status.success(), "ctr run -d {id}: {}", stderr(&out));
        self.wait_status(id, "RUNNING")
    }

    /// Kills every process of a task, then deletes the task and its container.
    pub fn remove(&self, id: &str) {
        let _ = self.ctr(&["task", "kill", "--all", "--signal", "SIGKILL", id]);
        let deadline = Instant::now() + Duration::from_secs(10);
        while self
            .task_line(id)
            .is_some_and(|c| c.get(2).map(String::as_str) != Some("STOPPED"))
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(50));
        }
        let out = self.ctr(&["task", "delete", id]);
        assert!(out.status.success(), "task delete {id}: {}", stderr(&out));
        let out = self.ctr(&["container", "delete", id]);
        assert!(
            out.status.success(),
            "container delete {id}: {}",
            stderr(&out)
        );
    }

    /// The directory where the shim under test keeps this namespace's container state
    /// (runc's, or libcontainer's).
    pub fn state_root(&self) -> PathBuf {
        if self.opts.cri_sandbox_image.is_some() {
            return self.dir().join("runc").join(&self.namespace);
        }
        default_state_root().join(&self.namespace)
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        // Shims this containerd started, by pid; a killed shim cannot remove its
        // socket, so that is done here.
        for pid in self.shim_pids() {
            let sockets = proc::unix_socket_paths(pid);
            // SAFETY: kill(2) on a pid we found serving our own containerd.
            unsafe {
                libc::kill(pid as i32, libc::SIGKILL);
            }
            for socket in sockets
                .iter()
                .filter(|s| s.starts_with("/run/containerd/s/"))
            {
                let _ = fs::remove_file(socket);
            }
        }
        proc::terminate(&mut self.child, Duration::from_secs(5));
        // Containers a failed test left in runc's state: those with a bundle under this
        // containerd's state (the k8s.io namespace is not this test's alone).
        let root = self.state_root();
        let bundles = self
            .dir()
            .join("state/io.containerd.runtime.v2.task")
            .join(&self.namespace);
        let asks_runc = !shim_uses_libcontainer();
        // A CRI runtime with no options (the shim sandbox's before containerd 2.3)
        // keeps runc's state in its default root.
        let default_root = default_state_root().join(&self.namespace);
        if let Some(entries) = fs::read_dir(&bundles).ok().filter(|_| asks_runc) {
            for e in entries.flatten() {
                for root in [&root, &default_root] {
                    let _ = crate::runc::command()
                        .arg("--root")
                        .arg(root)
                        .args(["delete", "--force"])
                        .arg(e.file_name())
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .status();
                }
            }
        }
        if self.opts.cri_sandbox_image.is_none() {
            // Without runc to ask, what a failed test left is found by its cgroup: the
            // namespace is this test's alone.
            kill_cgroup_tree(&self.namespace);
            remove_namespace_cgroups(&self.namespace);
            if !asks_runc {
                let _ = fs::remove_dir_all(&root);
            }
        }
        let _ = fs::remove_dir(&root);
    }
}

/// The CRI runtime handler that starts the shim under test by path as runtime type
/// `io.containerd.runc.v2`, with the runc options inline (containerd 1.7 and later honour
/// `runtime_path`). containerd 2.x's CRI adds the IO owner of a user-namespaced pod to
/// the runc options, which it can do only to these, not to handler `skiff`'s
/// `ConfigPath` (README).
pub const INLINE_HANDLER: &str = "skiff-inline";

/// The CRI plugin's settings: runtime handlers `skiff` and [`INLINE_HANDLER`] beside the default `runc`, the
/// given sandbox image (imported beforehand, never pulled), no AppArmor profile (none
/// is loaded on test machines), and CNI directories that stay empty: only pods on the
/// node's network can run, which is what the tests use. The streaming server listens
/// on a free port of the loopback, so tests can run side by side. OOM score
/// adjustments are capped at containerd's own: these machines refuse to lower it
/// (runc: "failed to update /proc/self/oom_score_adj: Permission denied" for the
/// pause container's -998), as a node whose containerd runs in a container would.
///
/// The skiff runtime reads its runc options from a file (CRI sends a non-runc runtime
/// type `runtimeoptions.v1.Options` naming it), the inline handler has them in the
/// config: either way runc keeps its state under this containerd's directory, not in
/// the machine's shared k8s.io root.
fn cri_config(root: &Path, sandbox_image: &str, v3: bool, opts: &Options) -> String {
    let options = root.join("skiff-runtime.toml");
    fs::write(
        &options,
        format!(
            "# runc options for the skiff runtime\nRoot = \"{}/runc\"\n",
            root.display()
        ),
    )
    .expect("writing the skiff runtime options");
    let options = options.display();
    let cni = format!(
        "bin_dir = \"{root}/cni/bin\"\n    conf_dir = \"{root}/cni/conf\"",
        root = root.display()
    );
    let runtime_type = shim_runtime_type();
    let cni_conf_dir = root.join("cni/conf");
    if let Some(conflist) = &opts.cni_conflist {
        fs::create_dir_all(&cni_conf_dir).expect("the CNI conf dir");
        fs::write(cni_conf_dir.join("10-skiff-test.conflist"), conflist).expect("the CNI conf");
        std::os::unix::fs::symlink("/usr/lib/cni", root.join("cni/bin")).expect("the CNI bin dir");
    }
    let runc_path = opts
        .runc_runtime_path
        .as_ref()
        .map(|p| format!("\n      runtime_path = \"{}\"", p.display()))
        .unwrap_or_default();
    // containerd 2.x: the same runtime as the pod's sandbox, held by the shim itself
    // (containerd's Sandbox API) instead of a pause container. Before 2.3 the CRI takes
    // a sandboxed task's options to be runc's (and starts a sandbox's shim by runtime
    // type, ignoring runtime_path): the handler has no options there, and runc keeps
    // its state in its default root.
    let shim_sandboxer = |prefix: &str| {
        let table = format!(r#"[plugins."{prefix}".containerd.runtimes.skiff-sandbox"#);
        let options = if version() >= (2, 3) {
            format!("      {table}.options]\n        ConfigPath = \"{options}\"\n")
        } else {
            String::new()
        };
        format!(
            r#"    {table}]
      runtime_type = "{runtime_type}"
      sandboxer = "shim"
{options}"#
        )
    };
    let shim = shim_binary();
    let runc_root = root.join("runc");
    let runtimes = |prefix: &str| {
        let sandboxer = if v3 {
            shim_sandboxer(prefix)
        } else {
            String::new()
        };
        format!(
            r#"  [plugins."{prefix}".containerd]
    default_runtime_name = "runc"
    [plugins."{prefix}".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"{runc_path}
{sandboxer}    [plugins."{prefix}".containerd.runtimes.skiff]
      runtime_type = "{runtime_type}"
      [plugins."{prefix}".containerd.runtimes.skiff.options]
        ConfigPath = "{options}"
    [plugins."{prefix}".containerd.runtimes.{INLINE_HANDLER}]
      runtime_type = "io.containerd.runc.v2"
      runtime_path = "{shim}"
      [plugins."{prefix}".containerd.runtimes.{INLINE_HANDLER}.options]
        Root = "{runc_root}"
  [plugins."{prefix}".cni]
    {cni}
"#,
            shim = shim.display(),
            runc_root = runc_root.display(),
        )
    };
    if v3 {
        format!(
            r#"[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = "{sandbox_image}"
[plugins."io.containerd.cri.v1.runtime"]
  enable_selinux = false
  disable_apparmor = true
  restrict_oom_score_adj = true
{runtimes}[plugins."io.containerd.grpc.v1.cri"]
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
"#,
            runtimes = runtimes("io.containerd.cri.v1.runtime")
        )
    } else {
        format!(
            r#"[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{sandbox_image}"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  disable_apparmor = true
  restrict_oom_score_adj = true
{runtimes}"#,
            runtimes = runtimes("io.containerd.grpc.v1.cri")
        )
    }
}

fn spawn_containerd(root: &Path, opts: &Options) -> Child {
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(root.join("containerd.log"))
        .expect("log");
    let mut cmd = Command::new(containerd_bin("containerd"));
    // The shims containerd starts look runc up on its PATH: the tests' runc first.
    let prefixes: Vec<PathBuf> = opts.path_prefix.iter().cloned().collect();
    cmd.env("PATH", crate::runc::path_with(&prefixes));
    cmd.arg("--config")
        .arg(root.join("config.toml"))
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log fd"))
        .stderr(log)
        .spawn()
        .expect("starting containerd (is the containerd package installed?)")
}

/// containerd puts a task's cgroup at /<namespace>/<id>; runc removes the task's, the
/// namespace's parent stays. Remove it.
fn remove_namespace_cgroups(namespace: &str) {
    remove_cgroup_tree(namespace);
}

/// Cgroup directories named `name` under any hierarchy's `namespace` directory.
pub fn cgroups_of(namespace: &str, id: &str) -> Vec<PathBuf> {
    cgroup_bases()
        .into_iter()
        .map(|b| b.join(namespace).join(id))
        .filter(|p| p.exists())
        .collect()
}

pub struct EventStream {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl EventStream {
    /// Topics seen so far for one container, in order (`/tasks/create`, ...).
    pub fn topics_for(&self, id: &str) -> Vec<String> {
        let needle = format!("\"container_id\":\"{id}\"");
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(&needle))
            .filter_map(|l| l.split_whitespace().find(|w| w.starts_with("/tasks/")))
            .map(str::to_string)
            .collect()
    }

    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// Waits until `pred` holds for the topics of `id`, at most `timeout`.
    pub fn wait_for(
        &self,
        id: &str,
        timeout: Duration,
        pred: impl Fn(&[String]) -> bool,
    ) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let topics = self.topics_for(id);
            if pred(&topics) || Instant::now() > deadline {
                return topics;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for EventStream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// What a command wrote on stderr, without the one warning ctr of containerd 2.2 and
/// later prints before every command on a cgroup v1 host (it is ctr's, not the task's).
pub fn stderr(o: &Output) -> String {
    without_cgroup_v1_warning(&String::from_utf8_lossy(&o.stderr))
}

/// The text without ctr's cgroup v1 deprecation warning lines.
pub fn without_cgroup_v1_warning(text: &str) -> String {
    const WARNING: &str = "msg=\"DEPRECATION: The support for cgroup v1 is deprecated";
    if !text.contains(WARNING) {
        return text.to_string();
    }
    text.split_inclusive('\n')
        .filter(|line| !line.contains(WARNING))
        .collect()
}

/// Waits for a child at most `timeout`; kills it and fails if it does not end.
pub fn wait_with_timeout(
    child: &mut Child,
    timeout: Duration,
) -> io::Result<std::process::ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "process did not end in time",
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
