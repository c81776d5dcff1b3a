//! cribench: what a Kubernetes pod sandbox costs, driven through containerd's CRI as the
//! kubelet drives it, for three runtime handlers of one containerd side by side:
//! `runc` (containerd's Go shim with a pause container), `skiff` (skiff with a pause
//! container) and `skiff-sandbox` (skiff serving the sandbox itself, containerd's
//! Sandbox API). Pods are on the node's network with no containers: the sandbox alone.
//!
//! Figures: RunPodSandbox, StopPodSandbox and RemovePodSandbox latency (p50/p90 over
//! rounds that take the handlers in turn, so machine drift falls on all alike); the
//! processes, RSS and PSS an idle pod costs (every process the pod's shim and its
//! descendants are); pods started per second by parallel clients.
//!
//!     SKIFF_CONTAINERD_BIN=/var/cache/containerd-releases/2.3/usr/bin \
//!     SKIFF_SHIM=$PWD/target/x86_64-unknown-linux-gnu/release/containerd-shim-skiff-v2 \
//!     target/release/cribench [--rounds 30] [--idle 10] [--burst 24] [--clients 4]
//!
//! Needs root; starts a private containerd (test harness) and cleans up after itself.

use skiff_integration::containerd::{
    shim_binary, version_string, CgroupCleanup, Containerd, Options, PAUSE_IMAGE,
};
use skiff_integration::cri::api::*;
use skiff_integration::cri::CriClient;
use skiff_integration::proc;
use std::collections::HashMap;
use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const HANDLERS: [&str; 3] = ["runc", "skiff", "skiff-sandbox"];

struct Args {
    rounds: usize,
    idle: usize,
    burst: usize,
    clients: usize,
}

fn args() -> Args {
    let mut a = Args {
        rounds: 30,
        idle: 10,
        burst: 24,
        clients: 4,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    for pair in argv.chunks(2) {
        let value = pair.get(1).and_then(|v| v.parse().ok());
        match (pair[0].as_str(), value) {
            ("--rounds", Some(v)) => a.rounds = v,
            ("--idle", Some(v)) => a.idle = v,
            ("--burst", Some(v)) => a.burst = v,
            ("--clients", Some(v)) => a.clients = v,
            _ => {
                eprintln!("usage: cribench [--rounds N] [--idle N] [--burst N] [--clients N]");
                std::process::exit(2);
            }
        }
    }
    a
}

fn pod(name: &str, parent: &str) -> PodSandboxConfig {
    pod_with_pid(name, parent, NAMESPACE_CONTAINER)
}

/// A pod whose containers share a PID namespace (`pid` NAMESPACE_POD) or not.
fn pod_with_pid(name: &str, parent: &str, pid: i32) -> PodSandboxConfig {
    PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: name.into(),
            uid: format!("uid-{name}"),
            namespace: "cribench".into(),
            attempt: 0,
        }),
        linux: Some(LinuxPodSandboxConfig {
            cgroup_parent: parent.into(),
            security_context: Some(LinuxSandboxSecurityContext {
                namespace_options: Some(NamespaceOption {
                    network: NAMESPACE_NODE,
                    pid,
                    ipc: NAMESPACE_POD,
                    ..Default::default()
                }),
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn percentile(values: &[f64], p: f64) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        return f64::NAN;
    }
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// PSS of a process in KiB (smaps_rollup), 0 once it is gone.
fn pss_kib(pid: u32) -> u64 {
    fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Pss:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

#[derive(Default)]
struct Figures {
    run: Vec<f64>,
    stop: Vec<f64>,
    remove: Vec<f64>,
    idle: Idle,
    /// Idle pods whose containers share a PID namespace.
    idle_shared_pid: Idle,
    pods_per_s: f64,
}

/// What one idle pod costs.
#[derive(Default)]
struct Idle {
    processes: f64,
    rss_kib: f64,
    pss_kib: f64,
}

fn main() {
    let a = args();
    let parent = format!("/cribench-{}", std::process::id());
    let _cgroups = CgroupCleanup(parent.clone());
    let bin = PathBuf::from(std::env::var("SKIFF_CONTAINERD_BIN").unwrap_or_default());
    let go_shim = bin.join("containerd-shim-runc-v2");
    let cd = Containerd::start_with(Options {
        path_prefix: Some(shim_binary().parent().unwrap().to_path_buf()),
        cri_sandbox_image: Some(PAUSE_IMAGE.into()),
        runc_runtime_path: go_shim.exists().then_some(go_shim.clone()),
        ..Default::default()
    });
    let cri = CriClient::connect(&cd.socket).expect("the CRI socket");
    let deadline = Instant::now() + Duration::from_secs(20);
    while cri.version().is_err() {
        assert!(Instant::now() < deadline, "the CRI did not answer");
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut figures: HashMap<&str, Figures> = HashMap::new();
    // One pod each first: images are resolved and the binaries' pages are in.
    for h in HANDLERS {
        lifecycle(&cri, h, "warm", &parent);
    }
    for round in 0..a.rounds {
        for h in HANDLERS {
            let (run, stop, remove) = lifecycle(&cri, h, &format!("r{round}"), &parent);
            let f = figures.entry(h).or_default();
            f.run.push(run);
            f.stop.push(stop);
            f.remove.push(remove);
        }
    }
    for h in HANDLERS {
        let f = figures.entry(h).or_default();
        f.idle = idle_cost(&cd, &cri, h, a.idle, &parent, NAMESPACE_CONTAINER);
        f.idle_shared_pid = idle_cost(&cd, &cri, h, a.idle, &parent, NAMESPACE_POD);
        f.pods_per_s = burst(&cd, h, a.burst, a.clients, &parent);
    }
    report(&a, &figures, &go_shim);
    // Where the time went: containerd's debug log, kept when asked for.
    if let Ok(path) = std::env::var("CRIBENCH_LOG") {
        let _ = fs::write(path, cd.log());
    }
}

/// One pod run, stopped and removed; the three latencies in ms.
fn lifecycle(cri: &CriClient, handler: &str, tag: &str, parent: &str) -> (f64, f64, f64) {
    let config = pod(&format!("{handler}-{tag}"), parent);
    let t = Instant::now();
    let id = cri
        .run_pod_sandbox(&config, handler)
        .unwrap_or_else(|e| panic!("RunPodSandbox ({handler}): {e}"));
    let run = ms(t.elapsed());
    let t = Instant::now();
    cri.stop_pod_sandbox(&id).expect("StopPodSandbox");
    let stop = ms(t.elapsed());
    let t = Instant::now();
    cri.remove_pod_sandbox(&id).expect("RemovePodSandbox");
    (run, stop, ms(t.elapsed()))
}

/// Every process `n` idle pods of `handler` cost: their shims and all below them.
fn idle_cost(
    cd: &Containerd,
    cri: &CriClient,
    handler: &str,
    n: usize,
    parent: &str,
    pid: i32,
) -> Idle {
    let before = cd.shim_pids();
    let ids: Vec<String> = (0..n)
        .map(|i| {
            let config = pod_with_pid(&format!("{handler}-idle{pid}-{i}"), parent, pid);
            cri.run_pod_sandbox(&config, handler)
                .expect("RunPodSandbox")
        })
        .collect();
    std::thread::sleep(Duration::from_secs(2));
    let shims: Vec<u32> = cd
        .shim_pids()
        .into_iter()
        .filter(|p| !before.contains(p))
        .collect();
    let mut pids = shims.clone();
    for s in &shims {
        pids.extend(proc::descendants(*s));
    }
    let idle = Idle {
        processes: pids.len() as f64 / n as f64,
        rss_kib: pids.iter().map(|p| proc::rss_kib(*p)).sum::<u64>() as f64 / n as f64,
        pss_kib: pids.iter().map(|p| pss_kib(*p)).sum::<u64>() as f64 / n as f64,
    };
    for id in ids {
        cri.stop_pod_sandbox(&id).expect("StopPodSandbox");
        cri.remove_pod_sandbox(&id).expect("RemovePodSandbox");
    }
    idle
}

/// `n` pods started by `clients` parallel clients: pods per second, then removed.
fn burst(cd: &Containerd, handler: &str, n: usize, clients: usize, parent: &str) -> f64 {
    let started = Instant::now();
    let ids: Vec<String> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..clients)
            .map(|c| {
                s.spawn(move || {
                    let cri = CriClient::connect(&cd.socket).expect("the CRI socket");
                    (c..n)
                        .step_by(clients)
                        .map(|i| {
                            cri.run_pod_sandbox(
                                &pod(&format!("{handler}-burst{i}"), parent),
                                handler,
                            )
                            .expect("RunPodSandbox")
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    let rate = n as f64 / started.elapsed().as_secs_f64();
    let cri = CriClient::connect(&cd.socket).expect("the CRI socket");
    for id in ids {
        cri.stop_pod_sandbox(&id).expect("StopPodSandbox");
        cri.remove_pod_sandbox(&id).expect("RemovePodSandbox");
    }
    rate
}

fn report(a: &Args, figures: &HashMap<&str, Figures>, go_shim: &std::path::Path) {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "# cribench: containerd {} | {} rounds, {} idle pods, {} pods by {} clients | {cpus} cpus",
        version_string(),
        a.rounds,
        a.idle,
        a.burst,
        a.clients
    );
    println!("# runc = {} with pause; skiff = {} with pause; skiff-sandbox = the same, sandboxer \"shim\"", go_shim.display(), shim_binary().display());
    println!(
        "{:<20}{:>12}{:>12}{:>16}{:>14}",
        "figure", "runc", "skiff", "skiff-sandbox", "runc/sandbox"
    );
    let row = |name: &str, get: &dyn Fn(&Figures) -> f64| {
        let v: Vec<f64> = HANDLERS.iter().map(|h| get(&figures[h])).collect();
        println!(
            "{name:<20}{:>12.1}{:>12.1}{:>16.1}{:>14.2}",
            v[0],
            v[1],
            v[2],
            v[0] / v[2]
        );
    };
    row("run_p50_ms", &|f| percentile(&f.run, 0.5));
    row("run_p90_ms", &|f| percentile(&f.run, 0.9));
    row("stop_p50_ms", &|f| percentile(&f.stop, 0.5));
    row("remove_p50_ms", &|f| percentile(&f.remove, 0.5));
    row("lifecycle_p50_ms", &|f| {
        let all: Vec<f64> = (0..f.run.len())
            .map(|i| f.run[i] + f.stop[i] + f.remove[i])
            .collect();
        percentile(&all, 0.5)
    });
    row("processes_per_pod", &|f| f.idle.processes);
    row("rss_kib_per_pod", &|f| f.idle.rss_kib);
    row("pss_kib_per_pod", &|f| f.idle.pss_kib);
    row("shared_pid_processes", &|f| f.idle_shared_pid.processes);
    row("shared_pid_rss_kib", &|f| f.idle_shared_pid.rss_kib);
    row("shared_pid_pss_kib", &|f| f.idle_shared_pid.pss_kib);
    row("pods_per_s", &|f| f.pods_per_s);
}
