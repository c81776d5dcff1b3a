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
use skiff_integration::proc;
use skiff_integration::unified::{self, cgroup_of, eventually, key, read, shim_of, ROOT};
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

/// The shim serving a container's init, stopped (SIGSTOP) until dropped: it can look at
/// nothing meanwhile, as a shim that is slow to run when systemd is quick.
struct Frozen(u32);

impl Frozen {
    fn shim_of(init: u32) -> Frozen {
        let shim = proc::parent(init).expect("the init's parent, its shim");
        // SAFETY: kill(2) of the shim this test's containerd started.
        unsafe { libc::kill(shim as i32, libc::SIGSTOP) };
        Frozen(shim)
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        // SAFETY: kill(2) of the shim stopped above.
        unsafe { libc::kill(self.0 as i32, libc::SIGCONT) };
    }
}

/// SIGKILLs a container's init from outside (its shim is stopped) and waits for systemd
/// to remove its emptied scope.
fn sigkill_and_wait_scope_gone(init: u32, dir: &Path) {
    // SAFETY: kill(2) of the container's init this test started.
    unsafe { libc::kill(init as i32, libc::SIGKILL) };
    assert!(
        eventually(LONG, || !dir.exists()),
        "systemd did not remove {}",
        dir.display()
    );
}

/// A container SIGKILLed after an OOM kill in another cgroup of its slice, one no shim
/// owns, is not reported OOM-killed, though systemd removed its scope before the shim
/// could look (the slice's hierarchical count grew; that count is not this container's).
#[test]
fn a_sigkill_after_an_oom_elsewhere_in_its_slice_is_no_oom() {
    let test = "a_sigkill_after_an_oom_elsewhere_in_its_slice_is_no_oom";
    if !needs_systemd(test) {
        return;
    }
    let slice = Slice::new("sib");
    let bin = TempDir::new("skiff-sdsib-bin").unwrap();
    let cd = dropin::containerd(&bin);
    let events = cd.events();
    let pid = run_in_slice(&cd, &slice.0, "sdquiet", &[], &["sleep", "300"]);
    let dir = cgroup_of(pid);
    let parent = dir.parent().unwrap().to_path_buf();
    let before = key(&parent, "memory.events", "oom_kill").unwrap_or(0);
    let hog = Command::new("systemd-run")
        .args(["--quiet", "--scope", "--slice", &slice.0])
        .args(["-p", "MemoryMax=33554432", "-p", "MemorySwapMax=0"])
        .args([
            "sh",
            "-c",
            "a=$(head -c 67108864 /dev/zero | tr '\\0' a); echo ${#a}",
        ])
        .output()
        .expect("running systemd-run");
    let after = key(&parent, "memory.events", "oom_kill").unwrap_or(0);
    assert!(
        after > before,
        "no OOM kill in the slice ({before} -> {after}): {hog:?}"
    );
    {
        let _frozen = Frozen::shim_of(pid);
        sigkill_and_wait_scope_gone(pid, &dir);
    }
    let topics = events.wait_for("sdquiet", LONG, |t| t.iter().any(|x| x == "/tasks/exit"));
    assert!(
        topics.iter().any(|t| t == "/tasks/exit") && !topics.iter().any(|t| t == "/tasks/oom"),
        "expected /tasks/exit and no /tasks/oom: {topics:?}"
    );
    cd.remove("sdquiet");
    assert!(
        eventually(LONG, || units_named("sdquiet").is_empty()),
        "units left after delete: {:?}",
        units_named("sdquiet")
    );
}

/// An OOM kill of a container's init is reported though systemd removed the scope, and
/// its memory.events, before the shim could look at either.
#[test]
fn an_oom_kill_is_reported_though_its_scope_went_before_the_shim_looked() {
    let test = "an_oom_kill_is_reported_though_its_scope_went_before_the_shim_looked";
    if !needs_systemd(test) {
        return;
    }
    let slice = Slice::new("late");
    let bin = TempDir::new("skiff-sdlate-bin").unwrap();
    let cd = dropin::containerd(&bin);
    let events = cd.events();
    let pid = run_in_slice(
        &cd,
        &slice.0,
        "sdlate",
        &["--memory-limit", "33554432"],
        &[
            "sh",
            "-c",
            "while [ ! -e /go ]; do sleep 0.2; done; a=$(head -c 67108864 /dev/zero | tr '\\0' a); echo ${#a}",
        ],
    );
    let dir = cgroup_of(pid);
    {
        let _frozen = Frozen::shim_of(pid);
        std::fs::write(format!("/proc/{pid}/root/go"), "").expect("starting the hog");
        assert!(
            eventually(LONG, || !dir.exists()),
            "systemd did not remove {}",
            dir.display()
        );
    }
    let topics = events.wait_for("sdlate", LONG, |t| t.iter().any(|x| x == "/tasks/exit"));
    let oom = topics.iter().position(|t| t == "/tasks/oom");
    let exit = topics.iter().position(|t| t == "/tasks/exit");
    assert!(
        matches!((oom, exit), (Some(o), Some(e)) if o < e),
        "expected /tasks/oom before /tasks/exit: {topics:?}"
    );
    cd.remove("sdlate");
    assert!(
        eventually(LONG, || units_named("sdlate").is_empty()),
        "units left after delete: {:?}",
        units_named("sdlate")
    );
}
