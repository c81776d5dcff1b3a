//! What confines a container's processes, as a user sets it through containerd (ctr):
//! the default seccomp profile of an exec'd process as well as of the init, the user
//! namespace an exec joins, volumes
//! with Kubernetes' propagation (rshared for Bidirectional, rslave for HostToContainer,
//! both with the rootfs propagation CRI sets beside them) and recursive read-only
//! volumes. Run with the shim under test (`SKIFF_SHIM`) under the containerd of
//! `SKIFF_CONTAINERD_BIN`: make test runs it with both shims under 1.6 and 2.3.

use skiff_integration::containerd::{stderr, stdout, Containerd};
use skiff_integration::volume::Volume;

/// `ctr task exec` of `args` in `id`: its stdout, or a failure with its stderr.
fn exec(cd: &Containerd, id: &str, exec_id: &str, args: &[&str]) -> String {
    let mut a = vec!["task", "exec", "--exec-id", exec_id, id];
    a.extend_from_slice(args);
    let out = cd.ctr(&a);
    assert!(out.status.success(), "exec {args:?}: {}", stderr(&out));
    stdout(&out)
}

fn status_field(status: &str, field: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_default()
        .trim()
        .to_string()
}

#[test]
fn an_exec_runs_under_the_containers_default_seccomp_profile() {
    let cd = Containerd::start();
    cd.run_detached("sc", &["--seccomp"], &["sleep", "300"]);
    let init = exec(&cd, "sc", "init", &["cat", "/proc/1/status"]);
    let own = exec(&cd, "sc", "own", &["sh", "-c", "cat /proc/$$/status"]);
    for (who, status) in [("the init", &init), ("an exec", &own)] {
        assert_eq!(status_field(status, "Seccomp"), "2", "{who}: {status}");
        assert_eq!(status_field(status, "Seccomp_filters"), "1", "{who}");
    }
    // The default profile refuses what a container without CAP_SYS_ADMIN may not do.
    let out = cd.ctr(&[
        "task",
        "exec",
        "--exec-id",
        "ns",
        "sc",
        "unshare",
        "-m",
        "true",
    ]);
    assert!(!out.status.success(), "unshare ran in an exec");
    cd.remove("sc");
}

#[test]
fn an_exec_joins_the_containers_user_namespace() {
    let cd = Containerd::start();
    // The container's root is another user of the host: it must reach the bundle.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(cd.dir(), std::fs::Permissions::from_mode(0o711)).unwrap();
    let map = "0:100000:65536";
    cd.run_detached(
        "userns",
        &["--uidmap", map, "--gidmap", map],
        &["sleep", "300"],
    );
    let init = exec(&cd, "userns", "init", &["cat", "/proc/1/uid_map"]);
    let own = exec(&cd, "userns", "own", &["sh", "-c", "cat /proc/$$/uid_map"]);
    cd.remove("userns");
    let squeeze = |m: &str| m.split_whitespace().collect::<Vec<_>>().join(" ");
    assert_eq!(squeeze(&init), "0 100000 65536");
    assert_eq!(
        squeeze(&own),
        squeeze(&init),
        "the exec is not in the container's user namespace"
    );
}

/// Runs `id` with `volume` bound on /mnt/vol with `options` (ctr's `:`-separated list),
/// allowed to mount, and the rootfs propagation given.
fn run_with_volume(cd: &Containerd, id: &str, volume: &Volume, options: &str, rootfs: &str) {
    let mount = format!(
        "type=bind,src={},dst=/mnt/vol,options={options}",
        volume.path().display()
    );
    let mut extra = vec!["--mount", &mount, "--cap-add", "CAP_SYS_ADMIN"];
    if !rootfs.is_empty() {
        extra.extend(["--rootfs-propagation", rootfs]);
    }
    cd.run_detached(id, &extra, &["sleep", "300"]);
}

fn mounted_in(cd: &Containerd, id: &str, exec_id: &str, point: &str) -> bool {
    exec(cd, id, exec_id, &["cat", "/proc/self/mountinfo"])
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(point))
}

/// Which way mounts went with a volume of `options` and that rootfs propagation: whether
/// the container saw a mount the host made below the volume once it ran, and whether
/// the host saw one the container made there.
fn propagation(id: &str, options: &str, rootfs: &str) -> (bool, bool) {
    let cd = Containerd::start();
    let volume = Volume::new().expect("a volume");
    run_with_volume(&cd, id, &volume, options, rootfs);
    volume.mount_late().expect("a mount on the host");
    let seen = mounted_in(&cd, id, "look", "/mnt/vol/late");
    let mount = ["mount", "-t", "tmpfs", "inner", "/mnt/vol/inner"];
    let mut args = vec!["task", "exec", "--exec-id", "mnt", id];
    args.extend(mount);
    let out = cd.ctr(&args);
    let host_sees = volume.host_sees_inner();
    cd.remove(id);
    volume.remove();
    assert!(
        out.status.success(),
        "mount in the container: {}",
        stderr(&out)
    );
    (seen, host_sees)
}

#[test]
fn a_bidirectional_volume_propagates_both_ways() {
    let (container_sees, host_sees) = propagation("bidi", "rbind:rshared", "rshared");
    assert!(container_sees, "the container did not see the host's mount");
    assert!(host_sees, "the host did not see the container's mount");
}

#[test]
fn a_host_to_container_volume_sees_the_hosts_mounts_and_keeps_its_own() {
    let (container_sees, host_sees) = propagation("h2c", "rbind:rslave", "rslave");
    assert!(container_sees, "the container did not see the host's mount");
    assert!(!host_sees, "the container's mount reached the host");
}

#[test]
fn a_recursive_read_only_volume_is_read_only_below_as_well() {
    let cd = Containerd::start();
    let volume = Volume::new().expect("a volume");
    run_with_volume(&cd, "rro", &volume, "rbind:rro", "");
    let write = |exec_id: &str, path: &str| {
        cd.ctr(&["task", "exec", "--exec-id", exec_id, "rro", "touch", path])
    };
    let top = write("top", "/mnt/vol/f");
    let below = write("below", "/mnt/vol/sub/f");
    cd.remove("rro");
    volume.remove();
    for (what, out) in [("the volume", top), ("its submount", below)] {
        assert!(!out.status.success(), "{what} was writable");
        assert!(
            stderr(&out).contains("Read-only file system"),
            "{what}: {}",
            stderr(&out)
        );
    }
}
