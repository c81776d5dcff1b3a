//! How the container's process is exec'd, as runc does it. libcontainer's default
//! executor differs three times: it refuses a process without a PATH variable, even one
//! named by an absolute path (runc runs it: `ctr run --rootfs DIR id /bin/true` sends no
//! environment at all); it calls execvp(3), which runs a file that is not an executable
//! format through /bin/sh (runc looks the name up itself and calls execve(2), so such a
//! file fails with "exec format error"; so does this executor); and it writes the
//! process's environment into this process's own with `std::env::set_var`.
//!
//! That last one could hang a Create or an Exec for good: the process running here is
//! a fork of the threaded shim, and std's environment lock is copied into it in
//! whatever state another thread of the shim held it at the fork (a spawn, or any
//! `std::env::var`, holds it for reading). A writer then waits for readers that do not
//! exist in this process. So this executor never touches the process environment: it
//! keeps the container's variables itself and hands them to execve(2).

use libcontainer::workload::default::DefaultExecutor;
use libcontainer::workload::{
    Executor, ExecutorError, ExecutorSetEnvsError, ExecutorValidationError,
};
use oci_spec::runtime::Spec;
use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::CString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

#[derive(Clone)]
pub(crate) struct ProcessExecutor {
    /// The kernel runs formats of its binfmt_misc table too: then only execve itself can
    /// tell whether a file runs.
    foreign_formats: bool,
    /// The process's environment, as libcontainer completed it (HOME added, LISTEN_FDS):
    /// set once in the container's process, just before it execs.
    env: RefCell<HashMap<String, String>>,
}

impl ProcessExecutor {
    /// Read in the shim, before a container's namespaces hide the host's binfmt_misc.
    pub(crate) fn new() -> Self {
        let foreign_formats = std::fs::read_dir("/proc/sys/fs/binfmt_misc").is_ok_and(|d| {
            d.flatten()
                .any(|e| !matches!(e.file_name().to_str(), Some("register" | "status")))
        });
        ProcessExecutor {
            foreign_formats,
            env: RefCell::default(),
        }
    }

    /// The environment execve gets: the spec's variables in the spec's order (the last
    /// of a name wins, as with runc), then those libcontainer added.
    fn environment(&self, spec: &Spec) -> Result<Vec<CString>, ExecutorError> {
        let env = self.env.borrow();
        let listed: Vec<&str> = spec
            .process()
            .as_ref()
            .and_then(|p| p.env().as_ref())
            .map(|e| e.iter().map(|v| v.split('=').next().unwrap_or(v)).collect())
            .unwrap_or_default();
        let mut names: Vec<&str> = Vec::new();
        for name in listed.into_iter().chain(sorted_keys(&env)) {
            if !names.contains(&name) && env.contains_key(name) {
                names.push(name);
            }
        }
        names
            .into_iter()
            .map(|name| CString::new(format!("{name}={}", env[name])))
            .collect::<Result<_, _>>()
            .map_err(|_| ExecutorError::InvalidArg)
    }
}

fn sorted_keys(env: &HashMap<String, String>) -> Vec<&str> {
    let mut keys: Vec<&str> = env.keys().map(String::as_str).collect();
    keys.sort_unstable();
    keys
}

impl Executor for ProcessExecutor {
    fn exec(&self, spec: &Spec) -> Result<(), ExecutorError> {
        let args = spec
            .process()
            .as_ref()
            .and_then(|p| p.args().as_ref())
            .filter(|a| !a.is_empty())
            .ok_or(ExecutorError::InvalidArg)?;
        let path_var = self.env.borrow().get("PATH").cloned();
        let path = resolve(&args[0], path_var.as_deref())
            .ok_or_else(|| ExecutorError::Other(format!("exec: {:?}: not found", args[0])))?;
        let argv: Vec<CString> = args
            .iter()
            .map(|a| CString::new(a.as_bytes()))
            .collect::<Result<_, _>>()
            .map_err(|_| ExecutorError::InvalidArg)?;
        let file = CString::new(path.as_os_str().as_encoded_bytes())
            .map_err(|_| ExecutorError::InvalidArg)?;
        let env = self.environment(spec)?;
        // execve(2): no shell fallback on ENOEXEC, and no environment of this process.
        let err = nix::unistd::execve(&file, &argv, &env).unwrap_err();
        let reason = std::io::Error::from_raw_os_error(err as i32).to_string();
        let reason = reason.split(" (os error").next().unwrap_or(&reason);
        Err(ExecutorError::Other(format!(
            "exec {}: {}",
            path.display(),
            reason.to_lowercase()
        )))
    }

    /// Keeps the environment for execve instead of writing it into this process's.
    fn setup_envs(&self, envs: HashMap<String, String>) -> Result<(), ExecutorSetEnvsError> {
        *self.env.borrow_mut() = envs;
        Ok(())
    }

    /// Runs in the container before Start: what fails here is the Create's or Exec's
    /// error, as runc reports it; what fails at execve only ends the process.
    fn validate(&self, spec: &Spec) -> Result<(), ExecutorValidationError> {
        let process = spec.process().as_ref();
        let path_var = process
            .and_then(|p| p.env().as_ref())
            .and_then(|env| env.iter().find_map(|v| v.strip_prefix("PATH=")));
        let first = process
            .and_then(|p| p.args().as_ref())
            .and_then(|a| a.first());
        match first {
            Some(name) if path_var.is_none() => check_without_search(name)?,
            _ => DefaultExecutor {}.validate(spec)?,
        }
        match first.and_then(|name| resolve(name, path_var)) {
            Some(file) if !self.foreign_formats => check_format(&file),
            _ => Ok(()),
        }
    }
}

/// The kernel's own formats: ELF and `#!` scripts. Anything else fails execve with
/// ENOEXEC, which runc reports as "exec format error" before the process starts.
fn check_format(file: &Path) -> Result<(), ExecutorValidationError> {
    use std::io::Read;
    let mut head = [0u8; 4];
    let n = std::fs::File::open(file)
        .and_then(|mut f| f.read(&mut head))
        .unwrap_or(0);
    if head[..n].starts_with(b"\x7fELF") || head[..n].starts_with(b"#!") {
        return Ok(());
    }
    Err(ExecutorValidationError::ArgValidationError(format!(
        "exec {}: exec format error",
        file.display()
    )))
}

/// The file to exec for `name`: itself when it has a slash, else the first executable
/// file of that name in `path` (the process's PATH).
fn resolve(name: &str, path: Option<&str>) -> Option<PathBuf> {
    if name.contains('/') {
        return Some(PathBuf::from(name));
    }
    path?
        .split(':')
        .map(|dir| Path::new(if dir.is_empty() { "." } else { dir }).join(name))
        .find(|candidate| {
            candidate
                .metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// With no PATH, only a name with a slash can be run: it must be an executable file.
fn check_without_search(name: &str) -> Result<(), ExecutorValidationError> {
    let refuse = |why: String| Err(ExecutorValidationError::ArgValidationError(why));
    if !name.contains('/') {
        return refuse(format!(
            "executable '{name}' not found: the process has no PATH variable to search"
        ));
    }
    match Path::new(name).metadata() {
        Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => Ok(()),
        Ok(_) => refuse(format!("'{name}' is not an executable file")),
        Err(e) => refuse(format!("executable '{name}': {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_is_the_specs_in_its_order_then_what_libcontainer_added() {
        let executor = ProcessExecutor::new();
        let spec: Spec = serde_json::from_value(serde_json::json!({
            "ociVersion": "1.0.2",
            "process": {"cwd": "/", "args": ["true"], "env": ["Z=1", "A=2", "Z=3"],
                        "user": {"uid": 0, "gid": 0}},
        }))
        .unwrap();
        let added = [("Z", "3"), ("A", "2"), ("HOME", "/"), ("LISTEN_FDS", "1")];
        executor
            .setup_envs(
                added
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            )
            .unwrap();
        let env: Vec<String> = executor
            .environment(&spec)
            .unwrap()
            .into_iter()
            .map(|c| c.into_string().unwrap())
            .collect();
        assert_eq!(env, ["Z=3", "A=2", "HOME=/", "LISTEN_FDS=1"]);
    }

    #[test]
    fn only_the_kernels_own_formats_pass() {
        assert!(check_format(Path::new("/bin/sh")).is_ok());
        let dir = std::env::temp_dir().join(format!("skiff-fmt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let script = dir.join("script");
        std::fs::write(&script, "#!/bin/sh\necho hi\n").unwrap();
        assert!(check_format(&script).is_ok());
        let text = dir.join("text");
        std::fs::write(&text, "echo hi\n").unwrap();
        let err = check_format(&text).unwrap_err().to_string();
        assert!(err.ends_with("exec format error"), "{err}");
        let empty = dir.join("empty");
        std::fs::write(&empty, "").unwrap();
        assert!(check_format(&empty).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn names_are_looked_up_in_path_and_paths_taken_as_they_are() {
        assert_eq!(
            resolve("sh", Some("/nonexistent:/bin")),
            Some("/bin/sh".into())
        );
        assert_eq!(resolve("./x", None), Some("./x".into()));
        assert_eq!(resolve("no-such-program-here", Some("/bin")), None);
        assert_eq!(resolve("sh", None), None);
    }

    #[test]
    fn without_path_an_absolute_executable_is_accepted() {
        assert!(check_without_search("/bin/sh").is_ok());
    }

    #[test]
    fn without_path_a_bare_name_or_a_missing_file_is_refused_with_the_reason() {
        let bare = check_without_search("sh").unwrap_err().to_string();
        assert!(bare.contains("no PATH variable"), "{bare}");
        let missing = check_without_search("/no/such/binary")
            .unwrap_err()
            .to_string();
        assert!(missing.contains("/no/such/binary"), "{missing}");
        let dir = check_without_search("/tmp").unwrap_err().to_string();
        assert!(dir.contains("not an executable file"), "{dir}");
    }
}
