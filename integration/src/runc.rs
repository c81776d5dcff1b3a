//! Which runc the tests run: `$SKIFF_RUNC_BIN`, a directory holding a `runc` (make test
//! uses the static runc 1.5.1 unpacked under /var/cache/runc), else the one on PATH
//! (Debian 12's 1.1.5). A test's containerd gets that directory first on its PATH, so
//! the shims it starts find that runc; the tests' own runc commands use it too.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// The directory `$SKIFF_RUNC_BIN` names, if set.
pub fn dir() -> Option<PathBuf> {
    std::env::var_os("SKIFF_RUNC_BIN")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
}

/// The runc binary the tests use.
pub fn binary() -> PathBuf {
    dir().map_or_else(|| PathBuf::from("runc"), |d| d.join("runc"))
}

/// `PATH` with `prefixes`, then the tests' runc directory, first: for a process that
/// looks runc up (a shim, or the containerd that starts shims).
pub fn path_with(prefixes: &[PathBuf]) -> std::ffi::OsString {
    let dirs: Vec<PathBuf> = prefixes.iter().cloned().chain(dir()).collect();
    let mut path = std::env::join_paths(&dirs).expect("PATH entries");
    if !dirs.is_empty() {
        path.push(":");
    }
    path.push(std::env::var_os("PATH").unwrap_or_default());
    path
}

/// `runc ARGS...` with the runc the tests use.
pub fn command() -> Command {
    Command::new(binary())
}

/// Its version, as `runc --version` prints it first ("1.5.1", "1.1.5+ds1").
pub fn version() -> &'static str {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION.get_or_init(|| {
        command()
            .arg("--version")
            .output()
            .ok()
            .and_then(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .next()
                    .and_then(|l| l.split_whitespace().nth(2))
                    .map(str::to_string)
            })
            .unwrap_or_else(|| "unknown".into())
    })
}

/// `runc features` as JSON, or None for a runc without that command (before 1.1).
pub fn features() -> Option<serde_json::Value> {
    let out = command().arg("features").output().ok()?;
    out.status
        .success()
        .then(|| serde_json::from_slice(&out.stdout).ok())
        .flatten()
}

/// Whether this runc can give a container idmapped mounts (runc 1.2 and later say so in
/// `runc features`), which containerd 2.x's CRI needs for a pod's user namespace.
pub fn supports_idmap() -> bool {
    features().is_some_and(|f| f["linux"]["mountExtensions"]["idmap"]["enabled"] == true)
}
