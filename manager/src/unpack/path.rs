//! A tar entry's name: made relative and clean (`..` refused, not resolved), and told
//! apart as a plain entry or a whiteout. `.wh.NAME` hides NAME of the layers below,
//! `.wh..wh..opq` hides everything below in its directory; `.wh.`, `.wh..` and `.wh...`
//! name no entry and are refused (they would hide the directory itself or its parent);
//! other `.wh..wh.` names are aufs bookkeeping and are skipped, as containerd does.

use crate::error::{Error, Result};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

const WHITEOUT: &[u8] = b".wh.";
const OPAQUE: &[u8] = b".wh..wh..opq";
const AUFS_META: &[u8] = b".wh..wh.";

pub enum Name<'a> {
    Plain,
    Opaque,
    Whiteout(&'a OsStr),
    AufsMeta,
}

/// A tar path made relative and free of `.`; `..` anywhere is refused.
pub fn clean(raw: &[u8]) -> Result<PathBuf> {
    let mut out = PathBuf::new();
    for c in Path::new(OsStr::from_bytes(raw)).components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err(Error::Corrupt(format!(
                    "layer entry {:?} points outside the root",
                    String::from_utf8_lossy(raw)
                )))
            }
        }
    }
    Ok(out)
}

pub fn classify<'a>(name: &'a OsStr, rel: &Path) -> Result<Name<'a>> {
    let b = name.as_bytes();
    if b == OPAQUE {
        return Ok(Name::Opaque);
    }
    if b.starts_with(AUFS_META) {
        return Ok(Name::AufsMeta);
    }
    let Some(hidden) = b.strip_prefix(WHITEOUT) else {
        return Ok(Name::Plain);
    };
    if hidden.is_empty() || hidden == b"." || hidden == b".." {
        return Err(Error::Corrupt(format!(
            "layer entry {} is a whiteout that names no entry",
            rel.display()
        )));
    }
    Ok(Name::Whiteout(OsStr::from_bytes(hidden)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whiteouts_of_the_directory_itself_or_its_parent_are_refused() {
        for bad in [".wh.", ".wh..", ".wh..."] {
            assert!(classify(OsStr::new(bad), Path::new(bad)).is_err(), "{bad}");
        }
        assert!(matches!(
            classify(OsStr::new(".wh.x"), Path::new("x")),
            Ok(Name::Whiteout(n)) if n == "x"
        ));
        assert!(matches!(
            classify(OsStr::new(".wh..wh..opq"), Path::new("o")),
            Ok(Name::Opaque)
        ));
        assert!(matches!(
            classify(OsStr::new(".wh..wh.plnk"), Path::new("p")),
            Ok(Name::AufsMeta)
        ));
        assert!(clean(b"a/../../etc").is_err());
        assert_eq!(clean(b"/./a//b/").unwrap(), PathBuf::from("a/b"));
    }
}
