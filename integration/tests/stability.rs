//! 1,000 create/start/exec/kill/delete cycles through one shim: its memory, threads and
//! file descriptors stay flat.

use skiff_integration::bundle::{busybox_bundle, TempDir};
use skiff_integration::containerd::shim_binary;
use skiff_integration::proc;
use skiff_integration::shim_client::{runc_options, ShimProcess};
use skiff_protos::shim::*;

const CYCLES: usize = 1000;
const WARM_UP: usize = 20;
/// RSS may grow this much over the cycles (allocator caches), and no more.
const RSS_BOUND_KIB: u64 = 1024;

#[test]
fn a_thousand_cycles_leave_the_shim_flat() {
    let tmp = TempDir::new("skiff-cycles").unwrap();
    let ns = format!("skiff-cycles-{}", std::process::id());
    let _cgroups = skiff_integration::containerd::CgroupCleanup(ns.clone());
    let bundle = busybox_bundle(
        &tmp.path().join("bundle"),
        &["sleep", "300"],
        &format!("/{ns}/cycle"),
    )
    .unwrap();
    let shim = ShimProcess::start(
        &shim_binary(),
        &bundle,
        &ns,
        "pod",
        &tmp.path().join("containerd.sock").to_string_lossy(),
        "",
    )
    .unwrap();
    let c = &shim.client;
    let ctx = ShimProcess::ctx;
    let log = format!("file://{}", tmp.path().join("out.log").display());
    let exec_spec = protobuf::well_known_types::any::Any {
        type_url: "types.containerd.io/opencontainers/runtime-spec/1/Process".into(),
        value:
            br#"{"args":["echo","exec"],"cwd":"/","env":["PATH=/bin"],"user":{"uid":0,"gid":0}}"#
                .to_vec(),
        ..Default::default()
    };
    let options = runc_options(&skiff_protos::options::Options {
        root: tmp.path().join("runc").to_string_lossy().into_owned(),
        ..Default::default()
    });
    let cycle = |n: usize| {
        let id = format!("c{n}");
        c.create(
            ctx(),
            &CreateTaskRequest {
                id: id.clone(),
                bundle: bundle.to_string_lossy().into_owned(),
                stdout: log.clone(),
                options: protobuf::MessageField::some(options.clone()),
                ..Default::default()
            },
        )
        .unwrap_or_else(|e| panic!("cycle {n}: Create: {e:?}"));
        c.start(
            ctx(),
            &StartRequest {
                id: id.clone(),
                ..Default::default()
            },
        )
        .unwrap_or_else(|e| panic!("cycle {n}: Start: {e:?}"));
        c.exec(
            ctx(),
            &ExecProcessRequest {
                id: id.clone(),
                exec_id: "e".into(),
                stdout: log.clone(),
                spec: protobuf::MessageField::some(exec_spec.clone()),
                ..Default::default()
            },
        )
        .unwrap_or_else(|e| panic!("cycle {n}: Exec: {e:?}"));
        c.start(
            ctx(),
            &StartRequest {
                id: id.clone(),
                exec_id: "e".into(),
                ..Default::default()
            },
        )
        .unwrap_or_else(|e| panic!("cycle {n}: Start exec: {e:?}"));
        let w = c
            .wait(
                ctx(),
                &WaitRequest {
                    id: id.clone(),
                    exec_id: "e".into(),
                    ..Default::default()
                },
            )
            .unwrap();
        assert_eq!(w.exit_status, 0, "cycle {n}: exec exit");
        c.delete(
            ctx(),
            &DeleteRequest {
                id: id.clone(),
                exec_id: "e".into(),
                ..Default::default()
            },
        )
        .unwrap_or_else(|e| panic!("cycle {n}: Delete exec: {e:?}"));
        c.kill(
            ctx(),
            &KillRequest {
                id: id.clone(),
                signal: 9,
                ..Default::default()
            },
        )
        .unwrap_or_else(|e| panic!("cycle {n}: Kill: {e:?}"));
        let w = c
            .wait(
                ctx(),
                &WaitRequest {
                    id: id.clone(),
                    ..Default::default()
                },
            )
            .unwrap();
        assert_eq!(w.exit_status, 137, "cycle {n}: init exit");
        c.delete(
            ctx(),
            &DeleteRequest {
                id: id.clone(),
                ..Default::default()
            },
        )
        .unwrap_or_else(|e| panic!("cycle {n}: Delete: {e:?}"));
    };
    for n in 0..WARM_UP {
        cycle(n);
    }
    let pid = shim.pid;
    let before = (
        proc::rss_kib(pid),
        proc::thread_count(pid),
        proc::fd_count(pid),
    );
    let started = std::time::Instant::now();
    for n in WARM_UP..WARM_UP + CYCLES {
        cycle(n);
    }
    let elapsed = started.elapsed();
    let after = (
        proc::rss_kib(pid),
        proc::thread_count(pid),
        proc::fd_count(pid),
    );
    let zombies = proc::zombie_children(pid);
    skiff_integration::report(&format!(
        "stability: {CYCLES} create/start/exec/kill/delete cycles through one shim in {:.1} s: \
         RSS {} -> {} KiB (bound +{RSS_BOUND_KIB}), threads {} -> {}, fds {} -> {}, zombies {}",
        elapsed.as_secs_f64(),
        before.0,
        after.0,
        before.1,
        after.1,
        before.2,
        after.2,
        zombies.len()
    ));
    let _ = c.shutdown(ctx(), &ShutdownRequest::default());
    assert!(
        after.0 <= before.0 + RSS_BOUND_KIB,
        "RSS grew {} -> {} KiB",
        before.0,
        after.0
    );
    assert_eq!(after.1, before.1, "threads");
    assert_eq!(after.2, before.2, "fds");
    assert!(zombies.is_empty(), "zombies {zombies:?}");
    let lines = std::fs::read_to_string(tmp.path().join("out.log")).unwrap();
    assert_eq!(
        lines.lines().filter(|l| *l == "exec").count(),
        CYCLES + WARM_UP,
        "every exec's output"
    );
}
