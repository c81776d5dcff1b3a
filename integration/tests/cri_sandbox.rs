//! Pods without a pause container: containerd 2.x's CRI with runtime handler
//! `skiff-sandbox` (`sandboxer = "shim"`) hands the pod to the shim through
//! containerd's Sandbox API. Driven as the kubelet drives it, with real containerd, runc,
//! CNI plugins: the pod's namespaces, hostname, sysctls, /dev/shm and files, two
//! containers, exec, a containerd restart, stop and remove; what an idle pod costs in
//! processes; and that a pod that cannot be made, or is removed, leaves nothing.
//! The pause-container path (handler `skiff`) is `cri.rs`'s.

use skiff_integration::bundle::TempDir;
use skiff_integration::containerd::{
    cgroup_bases, shim_binary, shim_file_name, version, CgroupCleanup, Containerd, Options,
    PAUSE_IMAGE,
};
use skiff_integration::cri::api::*;
use skiff_integration::cri::pod::{self, pod_config};
use skiff_integration::cri::CriClient;
use skiff_integration::proc;
use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const HANDLER: &str = "skiff-sandbox";

/// containerd's Sandbox API with a shim sandboxer is 2.x's CRI.
fn supported(test: &str) -> bool {
    if version().0 >= 2 {
        return true;
    }
    skiff_integration::skip(
        test,
        "the CRI hands a pod to the shim from containerd 2.0 on",
    );
    false
}

/// A pod on the node's network crashes containerd before 2.3 in this mode (its bundle
/// code dereferences the nil spec such a sandbox has; fixed by containerd's b32cecd,
/// in 2.3.0).
fn host_network_supported(test: &str) -> bool {
    if version() >= (2, 3) {
        return true;
    }
    skiff_integration::skip(
        test,
        "a shim sandbox on the node's network crashes containerd before 2.3 (nil spec in NewBundle)",
    );
    false
}

/// A bridge network of the test's own, when Debian's CNI plugins are installed.
fn test_network(test: &str) -> Option<(BridgeCleanup, String)> {
    if !Path::new("/usr/lib/cni/bridge").exists() {
        skiff_integration::skip(
            test,
            "no CNI plugins in /usr/lib/cni (Debian's containernetworking-plugins)",
        );
        return None;
    }
    // Tests of one process run side by side: each has a bridge and subnet of its own.
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let k = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let n = std::process::id();
    let bridge = format!("skbr{}x{k}", n % 1_000_000);
    let subnet = format!("10.{}.{}.0/24", 200 + n % 50, (n / 50 * 4 + k) % 250);
    let conflist = bridge_conflist(&bridge, &subnet);
    Some((BridgeCleanup(bridge), conflist))
}

fn start_cri(cni_conflist: Option<String>) -> (Containerd, CriClient) {
    let shim_dir = shim_binary().parent().unwrap().to_path_buf();
    let cd = Containerd::start_with(Options {
        path_prefix: Some(shim_dir),
        cri_sandbox_image: Some(PAUSE_IMAGE.into()),
        cni_conflist,
        ..Default::default()
    });
    let cri = CriClient::connect(&cd.socket).expect("connecting to the CRI socket");
    let deadline = Instant::now() + Duration::from_secs(20);
    while cri.version().is_err() {
        assert!(
            Instant::now() < deadline,
            "the CRI did not answer:\n{}",
            cd.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    (cd, cri)
}

/// A bridge network on a bridge of this test's own, not the host's gateway: no address
/// on the host, no route, no NAT. The CRI brings up loopback itself.
fn bridge_conflist(bridge: &str, subnet: &str) -> String {
    format!(
        r#"{{"cniVersion": "0.4.0", "name": "skiff-test", "plugins": [{{
  "type": "bridge", "bridge": "{bridge}", "isGateway": false, "ipMasq": false,
  "ipam": {{"type": "host-local", "ranges": [[{{"subnet": "{subnet}"}}]],
            "dataDir": "/run/skiff-test-cni/{bridge}"}}
}}]}}"#
    )
}

/// Removes the test's bridge and its address records, also when the test fails.
struct BridgeCleanup(String);

impl Drop for BridgeCleanup {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["link", "del", &self.0])
            .stderr(std::process::Stdio::null())
            .status();
        let _ = fs::remove_dir_all(format!("/run/skiff-test-cni/{}", self.0));
        // Empty once no test of any process uses it.
        let _ = fs::remove_dir("/run/skiff-test-cni");
    }
}

/// What each test runs in: a private containerd with the CRI, the pod's cgroup parent
/// and log directory, the test's own bridge network when it needs one. Dropped in this
/// order: containerd (and every shim it started) first, the cgroups and the bridge last.
struct Fixture {
    cd: Containerd,
    cri: CriClient,
    parent: String,
    logs: TempDir,
    _cgroups: CgroupCleanup,
    _bridge: Option<BridgeCleanup>,
}

impl Fixture {
    /// None (the test recorded as skipped) where this containerd cannot run it.
    fn new(test: &str, tag: &str, pod_network: bool) -> Option<Fixture> {
        if !supported(test) || (!pod_network && !host_network_supported(test)) {
            return None;
        }
        let (bridge, conflist) = match pod_network {
            true => test_network(test).map(|(b, c)| (Some(b), Some(c)))?,
            false => (None, None),
        };
        let (cd, cri) = start_cri(conflist);
        let parent = format!("/skiff-sbx-{tag}-{}", std::process::id());
        Some(Fixture {
            cd,
            cri,
            _cgroups: CgroupCleanup(parent.clone()),
            parent,
            logs: TempDir::new("skiff-sbx-logs").unwrap(),
            _bridge: bridge,
        })
    }
}

fn container(name: &str, script: &str, ns: &NamespaceOption) -> ContainerConfig {
    ContainerConfig {
        linux: Some(LinuxContainerConfig {
            security_context: Some(LinuxContainerSecurityContext {
                namespace_options: Some(ns.clone()),
            }),
            ..Default::default()
        }),
        ..pod::container(name, script, &format!("{name}.log"))
    }
}

fn run_container(
    cd: &Containerd,
    cri: &CriClient,
    pod: &str,
    c: &ContainerConfig,
    sandbox: &PodSandboxConfig,
) -> String {
    let id = cri
        .create_container(pod, c, sandbox)
        .unwrap_or_else(|e| panic!("CreateContainer: {e}\n{}", cd.log()));
    cri.start_container(&id)
        .unwrap_or_else(|e| panic!("StartContainer: {e}\n{}", cd.log()));
    id
}

/// What `sh -c script` prints in the container, trimmed; fails on a non-zero exit.
fn sh(cri: &CriClient, id: &str, script: &str) -> String {
    let r = cri
        .exec_sync(id, &["sh", "-c", script], 10)
        .unwrap_or_else(|e| panic!("ExecSync {script:?}: {e}"));
    assert_eq!(
        r.exit_code,
        0,
        "{script:?}: {}",
        String::from_utf8_lossy(&r.stderr)
    );
    String::from_utf8_lossy(&r.stdout).trim().to_string()
}

/// The namespace a process is in, as `readlink /proc/PID/ns/KIND` says it ("ipc:[N]").
fn ns_of(pid: &str, kind: &str) -> String {
    fs::read_link(format!("/proc/{pid}/ns/{kind}"))
        .map(|l| l.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The one shim serving the test's containerd.
fn the_shim(cd: &Containerd) -> u32 {
    let shims = cd.shim_pids();
    assert_eq!(shims.len(), 1, "one shim for the pod: {shims:?}");
    let exe = fs::read_link(format!("/proc/{}/exe", shims[0])).unwrap();
    assert!(
        exe.to_string_lossy().ends_with(&shim_file_name()),
        "the pod's shim is {}",
        exe.display()
    );
    shims[0]
}

/// The CRI's per-sandbox directories (its files' and its shm's) in this containerd.
fn cri_sandbox_dirs(cd: &Containerd, pod: &str) -> [PathBuf; 2] {
    [
        cd.dir()
            .join("root/io.containerd.grpc.v1.cri/sandboxes")
            .join(pod),
        cd.dir()
            .join("state/io.containerd.grpc.v1.cri/sandboxes")
            .join(pod),
    ]
}

fn sandbox_bundle(cd: &Containerd, pod: &str) -> PathBuf {
    cd.dir()
        .join("state/io.containerd.sandbox.controller.v1.shim/k8s.io")
        .join(pod)
}

fn wait_gone(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while proc::alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!proc::alive(pid), "process {pid} is still running");
}

/// After a pod is removed: no shim, no socket, no bundle, no files of the CRI's, no
/// mount naming it, no cgroup under its parent.
fn assert_pod_left_nothing(cd: &Containerd, shim: u32, socket: &Path, pod: &str, parent: &str) {
    assert_sandbox_left_nothing(cd, shim, socket, pod, parent);
    assert_pod_cgroups_gone(parent);
}

/// What the sandbox itself made is gone: the shim, its socket, its bundle, the CRI's
/// links, its /dev/shm mount, its holder's cgroup.
fn assert_sandbox_left_nothing(cd: &Containerd, shim: u32, socket: &Path, pod: &str, parent: &str) {
    wait_gone(shim);
    assert!(
        cd.shim_pids().is_empty(),
        "a shim is left: {:?}",
        cd.shim_pids()
    );
    assert!(
        !socket.exists(),
        "the shim's socket {} is left",
        socket.display()
    );
    assert!(
        !sandbox_bundle(cd, pod).exists(),
        "the sandbox's bundle is left"
    );
    for dir in cri_sandbox_dirs(cd, pod) {
        assert!(!dir.exists(), "{} is left", dir.display());
    }
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mountinfo.contains(pod),
        "a mount of {pod} is left:\n{mountinfo}"
    );
    for base in cgroup_bases() {
        let dir = base.join(parent.trim_start_matches('/')).join(pod);
        assert!(
            !dir.exists(),
            "the sandbox's cgroup {} is left",
            dir.display()
        );
    }
}

/// No cgroup is left under the pod's cgroup parent, in any hierarchy.
fn assert_pod_cgroups_gone(parent: &str) {
    for base in cgroup_bases() {
        let dir = base.join(parent.trim_start_matches('/'));
        let left: Vec<_> = fs::read_dir(&dir)
            .map(|e| {
                e.flatten()
                    .filter(|e| e.path().is_dir())
                    .map(|e| e.path())
                    .collect()
            })
            .unwrap_or_default();
        assert!(left.is_empty(), "cgroups of the pod are left: {left:?}");
    }
}

/// The shim's listening socket (the one under /run/containerd/s).
fn shim_socket(shim: u32) -> PathBuf {
    proc::unix_socket_paths(shim)
        .into_iter()
        .find(|s| s.starts_with("/run/containerd/s/"))
        .expect("the shim listens under /run/containerd/s")
}

#[test]
fn a_host_network_pod_is_held_by_the_shim_alone() {
    let Some(f) = Fixture::new(
        "a_host_network_pod_is_held_by_the_shim_alone",
        "host",
        false,
    ) else {
        return;
    };
    let (cd, cri, parent) = (&f.cd, &f.cri, &f.parent);
    let ns = NamespaceOption {
        network: NAMESPACE_NODE,
        pid: NAMESPACE_CONTAINER,
        ipc: NAMESPACE_POD,
        ..Default::default()
    };
    let mut sandbox = pod_config("host", parent, f.logs.path(), ns.clone());
    sandbox.dns_config = Some(DnsConfig {
        servers: vec!["10.96.0.10".into()],
        searches: vec!["skiff-test.svc.cluster.local".into()],
        options: vec!["ndots:5".into()],
    });
    sandbox.linux.as_mut().unwrap().sysctls =
        HashMap::from([("kernel.shm_rmid_forced".to_string(), "1".to_string())]);
    let pod = cri
        .run_pod_sandbox(&sandbox, HANDLER)
        .unwrap_or_else(|e| panic!("RunPodSandbox: {e}\n{}", cd.log()));
    let run = |cd: &Containerd, name: &str, script: &str| {
        run_container(cd, cri, &pod, &container(name, script, &ns), &sandbox)
    };

    // The idle pod is the shim alone: no pause, no other process; the shim itself is in
    // the pod's IPC namespace and the node's network.
    let shim = the_shim(cd);
    let socket = shim_socket(shim);
    assert_eq!(
        proc::children(shim),
        Vec::<u32>::new(),
        "the idle pod's shim has no child"
    );
    assert!(proc::pids_of("/pause").is_empty() && proc::pids_of("pause").is_empty());
    let shim_pid = shim.to_string();
    assert_ne!(
        ns_of(&shim_pid, "ipc"),
        ns_of("self", "ipc"),
        "the pod has IPC of its own"
    );
    assert_eq!(
        ns_of(&shim_pid, "net"),
        ns_of("self", "net"),
        "the pod is on the node's network"
    );
    assert_eq!(
        ns_of(&shim_pid, "uts"),
        ns_of("self", "uts"),
        "the node's UTS with its network"
    );
    let status = cri.pod_sandbox_status(&pod).expect("PodSandboxStatus");
    assert_eq!(status.status.unwrap().state, SANDBOX_READY);

    // Two containers in it, sharing its IPC namespace and its /dev/shm.
    let first = run(cd, "first", "echo hi > /dev/shm/hello; exec sleep 3000");
    let second = run(cd, "second", "exec sleep 3000");
    let deadline = Instant::now() + Duration::from_secs(10);
    while sh(cri, &second, "cat /dev/shm/hello 2>/dev/null || true") != "hi" {
        assert!(
            Instant::now() < deadline,
            "the pod's /dev/shm is not shared"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    for id in [&first, &second] {
        assert_eq!(
            sh(cri, id, "readlink /proc/self/ns/ipc"),
            ns_of(&shim_pid, "ipc")
        );
        assert_eq!(
            sh(cri, id, "cat /proc/sys/kernel/shm_rmid_forced"),
            "1",
            "the pod's sysctl"
        );
        let resolv = sh(cri, id, "cat /etc/resolv.conf");
        assert!(
            resolv.contains("nameserver 10.96.0.10") && resolv.contains("options ndots:5"),
            "{resolv}"
        );
    }
    let node = fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(sh(cri, &first, "hostname"), node.trim());
    assert_eq!(sh(cri, &first, "cat /etc/hostname"), node.trim());
    assert_eq!(
        fs::read_to_string("/proc/sys/kernel/shm_rmid_forced")
            .unwrap()
            .trim(),
        "0",
        "the node's own sysctl is untouched"
    );
    let children: Vec<String> = proc::children(shim)
        .into_iter()
        .map(proc::cmdline)
        .collect();
    assert_eq!(
        children.iter().filter(|c| *c == "sleep 3000").count(),
        2,
        "both containers run under the shim: {children:?}"
    );

    // Stop one container, then the pod, then remove it: nothing is left.
    cri.stop_container(&second, 5).expect("StopContainer");
    assert_eq!(
        cri.container_status(&second).unwrap().state,
        CONTAINER_EXITED
    );
    assert_eq!(
        cri.container_status(&first).unwrap().state,
        CONTAINER_RUNNING
    );
    cri.stop_pod_sandbox(&pod)
        .unwrap_or_else(|e| panic!("StopPodSandbox: {e}\n{}", cd.log()));
    assert_eq!(
        cri.container_status(&first).unwrap().state,
        CONTAINER_EXITED
    );
    assert_eq!(
        cri.pod_sandbox_status(&pod).unwrap().status.unwrap().state,
        SANDBOX_NOTREADY
    );
    assert_eq!(
        ns_of(&shim_pid, "ipc"),
        ns_of("self", "ipc"),
        "the stopped pod's IPC is released"
    );
    cri.remove_pod_sandbox(&pod)
        .unwrap_or_else(|e| panic!("RemovePodSandbox: {e}\n{}", cd.log()));
    assert_pod_left_nothing(cd, shim, &socket, &pod, parent);
}

#[test]
fn a_pod_network_pod_sharing_its_pid_namespace_has_one_holder() {
    let Some(mut f) = Fixture::new(
        "a_pod_network_pod_sharing_its_pid_namespace_has_one_holder",
        "net",
        true,
    ) else {
        return;
    };
    let (cri, parent) = (&f.cri, f.parent.clone());
    let cd = &mut f.cd;
    let ns = NamespaceOption {
        network: NAMESPACE_POD,
        pid: NAMESPACE_POD,
        ipc: NAMESPACE_POD,
        ..Default::default()
    };
    let mut sandbox = pod_config("net", &parent, f.logs.path(), ns.clone());
    sandbox.hostname = "skiff-pod".into();
    sandbox.linux.as_mut().unwrap().sysctls =
        HashMap::from([("net.ipv4.ping_group_range".to_string(), "7 7".to_string())]);
    let pod = cri
        .run_pod_sandbox(&sandbox, HANDLER)
        .unwrap_or_else(|e| panic!("RunPodSandbox: {e}\n{}", cd.log()));
    let run = |cd: &Containerd, name: &str, script: &str| {
        run_container(cd, cri, &pod, &container(name, script, &ns), &sandbox)
    };

    // The idle pod: the shim and one holder, init of the pod's PID namespace, in the
    // pod's network and in its cgroup.
    let shim = the_shim(cd);
    let socket = shim_socket(shim);
    let children = proc::children(shim);
    assert_eq!(
        children.len(),
        1,
        "the shim has one child, the holder: {children:?}"
    );
    let holder = children[0];
    assert_eq!(proc::cmdline(holder), format!("skiff-pod-holder {pod}"));
    let status = fs::read_to_string(format!("/proc/{holder}/status")).unwrap();
    let nspid = status
        .lines()
        .find(|l| l.starts_with("NSpid:"))
        .unwrap_or_default();
    assert!(
        nspid.trim_end().ends_with("\t1"),
        "the holder is its namespace's init: {nspid}"
    );
    let holder_pid = holder.to_string();
    assert_ne!(
        ns_of(&holder_pid, "net"),
        ns_of("self", "net"),
        "the pod has a network"
    );
    assert_eq!(ns_of(&holder_pid, "net"), ns_of(&shim.to_string(), "net"));
    let cgroup = fs::read_to_string(format!("/proc/{holder}/cgroup")).unwrap();
    assert!(
        cgroup.contains(&format!("{parent}/{pod}")),
        "the holder is in the pod's cgroup:\n{cgroup}"
    );
    let pod_status = cri.pod_sandbox_status(&pod).expect("PodSandboxStatus");
    assert_eq!(pod_status.status.as_ref().unwrap().state, SANDBOX_READY);
    let ip = pod_status.status.unwrap().network.unwrap_or_default().ip;
    assert!(ip.starts_with("10."), "the pod's address: {ip:?}");

    // Two containers: one PID namespace, the pod's hostname, address and sysctls.
    let first = run(cd, "first", "echo before > /dev/shm/note; exec sleep 3000");
    let second = run(cd, "second", "exec sleep 3001");
    let seen = sh(cri, &second, "cat /proc/[0-9]*/cmdline | tr '\\0' ' '");
    assert!(
        seen.contains("sleep 3000") && seen.contains(&format!("skiff-pod-holder {pod}")),
        "{seen}"
    );
    assert_eq!(
        sh(cri, &first, "cat /proc/1/cmdline | tr '\\0' ' '"),
        format!("skiff-pod-holder {pod}")
    );
    assert_eq!(sh(cri, &first, "hostname"), "skiff-pod");
    assert_eq!(sh(cri, &first, "cat /etc/hostname"), "skiff-pod");
    assert_eq!(
        sh(cri, &first, "cat /proc/sys/net/ipv4/ping_group_range"),
        "7\t7"
    );
    assert!(
        sh(cri, &second, "ip addr show eth0").contains(&ip),
        "eth0 holds {ip}"
    );

    // containerd restarts (and removes the directories of sandboxes it has no pause
    // container for): the shim serves on, the CRI finds the pod ready and its
    // containers, and a container made afterwards gets the pod's files and /dev/shm.
    cd.crash();
    cd.restart();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match cri.pod_sandbox_status(&pod) {
            Ok(s) if s.status.as_ref().is_some_and(|s| s.state == SANDBOX_READY) => break,
            other => assert!(
                Instant::now() < deadline,
                "after the restart: {other:?}\n{}",
                cd.log()
            ),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(cd.shim_pids(), vec![shim], "the same shim serves the pod");
    assert_eq!(
        sh(cri, &first, "hostname"),
        "skiff-pod",
        "exec after the restart"
    );
    let third = run(cd, "third", "exec sleep 3002");
    assert_eq!(sh(cri, &third, "cat /etc/hostname"), "skiff-pod");
    assert_eq!(
        sh(cri, &third, "cat /dev/shm/note"),
        "before",
        "the pod's /dev/shm"
    );
    assert!(sh(cri, &third, "cat /proc/[0-9]*/cmdline | tr '\\0' ' '").contains("sleep 3001"));

    // Every container stopped and removed while the pod lives: containerd 2.1 and 2.2
    // then ask the shim to shut down (the Task API's Shutdown, after each delete); the
    // pod's shim serves on, and the pod takes a new container.
    for id in [&first, &second, &third] {
        cri.stop_container(id, 5).expect("StopContainer");
        cri.remove_container(id).expect("RemoveContainer");
    }
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(cd.shim_pids(), vec![shim], "the pod's shim serves on");
    assert!(proc::alive(holder), "the pod's PID namespace lives on");
    let last = run(cd, "last", "exec sleep 3003");
    assert_eq!(sh(cri, &last, "hostname"), "skiff-pod");

    // Stop and remove: the holder and the container end, nothing is left.
    cri.stop_pod_sandbox(&pod)
        .unwrap_or_else(|e| panic!("StopPodSandbox: {e}\n{}", cd.log()));
    wait_gone(holder);
    assert_eq!(cri.container_status(&last).unwrap().state, CONTAINER_EXITED);
    cri.remove_pod_sandbox(&pod)
        .unwrap_or_else(|e| panic!("RemovePodSandbox: {e}\n{}", cd.log()));
    assert_pod_left_nothing(cd, shim, &socket, &pod, &parent);
}

#[test]
fn a_sandbox_that_cannot_be_made_leaves_nothing() {
    let Some(f) = Fixture::new("a_sandbox_that_cannot_be_made_leaves_nothing", "bad", true) else {
        return;
    };
    let (cd, cri, parent) = (&f.cd, &f.cri, &f.parent);
    let ns = NamespaceOption {
        network: NAMESPACE_POD,
        pid: NAMESPACE_POD,
        ipc: NAMESPACE_POD,
        ..Default::default()
    };
    // A sysctl of the whole node is never a pod's: refused before anything is made.
    let mut sandbox = pod_config("global-sysctl", parent, f.logs.path(), ns.clone());
    sandbox.linux.as_mut().unwrap().sysctls =
        HashMap::from([("vm.swappiness".to_string(), "10".to_string())]);
    let err = cri
        .run_pod_sandbox(&sandbox, HANDLER)
        .expect_err("a pod setting vm.swappiness");
    assert!(
        err.message.contains("vm.swappiness is not namespaced"),
        "{err}"
    );
    // An IPC sysctl the kernel does not have fails when it is written: after the shim
    // joined the pod's network, made its IPC and UTS namespaces, /dev/shm and files.
    let mut sandbox = pod_config("no-such-sysctl", parent, f.logs.path(), ns);
    sandbox.linux.as_mut().unwrap().sysctls =
        HashMap::from([("fs.mqueue.no_such_setting".to_string(), "1".to_string())]);
    let err = cri
        .run_pod_sandbox(&sandbox, HANDLER)
        .expect_err("a pod setting a sysctl that does not exist");
    assert!(err.message.contains("fs.mqueue.no_such_setting"), "{err}");
    // The shims containerd started for them exit; nothing of the pods is left.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cd.shim_pids().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        cd.shim_pids().is_empty(),
        "a shim is left: {:?}",
        cd.shim_pids()
    );
    let dirs = [
        "state/io.containerd.sandbox.controller.v1.shim/k8s.io",
        "root/io.containerd.grpc.v1.cri/sandboxes",
        "state/io.containerd.grpc.v1.cri/sandboxes",
    ];
    for dir in dirs {
        let left: Vec<_> = fs::read_dir(cd.dir().join(dir))
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "left in {dir}: {left:?}");
    }
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let ours = cd.dir().to_string_lossy().into_owned();
    assert!(!mountinfo.contains(&ours), "a mount is left:\n{mountinfo}");
    assert_pod_cgroups_gone(parent);
}

#[test]
fn a_killed_shim_leaves_nothing_of_its_pod() {
    let Some(f) = Fixture::new("a_killed_shim_leaves_nothing_of_its_pod", "killed", true) else {
        return;
    };
    let (cd, cri, parent) = (&f.cd, &f.cri, &f.parent);
    let ns = NamespaceOption {
        network: NAMESPACE_POD,
        pid: NAMESPACE_POD,
        ipc: NAMESPACE_POD,
        ..Default::default()
    };
    let sandbox = pod_config("killed", parent, f.logs.path(), ns.clone());
    let pod = cri
        .run_pod_sandbox(&sandbox, HANDLER)
        .unwrap_or_else(|e| panic!("RunPodSandbox: {e}\n{}", cd.log()));
    let run = |cd: &Containerd, name: &str, script: &str| {
        run_container(cd, cri, &pod, &container(name, script, &ns), &sandbox)
    };
    let shim = the_shim(cd);
    let socket = shim_socket(shim);
    let holder = proc::children(shim)[0];
    let worker = run(cd, "worker", "exec sleep 3000");
    // Its init may not have reached its execve yet.
    let init_of = || {
        proc::children(shim)
            .into_iter()
            .find(|p| proc::cmdline(*p) == "sleep 3000")
    };
    skiff_integration::unified::eventually(Duration::from_secs(5), || init_of().is_some());
    let init = init_of().expect("the container runs under the shim");
    let shm = sandbox_bundle(cd, &pod).join("shm");
    assert!(fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .contains(&*shm.to_string_lossy()));

    // The shim dies: its holder dies with it, and with the holder every process of the
    // pod's PID namespace. containerd runs the binary's `delete` in the sandbox's bundle,
    // which removes the /dev/shm mount, the CRI's links and the holder's cgroup.
    // SAFETY: kill(2) on the shim this test's containerd started.
    unsafe {
        libc::kill(shim as i32, libc::SIGKILL);
    }
    wait_gone(shim);
    wait_gone(holder);
    wait_gone(init);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match cri.pod_sandbox_status(&pod) {
            Ok(s)
                if s.status
                    .as_ref()
                    .is_some_and(|s| s.state == SANDBOX_NOTREADY) =>
            {
                break
            }
            other => assert!(
                Instant::now() < deadline,
                "after the shim died: {other:?}\n{}",
                cd.log()
            ),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // The container's own connection closed too: the CRI sees it exited.
    while cri.container_status(&worker).unwrap().state == CONTAINER_RUNNING {
        assert!(Instant::now() < deadline, "the pod's container still runs");
        std::thread::sleep(Duration::from_millis(100));
    }
    cri.stop_pod_sandbox(&pod)
        .unwrap_or_else(|e| panic!("StopPodSandbox: {e}\n{}", cd.log()));
    cri.remove_pod_sandbox(&pod)
        .unwrap_or_else(|e| panic!("RemovePodSandbox: {e}\n{}", cd.log()));
    // The sandbox's own leftovers are gone. (runc's `delete --force` of the container,
    // run for its dead shim, can find the container's init still an unreaped zombie of
    // the machine's init and leave the container's cgroup in the hybrid v2 hierarchy:
    // the container's, not the sandbox's.)
    assert_sandbox_left_nothing(cd, shim, &socket, &pod, parent);
}
