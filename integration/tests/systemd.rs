//! The systemd cgroup driver (`SystemdCgroup = true`, what kubeadm configures): the
//! container's cgroup is a transient scope under the slice its cgroupsPath names
//! (`SLICE:PREFIX:NAME`); Stats, Update, Pause and OOM events work there; after delete no
//! unit of it is left in systemd. Needs systemd as init on a cgroup v2 machine: make test
//! runs it in its VM booted with systemd; elsewhere it records a skip.
//!
//! ctr sends the option (`--runc-systemd-cgroup`) only to the runtime name
//! `io.containerd.runc.v2`, so the shim under test is installed under that name, first on
//! the test containerd's PATH.

use skiff_integration::bundle::TempDir;
use skiff_integration::containerd::{stderr, stdout, Containerd};
use skiff_integration::dropin;
use skiff_integration::machine::{has, Need};
use skiff_integration::unified::{self, cgroup_of, eventually, read, shim_of, ROOT};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const LONG: Duration = Duration::from_secs(30);

fn systemctl(args: &[&str]) -> String {
    let out = Command::new("systemctl")
        .args(args)
        .output()
        .expect("running systemctl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `systemctl show UNIT -p PROP` as the value alone.
fn property(unit: &str, prop: &str) -> String {
    systemctl(&["show", unit, "-p", prop, "--value"])
        .trim()
        .to_string()
}

/// Units systemd still knows whose name contains `needle` (loaded, in any state).
fn units_named(needle: &str) -> Vec<String> {
    systemctl(&["list-units", "--all", "--no-legend", "--plain"])
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|u| u.contains(needle))
        .map(str::to_string)
        .collect()
}

/// The test's own slice, stopped on drop: runc and libcontainer leave the slice a
/// cgroupsPath names (kubelet's kubepods.slice is meant to stay), not its scopes.
struct Slice(String);

impl Slice {
    fn new(tag: &str) -> Slice {
        Slice(format!("skiff{tag}{}.slice", std::process::id()))
    }
}

impl Drop for Slice {
    fn drop(&mut self) {
        let _ = Command::new("systemctl").args(["stop", &self.0]).output();
    }
}

/// `ctr run -d` with the systemd driver, in `slice` with scope prefix `skiff`.
fn run_in_slice(cd: &Containerd, slice: &str, id: &str, extra: &[&str], args: &[&str]) -> u32 {
    let cgroup = format!("{slice}:skiff:{id}");
    let mut a = vec!["--runc-systemd-cgroup", "--cgroup", &cgroup];
    a.extend_from_slice(extra);
    dropin::run_detached(cd, id, &a, args)
}

fn needs_systemd(test: &str) -> bool {
    has(test, Need::CgroupV2) && has(test, Need::Systemd)
}

#[test]
fn a_container_is_a_scope_in_its_slice_with_stats_update_pause_and_nothing_left() {
    let test = "a_container_is_a_scope_in_its_slice_with_stats_update_pause_and_nothing_left";
    if !needs_systemd(test) {
        return;
    }
    let slice = Slice::new("sd");
    let bin = TempDir::new("skiff-sd-bin").unwrap();
    let cd = dropin::containerd(&bin);
    let pid = run_in_slice(
        &cd,
        &slice.0,
        "sdtask",
        &[],
        &["sh", "-c", unified::COUNTER],
    );
    let scope = "skiff-sdtask.scope";
    let dir = cgroup_of(pid);
    assert_eq!(dir, Path::new(ROOT).join(&slice.0).join(scope));
    assert_eq!(property(scope, "ActiveState"), "active");
    assert_eq!(property(scope, "Slice"), slice.0);
    assert_eq!(
        property(scope, "ControlGroup"),
        format!("/{}/{scope}", slice.0)
    );
    let shim = shim_of(&cd, "sdtask");
    let (type_url, metrics) = unified::stats(&shim, "sdtask");
    assert_eq!(type_url, "io.containerd.cgroups.v2.Metrics");
    let m = metrics.unwrap();
    assert!(m.pids.current >= 1, "{:?}", m.pids);
    assert!(m.memory.usage > 0 && m.cpu.usage_usec > 0, "{m:?}");

    unified::update(
        &shim,
        "sdtask",
        r#"{"memory":{"limit":67108864},"pids":{"limit":50}}"#,
    )
    .expect("Update");
    assert_eq!(read(&dir, "memory.max"), "67108864");
    assert_eq!(read(&dir, "pids.max"), "50");
    // systemd holds the same limits, so a reload of the unit does not undo them.
    assert_eq!(property(scope, "MemoryMax"), "67108864");
    assert_eq!(property(scope, "TasksMax"), "50");

    let at_pause = unified::pause_counting(&cd, "sdtask", &dir, LONG);
    unified::resume_counting(&cd, "sdtask", at_pause, LONG);

    cd.remove("sdtask");
    assert!(
        eventually(LONG, || units_named("sdtask").is_empty()),
        "units left after delete: {:?}",
        units_named("sdtask")
    );
    assert!(!dir.exists(), "{} is left", dir.display());
}

#[test]
fn an_oom_kill_in_a_scope_is_reported_and_its_unit_goes() {
    let test = "an_oom_kill_in_a_scope_is_reported_and_its_unit_goes";
    if !needs_systemd(test) {
        return;
    }
    let slice = Slice::new("oom");
    let bin = TempDir::new("skiff-sdoom-bin").unwrap();
    let cd = dropin::containerd(&bin);
    let events = cd.events();
    let pid = run_in_slice(
        &cd,
        &slice.0,
        "sdhog",
        &["--memory-limit", "33554432"],
        &[
            "sh",
            "-c",
            "sleep 1; a=$(head -c 67108864 /dev/zero | tr '\\0' a); echo ${#a}",
        ],
    );
    let dir = cgroup_of(pid);
    assert_eq!(read(&dir, "memory.max"), "33554432");
    assert_eq!(property("skiff-sdhog.scope", "MemoryMax"), "33554432");
    unified::wait_status(&cd, "sdhog", "STOPPED", LONG);
    let topics = events.wait_for("sdhog", LONG, |t| t.iter().any(|x| x == "/tasks/exit"));
    let oom = topics.iter().position(|t| t == "/tasks/oom");
    let exit = topics.iter().position(|t| t == "/tasks/exit");
    assert!(
        matches!((oom, exit), (Some(o), Some(e)) if o < e),
        "expected /tasks/oom before /tasks/exit: {topics:?}"
    );
    let out = cd.ctr(&["task", "delete", "sdhog"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = cd.ctr(&["container", "delete", "sdhog"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        eventually(LONG, || units_named("sdhog").is_empty()),
        "units left after delete: {:?}",
        units_named("sdhog")
    );
    assert!(stdout(&cd.ctr(&["task", "ls"])).lines().count() <= 1);
}
