//! skiffd and hostile or oversized images: layers that try to reach outside their
//! snapshot (checked against a victim directory outside skiffd's root, which must stay
//! byte- and mode-identical), the import limits, deep indexes, blobs of another
//! namespace, large unreferenced entries, many layers, and data synced before commit.

use skiff_integration::bundle::{busybox_rootfs, TempDir};
use skiff_integration::containerd::{stderr, stdout};
use skiff_integration::oci::{layer, layer_of_dir, Entry, Image};
use skiff_integration::skiffd::{assert_consistent, assert_empty, files, ok, Skiffd};
use skiff_test_support::tree_state;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use tar::EntryType::*;

fn import(d: &Skiffd, archive: &Path) -> Output {
    d.skiff(&["image", "import", &archive.to_string_lossy()])
}

/// A directory outside skiffd's root with a file and a subdirectory in it.
fn victim(tmp: &TempDir) -> PathBuf {
    let v = tmp.path().join("victim");
    fs::create_dir_all(v.join("sub")).unwrap();
    fs::write(v.join("shadow"), "root:secret\n").unwrap();
    fs::set_permissions(v.join("shadow"), fs::Permissions::from_mode(0o640)).unwrap();
    fs::write(v.join("sub/file"), "kept\n").unwrap();
    v
}

fn archive(tmp: &TempDir, file: &str, layers: Vec<Vec<u8>>) -> PathBuf {
    let out = tmp.path().join(file);
    Image {
        name: format!("example.com/{}:1", file.trim_end_matches(".tar")),
        layers,
        ..Default::default()
    }
    .write(&out);
    out
}

/// The three escapes of issue 22 and whiteouts through a symlink out: each imports (the
/// tree inside the snapshot is theirs to shape) and the victim is exactly as it was.
#[test]
fn hostile_layers_never_touch_a_directory_outside_the_root() {
    let d = Skiffd::start();
    let tmp = TempDir::new("skiffd-escape").unwrap();
    let v = victim(&tmp);
    let before = tree_state::of(&v);
    let vs = v.display().to_string();
    let shadow = format!("{vs}/shadow");
    let escapes: Vec<(&str, Vec<Entry>)> = vec![
        (
            "opaque",
            vec![
                Entry::new("x", Symlink).link(&vs),
                Entry::new("x/.wh..wh..opq", Regular),
            ],
        ),
        (
            "dirmeta",
            vec![
                Entry::new("a/", Directory),
                Entry::new("a/shadow/", Directory).mode(0o777).uid(1000),
                Entry::new("a", Symlink).link(&vs),
            ],
        ),
        (
            "hardlink",
            vec![
                Entry::new("s", Symlink).link(&shadow),
                Entry::new("h", Link).link("s").mode(0o777),
            ],
        ),
        (
            "whiteout",
            vec![
                Entry::new("y", Symlink).link(&vs),
                Entry::new("y/.wh.shadow", Regular),
            ],
        ),
    ];
    for (name, entries) in escapes {
        let a = archive(&tmp, &format!("{name}.tar"), vec![layer(&entries)]);
        let o = import(&d, &a);
        assert_eq!(
            tree_state::of(&v),
            before,
            "{name}: the victim changed ({})",
            stderr(&o)
        );
        assert!(o.status.success(), "{name}: {}", stderr(&o));
    }
    assert_consistent(&d);
}

/// `.wh..` would hide the directory it is in, `.wh...` its parent (at the top, the
/// whole snapshot): refused, and the failed import leaves nothing.
#[test]
fn whiteouts_of_a_directory_itself_or_its_parent_are_refused() {
    let d = Skiffd::start();
    let tmp = TempDir::new("skiffd-dots").unwrap();
    for bad in [".wh..", ".wh...", "etc/.wh.."] {
        let a = archive(
            &tmp,
            "dots.tar",
            vec![
                layer(&[
                    Entry::new("etc/", Directory),
                    Entry::new("etc/motd", Regular).data(b"hi"),
                ]),
                layer(&[Entry::new(bad, Regular)]),
            ],
        );
        let o = import(&d, &a);
        assert!(!o.status.success(), "{bad} imported");
        assert!(
            stderr(&o).contains("a whiteout that names no entry"),
            "{bad}: {}",
            stderr(&o)
        );
        assert_empty(&d, bad);
    }
}

/// Each limit, set low, stops an import that goes over it with its flag named, and
/// leaves nothing behind.
#[test]
fn import_limits_stop_imports_with_the_limit_named() {
    let d = Skiffd::start_with(&[
        "--max-layers",
        "3",
        "--max-metadata-size",
        "64k",
        "--max-entries",
        "1500",
        "--max-unpacked-size",
        "4m",
        "--max-index-depth",
        "3",
        "--max-expansion-ratio",
        "10",
    ]);
    let tmp = TempDir::new("skiffd-limits").unwrap();
    let small = || layer(&[Entry::new("f", Regular).data(b"x")]);
    let names: Vec<String> = (0..1600).map(|i| format!("n{i}")).collect();
    let many: Vec<Entry> = names.iter().map(|n| Entry::new(n, Regular)).collect();
    let zeros = vec![0u8; 8 << 20];
    let cases: Vec<(&str, Image)> = vec![
        (
            "--max-layers 3",
            Image {
                layers: (0..4).map(|_| small()).collect(),
                ..Default::default()
            },
        ),
        (
            "--max-metadata-size 65536",
            Image {
                layers: vec![small()],
                config_padding: 100_000,
                ..Default::default()
            },
        ),
        (
            "--max-entries 1500",
            Image {
                layers: vec![layer(&many)],
                ..Default::default()
            },
        ),
        (
            "--max-unpacked-size 4194304",
            Image {
                layers: vec![layer(&[Entry::new("z", Regular).data(&zeros)])],
                ..Default::default()
            },
        ),
        (
            "--max-index-depth 3",
            Image {
                layers: vec![small()],
                nested_indexes: 4,
                ..Default::default()
            },
        ),
    ];
    for (flag, mut image) in cases {
        image.name = "example.com/limited:1".into();
        let a = tmp.path().join("limited.tar");
        image.write(&a);
        let o = import(&d, &a);
        assert!(!o.status.success(), "{flag}: imported");
        assert!(
            stderr(&o).contains(&format!("over the import limit {flag}")),
            "{flag}: {}",
            stderr(&o)
        );
        assert_empty(&d, flag);
    }
    // 100 MiB of zeros gzipped to a few hundred KiB: far over 10 times the archive.
    let d = Skiffd::start_with(&["--max-expansion-ratio", "10"]);
    let big = vec![0u8; 100 << 20];
    let a = tmp.path().join("ratio.tar");
    Image {
        name: "example.com/ratio:1".into(),
        layers: vec![layer(&[Entry::new("z", Regular).data(&big)])],
        gzip: true,
        ..Default::default()
    }
    .write(&a);
    let o = import(&d, &a);
    assert!(
        stderr(&o).contains("over the import limit --max-expansion-ratio 10"),
        "{}",
        stderr(&o)
    );
    assert_empty(&d, "ratio");
}

#[test]
fn ten_thousand_nested_indexes_give_an_error_not_a_crash() {
    let mut d = Skiffd::start();
    let tmp = TempDir::new("skiffd-nested").unwrap();
    let a = tmp.path().join("nested.tar");
    Image {
        name: "example.com/nested:1".into(),
        layers: vec![layer(&[Entry::new("f", Regular)])],
        nested_indexes: 10_000,
        ..Default::default()
    }
    .write(&a);
    let o = import(&d, &a);
    assert!(d.running(), "skiffd died:\n{}", d.log());
    assert!(
        stderr(&o).contains("indexes nest deeper: over the import limit --max-index-depth 16"),
        "{}",
        stderr(&o)
    );
    assert_empty(&d, "nested");
}

/// An archive in namespace B may not name namespace A's blobs by digest without
/// carrying them; B's content listing shows none of A's.
#[test]
fn a_namespace_gets_no_blob_of_another_by_its_digest() {
    let d = Skiffd::start();
    let tmp = TempDir::new("skiffd-ns").unwrap();
    let secret = layer(&[Entry::new("secret", Regular).data(b"namespace a only\n")]);
    let a_archive = archive(&tmp, "a.tar", vec![secret.clone()]);
    ok(&d.skiff(&["-n", "a", "image", "import", &a_archive.to_string_lossy()]));
    let b_archive = tmp.path().join("b.tar");
    let layer_digest = skiff_integration::oci::digest(&secret);
    Image {
        name: "example.com/b:1".into(),
        layers: vec![secret],
        left_out: vec![layer_digest.clone()],
        ..Default::default()
    }
    .write(&b_archive);
    let o = d.skiff(&["-n", "b", "image", "import", &b_archive.to_string_lossy()]);
    assert!(
        !o.status.success(),
        "namespace b got namespace a's layer by its digest"
    );
    assert!(
        stderr(&o).contains(&format!("lacks layer {layer_digest}")),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        ok(&d.skiff(&["-n", "b", "content", "ls"])).lines().count(),
        1,
        "b lists a's content"
    );
    assert!(ok(&d.skiff(&["-n", "a", "content", "ls"])).contains(&layer_digest));
}

/// 2,000 entries of 4 MiB of zeros that no image names (8 GiB, as holes on disk): read
/// through, neither held in memory nor kept.
#[test]
fn large_unreferenced_entries_are_neither_held_in_memory_nor_kept() {
    let d = Skiffd::start();
    let tmp = TempDir::new("skiffd-zeros").unwrap();
    let base = tmp.path().join("base");
    busybox_rootfs(&base).unwrap();
    let a = tmp.path().join("zeros.tar");
    Image {
        name: "example.com/zeros:1".into(),
        layers: vec![layer_of_dir(&base)],
        zero_files: (2000, 4 << 20),
        ..Default::default()
    }
    .write(&a);
    ok(&import(&d, &a));
    let peak = d.peak_rss_kib();
    skiff_integration::report(&format!(
        "skiffd peak RSS importing 2,000 x 4 MiB unreferenced entries: {} KiB",
        peak
    ));
    assert!(peak < 64 * 1024, "skiffd's peak RSS was {peak} KiB");
    // Three blobs: the layer, the config, the manifest.
    assert_eq!(files(&d.root().join("content/blobs/sha256")).len(), 3);
    assert_consistent(&d);
}

/// A hundred layers: the overlay options of the container's rootfs are far over a page.
#[test]
fn a_hundred_layer_image_imports_and_runs() {
    let d = Skiffd::start();
    let tmp = TempDir::new("skiffd-layers").unwrap();
    let base = tmp.path().join("base");
    busybox_rootfs(&base).unwrap();
    let mut layers = vec![layer_of_dir(&base)];
    let names: Vec<String> = (1..100).map(|i| format!("layers/{i:03}")).collect();
    for n in &names {
        layers.push(layer(&[
            Entry::new("layers/", Directory),
            Entry::new(n, Regular).data(n.as_bytes()),
        ]));
    }
    let a = tmp.path().join("hundred.tar");
    Image {
        name: "example.com/hundred:1".into(),
        layers,
        gzip: true,
        ..Default::default()
    }
    .write(&a);
    ok(&import(&d, &a));
    let o = d.skiff(&[
        "run",
        "--rm",
        "--name",
        "h",
        "example.com/hundred:1",
        "sh",
        "-c",
        "ls /layers | wc -l; cat /layers/001 /layers/099",
    ]);
    assert_eq!(stdout(&o), "99\nlayers/001layers/099", "{}", stderr(&o));
    assert_eq!(o.status.code(), Some(0));
}

fn dirty_pages(path: &Path) -> u64 {
    // cachestat(2) (Linux 6.5): the file's page cache, dirty pages among it.
    #[repr(C)]
    #[derive(Default)]
    struct Range {
        off: u64,
        len: u64,
    }
    #[repr(C)]
    #[derive(Default)]
    struct Stat {
        cache: u64,
        dirty: u64,
        writeback: u64,
        evicted: u64,
        recently_evicted: u64,
    }
    use std::os::fd::AsRawFd;
    let f = fs::File::open(path).unwrap();
    let (range, mut st) = (Range::default(), Stat::default());
    // SAFETY: cachestat(2) on an open file, with a range and a result struct of the
    // kernel's layout.
    let rc = unsafe { libc::syscall(451, f.as_raw_fd(), &range, &mut st, 0) };
    assert_eq!(rc, 0, "cachestat: {}", std::io::Error::last_os_error());
    st.dirty + st.writeback
}

/// An unpacked layer is on disk when its snapshot commits: none of its file's pages is
/// still dirty in the page cache after the import.
#[test]
fn unpacked_files_are_synced_before_their_snapshot_commits() {
    let d = Skiffd::start();
    let tmp = TempDir::new("skiffd-sync").unwrap();
    let data: Vec<u8> = (0..(8u32 << 20)).map(|i| (i % 251) as u8 + 1).collect();
    let a = archive(
        &tmp,
        "synced.tar",
        vec![layer(&[Entry::new("data", Regular).data(&data)])],
    );
    ok(&import(&d, &a));
    let snapshots = d.root().join("snapshots");
    let file = files(&snapshots)
        .into_iter()
        .map(|dir| snapshots.join(dir).join("fs/data"))
        .find(|p| p.exists())
        .expect("the unpacked file");
    assert_eq!(fs::metadata(&file).unwrap().len(), data.len() as u64);
    assert_eq!(dirty_pages(&file), 0, "the unpacked file was not synced");
}

/// Bytes skiffd has written through write(2) and its kin so far (`wchar` of
/// /proc/PID/io, every thread of the process counted, the gone ones too).
fn written_by(pid: u32) -> u64 {
    fs::read_to_string(format!("/proc/{pid}/io"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("wchar:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("wchar of /proc/PID/io")
}

/// An archive gzipped as a whole, a few MiB, whose one blob entry holds `size` bytes of
/// zeros (under a digest they do not hash to).
fn gzip_bomb(out: &Path, size: u64) {
    use flate2::write::GzEncoder;
    use std::io::Read;
    let gz = GzEncoder::new(
        fs::File::create(out).unwrap(),
        flate2::Compression::default(),
    );
    let mut tar = tar::Builder::new(gz);
    let mut h = tar::Header::new_ustar();
    h.set_path(format!("blobs/sha256/{}", "ab".repeat(32)))
        .unwrap();
    h.set_size(size);
    h.set_mode(0o644);
    h.set_entry_type(Regular);
    h.set_cksum();
    tar.append(&h, std::io::repeat(0).take(size)).unwrap();
    tar.into_inner().unwrap().finish().unwrap();
}

/// Issue 31: a `.tar.gz` of about 2 MiB whose one blob entry holds 2 GiB of zeros, against
/// `--max-unpacked-size 256m`. It was streamed into the content store unmetered (2,027 MiB
/// written before the digest check failed); now it is stopped before 512 MiB are written
/// (skiffd's own count of the bytes it wrote), with the limit named, and nothing stays.
#[test]
fn a_gzip_bomb_is_stopped_before_it_fills_the_root() {
    let d = Skiffd::start_with(&["--max-unpacked-size", "256m"]);
    let tmp = TempDir::new("skiffd-bomb").unwrap();
    let bomb = tmp.path().join("bomb.tar.gz");
    gzip_bomb(&bomb, 2 << 30);
    let archive_size = fs::metadata(&bomb).unwrap().len();
    assert!(archive_size < 4 << 20, "the bomb is {archive_size} bytes");
    let before = written_by(d.pid());
    let o = import(&d, &bomb);
    let written = written_by(d.pid()) - before;
    skiff_integration::report(&format!(
        "a {archive_size}-byte gzip bomb of 2 GiB against --max-unpacked-size 256m: skiffd wrote {} MiB",
        written >> 20
    ));
    assert!(!o.status.success(), "the bomb imported");
    assert!(
        written < 512 << 20,
        "skiffd wrote {} MiB before it stopped: {}",
        written >> 20,
        stderr(&o)
    );
    assert!(
        stderr(&o).contains("over the import limit --max-unpacked-size 268435456"),
        "{}",
        stderr(&o)
    );
    assert_empty(&d, "bomb");
}
