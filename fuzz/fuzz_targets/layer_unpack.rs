//! Layers made from arbitrary input unpacked onto a fresh root, with a victim directory
//! beside the root that must stay byte- and mode-identical: any entry that reaches
//! outside the root is a crash. The input is lines `KIND PATH [TARGET] [MODE]` (KIND:
//! d directory, f file, l symlink, h hard link, p FIFO, in tar order; `@` in a target
//! is the victim's absolute path), so the fuzzer mutates layer shapes, not checksums.
//!
//! The harness runs in a mount namespace of its own, chrooted into a tmpfs where only
//! libFuzzer's corpus and artifact directories are bound in (at their own paths, so its
//! arguments still name them): an unpack that did escape could touch that tmpfs, not
//! the machine's files.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skiff_test_support::layer_tar::{layer, Entry};
use skiff_manager::limits::{Budget, Limits};
use skiff_test_support::tree_state;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

const ROOT: &str = "/root";
const VICTIM: &str = "/victim";

fn sandbox() -> &'static BTreeMap<PathBuf, tree_state::Entry> {
    static VICTIM_STATE: OnceLock<BTreeMap<PathBuf, tree_state::Entry>> = OnceLock::new();
    VICTIM_STATE.get_or_init(|| {
        use nix::mount::{mount, MsFlags};
        let none = None::<&str>;
        let cwd = std::env::current_dir().unwrap();
        let keep = libfuzzer_dirs();
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).expect("unshare (run as root)");
        mount(none, "/", none, MsFlags::MS_REC | MsFlags::MS_PRIVATE, none).unwrap();
        // One name for every run (each mounts its own tmpfs there, in its own namespace).
        let base = std::env::temp_dir().join("skiff-fuzz-unpack");
        std::fs::create_dir_all(&base).unwrap();
        mount(
            Some("tmpfs"),
            &base,
            Some("tmpfs"),
            MsFlags::empty(),
            Some("size=256m"),
        )
        .unwrap();
        let inside = |p: &Path| base.join(p.strip_prefix("/").unwrap());
        std::fs::create_dir_all(inside(Path::new("/proc"))).unwrap();
        mount(
            Some("proc"),
            &inside(Path::new("/proc")),
            Some("proc"),
            MsFlags::empty(),
            none,
        )
        .unwrap();
        for dir in &keep {
            std::fs::create_dir_all(inside(dir)).unwrap();
            mount(
                Some(dir.as_path()),
                &inside(dir),
                none,
                MsFlags::MS_BIND,
                none,
            )
            .unwrap();
        }
        std::fs::create_dir_all(inside(&cwd)).unwrap();
        nix::unistd::chroot(&base).unwrap();
        std::env::set_current_dir(&cwd).unwrap();
        std::fs::create_dir_all("/victim/sub").unwrap();
        std::fs::write("/victim/shadow", "root:secret\n").unwrap();
        std::fs::write("/victim/sub/file", "kept\n").unwrap();
        tree_state::of(Path::new(VICTIM))
    })
}

/// The directories libFuzzer writes to: its corpus arguments and -artifact_prefix.
fn libfuzzer_dirs() -> Vec<PathBuf> {
    let mut out = Vec::new();
    for a in std::env::args().skip(1) {
        let dir = match a.strip_prefix("-artifact_prefix=") {
            Some(prefix) => PathBuf::from(prefix),
            None if !a.starts_with('-') => PathBuf::from(&a),
            None => continue,
        };
        if let Ok(d) = std::fs::canonicalize(&dir) {
            if d.is_dir() {
                out.push(d);
            }
        }
    }
    out
}

/// The entries the input's lines describe.
fn entries(text: &str) -> Vec<(tar::EntryType, String, String, u32)> {
    let mut out = Vec::new();
    for line in text.lines().take(64) {
        let mut f = line.split(' ');
        let kind = match f.next() {
            Some("d") => tar::EntryType::Directory,
            Some("f") => tar::EntryType::Regular,
            Some("l") => tar::EntryType::Symlink,
            Some("h") => tar::EntryType::Link,
            Some("p") => tar::EntryType::Fifo,
            _ => continue,
        };
        let path = f.next().unwrap_or_default().to_string();
        let target = f.next().unwrap_or_default().replace('@', VICTIM);
        let mode = f
            .next()
            .and_then(|m| u32::from_str_radix(m, 8).ok())
            .unwrap_or(0o755);
        out.push((kind, path, target, mode));
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let before = sandbox();
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = entries(text);
    let list: Vec<Entry> = parsed
        .iter()
        .map(|(kind, path, target, mode)| {
            Entry::new(path, *kind)
                .link(target)
                .mode(*mode)
                .data(b"data")
        })
        .collect();
    let tar = layer(&list);
    let _ = std::fs::remove_dir_all(ROOT);
    std::fs::create_dir_all(ROOT).unwrap();
    let limits = Limits {
        max_entries: 1000,
        max_unpacked_size: 16 << 20,
        ..Limits::default()
    };
    let _ = skiff_manager::unpack::apply(Path::new(ROOT), &tar[..], &Budget::new(limits, 1 << 30));
    assert_eq!(
        &tree_state::of(Path::new(VICTIM)),
        before,
        "the layer reached the victim:\n{text}"
    );
});
