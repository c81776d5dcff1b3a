//! Statistics of a cgroup v1 container, one controller directory each.

use crate::read::{number, table};
use protobuf::MessageField;
use skiff_protos::metrics_v1::*;
use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

pub fn metrics(dirs: &HashMap<String, PathBuf>) -> Metrics {
    let mut m = Metrics::new();
    if let Some(d) = dirs.get("pids") {
        let limit = number(d, "pids.max");
        m.pids = MessageField::some(PidsStat {
            current: number(d, "pids.current"),
            limit: if limit == u64::MAX { 0 } else { limit },
            ..Default::default()
        });
    }
    if let Some(d) = dirs.get("cpuacct") {
        let throttle = dirs
            .get("cpu")
            .map(|c| table(c, "cpu.stat"))
            .unwrap_or_default();
        m.cpu = MessageField::some(CPUStat {
            usage: MessageField::some(CPUUsage {
                total: number(d, "cpuacct.usage"),
                kernel: number(d, "cpuacct.usage_sys"),
                user: number(d, "cpuacct.usage_user"),
                per_cpu: fs::read_to_string(d.join("cpuacct.usage_percpu"))
                    .unwrap_or_default()
                    .split_whitespace()
                    .filter_map(|v| v.parse().ok())
                    .collect(),
                ..Default::default()
            }),
            throttling: MessageField::some(Throttle {
                periods: throttle.get("nr_periods").copied().unwrap_or(0),
                throttled_periods: throttle.get("nr_throttled").copied().unwrap_or(0),
                throttled_time: throttle.get("throttled_time").copied().unwrap_or(0),
                ..Default::default()
            }),
            ..Default::default()
        });
    }
    if let Some(d) = dirs.get("memory") {
        m.memory = MessageField::some(memory(d));
        let oom = table(d, "memory.oom_control");
        m.memory_oom_control = MessageField::some(MemoryOomControl {
            oom_kill_disable: oom.get("oom_kill_disable").copied().unwrap_or(0),
            under_oom: oom.get("under_oom").copied().unwrap_or(0),
            oom_kill: oom.get("oom_kill").copied().unwrap_or(0),
            ..Default::default()
        });
    }
    if let Some(d) = dirs.get("blkio") {
        m.blkio = MessageField::some(blkio(d));
    }
    m
}

fn entry(dir: &Path, prefix: &str) -> MessageField<MemoryEntry> {
    if !dir.join(format!("{prefix}.usage_in_bytes")).exists() {
        return MessageField::none();
    }
    MessageField::some(MemoryEntry {
        limit: number(dir, &format!("{prefix}.limit_in_bytes")),
        usage: number(dir, &format!("{prefix}.usage_in_bytes")),
        max: number(dir, &format!("{prefix}.max_usage_in_bytes")),
        failcnt: number(dir, &format!("{prefix}.failcnt")),
        ..Default::default()
    })
}

fn memory(d: &Path) -> MemoryStat {
    let s = table(d, "memory.stat");
    let g = |k: &str| s.get(k).copied().unwrap_or(0);
    MemoryStat {
        cache: g("cache"),
        rss: g("rss"),
        rss_huge: g("rss_huge"),
        mapped_file: g("mapped_file"),
        dirty: g("dirty"),
        writeback: g("writeback"),
        pg_pg_in: g("pgpgin"),
        pg_pg_out: g("pgpgout"),
        pg_fault: g("pgfault"),
        pg_maj_fault: g("pgmajfault"),
        inactive_anon: g("inactive_anon"),
        active_anon: g("active_anon"),
        inactive_file: g("inactive_file"),
        active_file: g("active_file"),
        unevictable: g("unevictable"),
        hierarchical_memory_limit: g("hierarchical_memory_limit"),
        hierarchical_swap_limit: g("hierarchical_memsw_limit"),
        total_cache: g("total_cache"),
        total_rss: g("total_rss"),
        total_rss_huge: g("total_rss_huge"),
        total_mapped_file: g("total_mapped_file"),
        total_dirty: g("total_dirty"),
        total_writeback: g("total_writeback"),
        total_pg_pg_in: g("total_pgpgin"),
        total_pg_pg_out: g("total_pgpgout"),
        total_pg_fault: g("total_pgfault"),
        total_pg_maj_fault: g("total_pgmajfault"),
        total_inactive_anon: g("total_inactive_anon"),
        total_active_anon: g("total_active_anon"),
        total_inactive_file: g("total_inactive_file"),
        total_active_file: g("total_active_file"),
        total_unevictable: g("total_unevictable"),
        usage: entry(d, "memory"),
        swap: entry(d, "memory.memsw"),
        kernel: entry(d, "memory.kmem"),
        kernel_tcp: entry(d, "memory.kmem.tcp"),
        ..Default::default()
    }
}

/// blkio's recursive counters: "MAJ:MIN Op value" lines (and a "Total" line, skipped).
/// The CFQ files are empty on modern kernels; the throttle files then count instead.
fn blkio(d: &Path) -> BlkIOStat {
    let read = |name: &str| -> Vec<BlkIOEntry> {
        let primary =
            parse_blkio(&fs::read_to_string(d.join(format!("blkio.{name}"))).unwrap_or_default());
        if !primary.is_empty() {
            return primary;
        }
        let throttle = name.trim_end_matches("_recursive");
        parse_blkio(
            &fs::read_to_string(d.join(format!("blkio.throttle.{throttle}"))).unwrap_or_default(),
        )
    };
    BlkIOStat {
        io_service_bytes_recursive: read("io_service_bytes_recursive"),
        io_serviced_recursive: read("io_serviced_recursive"),
        ..Default::default()
    }
}

fn parse_blkio(text: &str) -> Vec<BlkIOEntry> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() != 3 {
                return None;
            }
            let (major, minor) = f[0].split_once(':')?;
            Some(BlkIOEntry {
                op: f[1].to_string(),
                major: major.parse().ok()?,
                minor: minor.parse().ok()?,
                value: f[2].parse().ok()?,
                ..Default::default()
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blkio_lines() {
        let e = parse_blkio("8:0 Read 4096\n8:0 Write 512\nTotal 4608\n");
        assert_eq!(e.len(), 2);
        assert_eq!(
            (e[0].major, e[0].minor, e[0].op.as_str(), e[0].value),
            (8, 0, "Read", 4096)
        );
        assert_eq!(e[1].value, 512);
    }
}
