//! What a directory tree holds, entry by entry (type, mode, owner, bytes or link
//! target), to show that unpacking left a tree outside its root exactly as it was. Used
//! by the unpack tests, the unpack fuzz target and the integration tests.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// A file's bytes, a symlink's target, nothing for the rest.
    pub content: Vec<u8>,
}

/// Every entry under `root` (and `root` itself, as ""), by relative path.
pub fn of(root: &Path) -> BTreeMap<PathBuf, Entry> {
    let mut out = BTreeMap::new();
    walk(root, Path::new(""), &mut out);
    out
}

fn walk(root: &Path, rel: &Path, out: &mut BTreeMap<PathBuf, Entry>) {
    let path = root.join(rel);
    let Ok(m) = std::fs::symlink_metadata(&path) else {
        return;
    };
    let content = if m.file_type().is_symlink() {
        std::fs::read_link(&path)
            .map(|t| t.into_os_string().into_encoded_bytes())
            .unwrap_or_default()
    } else if m.is_file() {
        std::fs::read(&path).unwrap_or_default()
    } else {
        Vec::new()
    };
    out.insert(
        rel.to_path_buf(),
        Entry {
            mode: m.mode(),
            uid: m.uid(),
            gid: m.gid(),
            content,
        },
    );
    if m.is_dir() {
        let mut names: Vec<_> = std::fs::read_dir(&path)
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        names.sort();
        for n in names {
            walk(root, &rel.join(n), out);
        }
    }
}
