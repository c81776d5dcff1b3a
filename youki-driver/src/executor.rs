//! How the container's process is exec'd. libcontainer's default executor refuses a
//! process without a PATH variable, even one named by an absolute path; runc runs it
//! (`ctr run --rootfs DIR id /bin/true` sends no environment at all), so this executor
//! asks for PATH only where a search needs it.

use libcontainer::workload::default::DefaultExecutor;
use libcontainer::workload::{Executor, ExecutorError, ExecutorValidationError};
use oci_spec::runtime::Spec;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

#[derive(Clone)]
pub(crate) struct ProcessExecutor;

impl Executor for ProcessExecutor {
    fn exec(&self, spec: &Spec) -> Result<(), ExecutorError> {
        // execvp: a name with a slash is exec'd as is, without a search.
        DefaultExecutor {}.exec(spec)
    }

    fn validate(&self, spec: &Spec) -> Result<(), ExecutorValidationError> {
        let process = spec.process().as_ref();
        let has_path = process
            .and_then(|p| p.env().as_ref())
            .is_some_and(|env| env.iter().any(|v| v.starts_with("PATH=")));
        let first = process
            .and_then(|p| p.args().as_ref())
            .and_then(|a| a.first());
        match first {
            Some(name) if !has_path => check_without_search(name),
            _ => DefaultExecutor {}.validate(spec),
        }
    }
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
