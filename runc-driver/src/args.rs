//! Argument lists for each runtime command, built from the typed options of
//! `skiff-oci-runtime`. Pure functions, so the exact command lines are unit-tested without
//! a runtime.

use skiff_oci_runtime::{
    CheckpointOptions, CreateOptions, DeleteOptions, ExecOptions, KillOptions,
};
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

pub(crate) fn create(opts: &CreateOptions, id: &str, bundle: &std::path::Path) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec!["create".into(), "--bundle".into(), bundle.into()];
    push_path(&mut args, "--pid-file", opts.pid_file.as_ref());
    push_path(&mut args, "--console-socket", opts.console_socket.as_ref());
    if opts.no_pivot {
        args.push("--no-pivot".into());
    }
    if opts.no_new_keyring {
        args.push("--no-new-keyring".into());
    }
    args.push(id.into());
    args
}

pub(crate) fn exec(opts: &ExecOptions, id: &str) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec![
        "exec".into(),
        "--process".into(),
        (&opts.process_file).into(),
    ];
    if opts.detach {
        args.push("--detach".into());
    }
    push_path(&mut args, "--pid-file", opts.pid_file.as_ref());
    push_path(&mut args, "--console-socket", opts.console_socket.as_ref());
    args.push(id.into());
    args
}

pub(crate) fn kill(opts: &KillOptions, id: &str, signal: u32) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec!["kill".into()];
    if opts.all {
        args.push("--all".into());
    }
    args.push(id.into());
    args.push(signal.to_string().into());
    args
}

pub(crate) fn delete(opts: &DeleteOptions, id: &str) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec!["delete".into()];
    if opts.force {
        args.push("--force".into());
    }
    args.push(id.into());
    args
}

fn criu(opts: &CheckpointOptions, args: &mut Vec<OsString>) {
    args.push("--image-path".into());
    args.push((&opts.image_path).into());
    push_path(args, "--work-path", opts.work_path.as_ref());
    for (on, flag) in [
        (opts.tcp_established, "--tcp-established"),
        (opts.ext_unix_sk, "--ext-unix-sk"),
        (opts.shell_job, "--shell-job"),
        (opts.file_locks, "--file-locks"),
    ] {
        if on {
            args.push(flag.into());
        }
    }
    if let Some(m) = &opts.manage_cgroups_mode {
        args.push("--manage-cgroups-mode".into());
        args.push(m.into());
    }
    for ns in &opts.empty_namespaces {
        args.push("--empty-ns".into());
        args.push(ns.into());
    }
}

pub(crate) fn checkpoint(opts: &CheckpointOptions, id: &str) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec!["checkpoint".into()];
    criu(opts, &mut args);
    if opts.leave_running {
        args.push("--leave-running".into());
    }
    args.push(id.into());
    args
}

/// `restore --detach`: the container is recreated from the images in `bundle`.
pub(crate) fn restore(
    opts: &CheckpointOptions,
    id: &str,
    bundle: &std::path::Path,
    create: &CreateOptions,
) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec!["restore".into(), "--detach".into()];
    criu(opts, &mut args);
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
            strs(create(&o, "web", Path::new("/b"))),
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
            strs(create(&CreateOptions::default(), "x", Path::new("/b"))),
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
            strs(exec(&o, "web")),
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
            strs(checkpoint(&o, "web")),
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
            strs(restore(&o, "web", Path::new("/b"), &create)),
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
            strs(kill(&KillOptions { all: true }, "web", 9)),
            ["kill", "--all", "web", "9"]
        );
        assert_eq!(
            strs(kill(&KillOptions::default(), "web", 15)),
            ["kill", "web", "15"]
        );
        assert_eq!(
            strs(delete(&DeleteOptions { force: true }, "web")),
            ["delete", "--force", "web"]
        );
    }
}
