//! Id-mapped mounts as containerd 2.x hands them for a user-namespaced pod's rootfs, done
//! for real on this machine's filesystem (root only): an overlay whose lower layers show
//! their files under the mapped ids, a bind mount likewise, and bad input refused
//! leaving nothing mounted or created.

use skiff_mount::{idmapped::SCRATCH_ROOT, mount, mount_all, unmount_all};
use skiff_protos::mount::Mount;
use skiff_test_support::bundle::TempDir;
use std::fs;
use std::os::unix::fs::{chown, MetadataExt};
use std::path::Path;

/// The tests share the machine's scratch directory: one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        eprintln!("skipped: mounting needs root");
    }
    root
}

fn mount_of(type_: &str, source: &str, options: &[String]) -> Mount {
    Mount {
        type_: type_.into(),
        source: source.into(),
        options: options.to_vec(),
        ..Default::default()
    }
}

/// A layer directory holding `file`, owned by `uid`:`gid`.
fn layer(dir: &Path, name: &str, file: &str, uid: u32, gid: u32) -> String {
    let d = dir.join(name);
    fs::create_dir_all(&d).unwrap();
    fs::write(d.join(file), name).unwrap();
    chown(d.join(file), Some(uid), Some(gid)).unwrap();
    d.display().to_string()
}

/// Mount points whose path holds `needle`.
fn mounts_naming(needle: &str) -> Vec<String> {
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|point| point.contains(needle))
        .map(str::to_string)
        .collect()
}

fn scratch_entries() -> Vec<String> {
    fs::read_dir(SCRATCH_ROOT)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// What `f` finds, once what other processes (a shim mounting meanwhile) put there for a
/// moment has had time to go.
fn settled<T: Default + PartialEq>(f: impl Fn() -> T) -> T {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while f() != T::default() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    f()
}

/// Scratch directories that are there and were not `before`.
fn scratch_left(before: &[String]) -> Vec<String> {
    settled(|| {
        scratch_entries()
            .into_iter()
            .filter(|e| !before.contains(e))
            .collect()
    })
}

/// Id-mapped copies still attached in the scratch directory.
fn scratch_mounts() -> Vec<String> {
    settled(|| mounts_naming(SCRATCH_ROOT))
}

fn owner(path: &Path) -> (u32, u32) {
    let m = fs::metadata(path).unwrap();
    (m.uid(), m.gid())
}

#[test]
fn an_overlay_shows_its_lower_layers_under_the_mapped_ids() {
    if !is_root() {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = TempDir::new("skiff-idmap-overlay").unwrap();
    let lower1 = layer(dir.path(), "l1", "root-file", 0, 0);
    let lower2 = layer(dir.path(), "l2", "user-file", 1000, 1001);
    for d in ["upper", "work", "merged"] {
        fs::create_dir(dir.path().join(d)).unwrap();
    }
    let merged = dir.path().join("merged");
    let before = scratch_entries();
    let m = mount_of(
        "overlay",
        "overlay",
        &[
            "uidmap=0:100000:65536".into(),
            "gidmap=0:200000:65536".into(),
            format!("workdir={}", dir.path().join("work").display()),
            format!("upperdir={}", dir.path().join("upper").display()),
            format!("lowerdir={lower1}:{lower2}"),
        ],
    );
    mount_all(&[m], &merged).expect("mounting an id-mapped overlay");
    let seen = (
        owner(&merged.join("root-file")),
        owner(&merged.join("user-file")),
    );
    // The layers are unchanged underneath.
    let underneath = owner(&dir.path().join("l2/user-file"));
    let scratch_mounts = scratch_mounts();
    let scratch_after = scratch_left(&before);
    unmount_all(&merged).unwrap();

    assert_eq!(seen.0, (100000, 200000), "a file of 0:0 in the image");
    assert_eq!(seen.1, (101000, 201001), "a file of 1000:1001 in the image");
    assert_eq!(underneath, (1000, 1001));
    assert!(
        scratch_mounts.is_empty(),
        "the layers' copies were detached: {scratch_mounts:?}"
    );
    assert!(
        scratch_after.is_empty(),
        "the scratch directory was removed: {scratch_after:?}"
    );
}

#[test]
fn a_bind_mount_is_mapped_and_keeps_its_flags() {
    if !is_root() {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = TempDir::new("skiff-idmap-bind").unwrap();
    let source = layer(dir.path(), "src", "file", 0, 0);
    let target = dir.path().join("target");
    fs::create_dir(&target).unwrap();
    let m = mount_of(
        "bind",
        &source,
        &[
            "uidmap=0:100000:65536".into(),
            "gidmap=0:100000:65536".into(),
            "ro".into(),
            "rbind".into(),
        ],
    );
    mount(&m, &target).expect("an id-mapped bind mount");
    let seen = owner(&target.join("file"));
    let write = fs::write(target.join("new"), "x");
    unmount_all(&target).unwrap();
    assert_eq!(seen, (100000, 100000));
    let err = write.expect_err("the bind mount is read-only");
    assert_eq!(err.raw_os_error(), Some(libc::EROFS), "{err}");
}

#[test]
fn bad_mappings_and_layers_leave_nothing_behind() {
    if !is_root() {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = TempDir::new("skiff-idmap-bad").unwrap();
    let lower = layer(dir.path(), "l1", "file", 0, 0);
    for d in ["upper", "work", "merged"] {
        fs::create_dir(dir.path().join(d)).unwrap();
    }
    let merged = dir.path().join("merged");
    let before = scratch_entries();
    let overlay = |extra: &[&str], lowers: &str| {
        let mut o: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        o.push(format!("workdir={}", dir.path().join("work").display()));
        o.push(format!("upperdir={}", dir.path().join("upper").display()));
        o.push(format!("lowerdir={lowers}"));
        mount_of("overlay", "overlay", &o)
    };
    let cases = [
        (
            overlay(&["uidmap=0:100000:65536"], &lower),
            "without gidmap",
        ),
        (
            overlay(&["uidmap=0:100000", "gidmap=0:100000:1"], &lower),
            "CONTAINER:HOST:SIZE",
        ),
        (
            overlay(
                &["uidmap=0:100000:10,5:200000:10", "gidmap=0:100000:10"],
                &lower,
            ),
            "uid_map",
        ),
        (
            overlay(
                &["uidmap=0:100000:65536", "gidmap=0:100000:65536"],
                &format!("{lower}:{}/missing", dir.path().display()),
            ),
            "missing",
        ),
    ];
    for (m, says) in cases {
        let err = mount_all(&[m], &merged).expect_err("a bad id-mapped mount");
        assert!(err.to_string().contains(says), "{says:?} not in: {err}");
        assert!(
            mounts_naming(&dir.path().display().to_string()).is_empty(),
            "nothing is mounted after: {err}"
        );
        assert!(scratch_mounts().is_empty(), "after: {err}");
        assert_eq!(scratch_left(&before), Vec::<String>::new(), "after: {err}");
    }
}
