//! Metrics, resource updates and OOM events through containerd, on this machine's cgroups.

use skiff_integration::containerd::{shim_binary, stderr, stdout, Containerd, BUSYBOX_IMAGE};
use skiff_integration::shim_client::ShimProcess;
use std::time::{Duration, Instant};

fn shim() -> String {
    shim_binary().to_string_lossy().into_owned()
}

fn metric(table: &str, name: &str) -> Option<String> {
    table
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .and_then(|l| l.split_whitespace().nth(1))
        .map(str::to_string)
}

#[test]
fn metrics_show_memory_and_pids() {
    let cd = Containerd::start();
    cd.run_detached(
        "measured",
        &[],
        &["sh", "-c", "sleep 300 & sleep 301 & exec sleep 302"],
    );
    // Wait until all three processes run.
    let deadline = Instant::now() + Duration::from_secs(10);
    let count = loop {
        let ps = stdout(&cd.ctr(&["task", "ps", "measured"]));
        let n = ps.lines().skip(1).filter(|l| !l.trim().is_empty()).count();
        if n == 3 || Instant::now() > deadline {
            break n;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(count, 3, "processes in the container");
    let out = cd.ctr(&["task", "metrics", "measured"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let table = stdout(&out);
    let usage: u64 = metric(&table, "memory.usage_in_bytes")
        .or_else(|| metric(&table, "memory.usage"))
        .unwrap_or_else(|| panic!("no memory usage in:\n{table}"))
        .parse()
        .unwrap();
    assert!(usage > 0, "memory usage {usage}");
    assert_eq!(
        metric(&table, "pids.current").as_deref(),
        Some("3"),
        "pids.current in:\n{table}"
    );
    cd.remove("measured");
}

#[test]
fn update_sets_the_memory_limit() {
    use skiff_protos::shim::UpdateTaskRequest;
    let cd = Containerd::start();
    cd.run_detached("resized", &[], &["sleep", "300"]);
    let address = std::fs::read_to_string(cd.bundle("resized").join("address")).unwrap();
    let client =
        skiff_protos::shim_ttrpc::TaskClient::new(ttrpc::Client::connect(&address).unwrap());
    let req = UpdateTaskRequest {
        id: "resized".into(),
        resources: protobuf::MessageField::some(protobuf::well_known_types::any::Any {
            type_url: "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources".into(),
            value: br#"{"memory":{"limit":67108864}}"#.to_vec(),
            ..Default::default()
        }),
        ..Default::default()
    };
    client.update(ShimProcess::ctx(), &req).expect("Update");
    let limit_file = if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        format!("/sys/fs/cgroup/{}/resized/memory.max", cd.namespace)
    } else {
        format!(
            "/sys/fs/cgroup/memory/{}/resized/memory.limit_in_bytes",
            cd.namespace
        )
    };
    let limit = std::fs::read_to_string(&limit_file).unwrap();
    assert_eq!(limit.trim(), "67108864", "{limit_file}");
    cd.remove("resized");
}

#[test]
fn oom_kill_is_reported_before_the_exit() {
    let cd = Containerd::start();
    let events = cd.events();
    let s = shim();
    // The shell collects 64 MiB into a variable under a 32 MiB limit.
    let out = cd.ctr(&[
        "run",
        "--rm",
        "--memory-limit",
        "33554432",
        "--runtime",
        &s,
        BUSYBOX_IMAGE,
        "hog",
        "sh",
        "-c",
        "a=$(head -c 67108864 /dev/zero | tr '\\0' a); echo ${#a}",
    ]);
    assert_eq!(
        out.status.code(),
        Some(137),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let topics = events.wait_for("hog", Duration::from_secs(10), |t| {
        t.iter().any(|x| x == "/tasks/delete")
    });
    let oom = topics.iter().position(|t| t == "/tasks/oom");
    let exit = topics.iter().position(|t| t == "/tasks/exit");
    assert!(
        matches!((oom, exit), (Some(o), Some(e)) if o < e),
        "expected /tasks/oom before /tasks/exit: {topics:?}"
    );
}
