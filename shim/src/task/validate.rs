//! Checks on what requests name: ids and paths come from another process and end up in
//! file names and runtime command lines.

use std::path::{Component, Path};

/// containerd's identifier rule: 1 to 76 characters, letters and digits separated by
/// single `.`, `_` or `-`. That excludes `/`, `..` and anything a shell or path could
/// misread.
pub fn id(kind: &str, id: &str) -> Result<(), String> {
    const MAX: usize = 76;
    if id.is_empty() {
        return Err(format!("{kind} must not be empty"));
    }
    if id.len() > MAX {
        return Err(format!("{kind} {id:?} is longer than {MAX} characters"));
    }
    let bytes = id.as_bytes();
    let alnum = |b: u8| b.is_ascii_alphanumeric();
    let sep = |b: u8| matches!(b, b'.' | b'_' | b'-');
    let mut prev_sep = true;
    for &b in bytes {
        if alnum(b) {
            prev_sep = false;
        } else if sep(b) && !prev_sep {
            prev_sep = true;
        } else {
            return Err(format!(
                "{kind} {id:?} is not valid: use letters and digits separated by single '.', '_' or '-'"
            ));
        }
    }
    if prev_sep {
        return Err(format!(
            "{kind} {id:?} is not valid: it must end with a letter or digit"
        ));
    }
    Ok(())
}

/// A path a request names: absolute and without `..`.
pub fn absolute_path(what: &str, path: &str) -> Result<(), String> {
    let p = Path::new(path);
    if !p.is_absolute() {
        return Err(format!("{what} path {path:?} is not absolute"));
    }
    if p.components().any(|c| c == Component::ParentDir) {
        return Err(format!("{what} path {path:?} must not contain '..'"));
    }
    Ok(())
}

/// A bundle directory: absolute, without `..`, and existing.
pub fn bundle(path: &str) -> Result<(), String> {
    absolute_path("bundle", path)?;
    if !Path::new(path).is_dir() {
        return Err(format!(
            "bundle {path:?} does not exist or is not a directory"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_ids() {
        for good in ["a", "web", "web-1", "k8s.io", "a_b.c-d", &"x".repeat(76)] {
            assert_eq!(id("container id", good), Ok(()), "{good}");
        }
    }

    #[test]
    fn bad_ids_say_why() {
        assert_eq!(
            id("container id", ""),
            Err("container id must not be empty".into())
        );
        assert!(id("container id", &"x".repeat(77))
            .unwrap_err()
            .contains("longer than 76"));
        for bad in [
            "../etc", "a/b", "..", "-a", "a-", "a..b", "a b", "/abs", "é",
        ] {
            assert!(id("exec id", bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn bundles() {
        assert!(bundle("relative/dir").unwrap_err().contains("not absolute"));
        assert!(bundle("/tmp/../etc").unwrap_err().contains(".."));
        assert!(bundle("/nonexistent/skiff/bundle")
            .unwrap_err()
            .contains("does not exist"));
        assert_eq!(bundle("/tmp"), Ok(()));
    }
}
