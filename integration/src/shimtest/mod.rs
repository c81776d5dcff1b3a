//! `shimtest`: plays containerd's side of the shim-v2 protocol against any shim binary
//! and reports, per scenario and per shim, what a user would have observed.
//!
//! Each scenario runs in a namespace, bundles and FIFOs of its own, against a shim
//! launched as containerd launches it; events come to the harness's own ttrpc Events
//! endpoint (TTRPC_ADDRESS). After each scenario the harness cleans up as a manager does
//! and checks that no process, mount, socket, runc state or cgroup is left.

pub mod api;
pub mod ctx;
pub mod events;
pub mod harness;
pub mod launch;
pub mod report;
pub mod scenarios;
pub mod statsload;
pub mod stdio;

use ctx::{Ctx, Target, Verdict};
use report::{Cell, Report};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How long to wait for something that should happen: `d` times `SHIMTEST_TIME_SCALE`
/// (default 1). Under emulation (make test's cgroup v2 VMs) everything is 15-70x slower,
/// and a slow reference shim would fail on a deadline rather than on behaviour. Only
/// deadlines scale, never a check that something is quick.
pub fn patience(d: Duration) -> Duration {
    static SCALE: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    let scale = *SCALE.get_or_init(|| {
        std::env::var("SHIMTEST_TIME_SCALE")
            .ok()
            .and_then(|s| s.parse().ok())
            .filter(|n| *n >= 1)
            .unwrap_or(1)
    });
    d * scale
}

const USAGE: &str =
    "usage: shimtest --shim [NAME=]PATH [--state-root DIR] [--bootstrap] [--shim ...]
                [--filter PATTERN]... [--skip PATTERN]... [--json OUT] [--markdown OUT]
                [--list] [--lifecycle N] [--stats-load CONTAINERS:SECONDS]

Runs every scenario against each shim binary, as containerd would drive it, and prints
a matrix of verdicts, a summary line per shim and the median latency of each RPC.
The first --shim is the one under test: shimtest exits 1 if it fails a scenario, or if
it fails one that another (reference) shim passes. Needs root, runc and busybox-static.
--lifecycle N instead times N whole container lives per shim (start, Create, Start,
exit, Delete, Shutdown, shim exit), interleaved, and prints the medians.
--stats-load N:S instead runs N containers in one pod shim and asks each one's Stats
once a second for S seconds, as containerd 2.3's CRI does, and prints the shim's CPU
(idle, and under the load), memory, threads and Stats latency.
--filter keeps the scenarios whose name contains PATTERN; --skip leaves them out (for
what a shim documents as unsupported).
--state-root DIR names where the --shim before it keeps container state when no Root
option is given (default /run/containerd/runc), for the checks that nothing is left.
--bootstrap has the --shim before it started as containerd 2.3 starts shims: a
BootstrapParams protobuf on stdin (the options among its extensions, a private
socket_dir), a BootstrapResult protobuf expected back.
SHIMTEST_TIME_SCALE=N multiplies how long it waits for what should happen (emulated VMs).";

/// One `--shim [NAME=]PATH`, and the `--state-root` and `--bootstrap` given after it.
#[derive(Debug)]
struct ShimArg {
    name: Option<String>,
    path: PathBuf,
    state_root: PathBuf,
    protocol: launch::StartProtocol,
}

/// Where runc, and so containerd's Go shim, keeps container state by default.
const RUNC_STATE_ROOT: &str = "/run/containerd/runc";

#[derive(Debug)]
struct Args {
    shims: Vec<ShimArg>,
    filters: Vec<String>,
    skips: Vec<String>,
    json: Option<PathBuf>,
    markdown: Option<PathBuf>,
    list: bool,
    lifecycle: usize,
    stats_load: Option<(usize, u64)>,
}

fn parse_args(args: &[String]) -> Result<Args, String> {
    let mut out = Args {
        shims: Vec::new(),
        filters: Vec::new(),
        skips: Vec::new(),
        json: None,
        markdown: None,
        list: false,
        lifecycle: 0,
        stats_load: None,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |flag: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match a.as_str() {
            "--shim" => {
                let v = value("--shim")?;
                let (name, path) = match v.split_once('=') {
                    Some((name, path)) if !name.contains('/') => {
                        (Some(name.to_string()), PathBuf::from(path))
                    }
                    _ => (None, PathBuf::from(v)),
                };
                out.shims.push(ShimArg {
                    name,
                    path,
                    state_root: PathBuf::from(RUNC_STATE_ROOT),
                    protocol: launch::StartProtocol::Legacy,
                });
            }
            "--state-root" => {
                let dir = PathBuf::from(value("--state-root")?);
                if !dir.is_absolute() {
                    return Err("--state-root takes an absolute directory".into());
                }
                match out.shims.last_mut() {
                    Some(shim) => shim.state_root = dir,
                    None => return Err("--state-root follows the --shim it is for".into()),
                }
            }
            "--bootstrap" => match out.shims.last_mut() {
                Some(shim) => shim.protocol = launch::StartProtocol::Bootstrap,
                None => return Err("--bootstrap follows the --shim it is for".into()),
            },
            "--filter" => out.filters.push(value("--filter")?),
            "--skip" => out.skips.push(value("--skip")?),
            "--json" => out.json = Some(PathBuf::from(value("--json")?)),
            "--markdown" => out.markdown = Some(PathBuf::from(value("--markdown")?)),
            "--list" => out.list = true,
            "--lifecycle" => {
                out.lifecycle = value("--lifecycle")?
                    .parse()
                    .map_err(|_| "--lifecycle takes a count".to_string())?
            }
            "--stats-load" => out.stats_load = Some(statsload::parse(&value("--stats-load")?)?),
            "-h" | "--help" => return Err(USAGE.to_string()),
            other => return Err(format!("unknown argument {other:?}\n\n{USAGE}")),
        }
    }
    if out.shims.is_empty() && !out.list {
        return Err(format!("no --shim given\n\n{USAGE}"));
    }
    Ok(out)
}

/// "skiff-v2 0.1.0", "runc-v2 1.6.20": the binary's name without containerd's prefix,
/// and the version its `-v` prints.
fn label_of(path: &std::path::Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string());
    let name = name
        .strip_prefix("containerd-shim-")
        .unwrap_or(&name)
        .to_string();
    let out = std::process::Command::new(path).arg("-v").output();
    let text = out
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let version = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Version:").map(str::trim))
        .or_else(|| {
            text.lines()
                .next()
                .and_then(|l| l.split_whitespace().last())
        })
        .filter(|v| v.starts_with(|c: char| c.is_ascii_digit()))
        .map(|v| v.split(['~', '+']).next().unwrap_or(v).to_string());
    match version {
        Some(v) => format!("{name} {v}"),
        None => name,
    }
}

pub fn main() -> i32 {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let args = match parse_args(&argv) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return 2;
        }
    };
    let selected: Vec<&scenarios::Scenario> = scenarios::ALL
        .iter()
        .filter(|s| {
            (args.filters.is_empty() || args.filters.iter().any(|f| s.name.contains(f.as_str())))
                && !args.skips.iter().any(|f| s.name.contains(f.as_str()))
        })
        .collect();
    if args.list {
        for s in &selected {
            println!("{:<28} {}", s.name, s.about);
        }
        return 0;
    }
    match run(&args, &selected) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("shimtest: {e}");
            2
        }
    }
}

fn run(args: &Args, selected: &[&scenarios::Scenario]) -> Result<i32, String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err("needs root: it creates containers, mounts and cgroups".into());
    }
    if selected.is_empty() {
        return Err("no scenario matches the filter (see --list)".into());
    }
    let mut targets = Vec::new();
    for shim in &args.shims {
        let path = std::fs::canonicalize(&shim.path)
            .map_err(|e| format!("shim {}: {e}", shim.path.display()))?;
        let bootstrap = shim.protocol == launch::StartProtocol::Bootstrap;
        let label = shim.name.clone().unwrap_or_else(|| label_of(&path));
        targets.push(Target {
            label: if bootstrap && shim.name.is_none() {
                format!("{label} (2.3 start)")
            } else {
                label
            },
            path,
            state_root: shim.state_root.clone(),
            protocol: shim.protocol,
            timings: Default::default(),
        });
    }
    let base = skiff_test_support::bundle::TempDir::new("shimtest")
        .map_err(|e| format!("temporary directory: {e}"))?;
    let server = events::EventServer::start(&base.path().join("containerd.sock.ttrpc"))?;
    let manager = launch::Manager {
        address: base.path().join("containerd.sock"),
        ttrpc_address: server.address.clone(),
        publish_binary: std::env::current_exe().unwrap_or_else(|_| PathBuf::from("shimtest")),
        socket_dir: base.path().join("s"),
    };
    if args.lifecycle > 0 {
        return lifecycles(&targets, &manager, &server, args.lifecycle);
    }
    if let Some(load) = args.stats_load {
        return statsload::run(&targets, &manager, &server, load);
    }
    let mut report = Report::new(&targets, selected);
    let mut seq = 0;
    for (si, scenario) in selected.iter().enumerate() {
        for (ti, target) in targets.iter().enumerate() {
            seq += 1;
            let ns = format!("shimtest{}-{seq}", std::process::id());
            let began = Instant::now();
            let verdict = run_one(scenario, target, &manager, &server, ns);
            let cell = Cell::new(verdict, began.elapsed());
            println!(
                "{:<4} {:<28} [{}] {}",
                cell.word(),
                scenario.name,
                target.label,
                cell.detail()
            );
            report.set(si, ti, cell);
        }
    }
    print!("{}", report.render());
    if let Some(path) = &args.json {
        std::fs::write(path, report.json().to_string())
            .map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    if let Some(path) = &args.markdown {
        std::fs::write(path, report.markdown())
            .map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    Ok(if report.under_test_conforms() { 0 } else { 1 })
}

/// `--lifecycle N`: whole container lives, shims interleaved so that a slow moment of
/// the machine falls on all of them.
fn lifecycles(
    targets: &[Target],
    manager: &launch::Manager,
    server: &events::EventServer,
    n: usize,
) -> Result<i32, String> {
    let mut times: Vec<Vec<std::time::Duration>> = vec![Vec::new(); targets.len()];
    for i in 0..n {
        for (t, target) in targets.iter().enumerate() {
            let ns = format!("shimtest{}-life{i}-{t}", std::process::id());
            let mut ctx = Ctx::new(target, manager, &server.log, ns)?;
            let took = ctx.lifecycle("life");
            let left = ctx.finish();
            match (took, left) {
                (Ok(d), Ok(())) => times[t].push(d),
                (Err(Verdict::Fail(r)) | Err(Verdict::Skip(r)), _) | (_, Err(r)) => {
                    return Err(format!("{}: {r}", target.label))
                }
            }
        }
    }
    println!(
        "shim-side lifecycle (start, Create, Start, exit, Delete, Shutdown, shim exit), {n} runs"
    );
    println!(
        "{:<24} {:>10} {:>10} {:>10}",
        "shim", "p50_ms", "p90_ms", "x first"
    );
    let median = |v: &mut Vec<std::time::Duration>, q: usize| {
        v.sort();
        v[(v.len() * q / 100).min(v.len() - 1)].as_secs_f64() * 1000.0
    };
    let base = median(&mut times[0].clone(), 50);
    for (t, target) in targets.iter().enumerate() {
        let p50 = median(&mut times[t], 50);
        let p90 = median(&mut times[t], 90);
        println!(
            "{:<24} {p50:>10.1} {p90:>10.1} {:>10.2}",
            target.label,
            p50 / base
        );
    }
    Ok(0)
}

fn run_one(
    scenario: &scenarios::Scenario,
    target: &Target,
    manager: &launch::Manager,
    server: &events::EventServer,
    ns: String,
) -> Option<Verdict> {
    let mut ctx = match Ctx::new(target, manager, &server.log, ns) {
        Ok(c) => c,
        Err(e) => return Some(Verdict::Fail(e)),
    };
    let outcome =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (scenario.run)(&mut ctx)))
            .unwrap_or_else(|_| Err(Verdict::Fail("the scenario panicked".into())));
    let log = ctx.log_tail();
    let cleanup = ctx.finish();
    let with_log = |reason: String| {
        if log.is_empty() {
            reason
        } else {
            format!(
                "{reason}\n      shim log: {}",
                log.replace('\n', "\n                ")
            )
        }
    };
    match (outcome, cleanup) {
        (Ok(()), Ok(())) => None,
        (Ok(()), Err(left)) => Some(Verdict::Fail(left)),
        (Err(Verdict::Fail(r)), Ok(())) => Some(Verdict::Fail(with_log(r))),
        (Err(Verdict::Fail(r)), Err(left)) => Some(Verdict::Fail(with_log(format!("{r}; {left}")))),
        (Err(Verdict::Skip(r)), Ok(())) => Some(Verdict::Skip(r)),
        (Err(Verdict::Skip(r)), Err(left)) => {
            Some(Verdict::Fail(format!("skipped ({r}) but {left}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_parse() {
        let argv: Vec<String> = [
            "--shim",
            "ours=/a/b",
            "--state-root",
            "/run/other",
            "--shim",
            "/c/d",
            "--filter",
            "exec",
            "--json",
            "o.json",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let a = parse_args(&argv).unwrap();
        assert_eq!(a.shims[0].name.as_deref(), Some("ours"));
        assert_eq!(a.shims[0].path, PathBuf::from("/a/b"));
        assert_eq!(a.shims[0].state_root, PathBuf::from("/run/other"));
        assert_eq!(a.shims[1].name, None);
        assert_eq!(a.shims[1].path, PathBuf::from("/c/d"));
        assert_eq!(a.shims[1].state_root, PathBuf::from(RUNC_STATE_ROOT));
        assert_eq!(a.filters, ["exec"]);
        assert_eq!(a.json, Some(PathBuf::from("o.json")));
        assert!(parse_args(&[]).unwrap_err().contains("no --shim"));
        let early = ["--state-root", "/x", "--shim", "/a"].map(String::from);
        assert!(parse_args(&early)
            .unwrap_err()
            .contains("follows the --shim"));
        let boot = ["--shim", "/a", "--bootstrap", "--shim", "/b"].map(String::from);
        let a = parse_args(&boot).unwrap();
        assert_eq!(a.shims[0].protocol, launch::StartProtocol::Bootstrap);
        assert_eq!(a.shims[1].protocol, launch::StartProtocol::Legacy);
        let relative = ["--shim", "/a", "--state-root", "x"].map(String::from);
        assert!(parse_args(&relative).unwrap_err().contains("absolute"));
        assert!(parse_args(&["--bogus".to_string()])
            .unwrap_err()
            .contains("--bogus"));
    }

    #[test]
    fn there_are_at_least_forty_uniquely_named_scenarios() {
        let mut names: Vec<&str> = scenarios::ALL.iter().map(|s| s.name).collect();
        assert!(names.len() >= 40, "{} scenarios", names.len());
        names.sort();
        names.dedup();
        assert_eq!(
            names.len(),
            scenarios::ALL.len(),
            "duplicate scenario names"
        );
    }
}
