//! A host volume for the tests of mount propagation and recursive mount options: a
//! directory that is a shared mount of its own, with mounts below it made before and
//! after a container starts.

use skiff_test_support::bundle::TempDir;
use std::path::Path;

/// A host directory for a bind mount, a shared mount of its own (a peer group no other
/// mount is in), with a tmpfs mounted on `sub`; once the container runs, another on
/// `late`, for the container to see or not by its propagation.
pub struct Volume {
    dir: TempDir,
}

impl Volume {
    pub fn new() -> Result<Volume, String> {
        let dir = TempDir::new("skiff-vol").map_err(|e| e.to_string())?;
        let v = Volume { dir };
        for sub in ["sub", "late", "inner"] {
            std::fs::create_dir(v.path().join(sub)).map_err(|e| e.to_string())?;
        }
        let path = v.path().display().to_string();
        mount(&["--bind", &path, &path])?;
        mount(&["--make-private", &path])?;
        mount(&["--make-shared", &path])?;
        mount(&["-t", "tmpfs", "sub", &format!("{path}/sub")])?;
        Ok(v)
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn mount_late(&self) -> Result<(), String> {
        mount(&[
            "-t",
            "tmpfs",
            "late",
            &self.path().join("late").display().to_string(),
        ])
    }

    pub fn host_sees_inner(&self) -> bool {
        let inner = self.path().join("inner").display().to_string();
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .any(|l| l.split(' ').nth(4) == Some(inner.as_str()))
    }

    pub fn remove(self) {
        let _ = std::process::Command::new("umount")
            .args(["-R", "-l"])
            .arg(self.path())
            .status();
    }
}

fn mount(args: &[&str]) -> Result<(), String> {
    let out = std::process::Command::new("mount")
        .args(args)
        .output()
        .map_err(|e| format!("mount {args:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "mount {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}
