//! What the CRI tests share: a containerd with the CRI plugin and runtime handler
//! `skiff`, container configs, reading the CRI log files, and the check that a removed
//! pod left no mount and no cgroup.

use super::api::*;
use super::CriClient;
use crate::containerd::{
    cgroup_bases, shim_binary, Containerd, Options, BUSYBOX_IMAGE, PAUSE_IMAGE,
};
use std::path::Path;
use std::time::{Duration, Instant};

/// A containerd with the CRI plugin (handler `skiff` for the shim under test), once its
/// CRI answers.
pub fn start_cri() -> (Containerd, CriClient) {
    let shim_dir = shim_binary().parent().unwrap().to_path_buf();
    let cd = Containerd::start_with(Options {
        // containerd finds io.containerd.NAME.v2 as containerd-shim-NAME-v2 on PATH.
        path_prefix: Some(shim_dir),
        cri_sandbox_image: Some(PAUSE_IMAGE.into()),
        ..Default::default()
    });
    let cri = CriClient::connect(&cd.socket).expect("connecting to the CRI socket");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match cri.version() {
            Ok(v) if v.runtime_name == "containerd" => break,
            other => assert!(
                Instant::now() < deadline,
                "the CRI plugin did not answer Version: {other:?}\n{}",
                cd.log()
            ),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    (cd, cri)
}

/// A pod named `name` in the `skiff-test` namespace, its cgroups under `parent`, its logs
/// in `logs`, with the namespaces `ns`.
pub fn pod_config(name: &str, parent: &str, logs: &Path, ns: NamespaceOption) -> PodSandboxConfig {
    PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: name.into(),
            uid: format!("uid-{name}-{}", std::process::id()),
            namespace: "skiff-test".into(),
            attempt: 0,
        }),
        log_directory: logs.to_string_lossy().into_owned(),
        linux: Some(LinuxPodSandboxConfig {
            cgroup_parent: parent.into(),
            security_context: Some(LinuxSandboxSecurityContext {
                namespace_options: Some(ns),
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A busybox container running `script` with `sh -c`, logging to `log`.
pub fn container(name: &str, script: &str, log: &str) -> ContainerConfig {
    ContainerConfig {
        metadata: Some(ContainerMetadata {
            name: name.into(),
            attempt: 0,
        }),
        image: Some(ImageSpec {
            image: BUSYBOX_IMAGE.into(),
        }),
        command: vec!["/bin/sh".into(), "-c".into(), script.into()],
        log_path: log.into(),
        ..Default::default()
    }
}

/// Waits for `path` to hold at least `n` lines; returns them.
pub fn log_lines(path: &Path, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        if lines.len() >= n {
            return lines;
        }
        assert!(
            Instant::now() < deadline,
            "{} holds {lines:?}, expected {n} lines",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A CRI log line: `<RFC 3339 time> <stream> <F|P> <text>`; returns (stream, text).
pub fn parse_cri_line(line: &str) -> (String, String) {
    let mut parts = line.splitn(4, ' ');
    let time = parts.next().unwrap_or_default();
    let stream = parts.next().unwrap_or_default();
    let tag = parts.next().unwrap_or_default();
    let text = parts.next().unwrap_or_default();
    assert!(
        time.len() >= 20 && time.as_bytes()[4] == b'-' && time.contains('T'),
        "not a CRI log time in {line:?}"
    );
    assert_eq!(tag, "F", "a full line in {line:?}");
    (stream.to_string(), text.to_string())
}

/// After a pod is removed: no mount names any of `ids`, and no cgroup is left under the
/// pod's cgroup parent in any hierarchy.
pub fn assert_pod_left_nothing(ids: &[&String], parent: &str) {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    for id in ids {
        assert!(
            !mountinfo.contains(id.as_str()),
            "a mount of {id} is left:\n{mountinfo}"
        );
    }
    for base in cgroup_bases() {
        let dir = base.join(parent.trim_start_matches('/'));
        let left: Vec<_> = std::fs::read_dir(&dir)
            .map(|e| {
                e.flatten()
                    .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
                    .map(|e| e.path())
                    .collect()
            })
            .unwrap_or_default();
        assert!(left.is_empty(), "cgroups of the pod are left: {left:?}");
    }
}
