//! Statistics of a cgroup v2 container: one directory holds every controller's files,
//! its pressure (PSI) among them.

use crate::psi;
use crate::read::{number, table};
use protobuf::MessageField;
use skiff_protos::metrics_v2::*;
use std::fs;
use std::path::Path;

pub fn metrics(dir: &Path) -> Metrics {
    let mut m = Metrics::new();
    if dir.join("pids.current").exists() {
        let limit = number(dir, "pids.max");
        m.pids = MessageField::some(PidsStat {
            current: number(dir, "pids.current"),
            limit: if limit == u64::MAX { 0 } else { limit },
            ..Default::default()
        });
    }
    let cpu = table(dir, "cpu.stat");
    let c = |k: &str| cpu.get(k).copied().unwrap_or(0);
    m.cpu = MessageField::some(CPUStat {
        usage_usec: c("usage_usec"),
        user_usec: c("user_usec"),
        system_usec: c("system_usec"),
        nr_periods: c("nr_periods"),
        nr_throttled: c("nr_throttled"),
        throttled_usec: c("throttled_usec"),
        nr_bursts: c("nr_bursts"),
        burst_usec: c("burst_usec"),
        psi: psi::read(dir, "cpu.pressure"),
        ..Default::default()
    });
    if dir.join("memory.current").exists() {
        m.memory = MessageField::some(memory(dir));
        let ev = table(dir, "memory.events");
        let e = |k: &str| ev.get(k).copied().unwrap_or(0);
        m.memory_events = MessageField::some(MemoryEvents {
            low: e("low"),
            high: e("high"),
            max: e("max"),
            oom: e("oom"),
            oom_kill: e("oom_kill"),
            oom_group_kill: e("oom_group_kill"),
            ..Default::default()
        });
    }
    // io.pressure is there whether or not the io controller is enabled; io.stat is not.
    let io_psi = psi::read(dir, "io.pressure");
    let io_stat = fs::read_to_string(dir.join("io.stat")).ok();
    if io_stat.is_some() || io_psi.is_some() {
        m.io = MessageField::some(IOStat {
            usage: parse_io_stat(&io_stat.unwrap_or_default()),
            psi: io_psi,
            ..Default::default()
        });
    }
    m
}

fn memory(dir: &Path) -> MemoryStat {
    let s = table(dir, "memory.stat");
    let g = |k: &str| s.get(k).copied().unwrap_or(0);
    MemoryStat {
        anon: g("anon"),
        file: g("file"),
        kernel_stack: g("kernel_stack"),
        slab: g("slab"),
        sock: g("sock"),
        shmem: g("shmem"),
        file_mapped: g("file_mapped"),
        file_dirty: g("file_dirty"),
        file_writeback: g("file_writeback"),
        anon_thp: g("anon_thp"),
        inactive_anon: g("inactive_anon"),
        active_anon: g("active_anon"),
        inactive_file: g("inactive_file"),
        active_file: g("active_file"),
        unevictable: g("unevictable"),
        slab_reclaimable: g("slab_reclaimable"),
        slab_unreclaimable: g("slab_unreclaimable"),
        pgfault: g("pgfault"),
        pgmajfault: g("pgmajfault"),
        workingset_refault: g("workingset_refault"),
        workingset_activate: g("workingset_activate"),
        workingset_nodereclaim: g("workingset_nodereclaim"),
        pgrefill: g("pgrefill"),
        pgscan: g("pgscan"),
        pgsteal: g("pgsteal"),
        pgactivate: g("pgactivate"),
        pgdeactivate: g("pgdeactivate"),
        pglazyfree: g("pglazyfree"),
        pglazyfreed: g("pglazyfreed"),
        thp_fault_alloc: g("thp_fault_alloc"),
        thp_collapse_alloc: g("thp_collapse_alloc"),
        usage: number(dir, "memory.current"),
        usage_limit: number(dir, "memory.max"),
        swap_usage: number(dir, "memory.swap.current"),
        swap_limit: number(dir, "memory.swap.max"),
        max_usage: number(dir, "memory.peak"),
        swap_max_usage: number(dir, "memory.swap.peak"),
        psi: psi::read(dir, "memory.pressure"),
        ..Default::default()
    }
}

/// io.stat: "MAJ:MIN rbytes=N wbytes=N rios=N wios=N dbytes=N dios=N" per device.
fn parse_io_stat(text: &str) -> Vec<IOEntry> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (major, minor) = f.next()?.split_once(':')?;
            let mut e = IOEntry {
                major: major.parse().ok()?,
                minor: minor.parse().ok()?,
                ..Default::default()
            };
            for kv in f {
                let Some((k, v)) = kv.split_once('=') else {
                    continue;
                };
                let v = v.parse().unwrap_or(0);
                match k {
                    "rbytes" => e.rbytes = v,
                    "wbytes" => e.wbytes = v,
                    "rios" => e.rios = v,
                    "wios" => e.wios = v,
                    _ => {}
                }
            }
            Some(e)
        })
        .collect()
}
