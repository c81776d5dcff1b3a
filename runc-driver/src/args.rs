//! Argument lists for each runtime command, built from typed options. Pure functions,
//! so the exact command lines are unit-tested without a runtime.

use std::ffi::OsString;
use std::path::PathBuf;

/// Options that go before the command: they say which runtime state to use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GlobalOptions {
    /// The runtime's state directory (`--root`).
    pub root: Option<PathBuf>,
    /// Where the runtime logs (`--log`); the log is read back as JSON on failure.
    pub log: Option<PathBuf>,
    /// `--systemd-cgroup`: cgroup paths are systemd slices.
    pub systemd_cgroup: bool,
}

impl GlobalOptions {
    pub(crate) fn args(&self, log: &std::path::Path) -> Vec<OsString> {
        let mut args = Vec::new();
        if let Some(root) = &self.root {
            args.push("--root".into());
            args.push(root.into());
        }
        args.push("--log".into());
        args.push(log.into());
        args.push("--log-format".into());
        args.push("json".into());
        if self.systemd_cgroup {
            args.push("--systemd-cgroup".into());
        }
        args
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreateOptions {
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
}

impl CreateOptions {
    pub(crate) fn args(&self, id: &str, bundle: &std::path::Path) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec!["create".into(), "--bundle".into(), bundle.into()];
        if let Some(p) = &self.pid_file {
            args.push("--pid-file".into());
            args.push(p.into());
        }
        if let Some(s) = &self.console_socket {
            args.push("--console-socket".into());
            args.push(s.into());
        }
        if self.no_pivot {
            args.push("--no-pivot".into());
        }
        if self.no_new_keyring {
            args.push("--no-new-keyring".into());
        }
        args.push(id.into());
        args
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecOptions {
    /// The OCI process document to run (`--process`).
    pub process_file: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    /// Return once the process runs instead of waiting for it.
    pub detach: bool,
}

impl ExecOptions {
    pub(crate) fn args(&self, id: &str) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec![
            "exec".into(),
            "--process".into(),
            (&self.process_file).into(),
        ];
        if self.detach {
            args.push("--detach".into());
        }
        if let Some(p) = &self.pid_file {
            args.push("--pid-file".into());
            args.push(p.into());
        }
        if let Some(s) = &self.console_socket {
            args.push("--console-socket".into());
            args.push(s.into());
        }
        args.push(id.into());
        args
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KillOptions {
    /// Signal every process of the container, not only its init.
    pub all: bool,
}

impl KillOptions {
    pub(crate) fn args(&self, id: &str, signal: u32) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec!["kill".into()];
        if self.all {
            args.push("--all".into());
        }
        args.push(id.into());
        args.push(signal.to_string().into());
        args
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeleteOptions {
    /// Kill the container first if it still runs.
    pub force: bool,
}

impl DeleteOptions {
    pub(crate) fn args(&self, id: &str) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec!["delete".into()];
        if self.force {
            args.push("--force".into());
        }
        args.push(id.into());
        args
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn strs(v: Vec<OsString>) -> Vec<String> {
        v.into_iter()
            .map(|s| s.into_string().expect("utf-8"))
            .collect()
    }

    #[test]
    fn global_options_in_order() {
        let g = GlobalOptions {
            root: Some("/run/containerd/runc/default".into()),
            log: None,
            systemd_cgroup: true,
        };
        assert_eq!(
            strs(g.args(Path::new("/b/log.json"))),
            [
                "--root",
                "/run/containerd/runc/default",
                "--log",
                "/b/log.json",
                "--log-format",
                "json",
                "--systemd-cgroup"
            ]
        );
    }

    #[test]
    fn create_with_every_option() {
        let o = CreateOptions {
            pid_file: Some("/b/init.pid".into()),
            console_socket: Some("/tmp/c.sock".into()),
            no_pivot: true,
            no_new_keyring: true,
        };
        assert_eq!(
            strs(o.args("web", Path::new("/b"))),
            [
                "create",
                "--bundle",
                "/b",
                "--pid-file",
                "/b/init.pid",
                "--console-socket",
                "/tmp/c.sock",
                "--no-pivot",
                "--no-new-keyring",
                "web"
            ]
        );
        assert_eq!(
            strs(CreateOptions::default().args("x", Path::new("/b"))),
            ["create", "--bundle", "/b", "x"]
        );
    }

    #[test]
    fn exec_detached() {
        let o = ExecOptions {
            process_file: "/b/p.json".into(),
            pid_file: Some("/b/p.pid".into()),
            console_socket: None,
            detach: true,
        };
        assert_eq!(
            strs(o.args("web")),
            [
                "exec",
                "--process",
                "/b/p.json",
                "--detach",
                "--pid-file",
                "/b/p.pid",
                "web"
            ]
        );
    }

    #[test]
    fn kill_and_delete() {
        assert_eq!(
            strs(KillOptions { all: true }.args("web", 9)),
            ["kill", "--all", "web", "9"]
        );
        assert_eq!(
            strs(KillOptions::default().args("web", 15)),
            ["kill", "web", "15"]
        );
        assert_eq!(
            strs(DeleteOptions { force: true }.args("web")),
            ["delete", "--force", "web"]
        );
    }
}
