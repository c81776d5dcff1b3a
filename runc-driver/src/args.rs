//! Argument lists for each runtime command, built from typed options. Pure functions,
//! so the exact command lines are unit-tested without a runtime.

use std::ffi::OsString;
use std::path::PathBuf;

/// Appends `flag path` when the path is set.
fn push_path(args: &mut Vec<OsString>, flag: &str, path: Option<&PathBuf>) {
    if let Some(p) = path {
        args.push(flag.into());
        args.push(p.into());
    }
}

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
        push_path(&mut args, "--pid-file", self.pid_file.as_ref());
        push_path(&mut args, "--console-socket", self.console_socket.as_ref());
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
        push_path(&mut args, "--pid-file", self.pid_file.as_ref());
        push_path(&mut args, "--console-socket", self.console_socket.as_ref());
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

/// `checkpoint`: CRIU dumps the container into `image_path`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckpointOptions {
    pub image_path: PathBuf,
    pub work_path: Option<PathBuf>,
    /// Keep the container running after the dump.
    pub leave_running: bool,
    pub tcp_established: bool,
    pub ext_unix_sk: bool,
    pub shell_job: bool,
    pub file_locks: bool,
    /// "soft", "full" or "strict".
    pub manage_cgroups_mode: Option<String>,
    pub empty_namespaces: Vec<String>,
}

impl CheckpointOptions {
    fn criu_args(&self, args: &mut Vec<OsString>) {
        args.push("--image-path".into());
        args.push((&self.image_path).into());
        push_path(args, "--work-path", self.work_path.as_ref());
        for (on, flag) in [
            (self.tcp_established, "--tcp-established"),
            (self.ext_unix_sk, "--ext-unix-sk"),
            (self.shell_job, "--shell-job"),
            (self.file_locks, "--file-locks"),
        ] {
            if on {
                args.push(flag.into());
            }
        }
        if let Some(m) = &self.manage_cgroups_mode {
            args.push("--manage-cgroups-mode".into());
            args.push(m.into());
        }
        for ns in &self.empty_namespaces {
            args.push("--empty-ns".into());
            args.push(ns.into());
        }
    }

    pub(crate) fn args(&self, id: &str) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec!["checkpoint".into()];
        self.criu_args(&mut args);
        if self.leave_running {
            args.push("--leave-running".into());
        }
        args.push(id.into());
        args
    }

    /// `restore --detach`: the container is recreated from the images in `bundle`.
    pub(crate) fn restore_args(
        &self,
        id: &str,
        bundle: &std::path::Path,
        create: &CreateOptions,
    ) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec!["restore".into(), "--detach".into()];
        self.criu_args(&mut args);
        args.push("--bundle".into());
        args.push(bundle.into());
        push_path(&mut args, "--pid-file", create.pid_file.as_ref());
        push_path(
            &mut args,
            "--console-socket",
            create.console_socket.as_ref(),
        );
        if create.no_pivot {
            args.push("--no-pivot".into());
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
    fn checkpoint_and_restore() {
        let o = CheckpointOptions {
            image_path: "/cp/img".into(),
            work_path: Some("/cp/work".into()),
            leave_running: true,
            tcp_established: true,
            empty_namespaces: vec!["network".into()],
            ..Default::default()
        };
        assert_eq!(
            strs(o.args("web")),
            [
                "checkpoint",
                "--image-path",
                "/cp/img",
                "--work-path",
                "/cp/work",
                "--tcp-established",
                "--empty-ns",
                "network",
                "--leave-running",
                "web"
            ]
        );
        let create = CreateOptions {
            pid_file: Some("/b/init.pid".into()),
            ..Default::default()
        };
        assert_eq!(
            strs(o.restore_args("web", Path::new("/b"), &create)),
            [
                "restore",
                "--detach",
                "--image-path",
                "/cp/img",
                "--work-path",
                "/cp/work",
                "--tcp-established",
                "--empty-ns",
                "network",
                "--bundle",
                "/b",
                "--pid-file",
                "/b/init.pid",
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
