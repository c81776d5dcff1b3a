//! Writing a layer (an uncompressed tar) entry by entry with names taken as they are
//! (`..`, whiteouts, links to links): what hostile layers look like, for the unpack
//! tests, the unpack fuzz target and the integration tests.

use tar::EntryType;

pub struct Entry<'a> {
    pub path: &'a str,
    pub kind: EntryType,
    pub data: &'a [u8],
    pub link: &'a str,
    pub mode: u32,
    pub uid: u64,
}

impl<'a> Entry<'a> {
    pub fn new(path: &'a str, kind: EntryType) -> Entry<'a> {
        Entry {
            path,
            kind,
            data: b"",
            link: "",
            mode: if kind.is_dir() { 0o755 } else { 0o644 },
            uid: 0,
        }
    }
    pub fn data(mut self, d: &'a [u8]) -> Self {
        self.data = d;
        self
    }
    pub fn link(mut self, l: &'a str) -> Self {
        self.link = l;
        self
    }
    pub fn mode(mut self, m: u32) -> Self {
        self.mode = m;
        self
    }
    pub fn uid(mut self, u: u64) -> Self {
        self.uid = u;
        self
    }
}

/// The tar of `entries`; a name or link too long for a plain header is cut.
pub fn layer(entries: &[Entry]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(e.kind);
        h.set_mode(e.mode);
        h.set_uid(e.uid);
        h.set_size(e.data.len() as u64);
        h.set_mtime(0);
        let old = h.as_old_mut();
        let name = &e.path.as_bytes()[..e.path.len().min(old.name.len())];
        old.name[..name.len()].copy_from_slice(name);
        let link = &e.link.as_bytes()[..e.link.len().min(old.linkname.len())];
        old.linkname[..link.len()].copy_from_slice(link);
        h.set_cksum();
        let _ = b.append(&h, e.data);
    }
    b.into_inner().unwrap_or_default()
}
