//! skiffd and skiff, part 1: image import (OCI layout and docker save), unpacking by the
//! OCI rules, refusal of bad archives without leftovers, crash consistency, containers
//! and the collection of what they and their images leave.

use skiff_integration::bundle::{busybox_rootfs, TempDir};
use skiff_integration::containerd::{busybox_archive, stderr};
use skiff_integration::proc;
use skiff_integration::skiffd::{assert_consistent, assert_empty, build_image, files, ok, Skiffd};
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const BUSYBOX: &str = "docker.io/library/busybox:latest";

/// The image's snapshot key, from `skiff image info`.
fn image_snapshot(d: &Skiffd, name: &str) -> String {
    let info: serde_json::Value =
        serde_json::from_str(&ok(&d.skiff(&["image", "info", name]))).unwrap();
    info["snapshot"].as_str().unwrap().to_string()
}

/// Mounts what `skiff snapshot view` returns on a fresh directory, as a shim would.
struct View {
    target: PathBuf,
}

impl View {
    fn of(d: &Skiffd, key: &str, parent: &str, at: &Path) -> View {
        let out = ok(&d.skiff(&["snapshot", "view", key, parent]));
        fs::create_dir_all(at).unwrap();
        for line in out.lines() {
            let mut f = line.splitn(3, ' ');
            let (kind, source, options) =
                (f.next().unwrap(), f.next().unwrap(), f.next().unwrap_or(""));
            let status = match kind {
                "bind" => Command::new("mount")
                    .arg("--rbind")
                    .arg(source)
                    .arg(at)
                    .status(),
                "overlay" => Command::new("mount")
                    .args(["-t", "overlay", "overlay", "-o", options])
                    .arg(at)
                    .status(),
                other => panic!("unexpected mount type {other}"),
            };
            assert!(status.unwrap().success(), "mounting {line}");
        }
        View {
            target: at.to_path_buf(),
        }
    }
}

impl Drop for View {
    fn drop(&mut self) {
        proc::detach_mount(&self.target);
    }
}

fn check_busybox_tree(root: &Path) {
    let bb = root.join("bin/busybox");
    let meta = fs::symlink_metadata(&bb).unwrap();
    assert!(meta.is_file());
    assert_eq!(meta.permissions().mode() & 0o7777, 0o755);
    assert_eq!(meta.len(), fs::metadata("/bin/busybox").unwrap().len());
    assert_eq!(
        fs::read_link(root.join("bin/sh")).unwrap(),
        PathBuf::from("busybox")
    );
    let tmp = fs::symlink_metadata(root.join("tmp")).unwrap();
    assert!(tmp.is_dir());
    assert_eq!(tmp.permissions().mode() & 0o7777, 0o1777);
    assert_eq!(
        fs::read_to_string(root.join("etc/passwd")).unwrap(),
        "root:x:0:0:root:/root:/bin/sh\n"
    );
    assert_eq!(meta.uid(), 0);
}

#[test]
fn imports_the_oci_and_docker_save_forms_into_the_same_tree() {
    let d = Skiffd::start();
    let tmp = TempDir::new("skiff-imp").unwrap();
    let out = ok(&d.skiff(&["image", "import", &busybox_archive().to_string_lossy()]));
    assert!(out.starts_with(BUSYBOX), "{out}");
    let view = View::of(
        &d,
        "look-oci",
        &image_snapshot(&d, BUSYBOX),
        &tmp.path().join("oci"),
    );
    check_busybox_tree(&view.target);

    let docker = tmp.path().join("docker.tar");
    let script = skiff_integration::containerd::workspace_dir()
        .join("integration/images/build-busybox-image.sh");
    let o = Command::new("bash")
        .arg(script)
        .arg("--docker")
        .arg(&docker)
        .arg("busybox:saved")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let out = ok(&d.skiff(&["image", "import", &docker.to_string_lossy()]));
    assert!(out.starts_with("docker.io/library/busybox:saved "), "{out}");
    let view2 = View::of(
        &d,
        "look-docker",
        &image_snapshot(&d, "docker.io/library/busybox:saved"),
        &tmp.path().join("docker"),
    );
    check_busybox_tree(&view2.target);
    // Same layer, same chain id: one committed snapshot serves both images.
    assert_eq!(
        image_snapshot(&d, BUSYBOX),
        image_snapshot(&d, "docker.io/library/busybox:saved")
    );
    let list = ok(&d.skiff(&["image", "ls"]));
    assert!(
        list.contains(BUSYBOX) && list.contains("busybox:saved"),
        "{list}"
    );
    let named = ok(&d.skiff(&[
        "image",
        "import",
        "--name",
        "example.com/renamed:1",
        &busybox_archive().to_string_lossy(),
    ]));
    assert!(named.starts_with("example.com/renamed:1 "), "{named}");
}

#[test]
fn whiteouts_and_opaque_directories_hide_lower_layers() {
    let d = Skiffd::start();
    let tmp = TempDir::new("skiff-wh").unwrap();
    let base = tmp.path().join("base");
    busybox_rootfs(&base).unwrap();
    fs::write(base.join("etc/motd"), "hello\n").unwrap();
    fs::create_dir_all(base.join("data")).unwrap();
    fs::write(base.join("data/a"), "a").unwrap();
    fs::write(base.join("data/b"), "b").unwrap();
    fs::create_dir_all(base.join("keep")).unwrap();
    fs::write(base.join("keep/x"), "x").unwrap();
    let top = tmp.path().join("top");
    fs::create_dir_all(top.join("etc")).unwrap();
    fs::create_dir_all(top.join("data")).unwrap();
    fs::write(top.join("etc/.wh.motd"), "").unwrap();
    fs::write(top.join("data/.wh..wh..opq"), "").unwrap();
    fs::write(top.join("data/c"), "c").unwrap();
    fs::write(top.join("added"), "new").unwrap();
    for (docker, name) in [
        (false, "example.com/wh:oci"),
        (true, "example.com/wh:docker"),
    ] {
        let archive = tmp.path().join(format!("{docker}.tar"));
        build_image(&archive, name, docker, &[&base, &top]);
        ok(&d.skiff(&["image", "import", &archive.to_string_lossy()]));
        let view = View::of(
            &d,
            &format!("look-{docker}"),
            &image_snapshot(&d, name),
            &tmp.path().join(format!("v{docker}")),
        );
        let root = &view.target;
        assert!(
            !root.join("etc/motd").exists(),
            "the whiteout did not remove etc/motd"
        );
        assert!(root.join("etc/passwd").exists());
        let mut data: Vec<String> = fs::read_dir(root.join("data"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        data.sort();
        assert_eq!(data, ["c"], "the opaque directory kept lower entries");
        assert_eq!(fs::read_to_string(root.join("keep/x")).unwrap(), "x");
        assert_eq!(fs::read_to_string(root.join("added")).unwrap(), "new");
        assert!(!root.join("data/.wh..wh..opq").exists() && !root.join("etc/.wh.motd").exists());
    }
}

/// A copy of the busybox OCI archive with one byte of its layer blob changed.
fn corrupt_copy(out: &Path) {
    let mut archive = tar::Archive::new(fs::File::open(busybox_archive()).unwrap());
    let mut builder = tar::Builder::new(fs::File::create(out).unwrap());
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let header = entry.header().clone();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut data).unwrap();
        if data.len() > 100_000 {
            data[50_000] ^= 0xff;
        }
        builder.append(&header, &data[..]).unwrap();
    }
    builder.finish().unwrap();
}

#[test]
fn bad_archives_fail_clearly_and_leave_nothing() {
    let d = Skiffd::start();
    let tmp = TempDir::new("skiff-bad").unwrap();
    let corrupt = tmp.path().join("corrupt.tar");
    corrupt_copy(&corrupt);
    let truncated = tmp.path().join("truncated.tar");
    let bytes = fs::read(busybox_archive()).unwrap();
    fs::write(&truncated, &bytes[..bytes.len() * 6 / 10]).unwrap();
    let text = tmp.path().join("notes.txt");
    fs::write(
        &text,
        "these are not the layers you are looking for\n".repeat(20),
    )
    .unwrap();
    for (file, expected) in [
        (&corrupt, "does not match its digest"),
        (&truncated, "truncated"),
        (&text, "is not an image archive"),
    ] {
        let o = d.skiff(&["image", "import", &file.to_string_lossy()]);
        assert!(
            !o.status.success(),
            "importing {} succeeded",
            file.display()
        );
        let err = stderr(&o);
        assert!(
            err.starts_with("skiff: importing ") && err.contains(expected),
            "{err}"
        );
        assert_eq!(err.lines().count(), 1, "not one line: {err}");
        assert_empty(&d, &file.display().to_string());
    }
    // A good import still works afterwards.
    ok(&d.skiff(&["image", "import", &busybox_archive().to_string_lossy()]));
    assert_consistent(&d);
}

/// Imports `archive`, kills skiffd once `now()` says so (or the import ended), starts
/// it again and checks the store; returns whether the image was complete.
fn crash_import(d: &mut Skiffd, archive: &Path, now: &dyn Fn() -> bool) -> bool {
    let mut import = d
        .skiff_command()
        .args(["image", "import"])
        .arg(archive)
        .spawn()
        .unwrap();
    while !now() && import.try_wait().unwrap().is_none() {
        std::thread::sleep(Duration::from_millis(1));
    }
    d.kill();
    let _ = import.wait();
    d.restart();
    assert_consistent(d);
    let done = ok(&d.skiff(&["image", "ls"])).contains("example.com/big:1");
    if done {
        ok(&d.skiff(&["image", "rm", "example.com/big:1"]));
        assert_empty(d, "after removing the image");
    }
    done
}

#[test]
fn a_crash_during_import_leaves_a_consistent_store() {
    let mut d = Skiffd::start();
    let tmp = TempDir::new("skiff-crash").unwrap();
    // A layer big enough that the kills land mid-import: 128 MiB of random bytes in
    // files of 16 MiB.
    let big = tmp.path().join("big");
    busybox_rootfs(&big).unwrap();
    fs::create_dir_all(big.join("data")).unwrap();
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "for i in $(seq 1 8); do head -c 16777216 /dev/urandom > {}/data/f$i; done",
            big.display()
        ))
        .status()
        .unwrap();
    assert!(status.success());
    let small = tmp.path().join("small");
    fs::create_dir_all(small.join("etc")).unwrap();
    fs::write(small.join("etc/extra"), "x").unwrap();
    let archive = tmp.path().join("big.tar");
    build_image(&archive, "example.com/big:1", false, &[&big, &small]);
    fs::remove_dir_all(&big).unwrap();
    // How long a whole import takes here, to spread the kills over its phases (blobs
    // into the content store, then layers unpacked into snapshots).
    let began = std::time::Instant::now();
    ok(&d.skiff(&["image", "import", &archive.to_string_lossy()]));
    let whole = began.elapsed().as_millis() as u64;
    ok(&d.skiff(&["image", "rm", "example.com/big:1"]));
    assert_empty(&d, "after the timing import");
    let mut outcomes = Vec::new();
    // Once while a blob is being written, once while a layer is unpacked (whatever
    // their share of the time), then spread over the whole import.
    let (ingest, mnt) = (d.root().join("content/ingest"), d.root().join("mnt"));
    let phases: [(&str, &dyn Fn() -> bool); 2] = [
        ("ingest", &|| !files(&ingest).is_empty()),
        ("unpack", &|| !proc::mounts_under(&mnt).is_empty()),
    ];
    for (phase, started) in phases {
        outcomes.push((phase.to_string(), crash_import(&mut d, &archive, started)));
    }
    for percent in [10u64, 30, 50, 60, 65, 70, 75, 80, 85, 90] {
        let delay_ms = whole * percent / 100;
        let began = std::time::Instant::now();
        let after = || began.elapsed() >= Duration::from_millis(delay_ms);
        outcomes.push((
            format!("{delay_ms} ms"),
            crash_import(&mut d, &archive, &after),
        ));
    }
    let log = d.log();
    eprintln!("a whole import: {whole} ms; kill after (ms, image complete): {outcomes:?}\nskiffd log:\n{log}");
    assert!(
        outcomes.iter().any(|(_, done)| !done),
        "no kill landed before the import finished: {outcomes:?}"
    );
    assert!(
        log.contains("partial ingest"),
        "no kill landed while blobs were written"
    );
    assert!(
        log.contains("dropped unfinished snapshot"),
        "no kill landed while a layer was unpacked"
    );
    // And the store still imports.
    ok(&d.skiff(&["image", "import", &archive.to_string_lossy()]));
    assert_consistent(&d);
}

#[test]
fn containers_are_created_labelled_listed_and_removed_with_their_snapshots() {
    let mut d = Skiffd::start();
    ok(&d.skiff(&["image", "import", &busybox_archive().to_string_lossy()]));
    ok(&d.skiff(&[
        "container",
        "create",
        "--label",
        "app=web",
        "--env",
        "X=1",
        BUSYBOX,
        "web1",
        "echo",
        "hi",
    ]));
    ok(&d.skiff(&["container", "create", "--label", "app=db", BUSYBOX, "db1"]));
    let dup = d.skiff(&["container", "create", BUSYBOX, "web1"]);
    assert!(
        !dup.status.success() && stderr(&dup).contains("already exists"),
        "{}",
        stderr(&dup)
    );
    let bad = d.skiff(&["container", "create", BUSYBOX, "../escape"]);
    assert!(
        !bad.status.success() && stderr(&bad).contains("is not valid"),
        "{}",
        stderr(&bad)
    );

    let all = ok(&d.skiff(&["container", "ls"]));
    assert!(all.contains("web1") && all.contains("db1"), "{all}");
    let web = ok(&d.skiff(&["container", "ls", "--label", "app=web"]));
    assert!(web.contains("web1") && !web.contains("db1"), "{web}");
    assert_eq!(
        ok(&d.skiff(&["container", "label", "web1", "tier=front", "app="])).trim(),
        "tier=front"
    );
    let info: serde_json::Value =
        serde_json::from_str(&ok(&d.skiff(&["container", "info", "web1"]))).unwrap();
    assert_eq!(info["labels"], serde_json::json!({"tier": "front"}));
    assert_eq!(info["image"], BUSYBOX);
    assert_eq!(info["runtime"], "io.containerd.skiff.v2");
    assert_eq!(
        info["spec"]["process"]["args"],
        serde_json::json!(["echo", "hi"])
    );
    assert!(info["spec"]["process"]["env"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!("X=1")));
    let db: serde_json::Value =
        serde_json::from_str(&ok(&d.skiff(&["container", "info", "db1"]))).unwrap();
    assert_eq!(
        db["spec"]["process"]["args"],
        serde_json::json!(["sh"]),
        "the image's Cmd is the default"
    );
    // Each container's snapshot is active, with the image's layers as parent.
    let mounts = ok(&d.skiff(&["snapshot", "mounts", "web1"]));
    assert!(
        mounts.contains("rw") || mounts.starts_with("overlay"),
        "{mounts}"
    );

    // Metadata survives a restart.
    d.restart();
    assert!(ok(&d.skiff(&["container", "ls"])).contains("web1"));
    assert_consistent(&d);

    ok(&d.skiff(&["container", "rm", "web1"]));
    let gone = d.skiff(&["container", "info", "web1"]);
    assert!(
        !gone.status.success() && stderr(&gone).contains("does not exist"),
        "{}",
        stderr(&gone)
    );
    // The image stays while db1 uses it, and after; its content goes with `image rm`.
    ok(&d.skiff(&["container", "rm", "db1"]));
    assert!(!files(&d.root().join("content/blobs/sha256")).is_empty());
    ok(&d.skiff(&["image", "rm", BUSYBOX]));
    assert_empty(&d, "after the last container and the image");
    let log_ok = d.stop().map(|s| s.success()).unwrap_or(false);
    assert!(
        log_ok,
        "skiffd did not stop cleanly on SIGTERM:\n{}",
        d.log()
    );
    assert!(!d.socket().exists(), "the socket remains after SIGTERM");
}

#[test]
fn removing_the_image_first_then_its_last_container_collects_everything() {
    let d = Skiffd::start();
    ok(&d.skiff(&["image", "import", &busybox_archive().to_string_lossy()]));
    ok(&d.skiff(&["container", "create", BUSYBOX, "c1"]));
    ok(&d.skiff(&["image", "rm", BUSYBOX]));
    // The layers stay: c1's snapshot stands on them.
    assert_eq!(files(&d.root().join("snapshots")).len(), 2);
    ok(&d.skiff(&["container", "rm", "c1"]));
    assert_empty(&d, "after the image and then its last container");
}

#[test]
fn the_native_snapshotter_unpacks_the_same_tree() {
    let d = Skiffd::start_with(&["--native-snapshots"]);
    let tmp = TempDir::new("skiff-native").unwrap();
    ok(&d.skiff(&["image", "import", &busybox_archive().to_string_lossy()]));
    assert!(ok(&d.skiff(&["container", "create", BUSYBOX, "n1"])).contains("n1"));
    let view = View::of(
        &d,
        "look",
        &image_snapshot(&d, BUSYBOX),
        &tmp.path().join("v"),
    );
    check_busybox_tree(&view.target);
    drop(view);
    let listed = ok(&d.skiff(&["snapshot", "mounts", "n1"]));
    assert!(
        listed.starts_with("bind "),
        "native snapshots are bind mounts: {listed}"
    );
}
