//! `--stats-load N:SECONDS`: what containerd 2.3's CRI costs a pod's shim, which asks
//! every container's Stats once a second (its default `stats_collect_period`). N
//! containers of one pod run `sleep` in one shim; for SECONDS the harness asks each
//! container's Stats once a second, spread over the second, and reads the shim's own CPU
//! time (its threads, not the runtime commands it starts) and memory: idle for SECONDS
//! first, then under the load. Shims are measured one after the other, twice, in
//! alternating order, so a slow stretch of the machine does not fall on one alone.

use super::ctx::{cmd, Ctx, Process, Target, Verdict};
use super::{events, launch};
use skiff_protos::shim::StatsRequest;
use std::time::{Duration, Instant};

/// `N:SECONDS` of `--stats-load`.
pub fn parse(value: &str) -> Result<(usize, u64), String> {
    let bad = || format!("--stats-load takes CONTAINERS:SECONDS, not {value:?}");
    let (n, s) = value.split_once(':').ok_or_else(bad)?;
    let n: usize = n.parse().map_err(|_| bad())?;
    let s: u64 = s.parse().map_err(|_| bad())?;
    if n == 0 || s == 0 {
        return Err(bad());
    }
    Ok((n, s))
}

/// One shim's figures from one round.
#[derive(Debug, Default, Clone)]
struct Round {
    idle_cpu_ms: f64,
    load_cpu_ms: f64,
    rss_kib: u64,
    threads: u64,
    latencies: Vec<Duration>,
}

pub fn run(
    targets: &[Target],
    manager: &launch::Manager,
    server: &events::EventServer,
    (containers, seconds): (usize, u64),
) -> Result<i32, String> {
    let mut rounds: Vec<Vec<Round>> = vec![Vec::new(); targets.len()];
    for pass in 0..2 {
        let order: Vec<usize> = match pass {
            0 => (0..targets.len()).collect(),
            _ => (0..targets.len()).rev().collect(),
        };
        for t in order {
            let ns = format!("shimtest{}-stats{pass}-{t}", std::process::id());
            let mut ctx = Ctx::new(&targets[t], manager, &server.log, ns)?;
            let round = measure(&mut ctx, containers, seconds);
            let left = ctx.finish();
            match (round, left) {
                (Ok(r), Ok(())) => rounds[t].push(r),
                (Err(Verdict::Fail(r)) | Err(Verdict::Skip(r)), _) | (_, Err(r)) => {
                    return Err(format!("{}: {r}", targets[t].label))
                }
            }
        }
    }
    print_report(targets, &rounds, containers, seconds);
    Ok(0)
}

fn measure(ctx: &mut Ctx, containers: usize, seconds: u64) -> Result<Round, Verdict> {
    let mut procs: Vec<Process> = Vec::new();
    for i in 0..containers {
        let id = if i == 0 {
            "pod".to_string()
        } else {
            format!("c{i}")
        };
        procs.push(ctx.run(&cmd(&id, &["sleep", "3600"]).in_pod("pod").no_stdio())?);
    }
    let shim = ctx.shim_pid(procs[0].shim);
    let requests: Vec<StatsRequest> = procs
        .iter()
        .map(|p| StatsRequest {
            id: p.container_id.clone(),
            ..Default::default()
        })
        .collect();
    // Settle: the starts' work is done before anything is counted.
    std::thread::sleep(Duration::from_secs(1));
    let before_idle = cpu_ms(shim);
    std::thread::sleep(Duration::from_secs(seconds));
    let idle_cpu_ms = cpu_ms(shim) - before_idle;
    let api = procs[0].api.clone();
    let mut latencies = Vec::with_capacity(containers * seconds as usize);
    let gap = Duration::from_secs(1) / containers as u32;
    let before_load = cpu_ms(shim);
    let began = Instant::now();
    for k in 0..containers * seconds as usize {
        let due = began + gap * k as u32;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let asked = Instant::now();
        let r = api.stats(&requests[k % containers])?;
        latencies.push(asked.elapsed());
        if r.stats.is_none() {
            return Err(Verdict::Fail("a Stats answer without metrics".into()));
        }
    }
    let load_cpu_ms = cpu_ms(shim) - before_load;
    let (rss_kib, threads) = status_figures(shim);
    for p in &procs {
        let _ = p.kill(9);
    }
    for p in &procs {
        let _ = p.wait();
        let _ = p.delete();
    }
    Ok(Round {
        idle_cpu_ms,
        load_cpu_ms,
        rss_kib,
        threads,
        latencies,
    })
}

/// The process's own CPU time (user and system, all its threads), in milliseconds.
fn cpu_ms(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name's closing parenthesis: utime and stime are the
    // 12th and 13th of them.
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|i| fields.get(*i).and_then(|f| f.parse::<u64>().ok()))
        .sum();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    ticks as f64 * 1000.0 / hz
}

/// VmRSS (KiB) and Threads of /proc/PID/status.
fn status_figures(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("Threads:"))
}

fn percentile(sorted: &[Duration], q: usize) -> f64 {
    let i = (sorted.len() * q / 100).min(sorted.len().saturating_sub(1));
    sorted.get(i).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

fn print_report(targets: &[Target], rounds: &[Vec<Round>], containers: usize, seconds: u64) {
    println!(
        "Stats load: {containers} containers in one pod shim, each asked Stats once a second \
         for {seconds} s; shim CPU (its own threads) idle, then under the load; two rounds each"
    );
    println!(
        "{:<26} {:>12} {:>12} {:>12} {:>10} {:>8} {:>10} {:>10}",
        "shim", "idle_ms/s", "load_ms/s", "us/Stats", "rss_kib", "threads", "p50_ms", "p99_ms"
    );
    let calls = (containers as u64 * seconds) as f64;
    for (t, target) in targets.iter().enumerate() {
        let r = &rounds[t];
        let n = r.len().max(1) as f64;
        let idle = r.iter().map(|r| r.idle_cpu_ms).sum::<f64>() / n;
        let load = r.iter().map(|r| r.load_cpu_ms).sum::<f64>() / n;
        let rss = r.iter().map(|r| r.rss_kib).max().unwrap_or(0);
        let threads = r.iter().map(|r| r.threads).max().unwrap_or(0);
        let mut lat: Vec<Duration> = r.iter().flat_map(|r| r.latencies.clone()).collect();
        lat.sort();
        println!(
            "{:<26} {:>12.2} {:>12.2} {:>12.1} {:>10} {:>8} {:>10.3} {:>10.3}",
            target.label,
            idle / seconds as f64,
            load / seconds as f64,
            (load - idle).max(0.0) * 1000.0 / calls,
            rss,
            threads,
            percentile(&lat, 50),
            percentile(&lat, 99)
        );
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_load_is_given_as_containers_and_seconds() {
        assert_eq!(super::parse("30:60"), Ok((30, 60)));
        assert!(super::parse("30").is_err());
        assert!(super::parse("0:5").is_err());
        assert!(super::parse("3:x").is_err());
    }
}
