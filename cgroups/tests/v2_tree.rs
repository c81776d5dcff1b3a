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
        ("memory.swap.current", "0\n"),
        ("memory.swap.max", "max\n"),
        ("memory.peak", "23456789\n"),
        (
            "memory.stat",
            "anon 1000\nfile 2000\nkernel_stack 16384\npagetables 0\nsec_pagetables 0\npercpu 0\nsock 0\nvmalloc 0\nshmem 300\nzswap 0\nzswapped 0\nfile_mapped 400\nfile_dirty 5\nfile_writeback 6\nswapcached 0\nanon_thp 0\nfile_thp 0\nshmem_thp 0\ninactive_anon 700\nactive_anon 800\ninactive_file 900\nactive_file 1100\nunevictable 0\nslab_reclaimable 1200\nslab_unreclaimable 1300\nslab 2500\nworkingset_refault_anon 0\nworkingset_refault_file 0\nworkingset_activate_anon 0\nworkingset_activate_file 0\nworkingset_restore_anon 0\nworkingset_restore_file 0\nworkingset_nodereclaim 0\npgscan 14\npgsteal 15\npgscan_kswapd 0\npgscan_direct 0\npgsteal_kswapd 0\npgsteal_direct 0\npgfault 1600\npgmajfault 17\npgrefill 18\npgactivate 19\npgdeactivate 20\npglazyfree 21\npglazyfreed 22\nthp_fault_alloc 23\nthp_collapse_alloc 24\n",
        ),
        ("memory.events", "low 0\nhigh 1\nmax 2\noom 3\noom_kill 4\noom_group_kill 0\n"),
        (
            "cpu.stat",
            "usage_usec 5000\nuser_usec 3000\nsystem_usec 2000\nnr_periods 10\nnr_throttled 2\nthrottled_usec 150\nnr_bursts 0\nburst_usec 0\n",
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
    assert_eq!(mem.swap_usage, 0);
    let ev = m.memory_events.unwrap();
    assert_eq!(
        (ev.low, ev.high, ev.max, ev.oom, ev.oom_kill),
        (0, 1, 2, 3, 4)
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
}
