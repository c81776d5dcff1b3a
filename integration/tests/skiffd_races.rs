//! skiffd under racing clients and crashes: two task creations for one container, two
//! `skiff run -d` of one name, a crash at each point of a task's creation, imports
//! running beside creates and deletes, native copies beside other requests, and the
//! directories skiffd is pointed at but did not make.

use skiff_integration::bundle::{busybox_rootfs, TempDir};
use skiff_integration::containerd::{busybox_archive, stderr, stdout};
use skiff_integration::oci::{layer, layer_of_dir, Entry, Image};
use skiff_integration::proc;
use skiff_integration::skiffd::{built_binary, ok, Skiffd};
use skiff_protos::manager::{CreateTaskRequest, TaskRequest};
use skiff_protos::manager_ttrpc::TasksClient;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn with_busybox(extra: &[&str], env: &[(&str, &str)]) -> Skiffd {
    let d = Skiffd::start_env(extra, env);
    ok(&d.skiff(&["image", "import", &busybox_archive().to_string_lossy()]));
    d
}

/// Mounts under skiffd's bundles of container `id`.
fn bundle_mounts(d: &Skiffd, id: &str) -> Vec<std::path::PathBuf> {
    proc::mounts_under(&d.dir.path().join("state/bundles/default").join(id))
}

fn ps_status(d: &Skiffd, id: &str) -> String {
    let ps = ok(&d.skiff(&["ps"]));
    let line = ps
        .lines()
        .find(|l| l.split_whitespace().next() == Some(id))
        .unwrap_or_default();
    if line.contains("no task") {
        return "no task".into();
    }
    line.split_whitespace()
        .nth(2)
        .unwrap_or_default()
        .to_string()
}

/// The container's own files, through a process inside it.
fn assert_files_intact(d: &Skiffd, id: &str) {
    let o = d.skiff(&["exec", id, "cat", "/etc/passwd"]);
    assert_eq!(
        stdout(&o),
        "root:x:0:0:root:/root:/bin/sh\n",
        "{}",
        stderr(&o)
    );
}

#[test]
fn two_task_creations_for_one_container_one_fails_already_exists() {
    let d = with_busybox(&[], &[]);
    ok(&d.skiff(&["container", "create", "busybox", "twice", "sleep", "300"]));
    let address = format!("unix://{}", d.socket().display());
    let create = |delay: u64| {
        let address = address.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(delay));
            let client = TasksClient::new(ttrpc::Client::connect(&address).unwrap());
            let req = CreateTaskRequest {
                container_id: "twice".into(),
                detach: true,
                ..Default::default()
            };
            client.create_task(ttrpc::context::with_timeout(60_000_000_000), &req)
        })
    };
    // The second a little later, when the first's shim has mounted the rootfs.
    let (a, b) = (create(0), create(20));
    let results = [a.join().unwrap(), b.join().unwrap()];
    let codes: Vec<String> = results
        .iter()
        .map(|r| match r {
            Ok(_) => "ok".to_string(),
            Err(ttrpc::Error::RpcStatus(s)) => format!("{:?}: {}", s.code(), s.message()),
            Err(e) => e.to_string(),
        })
        .collect();
    assert!(codes.contains(&"ok".to_string()), "{codes:?}\n{}", d.log());
    assert!(
        codes.iter().any(|c| c.starts_with("ALREADY_EXISTS")),
        "{codes:?}"
    );
    assert_eq!(
        d.shim_pids_of(Some("twice")).len(),
        1,
        "a second shim: {codes:?}"
    );
    assert_eq!(
        bundle_mounts(&d, "twice").len(),
        1,
        "{:?}",
        bundle_mounts(&d, "twice")
    );
    let client = TasksClient::new(ttrpc::Client::connect(&address).unwrap());
    let req = TaskRequest {
        container_id: "twice".into(),
        ..Default::default()
    };
    client
        .start_task(ttrpc::context::with_timeout(60_000_000_000), &req)
        .unwrap();
    assert_files_intact(&d, "twice");
    ok(&d.skiff(&["rm", "-f", "twice"]));
}

/// DeleteContainer while its task is being created, the delete sent at 0 to 60 ms into
/// the creation (the shim starting, creating the task): one of them fails, and whichever
/// wins, nothing of the other is left (no task without a container, no shim, no mount).
#[test]
fn deleting_a_container_while_its_task_is_created_leaves_one_consistent_outcome() {
    let d = with_busybox(&[], &[]);
    let address = format!("unix://{}", d.socket().display());
    for delay in (0..=60).step_by(5) {
        let id = format!("raced-{delay}");
        ok(&d.skiff(&["container", "create", "busybox", &id, "sleep", "300"]));
        let create = {
            let (address, id) = (address.clone(), id.clone());
            std::thread::spawn(move || {
                let client = TasksClient::new(ttrpc::Client::connect(&address).unwrap());
                let req = CreateTaskRequest {
                    container_id: id,
                    detach: true,
                    ..Default::default()
                };
                client
                    .create_task(ttrpc::context::with_timeout(60_000_000_000), &req)
                    .is_ok()
            })
        };
        std::thread::sleep(Duration::from_millis(delay));
        let deleted = d.skiff(&["container", "rm", &id]).status.success();
        let created = create.join().unwrap();
        assert!(
            created != deleted,
            "{id}: created {created}, deleted {deleted}"
        );
        if created {
            assert_eq!(ps_status(&d, &id), "created", "{id}");
            ok(&d.skiff(&["rm", "-f", &id]));
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while !d.shim_pids_of(Some(&id)).is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(d.shim_pids_of(Some(&id)).is_empty(), "{id}: a shim is left");
        assert!(bundle_mounts(&d, &id).is_empty(), "{id}: mounts are left");
        assert_eq!(ok(&d.skiff(&["ps"])).lines().count(), 1, "{id}");
    }
}

#[test]
fn two_skiff_run_d_of_one_name_one_fails_already_exists() {
    let d = with_busybox(&[], &[]);
    let run = || {
        d.skiff_command()
            .args(["run", "-d", "--name", "same", "busybox", "sleep", "300"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (run(), run());
    let outs = [a.wait_with_output().unwrap(), b.wait_with_output().unwrap()];
    let won = outs.iter().filter(|o| o.status.success()).count();
    assert_eq!(won, 1, "{:?}", outs.iter().map(stderr).collect::<Vec<_>>());
    let lost = outs.iter().find(|o| !o.status.success()).unwrap();
    assert!(stderr(lost).contains("already exists"), "{}", stderr(lost));
    assert_eq!(ps_status(&d, "same"), "running");
    assert_eq!(d.shim_pids_of(Some("same")).len(), 1);
    assert_eq!(bundle_mounts(&d, "same").len(), 1);
    assert_files_intact(&d, "same");
    ok(&d.skiff(&["rm", "-f", "same"]));
}

/// skiffd killed (SKIFFD_CRASH_AT) after claiming the task, after the shim started,
/// and after the shim created the task: the next start takes it all away, and the
/// container runs a task again.
#[test]
fn a_crash_at_any_point_of_a_task_creation_is_cleaned_up_at_the_next_start() {
    for point in [
        "create-task:claimed",
        "create-task:started",
        "create-task:created",
    ] {
        let mut d = with_busybox(&[], &[("SKIFFD_CRASH_AT", point)]);
        let o = d.skiff(&["run", "-d", "--name", "c", "busybox", "sleep", "300"]);
        assert!(!o.status.success(), "{point}: skiffd did not crash");
        d.restart_after_crash();
        assert!(
            d.log()
                .contains(&format!("SKIFFD_CRASH_AT={point}: crashing here")),
            "{point}"
        );
        assert!(
            d.log()
                .contains("discarded the unfinished task of default/c"),
            "{point}:\n{}",
            d.log()
        );
        assert_eq!(ps_status(&d, "c"), "no task", "{point}");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !d.shim_pids_of(Some("c")).is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(
            d.shim_pids_of(Some("c")).is_empty(),
            "{point}: a shim nobody knows"
        );
        assert!(bundle_mounts(&d, "c").is_empty(), "{point}: mounts left");
        ok(&d.skiff(&["rm", "c"]));
        ok(&d.skiff(&["run", "-d", "--name", "c", "busybox", "sleep", "300"]));
        assert_files_intact(&d, "c");
        ok(&d.skiff(&["rm", "-f", "c"]));
    }
}

/// `--address` in a directory that exists (here one like /tmp, 1777): skiffd leaves it
/// as it is; what it makes itself is 0700.
#[test]
fn directories_skiffd_did_not_make_keep_their_mode() {
    let tmp = TempDir::new("skiffd-dirs").unwrap();
    let shared = tmp.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let socket = shared.join("skiffd.sock");
    let mut child = Command::new(built_binary("skiffd"))
        .arg("--root")
        .arg(tmp.path().join("made/root"))
        .arg("--state")
        .arg(tmp.path().join("made/state"))
        .arg("--address")
        .arg(&socket)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    // Polled tightly: a socket first bound with the umask's mode and chmod-ed after
    // is seen in that window.
    while !socket.exists() && Instant::now() < deadline {
        std::thread::yield_now();
    }
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().mode() & 0o7777;
    let seen = (mode(&shared), mode(&tmp.path().join("made")), mode(&socket));
    proc::terminate(&mut child, Duration::from_secs(10));
    assert_eq!(
        seen,
        (0o1777, 0o700, 0o600),
        "(existing dir, made dir, socket)"
    );
}

/// Creates and deletes of other containers finish while a large import is unpacking.
#[test]
fn imports_do_not_hold_back_creates_and_deletes() {
    let d = with_busybox(&[], &[]);
    ok(&d.skiff(&["container", "create", "busybox", "old"]));
    let tmp = TempDir::new("skiffd-busy").unwrap();
    let base = tmp.path().join("base");
    busybox_rootfs(&base).unwrap();
    let noise: Vec<u8> = (0..256u64 << 20)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let a = tmp.path().join("big.tar");
    let big = layer(&[Entry::new("noise", tar::EntryType::Regular).data(&noise)]);
    Image {
        name: "example.com/big:1".into(),
        layers: vec![layer_of_dir(&base), big],
        ..Default::default()
    }
    .write(&a);
    drop(noise);
    let mut import = d
        .skiff_command()
        .args(["image", "import"])
        .arg(&a)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    // Unpacking has begun once a snapshot is mounted under the root's mnt/.
    let deadline = Instant::now() + Duration::from_secs(60);
    while proc::mounts_under(&d.root().join("mnt")).is_empty() {
        assert!(
            Instant::now() < deadline && import.try_wait().unwrap().is_none(),
            "the import never unpacked"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    ok(&d.skiff(&["container", "create", "busybox", "new"]));
    ok(&d.skiff(&["container", "rm", "old"]));
    let still_importing = import.try_wait().unwrap().is_none();
    assert!(import.wait().unwrap().success());
    assert!(
        still_importing,
        "the create and delete waited for the import"
    );
}

/// Pids of `cp` processes skiffd started (the native snapshotter's copies).
fn copies_of(skiffd: u32) -> Vec<u32> {
    proc::children(skiffd)
        .into_iter()
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/comm"))
                .map(|c| c.trim() == "cp")
                .unwrap_or(false)
        })
        .collect()
}

/// With the native snapshotter a container's snapshot is a copy of its image; while
/// one is copied, other requests are answered.
#[test]
fn native_copies_do_not_hold_back_other_requests() {
    let d = Skiffd::start_with(&["--native-snapshots"]);
    let tmp = TempDir::new("skiffd-copy").unwrap();
    let base = tmp.path().join("base");
    busybox_rootfs(&base).unwrap();
    let names: Vec<String> = (0..10_000).map(|i| format!("many/{i}")).collect();
    let mut entries = vec![Entry::new("many/", tar::EntryType::Directory)];
    entries.extend(
        names
            .iter()
            .map(|n| Entry::new(n, tar::EntryType::Regular).data(b"x")),
    );
    let a = tmp.path().join("many.tar");
    Image {
        name: "example.com/many:1".into(),
        layers: vec![layer_of_dir(&base), layer(&entries)],
        ..Default::default()
    }
    .write(&a);
    ok(&d.skiff(&["image", "import", &a.to_string_lossy()]));
    let mut create = d
        .skiff_command()
        .args(["container", "create", "example.com/many:1", "copy"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let cp = loop {
        if let Some(p) = copies_of(d.pid()).first() {
            break *p;
        }
        assert!(
            Instant::now() < deadline && create.try_wait().unwrap().is_none(),
            "no copy seen"
        );
        std::thread::sleep(Duration::from_millis(2));
    };
    ok(&d.skiff(&["image", "ls"]));
    let copying = proc::alive(cp);
    assert!(create.wait().unwrap().success());
    assert!(copying, "`skiff image ls` waited for the copy");
}

/// Issue 31: skiffd's socket in a directory anyone can write (1777), where another user
/// made `fifo/` first. The CLI made its FIFOs there (`<socket dir>/fifo/`), so that user
/// could swap one for a symlink before the shim opened it as root. Now they go into the
/// FIFO directory skiffd made in its state directory: root's, 0700, and the attacker's
/// directory never sees one.
#[test]
fn the_cli_makes_its_fifos_only_where_root_alone_can_change_them() {
    let tmp = TempDir::new("skiffd-fifo-dir").unwrap();
    let shared = tmp.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let theirs = shared.join("fifo");
    std::fs::create_dir(&theirs).unwrap();
    std::os::unix::fs::chown(&theirs, Some(1000), Some(1000)).unwrap();
    std::fs::set_permissions(&theirs, std::fs::Permissions::from_mode(0o777)).unwrap();
    let mut d = Skiffd::start_at(&shared.join("skiffd.sock"), &[]);
    ok(&d.skiff(&["image", "import", &busybox_archive().to_string_lossy()]));
    let run = d
        .skiff_command()
        .args([
            "run",
            "--rm",
            "--name",
            "f",
            "busybox",
            "sh",
            "-c",
            "sleep 2; echo hi",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // While it runs: the FIFOs the CLI holds open, and what the attacker's directory holds.
    let deadline = Instant::now() + Duration::from_millis(1500);
    let mut seen_theirs = std::collections::BTreeSet::new();
    let mut fifo_dirs = std::collections::BTreeSet::new();
    while Instant::now() < deadline {
        seen_theirs.extend(walk(&theirs));
        for fd in std::fs::read_dir(format!("/proc/{}/fd", run.id()))
            .into_iter()
            .flatten()
            .flatten()
        {
            if let Ok(target) = std::fs::read_link(fd.path()) {
                if target.ends_with("stdout") || target.ends_with("stderr") {
                    // (directory, its uid and mode, its parent's uid and mode)
                    let dir = target.parent().unwrap();
                    let m = |d: &std::path::Path| {
                        std::fs::metadata(d)
                            .map(|m| (m.uid(), m.mode() & 0o7777))
                            .ok()
                    };
                    fifo_dirs.insert((dir.to_path_buf(), m(dir), m(dir.parent().unwrap())));
                }
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = run.wait_with_output().unwrap();
    assert_eq!(stdout(&o), "hi\n", "{}", stderr(&o));
    assert!(
        seen_theirs.is_empty(),
        "the CLI made FIFOs in another user's directory: {seen_theirs:?}"
    );
    assert!(!fifo_dirs.is_empty(), "no FIFO was seen open");
    for (dir, own, parent) in fifo_dirs {
        assert!(!dir.starts_with(&theirs), "{}", dir.display());
        assert_eq!(
            (own, parent),
            (Some((0, 0o700)), Some((0, 0o700))),
            "{} and its parent are not root's alone",
            dir.display()
        );
    }
    // A killed CLI's FIFOs stay until skiffd starts again.
    let ghost = d.dir.path().join("state/fifo/ghost-2147483647");
    std::fs::create_dir(&ghost).unwrap();
    d.restart();
    assert!(!ghost.exists(), "a dead CLI's FIFO directory stayed");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        out.push(e.path());
        if e.path().is_dir() {
            out.extend(walk(&e.path()));
        }
    }
    out
}
