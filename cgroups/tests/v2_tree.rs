//! The v2 readers on a cgroup v2 directory laid out in a temporary directory with the
//! exact files the kernel writes, checked field by field.

use skiff_cgroups::{Cgroup, Metrics};
use std::fs;

#[test]
fn v2_metrics_from_kernel_files() {
    let dir = std::env::temp_dir().join(format!("skiff-cg2-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let files = [
        ("memory.current", "12345678\n"),
        ("memory.max", "max\n"),
        ("memory.swap.current", "4096\n"),
        ("memory.swap.max", "1048576\n"),
        ("memory.swap.peak", "8192\n"),
        ("memory.peak", "23456789\n"),
        (
            "memory.stat",
            "anon 1000\nfile 2000\nkernel_stack 16384\npagetables 0\nsec_pagetables 0\npercpu 0\nsock 0\nvmalloc 0\nshmem 300\nzswap 0\nzswapped 0\nfile_mapped 400\nfile_dirty 5\nfile_writeback 6\nswapcached 0\nanon_thp 0\nfile_thp 0\nshmem_thp 0\ninactive_anon 700\nactive_anon 800\ninactive_file 900\nactive_file 1100\nunevictable 0\nslab_reclaimable 1200\nslab_unreclaimable 1300\nslab 2500\nworkingset_refault_anon 0\nworkingset_refault_file 0\nworkingset_activate_anon 0\nworkingset_activate_file 0\nworkingset_restore_anon 0\nworkingset_restore_file 0\nworkingset_nodereclaim 0\npgscan 14\npgsteal 15\npgscan_kswapd 0\npgscan_direct 0\npgsteal_kswapd 0\npgsteal_direct 0\npgfault 1600\npgmajfault 17\npgrefill 18\npgactivate 19\npgdeactivate 20\npglazyfree 21\npglazyfreed 22\nthp_fault_alloc 23\nthp_collapse_alloc 24\n",
        ),
        ("memory.events", "low 0\nhigh 1\nmax 2\noom 3\noom_kill 4\noom_group_kill 5\n"),
        (
            "cpu.stat",
            "usage_usec 5000\nuser_usec 3000\nsystem_usec 2000\nnr_periods 10\nnr_throttled 2\nthrottled_usec 150\nnr_bursts 7\nburst_usec 70\n",
        ),
        (
            "cpu.pressure",
            "some avg10=12.50 avg60=3.25 avg300=0.75 total=987654\nfull avg10=1.00 avg60=0.50 avg300=0.25 total=4321\n",
        ),
        (
            "memory.pressure",
            "some avg10=0.00 avg60=0.00 avg300=0.00 total=11\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=10\n",
        ),
        (
            "io.pressure",
            "some avg10=2.00 avg60=1.00 avg300=0.50 total=222\nfull avg10=1.50 avg60=0.75 avg300=0.25 total=111\n",
        ),
        ("pids.current", "3\n"),
        ("pids.max", "1024\n"),
        (
            "io.stat",
            "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n253:1 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0\n",
        ),
    ];
    for (name, text) in files {
        fs::write(dir.join(name), text).unwrap();
    }
    let cg = Cgroup::v2(&dir);
    let Metrics::V2(m) = cg.metrics() else {
        panic!("v2 metrics expected")
    };
    assert_eq!(cg.oom_kills(), Some(4));
    fs::remove_dir_all(&dir).unwrap();

    let pids = m.pids.unwrap();
    assert_eq!((pids.current, pids.limit), (3, 1024));
    let cpu = m.cpu.unwrap();
    assert_eq!(
        (cpu.usage_usec, cpu.user_usec, cpu.system_usec),
        (5000, 3000, 2000)
    );
    assert_eq!(
        (cpu.nr_periods, cpu.nr_throttled, cpu.throttled_usec),
        (10, 2, 150)
    );
    assert_eq!((cpu.nr_bursts, cpu.burst_usec), (7, 70));
    let psi = cpu.psi.unwrap();
    let some = psi.some.unwrap();
    assert_eq!(
        (some.avg10, some.avg60, some.avg300, some.total),
        (12.5, 3.25, 0.75, 987654)
    );
    let full = psi.full.unwrap();
    assert_eq!(
        (full.avg10, full.avg60, full.avg300, full.total),
        (1.0, 0.5, 0.25, 4321)
    );
    let mem = m.memory.unwrap();
    assert_eq!(mem.usage, 12_345_678);
    assert_eq!(mem.usage_limit, u64::MAX, "memory.max of \"max\"");
    assert_eq!(mem.max_usage, 23_456_789);
    assert_eq!((mem.anon, mem.file, mem.kernel_stack), (1000, 2000, 16384));
    assert_eq!(
        (
            mem.shmem,
            mem.file_mapped,
            mem.file_dirty,
            mem.file_writeback
        ),
        (300, 400, 5, 6)
    );
    assert_eq!((mem.inactive_anon, mem.active_anon), (700, 800));
    assert_eq!((mem.inactive_file, mem.active_file), (900, 1100));
    assert_eq!(
        (mem.slab_reclaimable, mem.slab_unreclaimable, mem.slab),
        (1200, 1300, 2500)
    );
    assert_eq!((mem.pgfault, mem.pgmajfault, mem.pgrefill), (1600, 17, 18));
    assert_eq!(
        (mem.pgscan, mem.pgsteal, mem.pgactivate, mem.pgdeactivate),
        (14, 15, 19, 20)
    );
    assert_eq!((mem.pglazyfree, mem.pglazyfreed), (21, 22));
    assert_eq!((mem.thp_fault_alloc, mem.thp_collapse_alloc), (23, 24));
    assert_eq!(
        (mem.swap_usage, mem.swap_limit, mem.swap_max_usage),
        (4096, 1_048_576, 8192)
    );
    let psi = mem.psi.unwrap();
    assert_eq!((psi.some.total, psi.full.total), (11, 10));
    let ev = m.memory_events.unwrap();
    assert_eq!(
        (
            ev.low,
            ev.high,
            ev.max,
            ev.oom,
            ev.oom_kill,
            ev.oom_group_kill
        ),
        (0, 1, 2, 3, 4, 5)
    );
    let io = m.io.unwrap();
    assert_eq!(io.usage.len(), 2);
    let d = &io.usage[0];
    assert_eq!(
        (d.major, d.minor, d.rbytes, d.wbytes, d.rios, d.wios),
        (8, 0, 4096, 8192, 1, 2)
    );
    assert_eq!(
        (io.usage[1].major, io.usage[1].minor, io.usage[1].wios),
        (253, 1, 4)
    );
    let psi = io.psi.unwrap();
    assert_eq!((psi.some.avg10, psi.full.total), (2.0, 111));
}

#[test]
fn v2_metrics_without_psi_have_none() {
    let dir = std::env::temp_dir().join(format!("skiff-cg2-nopsi-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("memory.current"), "1\n").unwrap();
    fs::write(dir.join("cpu.stat"), "usage_usec 5\n").unwrap();
    let Metrics::V2(m) = Cgroup::v2(&dir).metrics() else {
        panic!("v2 metrics expected")
    };
    fs::remove_dir_all(&dir).unwrap();
    assert!(m.cpu.unwrap().psi.is_none());
    assert!(m.memory.unwrap().psi.is_none());
    assert!(
        m.io.is_none(),
        "no io.stat and no io.pressure: no io figures"
    );
}
