//! A Kubernetes pod with a user namespace of its own (`hostUsers: false`), driven through
//! containerd 2.x's CRI as the kubelet drives it: the pod's uids and gids 0-65535 are
//! host ids from HOST_ID on. containerd hands the shim each rootfs as an overlay whose
//! options carry the mapping (`uidmap=0:HOST_ID:65536`), and the IO owner (HOST_ID) in
//! the runc options. What a user sees: the mapping inside, the image's files owned by 0
//! inside and by HOST_ID outside, what the container writes owned by HOST_ID on the
//! host's disk, its stdio reopenable inside (`/dev/stderr`), and logs, ExecSync, stats,
//! stop and remove as for any pod, leaving nothing behind; and the mappings the CRI
//! refuses refused at once.
//!
//! The pods use handler INLINE_HANDLER (the shim by path, with runc options inline): a
//! handler with a `ConfigPath` cannot start a user-namespaced container (README).
//!
//! It needs containerd 2.x and a runc that can make idmapped mounts (1.2 or later:
//! `make test` runs it with runc 1.5.1 under containerd 2.3, SKIFF_RUNC_BIN); with an
//! older runc or containerd it says why it does not apply. The libcontainer shim, whose
//! features say it has no idmapped mounts, must not be offered user namespaces.

use skiff_integration::bundle::TempDir;
use skiff_integration::containerd::{
    shim_uses_libcontainer, CgroupCleanup, Containerd, INLINE_HANDLER,
};
use skiff_integration::cri::api::*;
use skiff_integration::cri::pod::{
    assert_pod_left_nothing, container, log_lines, parse_cri_line, pod_config, start_cri,
};
use skiff_integration::cri::CriClient;
use skiff_integration::{proc, runc, skip};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The pod's first host id (the kubelet gives each pod a multiple of 65536), and how
/// many ids it has.
const HOST_ID: u32 = 65536 * 40;
const IDS: u32 = 65536;

/// Whether a user-namespaced pod can run here; says why not otherwise.
fn applies(test: &str) -> bool {
    let (major, _) = skiff_integration::containerd::version();
    if major < 2 {
        skip(
            test,
            "containerd before 2.0 has no CRI user namespaces with idmapped mounts",
        );
        return false;
    }
    if !shim_uses_libcontainer() && !runc::supports_idmap() {
        skip(
            test,
            &format!(
                "runc {} cannot make idmapped mounts (`runc features`); make test runs this with runc 1.5.1 under containerd 2.3",
                runc::version()
            ),
        );
        return false;
    }
    true
}

fn mapping(container_id: u32, host_id: u32, length: u32) -> IdMapping {
    IdMapping {
        host_id,
        container_id,
        length,
    }
}

/// The pod's own user namespace with the mapping the tests use.
fn pod_userns() -> UserNamespace {
    UserNamespace {
        mode: NAMESPACE_POD,
        uids: vec![mapping(0, HOST_ID, IDS)],
        gids: vec![mapping(0, HOST_ID, IDS)],
    }
}

/// Namespaces of a pod on the node's network (the tests have no CNI) with `userns`; its
/// containers share the pod's PID namespace, so a container's init is no namespace's
/// init, which SIGTERM would not end.
fn namespaces(userns: &UserNamespace) -> NamespaceOption {
    NamespaceOption {
        network: NAMESPACE_NODE,
        pid: NAMESPACE_POD,
        ipc: NAMESPACE_POD,
        userns_options: Some(userns.clone()),
    }
}

fn in_userns(mut config: ContainerConfig, userns: &UserNamespace) -> ContainerConfig {
    config.linux = Some(LinuxContainerConfig {
        security_context: Some(LinuxContainerSecurityContext {
            namespace_options: Some(namespaces(userns)),
        }),
        ..Default::default()
    });
    config
}

/// What the CRI tells the kubelet of the shim's handler: whether it may run pods with
/// their own user namespace.
fn offers_user_namespaces(cri: &CriClient, cd: &Containerd) -> bool {
    let status = cri
        .status()
        .unwrap_or_else(|e| panic!("Status: {e}\n{}", cd.log()));
    let handler = status
        .runtime_handlers
        .iter()
        .find(|h| h.name == INLINE_HANDLER)
        .unwrap_or_else(|| panic!("no handler skiff in {:?}", status.runtime_handlers));
    handler.features.as_ref().is_some_and(|f| f.user_namespaces)
}

/// The option `name=` of the mount at `point`, from this mount namespace's mountinfo.
fn mount_option(point: &Path, name: &str) -> Option<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let point = point.to_str()?;
    let line = info.lines().find(|l| l.split(' ').nth(4) == Some(point))?;
    let (_, fs) = line.split_once(" - ")?;
    let super_options = fs.split(' ').nth(2)?;
    super_options
        .split(',')
        .find_map(|o| o.strip_prefix(&format!("{name}=")).map(str::to_string))
}

fn owner(path: &Path) -> (u32, u32) {
    let m = std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (m.uid(), m.gid())
}

/// Files and directories under `dir` owned by one of the pod's host uids.
fn owned_by_the_pod(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let Ok(m) = e.path().symlink_metadata() else {
                continue;
            };
            if (HOST_ID..HOST_ID + IDS).contains(&m.uid()) {
                out.push(e.path());
            }
            if m.is_dir() {
                todo.push(e.path());
            }
        }
    }
    out
}

/// Entries of the shims' scratch directory for id-mapped layers.
fn scratch_entries() -> Vec<std::ffi::OsString> {
    std::fs::read_dir(skiff_mount::idmapped::SCRATCH_ROOT)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default()
}

/// Scratch entries not among `before`, once the mounts of other pods (the other test
/// runs beside this one) have had a moment to finish.
fn scratch_left(before: &[std::ffi::OsString]) -> Vec<std::ffi::OsString> {
    let new = || -> Vec<_> {
        scratch_entries()
            .into_iter()
            .filter(|e| !before.contains(e))
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !new().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    new()
}

#[test]
fn a_pod_with_its_own_user_namespace_runs_mapped() {
    if !applies("a_pod_with_its_own_user_namespace_runs_mapped") {
        return;
    }
    let (cd, cri) = start_cri();
    if shim_uses_libcontainer() {
        // libcontainer makes no idmapped mounts: containerd must not offer user
        // namespaces for it, as its features say.
        assert!(
            !offers_user_namespaces(&cri, &cd),
            "the libcontainer shim's handler offers user namespaces"
        );
        return;
    }
    assert!(
        offers_user_namespaces(&cri, &cd),
        "containerd does not offer user namespaces for skiff with runc {}:\n{}",
        runc::version(),
        cd.log()
    );
    let parent = format!("/skiff-cri-userns-{}", std::process::id());
    let _cgroups = CgroupCleanup(parent.clone());
    let logs = TempDir::new("skiff-cri-userns-logs").unwrap();
    let scratch_before = scratch_entries();
    let userns = pod_userns();
    let sandbox = pod_config("mapped", &parent, logs.path(), namespaces(&userns));
    let pod = cri
        .run_pod_sandbox(&sandbox, INLINE_HANDLER)
        .unwrap_or_else(|e| panic!("RunPodSandbox: {e}\n{}", cd.log()));
    let script = "cat /proc/self/uid_map; stat -c 'image %u:%g' /bin/busybox; \
                  echo reopened > /dev/stderr; echo mine > /written; \
                  stat -c 'written %u:%g' /written; exec sleep 3000";
    let config = in_userns(container("mapped", script, "mapped.log"), &userns);
    let id = cri
        .create_container(&pod, &config, &sandbox)
        .unwrap_or_else(|e| panic!("CreateContainer: {e}\n{}", cd.log()));
    cri.start_container(&id)
        .unwrap_or_else(|e| panic!("StartContainer: {e}\n{}", cd.log()));
    let shim = cd.shim_pids()[0];

    // Inside: the mapping; the image's files and what it writes are root's; its stderr
    // (a pipe of the shim's) reopens by path.
    let lines: Vec<(String, String)> = log_lines(&logs.path().join("mapped.log"), 4)
        .iter()
        .map(|l| parse_cri_line(l))
        .collect();
    let out = |stream: &str| -> Vec<String> {
        lines
            .iter()
            .filter(|(s, _)| s == stream)
            .map(|(_, t)| t.clone())
            .collect()
    };
    let stdout = out("stdout");
    let uid_map: Vec<&str> = stdout[0].split_whitespace().collect();
    assert_eq!(
        uid_map,
        ["0", &HOST_ID.to_string(), &IDS.to_string()],
        "uid_map inside: {stdout:?}"
    );
    assert_eq!(stdout[1], "image 0:0", "{stdout:?}");
    assert_eq!(stdout[2], "written 0:0", "{stdout:?}");
    assert_eq!(out("stderr"), ["reopened"], "{lines:?}");

    // Outside: the image's files through the rootfs, and the written file on the upper
    // layer's disk, belong to the pod's host ids.
    let rootfs = cd.bundle(&id).join("rootfs");
    assert_eq!(owner(&rootfs.join("bin/busybox")), (HOST_ID, HOST_ID));
    let upper = mount_option(&rootfs, "upperdir")
        .unwrap_or_else(|| panic!("no overlay at {}", rootfs.display()));
    assert_eq!(
        owner(&Path::new(&upper).join("written")),
        (HOST_ID, HOST_ID)
    );

    // ExecSync: root inside, in the mapping; its stderr reopens too.
    let r = cri
        .exec_sync(
            &id,
            &[
                "sh",
                "-c",
                "id -u; cat /proc/self/gid_map; echo e > /dev/stderr; exit 4",
            ],
            10,
        )
        .expect("ExecSync");
    let stdout = String::from_utf8_lossy(&r.stdout);
    let words: Vec<&str> = stdout.split_whitespace().collect();
    assert_eq!(words, ["0", "0", &HOST_ID.to_string(), &IDS.to_string()]);
    assert_eq!(String::from_utf8_lossy(&r.stderr), "e\n");
    assert_eq!(r.exit_code, 4);

    let stats = cri.container_stats(&id).expect("ContainerStats");
    let memory = stats.memory.unwrap_or_default();
    assert!(
        memory.working_set_bytes.map_or(0, |v| v.value) > 0
            || memory.usage_bytes.map_or(0, |v| v.value) > 0,
        "ContainerStats memory"
    );

    cri.stop_container(&id, 5).expect("StopContainer");
    let status = cri.container_status(&id).expect("ContainerStatus");
    assert_eq!(
        (status.state, status.exit_code),
        (CONTAINER_EXITED, 143),
        "{status:?}"
    );
    cri.remove_container(&id).expect("RemoveContainer");
    cri.stop_pod_sandbox(&pod).expect("StopPodSandbox");
    cri.remove_pod_sandbox(&pod).expect("RemovePodSandbox");
    let deadline = Instant::now() + Duration::from_secs(10);
    while proc::alive(shim) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!proc::alive(shim), "the pod's shim exited");
    assert_pod_left_nothing(&[&pod, &id], &parent);
    let left = scratch_left(&scratch_before);
    assert!(
        left.is_empty(),
        "the shim's scratch directory for id-mapped layers holds {left:?}"
    );
    for dir in [cd.dir().join("state"), cd.state_root(), logs.path().into()] {
        let left = owned_by_the_pod(&dir);
        assert!(left.is_empty(), "files of the pod's uids left: {left:?}");
    }
}

/// A RunPodSandbox the CRI must refuse: at once, with `says` in its error, and nothing
/// of the pod left.
fn refused(cd: &Containerd, cri: &CriClient, name: &str, userns: UserNamespace, says: &str) {
    let parent = format!("/skiff-cri-userns-{name}-{}", std::process::id());
    let _cgroups = CgroupCleanup(parent.clone());
    let logs = TempDir::new("skiff-cri-userns-logs").unwrap();
    let begun = Instant::now();
    let err = cri
        .run_pod_sandbox(
            &pod_config(name, &parent, logs.path(), namespaces(&userns)),
            INLINE_HANDLER,
        )
        .expect_err("a pod the CRI cannot make");
    let took = begun.elapsed();
    assert!(err.message.contains(says), "{name}: {says:?} not in {err}");
    assert!(
        took < Duration::from_secs(10),
        "{name}: refused after {took:?}"
    );
    assert!(cd.shim_pids().is_empty(), "{name}: a shim is left");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let under = cd.dir().join("state").display().to_string();
    assert!(
        !mounts.lines().any(|l| l.contains(&under)),
        "{name}: a mount is left under {under}"
    );
    assert_pod_left_nothing(&[], &parent);
}

#[test]
fn user_namespaces_the_cri_cannot_make_are_refused_at_once() {
    if !applies("user_namespaces_the_cri_cannot_make_are_refused_at_once")
        || shim_uses_libcontainer()
    {
        return;
    }
    let (cd, cri) = start_cri();
    let mut no_root = pod_userns();
    no_root.uids = vec![mapping(1, HOST_ID, IDS)];
    no_root.gids = vec![mapping(1, HOST_ID, IDS)];
    // runc's refusal, which the shim passes on.
    refused(&cd, &cri, "no-root", no_root, "no mapping found for uid 0");
    let mut two = pod_userns();
    two.uids.push(mapping(IDS, HOST_ID + IDS, IDS));
    refused(
        &cd,
        &cri,
        "two-ranges",
        two,
        "only one mapping line supported",
    );
    let mut own = pod_userns();
    own.mode = NAMESPACE_CONTAINER;
    refused(
        &cd,
        &cri,
        "container-mode",
        own,
        "unsupported user namespace mode",
    );
}
