//! What the shim does on a pure cgroup v2 machine, through containerd as a user drives
//! it: Stats in containerd's v2 metrics (with pressure stall information, which
//! containerd 2.3's CRI reports), OOM kills from `memory.events`, Update through
//! `memory.max` / `cpu.max` / `pids.max`, Pause through `cgroup.freeze`, and kill --all
//! of a container that shares another's PID namespace. On a v1 or hybrid machine each
//! test records itself as skipped; make test runs them in its cgroup v2 VM stage.

use skiff_integration::containerd::{stderr, stdout, Containerd};
use skiff_integration::machine::{has, Need};
use skiff_integration::proc;
use skiff_integration::unified::{self, cgroup_of, eventually, key, procs, read, shim_of};
use std::time::Duration;

const LONG: Duration = Duration::from_secs(30);

#[test]
fn stats_answer_v2_metrics_with_memory_cpu_pids_and_io() {
    if !has(
        "stats_answer_v2_metrics_with_memory_cpu_pids_and_io",
        Need::CgroupV2,
    ) {
        return;
    }
    let cd = Containerd::start();
    // 4 MiB written and synced (block I/O of the container's cgroup, when its rootfs is on
    // a disk), CPU spent computing, then three processes that stay.
    let pid = cd.run_detached(
        "measured",
        &[],
        &[
            "sh",
            "-c",
            "dd if=/dev/zero of=/data bs=64k count=64 conv=fsync 2>/dev/null; \
             i=0; while [ $i -lt 2000 ]; do i=$((i+1)); done; \
             sleep 300 & sleep 301 & exec sleep 302",
        ],
    );
    let dir = cgroup_of(pid);
    assert!(
        eventually(LONG, || procs(&dir).len() == 3),
        "three processes in {}: {:?}",
        dir.display(),
        procs(&dir)
    );
    let (type_url, metrics) = unified::stats(&shim_of(&cd, "measured"), "measured");
    assert_eq!(type_url, "io.containerd.cgroups.v2.Metrics");
    let m = metrics.unwrap();
    assert_eq!(m.pids.current, 3, "pids.current: {:?}", m.pids);
    assert!(m.memory.usage > 0, "memory.usage: {:?}", m.memory.usage);
    assert!(m.memory.anon > 0 || m.memory.file > 0, "memory.stat parts");
    assert!(
        m.cpu.usage_usec > 0 && m.cpu.usage_usec >= m.cpu.user_usec,
        "cpu: {:?}",
        m.cpu
    );
    // Block I/O exists only where the snapshots are on a block device (the VM stage gives
    // its VMs a scratch disk; a /tmp on tmpfs has none to count).
    let snapshots = cd.dir().join("root");
    let on_disk = std::fs::metadata(&snapshots)
        .map(|m| libc::major(std::os::unix::fs::MetadataExt::dev(&m)) != 0)
        .unwrap_or(false);
    let written: u64 = m.io.usage.iter().map(|e| e.wbytes).sum();
    if on_disk {
        assert!(
            written >= 4 << 20,
            "io.usage should hold the 4 MiB written: {:?} (io.stat: {:?})",
            m.io.usage,
            read(&dir, "io.stat")
        );
    } else {
        skiff_integration::machine::lacks(
            "stats_answer_v2_metrics_with_memory_cpu_pids_and_io (its io part)",
            "block-io",
            &format!(
                "{} is not on a block device: nothing for io.stat to count",
                snapshots.display()
            ),
        );
    }
    // What containerd makes of it, as a user sees it.
    let out = cd.ctr(&["task", "metrics", "--format", "json", "measured"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_str(&stdout(&out))
        .unwrap_or_else(|e| panic!("ctr task metrics json: {e}: {}", stdout(&out)));
    assert_eq!(json["pids"]["current"], 3, "{json}");
    assert!(json["memory"]["usage"].as_u64().unwrap_or(0) > 0, "{json}");
    assert!(
        json["cpu"]["usage_usec"].as_u64().unwrap_or(0) > 0,
        "{json}"
    );
    let ctr_written: u64 = json["io"]["usage"]
        .as_array()
        .map(|a| a.iter().filter_map(|e| e["wbytes"].as_u64()).sum())
        .unwrap_or(0);
    assert!(!on_disk || ctr_written >= 4 << 20, "{json}");
    cd.remove("measured");
}

/// Pressure stall information as the CRI of containerd 2.3 reads it from v2 metrics: cpu,
/// memory and io, each "some" and "full", the kernel's figures. A container with more busy
/// loops than CPUs waits for CPU: its cpu "some" figures grow.
#[test]
fn stats_carry_pressure_stall_information() {
    if !has("stats_carry_pressure_stall_information", Need::CgroupV2) {
        return;
    }
    let cd = Containerd::start();
    let pid = cd.run_detached(
        "pressed",
        &[],
        &[
            "sh",
            "-c",
            "busy() { while :; do :; done; }; i=0; \
             while [ $i -le $(nproc) ]; do busy & i=$((i+1)); done; exec sleep 300",
        ],
    );
    let dir = cgroup_of(pid);
    assert!(
        dir.join("cpu.pressure").exists(),
        "no cpu.pressure in {}: the kernel has no PSI (psi=1 on its command line?)",
        dir.display()
    );
    let shim = shim_of(&cd, "pressed");
    let pressed = || {
        let (_, m) = unified::stats(&shim, "pressed");
        let m = m.expect("v2 metrics");
        // The averages are updated every two seconds, the total at once.
        m.cpu.psi.some.total > 0 && m.cpu.psi.some.avg10 > 0.0
    };
    assert!(
        eventually(LONG, pressed),
        "cpu pressure never grew: cpu.pressure says {:?}",
        read(&dir, "cpu.pressure")
    );
    let (_, m) = unified::stats(&shim, "pressed");
    let m = m.expect("v2 metrics");
    for (what, psi, file) in [
        ("cpu", &m.cpu.psi, "cpu.pressure"),
        ("memory", &m.memory.psi, "memory.pressure"),
        ("io", &m.io.psi, "io.pressure"),
    ] {
        let kernel = read(&dir, file);
        assert!(
            psi.some.is_some() && psi.full.is_some(),
            "{what} PSI {psi:?}; {file} says {kernel:?}"
        );
        // Totals only grow: what the shim read lies between two readings of the file.
        let total_in = |text: &str| -> u64 {
            text.lines()
                .find(|l| l.starts_with("some"))
                .and_then(|l| l.split_whitespace().find_map(|f| f.strip_prefix("total=")))
                .and_then(|t| t.parse().ok())
                .unwrap_or(0)
        };
        assert!(
            psi.some.total <= total_in(&read(&dir, file)),
            "{what}: {} read, {file} says {:?}",
            psi.some.total,
            read(&dir, file)
        );
        let avg = psi.some.avg10;
        assert!((0.0..=100.0).contains(&avg), "{what} some avg10 {avg}");
    }
    cd.remove("pressed");
}

#[test]
fn an_oom_kill_is_reported_for_the_killed_container_not_its_pod_sibling() {
    if !has(
        "an_oom_kill_is_reported_for_the_killed_container_not_its_pod_sibling",
        Need::CgroupV2,
    ) {
        return;
    }
    let cd = Containerd::start();
    let events = cd.events();
    let pod = ["--annotation", "io.kubernetes.cri.sandbox-id=oompod"];
    let calm = cd.run_detached("calm", &pod, &["sleep", "300"]);
    // The shell collects 64 MiB into a variable under a 32 MiB limit.
    let mut hog_args = pod.to_vec();
    hog_args.extend_from_slice(&["--memory-limit", "33554432"]);
    let hog = cd.run_detached(
        "hog",
        &hog_args,
        &[
            "sh",
            "-c",
            "sleep 1; a=$(head -c 67108864 /dev/zero | tr '\\0' a); echo ${#a}",
        ],
    );
    let shims = cd.shim_pids();
    assert_eq!(shims.len(), 1, "one shim serves the pod: {shims:?}");
    let (hog_dir, calm_dir) = (cgroup_of(hog), cgroup_of(calm));
    assert_eq!(read(&hog_dir, "memory.max"), "33554432");
    unified::wait_status(&cd, "hog", "STOPPED", LONG);
    let topics = events.wait_for("hog", LONG, |t| t.iter().any(|x| x == "/tasks/exit"));
    let oom = topics.iter().position(|t| t == "/tasks/oom");
    let exit = topics.iter().position(|t| t == "/tasks/exit");
    assert!(
        matches!((oom, exit), (Some(o), Some(e)) if o < e),
        "expected /tasks/oom before /tasks/exit for hog: {topics:?}"
    );
    // The kernel's account, which the event comes from.
    assert!(
        key(&hog_dir, "memory.events", "oom_kill").unwrap_or(0) >= 1,
        "hog's memory.events: {}",
        read(&hog_dir, "memory.events")
    );
    assert_eq!(
        key(&calm_dir, "memory.events", "oom_kill"),
        Some(0),
        "calm's memory.events: {}",
        read(&calm_dir, "memory.events")
    );
    // Give a misrouted event time to arrive before saying there was none.
    std::thread::sleep(Duration::from_secs(2));
    let calm_topics = events.topics_for("calm");
    assert!(
        !calm_topics.iter().any(|t| t == "/tasks/oom"),
        "calm was not OOM-killed but got: {calm_topics:?}"
    );
    assert_eq!(cd.wait_status("calm", "RUNNING"), calm);
    assert!(proc::alive(calm));
    cd.remove("hog");
    cd.remove("calm");
}

#[test]
fn update_sets_memory_max_cpu_max_and_pids_max() {
    if !has(
        "update_sets_memory_max_cpu_max_and_pids_max",
        Need::CgroupV2,
    ) {
        return;
    }
    let cd = Containerd::start();
    let pid = cd.run_detached("limited", &[], &["sleep", "300"]);
    let dir = cgroup_of(pid);
    assert_eq!(read(&dir, "memory.max"), "max");
    assert_eq!(read(&dir, "pids.max"), "max");
    let shim = shim_of(&cd, "limited");
    unified::update(
        &shim,
        "limited",
        r#"{"memory":{"limit":67108864},"cpu":{"quota":50000,"period":100000},"pids":{"limit":42}}"#,
    )
    .expect("Update");
    assert_eq!(read(&dir, "memory.max"), "67108864");
    assert_eq!(read(&dir, "cpu.max"), "50000 100000");
    assert_eq!(read(&dir, "pids.max"), "42");
    let (_, metrics) = unified::stats(&shim, "limited");
    let m = metrics.expect("v2 metrics");
    assert_eq!(m.memory.usage_limit, 67108864);
    assert_eq!(m.pids.limit, 42);
    // A second update changes one limit and leaves the others.
    unified::update(&shim, "limited", r#"{"pids":{"limit":20}}"#).expect("Update");
    assert_eq!(read(&dir, "pids.max"), "20");
    assert_eq!(read(&dir, "memory.max"), "67108864");
    // And the kernel holds the container to it: forks past 20 tasks fail. (ctr mounts no
    // cgroupfs in the container, so this is what it can see of its limits. The limit
    // counts threads: runc's exec needs room for its Go runtime's.)
    let out = cd.ctr(&[
        "task",
        "exec",
        "--exec-id",
        "forks",
        "limited",
        "sh",
        "-c",
        "i=0; while [ $i -lt 30 ]; do sleep 60 </dev/null >/dev/null 2>&1 & i=$((i+1)); done",
    ]);
    assert!(
        stderr(&out).contains("can't fork"),
        "forks past pids.max 20 must fail: {}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(procs(&dir).len() <= 20, "{:?}", procs(&dir));
    cd.remove("limited");
}

#[test]
fn pause_and_resume_freeze_and_thaw_through_cgroup_freeze() {
    if !has(
        "pause_and_resume_freeze_and_thaw_through_cgroup_freeze",
        Need::CgroupV2,
    ) {
        return;
    }
    let cd = Containerd::start();
    let events = cd.events();
    let pid = cd.run_detached("icy", &[], &["sh", "-c", unified::COUNTER]);
    let dir = cgroup_of(pid);
    assert_eq!(read(&dir, "cgroup.freeze"), "0");
    let at_pause = unified::pause_counting(&cd, "icy", &dir, LONG);
    assert_eq!(read(&dir, "cgroup.freeze"), "1");
    unified::resume_counting(&cd, "icy", at_pause, LONG);
    assert_eq!(read(&dir, "cgroup.freeze"), "0");
    assert_eq!(key(&dir, "cgroup.events", "frozen"), Some(0));
    let topics = events.wait_for("icy", LONG, |t| t.iter().any(|x| x == "/tasks/resumed"));
    let paused = topics.iter().position(|t| t == "/tasks/paused");
    let resumed = topics.iter().position(|t| t == "/tasks/resumed");
    assert!(
        matches!((paused, resumed), (Some(p), Some(r)) if p < r),
        "{topics:?}"
    );
    cd.remove("icy");
}

/// runc 1.1.5 (and libcontainer 0.7) do `kill --all` by freezing the cgroup, signalling
/// every pid listed in it and thawing it; `cgroup.kill` is used from runc 1.2. What a
/// user observes is the same, and is what this checks: nothing of the cgroup is left.
#[test]
fn kill_all_in_a_shared_pid_namespace_ends_every_process_of_the_cgroup() {
    if !has(
        "kill_all_in_a_shared_pid_namespace_ends_every_process_of_the_cgroup",
        Need::CgroupV2,
    ) {
        return;
    }
    let cd = Containerd::start();
    let host = cd.run_detached("nshost", &[], &["sleep", "999"]);
    let ns = format!("pid:/proc/{host}/ns/pid");
    let guest = cd.run_detached(
        "nsguest",
        &["--with-ns", &ns],
        &["sh", "-c", "sleep 300 & sleep 301 & exec sleep 302"],
    );
    let dir = cgroup_of(guest);
    assert!(
        eventually(LONG, || procs(&dir).len() == 3),
        "three processes in {}: {:?}",
        dir.display(),
        procs(&dir)
    );
    let members = procs(&dir);
    // They live in the first container's PID namespace: its ps lists them.
    let ps = stdout(&cd.ctr(&[
        "task",
        "exec",
        "--exec-id",
        "ps1",
        "nshost",
        "ps",
        "-o",
        "args",
    ]));
    assert!(ps.contains("sleep 302"), "{ps}");
    let out = cd.ctr(&["task", "kill", "--all", "--signal", "SIGKILL", "nsguest"]);
    assert!(out.status.success(), "{}", stderr(&out));
    cd.wait_status("nsguest", "STOPPED");
    assert!(
        eventually(LONG, || procs(&dir).is_empty()),
        "left in {}: {:?}",
        dir.display(),
        procs(&dir)
    );
    for pid in members {
        assert!(!proc::alive(pid), "pid {pid} survived kill --all");
    }
    let ps = stdout(&cd.ctr(&[
        "task",
        "exec",
        "--exec-id",
        "ps2",
        "nshost",
        "ps",
        "-o",
        "args",
    ]));
    assert!(
        !ps.contains("sleep 30"),
        "the guest's processes are gone: {ps}"
    );
    assert_eq!(cd.wait_status("nshost", "RUNNING"), host);
    cd.remove("nsguest");
    cd.remove("nshost");
}
