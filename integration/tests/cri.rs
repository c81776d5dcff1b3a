//! Kubernetes through containerd's CRI plugin, driven as the kubelet drives it: a pod
//! with runtime handler `skiff` (runtime_type io.containerd.skiff.v2) on the node's
//! network, two containers in it, exec, logs, stats and a resource update, then the
//! pod stopped and removed. Real containerd, real runc, no network pulls: the pause and
//! busybox images are built here and imported with `ctr -n k8s.io images import`.

use skiff_integration::bundle::TempDir;
use skiff_integration::containerd::{shim_file_name, CgroupCleanup};
use skiff_integration::cri::api::*;
use skiff_integration::cri::pod::{
    assert_pod_left_nothing, container, log_lines, parse_cri_line, pod_config, start_cri,
};
use skiff_integration::proc;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Processes whose parent is `pid`, with their command lines.
fn children_cmdlines(pid: u32) -> Vec<String> {
    proc::children(pid).into_iter().map(proc::cmdline).collect()
}

#[test]
fn pod_of_two_containers_runs_in_one_skiff_shim() {
    let (cd, cri) = start_cri();
    let parent = format!("/skiff-cri-{}", std::process::id());
    let _cgroups = CgroupCleanup(parent.clone());
    let logs = TempDir::new("skiff-cri-logs").unwrap();

    let sandbox = PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: "web".into(),
            uid: format!("uid-{}", std::process::id()),
            namespace: "skiff-test".into(),
            attempt: 0,
        }),
        log_directory: logs.path().to_string_lossy().into_owned(),
        labels: HashMap::from([("app".to_string(), "web".to_string())]),
        linux: Some(LinuxPodSandboxConfig {
            cgroup_parent: parent.clone(),
            security_context: Some(LinuxSandboxSecurityContext {
                namespace_options: Some(NamespaceOption {
                    network: NAMESPACE_NODE,
                    pid: NAMESPACE_CONTAINER,
                    ipc: NAMESPACE_POD,
                    ..Default::default()
                }),
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let pod = cri
        .run_pod_sandbox(&sandbox, "skiff")
        .unwrap_or_else(|e| panic!("RunPodSandbox: {e}\n{}", cd.log()));

    let first = cri
        .create_container(
            &pod,
            &container(
                "first",
                "echo first line one; echo first line two >&2; exec sleep 3000",
                "first.log",
            ),
            &sandbox,
        )
        .unwrap_or_else(|e| panic!("CreateContainer first: {e}\n{}", cd.log()));
    cri.start_container(&first).expect("StartContainer first");
    let second = cri
        .create_container(
            &pod,
            &container(
                "second",
                "echo second says hi; exec sleep 3000",
                "second.log",
            ),
            &sandbox,
        )
        .expect("CreateContainer second");
    cri.start_container(&second).expect("StartContainer second");

    // One shim, ours, for the pod; the pause process and both containers are its
    // children.
    let shims = cd.shim_pids();
    assert_eq!(shims.len(), 1, "one shim for the pod: {shims:?}");
    let shim = shims[0];
    let exe = std::fs::read_link(format!("/proc/{shim}/exe")).unwrap();
    assert!(
        exe.to_string_lossy().ends_with(&shim_file_name()),
        "the pod's shim is {}",
        exe.display()
    );
    let cmdline = String::from_utf8_lossy(&std::fs::read(format!("/proc/{shim}/cmdline")).unwrap())
        .replace('\0', " ");
    assert!(
        cmdline.contains(&pod),
        "the shim serves the sandbox: {cmdline}"
    );
    // A started process may not have reached its execve yet (libcontainer's init runs
    // as a fork of the shim until then): what runs under the shim settles shortly.
    let settled = |c: &[String]| {
        c.iter().any(|c| c == "/pause") && c.iter().filter(|c| *c == "sleep 3000").count() == 2
    };
    skiff_integration::unified::eventually(Duration::from_secs(5), || {
        settled(&children_cmdlines(shim))
    });
    let children = children_cmdlines(shim);
    assert!(
        children.iter().any(|c| c == "/pause"),
        "pause runs under the shim: {children:?}"
    );
    assert_eq!(
        children.iter().filter(|c| *c == "sleep 3000").count(),
        2,
        "both containers run under the shim: {children:?}"
    );

    // The runtime options file took effect: runc keeps the pod's state in its Root.
    let mut states: Vec<String> = std::fs::read_dir(cd.state_root())
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    states.sort();
    let mut ids = vec![pod.clone(), first.clone(), second.clone()];
    ids.sort();
    assert_eq!(
        states,
        ids,
        "runc state under {}",
        cd.state_root().display()
    );

    // ExecSync: output and exit code.
    let r = cri
        .exec_sync(&first, &["sh", "-c", "echo out; echo err >&2; exit 3"], 10)
        .expect("ExecSync");
    assert_eq!(String::from_utf8_lossy(&r.stdout), "out\n");
    assert_eq!(String::from_utf8_lossy(&r.stderr), "err\n");
    assert_eq!(r.exit_code, 3);
    let r = cri.exec_sync(&second, &["hostname"], 10).expect("ExecSync");
    assert_eq!(r.exit_code, 0);

    // The CRI log files hold each container's lines, tagged with their stream.
    let mut lines: Vec<(String, String)> = log_lines(&logs.path().join("first.log"), 2)
        .iter()
        .map(|l| parse_cri_line(l))
        .collect();
    lines.sort();
    assert_eq!(
        lines,
        vec![
            ("stderr".to_string(), "first line two".to_string()),
            ("stdout".to_string(), "first line one".to_string()),
        ]
    );
    let second_lines = log_lines(&logs.path().join("second.log"), 1);
    assert_eq!(
        parse_cri_line(&second_lines[0]),
        ("stdout".to_string(), "second says hi".to_string())
    );

    // ContainerStats: memory in use.
    let stats = cri.container_stats(&first).expect("ContainerStats");
    let memory = stats.memory.unwrap_or_default();
    let working_set = memory.working_set_bytes.as_ref().map_or(0, |v| v.value);
    let usage = memory.usage_bytes.as_ref().map_or(0, |v| v.value);
    assert!(
        working_set > 0 || usage > 0,
        "ContainerStats memory: {memory:?}"
    );
    // containerd 2.3's CRI passes the pressure stall information of v2 metrics on.
    let on_v2 = skiff_integration::machine::cgroup_v2();
    if on_v2 && skiff_integration::containerd::version() >= (2, 3) {
        let psi_of = |what: &str, psi: Option<&PsiStats>| {
            let psi = psi.unwrap_or_else(|| panic!("ContainerStats has no {what} PSI"));
            assert!(
                psi.some.is_some() && psi.full.is_some(),
                "{what} PSI: {psi:?}"
            );
        };
        psi_of("cpu", stats.cpu.as_ref().and_then(|c| c.psi.as_ref()));
        psi_of("memory", memory.psi.as_ref());
        psi_of("io", stats.io.as_ref().and_then(|i| i.psi.as_ref()));
    }

    // UpdateContainerResources reaches the container's cgroup, as seen from inside.
    let limit: i64 = 48 << 20;
    cri.update_container_resources(
        &first,
        LinuxContainerResources {
            memory_limit_in_bytes: limit,
            ..Default::default()
        },
    )
    .expect("UpdateContainerResources");
    let r = cri
        .exec_sync(
            &first,
            &[
                "sh",
                "-c",
                "cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes",
            ],
            10,
        )
        .expect("ExecSync reading the memory limit");
    assert_eq!(String::from_utf8_lossy(&r.stdout).trim(), limit.to_string());

    // StopContainer: the container exits (sleep ends on SIGTERM), the other runs on.
    cri.stop_container(&second, 5).expect("StopContainer");
    let status = cri.container_status(&second).expect("ContainerStatus");
    assert_eq!(status.state, CONTAINER_EXITED, "{status:?}");
    assert_eq!(status.exit_code, 143, "{status:?}");
    assert_eq!(
        cri.container_status(&first).unwrap().state,
        CONTAINER_RUNNING
    );
    assert_eq!(cd.shim_pids(), vec![shim], "the pod's shim serves on");

    // Stop and remove the pod: nothing of it is left.
    cri.stop_pod_sandbox(&pod).expect("StopPodSandbox");
    assert_eq!(
        cri.container_status(&first).unwrap().state,
        CONTAINER_EXITED
    );
    cri.remove_pod_sandbox(&pod).expect("RemovePodSandbox");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cd.shim_pids().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(cd.shim_pids().is_empty(), "the pod's shim exited");
    assert!(!proc::alive(shim), "the pod's shim exited");
    assert_pod_left_nothing(&[&pod, &first, &second], &parent);
}

/// A pod whose containers share a PID namespace they do not own (the pod's, or the
/// node's): when a container's init is stopped, a child it forked lives on in that
/// namespace, holding the container's output open. containerd waits for that output to
/// end before it finishes the stop, so the shim must kill what the init left (as
/// containerd's shims do); else the pod can never be stopped.
fn pod_stops_although_a_child_holds_stdout(pid_mode: i32, name: &str) {
    let (cd, cri) = start_cri();
    let parent = format!("/skiff-cri-{name}-{}", std::process::id());
    let _cgroups = CgroupCleanup(parent.clone());
    let logs = TempDir::new("skiff-cri-logs").unwrap();
    let ns = NamespaceOption {
        network: NAMESPACE_NODE,
        pid: pid_mode,
        ipc: NAMESPACE_POD,
        ..Default::default()
    };
    let sandbox = pod_config(name, &parent, logs.path(), ns);
    let pod = cri
        .run_pod_sandbox(&sandbox, "skiff")
        .unwrap_or_else(|e| panic!("RunPodSandbox: {e}\n{}", cd.log()));
    // The worker sleeps with the container's stdout; the init is a sleep of its own.
    let mut config = container(
        "worker",
        "sleep 3001 & echo worker started; exec sleep 3000",
        "worker.log",
    );
    config.linux = Some(LinuxContainerConfig {
        security_context: Some(LinuxContainerSecurityContext {
            namespace_options: Some(NamespaceOption {
                network: NAMESPACE_NODE,
                pid: pid_mode,
                ipc: NAMESPACE_POD,
                ..Default::default()
            }),
        }),
        ..Default::default()
    });
    let worker = cri
        .create_container(&pod, &config, &sandbox)
        .unwrap_or_else(|e| panic!("CreateContainer: {e}\n{}", cd.log()));
    cri.start_container(&worker).expect("StartContainer");
    log_lines(&logs.path().join("worker.log"), 1);
    let shim = cd.shim_pids()[0];
    // The forked shell may not have exec'd the sleep yet.
    let deadline = Instant::now() + Duration::from_secs(5);
    let child = loop {
        let found = proc::descendants(shim)
            .into_iter()
            .find(|p| proc::cmdline(*p) == "sleep 3001");
        match found {
            Some(pid) => break pid,
            None if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            None => panic!("the worker's child never ran under the shim"),
        }
    };

    let begun = Instant::now();
    cri.stop_pod_sandbox(&pod)
        .unwrap_or_else(|e| panic!("StopPodSandbox: {e}\n{}", cd.log()));
    cri.remove_pod_sandbox(&pod)
        .unwrap_or_else(|e| panic!("RemovePodSandbox: {e}\n{}", cd.log()));
    while proc::alive(shim) && begun.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let took = begun.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "stopping and removing the pod took {took:?}"
    );
    assert!(
        !proc::alive(child),
        "the worker's child {child} outlived its pod"
    );
    assert!(!proc::alive(shim), "the pod's shim {shim} is still running");
    assert_pod_left_nothing(&[&pod], &parent);
}

#[test]
fn a_pod_sharing_its_pid_namespace_stops_although_a_child_holds_stdout() {
    pod_stops_although_a_child_holds_stdout(NAMESPACE_POD, "shared-pid");
}

#[test]
fn a_pod_in_the_hosts_pid_namespace_stops_although_a_child_holds_stdout() {
    pod_stops_although_a_child_holds_stdout(NAMESPACE_NODE, "host-pid");
}
