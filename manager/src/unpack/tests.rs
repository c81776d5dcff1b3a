//! Unpacking by the OCI rules, and hostile layers against a victim directory outside
//! the root that must stay byte- and mode-identical.

use super::*;
use crate::limits::{Budget, Limits};
use skiff_test_support::layer_tar::{layer, Entry};
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use tar::EntryType::{self, *};

fn e<'a>(path: &'a str, kind: EntryType, link: &'a str) -> Entry<'a> {
    Entry::new(path, kind).link(link)
}

struct Scene {
    dir: PathBuf,
    root: PathBuf,
    victim: PathBuf,
}

impl Scene {
    fn new(name: &str) -> Scene {
        let dir = std::env::temp_dir().join(format!("skiff-unpack-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let (root, victim) = (dir.join("root"), dir.join("victim"));
        fs::create_dir_all(&root).unwrap();
        fs::create_dir_all(victim.join("sub")).unwrap();
        fs::write(victim.join("shadow"), "secret\n").unwrap();
        fs::set_permissions(victim.join("shadow"), fs::Permissions::from_mode(0o640)).unwrap();
        fs::write(victim.join("sub/file"), "kept\n").unwrap();
        fs::set_permissions(&victim, fs::Permissions::from_mode(0o755)).unwrap();
        Scene { dir, root, victim }
    }

    fn apply(&self, entries: &[Entry]) -> Result<u64> {
        apply(
            &self.root,
            &layer(entries)[..],
            &Budget::new(Limits::default(), 1 << 30),
        )
    }

    fn v(&self) -> String {
        self.victim.display().to_string()
    }
}

impl Drop for Scene {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn whiteouts_opaque_dirs_links_and_symlinks_inside_the_root() {
    let s = Scene::new("rules");
    let mut motd = e("etc/motd", Regular, "");
    motd.data = b"hi\n";
    let (mut a, mut b) = (e("data/a", Regular, ""), e("data/b", Regular, ""));
    (a.data, b.data) = (b"a", b"b");
    s.apply(&[
        e("etc/", Directory, ""),
        motd,
        e("data/", Directory, ""),
        a,
        b,
        e("lnk", Symlink, "/etc"),
        e("hard", Link, "etc/motd"),
        e("deep/implied/file", Regular, ""),
    ])
    .unwrap();
    assert_eq!(fs::read_to_string(s.root.join("hard")).unwrap(), "hi\n");
    let implied = fs::metadata(s.root.join("deep/implied")).unwrap();
    assert_eq!(implied.mode() & 0o7777, 0o755, "an implied directory");
    let mut c = e("data/c", Regular, "");
    c.data = b"c";
    let mut issue = e("lnk/issue", Regular, "");
    issue.data = b"x";
    s.apply(&[
        e("etc/.wh.motd", Regular, ""),
        c,
        e("data/.wh..wh..opq", Regular, ""),
        issue,
        e("etc/.wh..wh.plnk", Regular, ""),
    ])
    .unwrap();
    assert!(!s.root.join("etc/motd").exists());
    let names: Vec<_> = fs::read_dir(s.root.join("data"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        names,
        ["c"],
        "the opaque directory keeps what its own layer made"
    );
    assert_eq!(fs::read_to_string(s.root.join("etc/issue")).unwrap(), "x");
    let err = s.apply(&[e("../evil", Regular, "")]).unwrap_err();
    assert!(err.to_string().contains("outside the root"), "{err}");
}

#[test]
fn zero_blocks_become_holes_and_sizes_stay_exact() {
    let s = Scene::new("sparse");
    let zeros = vec![0u8; 1 << 20];
    let mut tail = zeros.clone();
    tail.extend_from_slice(b"end");
    let (mut z, mut t) = (e("zeros", Regular, ""), e("tail", Regular, ""));
    (z.data, t.data) = (&zeros, &tail);
    s.apply(&[z, t]).unwrap();
    let m = fs::metadata(s.root.join("zeros")).unwrap();
    assert_eq!(m.len(), 1 << 20);
    assert!(
        m.blocks() * 512 < 1 << 16,
        "{} blocks for a file of zeros",
        m.blocks()
    );
    assert_eq!(fs::read(s.root.join("tail")).unwrap(), tail);
}

/// The three escapes of issue 22, and whiteouts through a symlink out.
#[test]
fn hostile_layers_leave_a_victim_outside_the_root_untouched() {
    let s = Scene::new("escape");
    let before = skiff_test_support::tree_state::of(&s.victim);
    let v = s.v();
    let shadow = format!("{v}/shadow");
    let mut open_dir = e("a/shadow/", Directory, "");
    (open_dir.mode, open_dir.uid) = (0o777, 1000);
    let mut link = e("h", Link, "s");
    link.mode = 0o777;
    let layers: Vec<Vec<Entry>> = vec![
        vec![e("x", Symlink, &v), e("x/.wh..wh..opq", Regular, "")],
        vec![e("a/", Directory, ""), open_dir, e("a", Symlink, &v)],
        vec![e("s", Symlink, &shadow), link],
        vec![
            e("y", Symlink, &v),
            e("y/.wh.shadow", Regular, ""),
            e("y/sub/.wh.file", Regular, ""),
        ],
        vec![
            e("z", Symlink, &v),
            e("z/new", Regular, ""),
            e("z/sub/", Directory, ""),
        ],
    ];
    for l in &layers {
        s.apply(l).unwrap();
        assert_eq!(
            skiff_test_support::tree_state::of(&s.victim),
            before,
            "after {}",
            l[0].path
        );
    }
    // The link was made as a link to the in-root symlink, not to its target.
    assert!(fs::symlink_metadata(s.root.join("h"))
        .unwrap()
        .file_type()
        .is_symlink());
}

#[test]
fn whiteouts_naming_the_directory_or_its_parent_are_refused() {
    let s = Scene::new("dots");
    s.apply(&[e("keep/", Directory, ""), e("keep/f", Regular, "")])
        .unwrap();
    for bad in [".wh..", ".wh...", "keep/.wh..", "keep/.wh...", "keep/.wh."] {
        let err = s.apply(&[e(bad, Regular, "")]).unwrap_err();
        assert!(err.to_string().contains("names no entry"), "{bad}: {err}");
        assert!(s.root.join("keep/f").exists(), "{bad} removed a directory");
    }
}
