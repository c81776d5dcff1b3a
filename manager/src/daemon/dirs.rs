//! The directories skiffd keeps things in: made private (0700) when skiffd makes them,
//! and left exactly as they are when they exist (`--address /run/skiffd.sock` must not
//! make `/run` private, nor take `/tmp`'s sticky bit). The socket itself is 0600.

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

/// Makes `dir` and whichever of its parents are missing, each 0700.
pub fn private_dir(dir: &Path) -> Result<(), String> {
    let mut missing = Vec::new();
    let mut next = Some(dir);
    while let Some(d) = next.filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
        missing.push(d);
        next = d.parent();
    }
    for d in missing.into_iter().rev() {
        match std::fs::DirBuilder::new().mode(0o700).create(d) {
            Ok(()) => std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| format!("securing {}: {e}", d.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(format!("creating {}: {e}", d.display())),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn existing_directories_keep_their_mode_and_new_ones_are_private() {
        let base = std::env::temp_dir().join(format!("skiff-dirs-{}", std::process::id()));
        std::fs::create_dir_all(&base).unwrap();
        std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o1777)).unwrap();
        private_dir(&base.join("a/b")).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().mode() & 0o7777;
        assert_eq!(mode(&base), 0o1777, "an existing directory was changed");
        assert_eq!(
            (mode(&base.join("a")), mode(&base.join("a/b"))),
            (0o700, 0o700)
        );
        private_dir(&base).unwrap();
        assert_eq!(mode(&base), 0o1777);
        std::fs::remove_dir_all(&base).unwrap();
    }
}
