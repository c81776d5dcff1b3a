//! The cgroup v2 side of the tests: where a process's cgroup is in the unified
//! hierarchy and what its files say, and the shim's own Task API for what ctr cannot
//! ask (Update) or shows only decoded (the type of the Stats answer).

use crate::containerd::Containerd;
use crate::shim_client::ShimProcess;
use protobuf::Message;
use skiff_protos::metrics_v2::Metrics;
use skiff_protos::shim_ttrpc::TaskClient;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub const ROOT: &str = "/sys/fs/cgroup";

/// The cgroup directory of a live process: `0::PATH` of /proc/PID/cgroup under the root.
pub fn cgroup_of(pid: u32) -> PathBuf {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/cgroup: {e}"));
    let path = text
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .unwrap_or_else(|| panic!("pid {pid} has no cgroup v2 membership: {text:?}"));
    Path::new(ROOT).join(path.trim_start_matches('/'))
}

/// A cgroup file's content, trimmed; the error text if it cannot be read (for asserts).
pub fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|e| format!("<{}: {e}>", dir.join(file).display()))
}

/// One key of a flat-keyed file (memory.events, cgroup.events, cpu.stat).
pub fn key(dir: &Path, file: &str, key: &str) -> Option<u64> {
    read(dir, file).lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok())?
    })
}

/// The pids in the cgroup (not below it).
pub fn procs(dir: &Path) -> Vec<u32> {
    read(dir, "cgroup.procs")
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// Waits up to `timeout` for `pred`; returns whether it came true.
pub fn eventually(timeout: Duration, pred: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if pred() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A Task API client of the shim serving a containerd task (the address containerd
/// keeps in the bundle).
pub fn shim_of(cd: &Containerd, id: &str) -> TaskClient {
    let address = std::fs::read_to_string(cd.bundle(id).join("address"))
        .unwrap_or_else(|e| panic!("the address of {id}'s shim: {e}"));
    let client = ttrpc::Client::connect(address.trim())
        .unwrap_or_else(|e| panic!("connecting to {id}'s shim at {address}: {e}"));
    TaskClient::new(client)
}

/// Stats of a task: the type URL of the answer and, when it is v2's, the metrics.
pub fn stats(client: &TaskClient, id: &str) -> (String, Option<Metrics>) {
    let resp = client
        .stats(
            ShimProcess::ctx(),
            &skiff_protos::shim::StatsRequest {
                id: id.into(),
                ..Default::default()
            },
        )
        .unwrap_or_else(|e| panic!("Stats of {id}: {e:?}"));
    let any = resp
        .stats
        .into_option()
        .expect("Stats answers with metrics");
    let metrics = (any.type_url == skiff_protos::type_url::CGROUPS_V2_METRICS)
        .then(|| Metrics::parse_from_bytes(&any.value).expect("decoding v2 metrics"));
    (any.type_url, metrics)
}

/// Update with an OCI LinuxResources document, as containerd sends it.
pub fn update(client: &TaskClient, id: &str, resources_json: &str) -> ttrpc::Result<()> {
    client
        .update(
            ShimProcess::ctx(),
            &skiff_protos::shim::UpdateTaskRequest {
                id: id.into(),
                resources: protobuf::MessageField::some(protobuf::well_known_types::any::Any {
                    type_url: "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources"
                        .into(),
                    value: resources_json.as_bytes().to_vec(),
                    ..Default::default()
                }),
                ..Default::default()
            },
        )
        .map(drop)
}

/// Waits up to `timeout` until `ctr task ls` shows the task in `status`; its pid. (The
/// fixture's own wait allows 20 s: in an emulated VM an OOM kill or a restore can take
/// longer than that.)
pub fn wait_status(cd: &Containerd, id: &str, status: &str, timeout: Duration) -> u32 {
    let deadline = Instant::now() + timeout;
    loop {
        let line = cd.task_line(id);
        if let Some(cols) = &line {
            if cols.get(2).map(String::as_str) == Some(status) {
                return cols[1].parse().expect("pid column");
            }
        }
        assert!(
            Instant::now() < deadline,
            "task {id} never reached {status} in {timeout:?}: {line:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// A container command that counts in /tmp/count every 50 ms: a paused container's
/// count stands still, a resumed one's moves on.
pub const COUNTER: &str =
    "i=0; while true; do i=$((i+1)); echo $i > /tmp/count; usleep 50000; done";

/// What the counter of container `id` says, read from its rootfs (0 before it starts).
pub fn count(cd: &Containerd, id: &str) -> u64 {
    std::fs::read_to_string(cd.bundle(id).join("rootfs/tmp/count"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// `ctr task pause` of a counting container whose cgroup is `dir`: the cgroup says it is
/// frozen and the count stands still for a second. Returns the count at the pause.
pub fn pause_counting(cd: &Containerd, id: &str, dir: &Path, timeout: Duration) -> u64 {
    assert!(
        eventually(timeout, || count(cd, id) > 0),
        "the counter runs"
    );
    let out = cd.ctr(&["task", "pause", id]);
    assert!(out.status.success(), "{}", crate::containerd::stderr(&out));
    cd.wait_status(id, "PAUSED");
    assert!(
        eventually(timeout, || key(dir, "cgroup.events", "frozen") == Some(1)),
        "cgroup.events: {}",
        read(dir, "cgroup.events")
    );
    let at_pause = count(cd, id);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(count(cd, id), at_pause, "the counter moved while paused");
    at_pause
}

/// `ctr task resume` of a container paused at count `at_pause`: the count moves on.
pub fn resume_counting(cd: &Containerd, id: &str, at_pause: u64, timeout: Duration) {
    let out = cd.ctr(&["task", "resume", id]);
    assert!(out.status.success(), "{}", crate::containerd::stderr(&out));
    cd.wait_status(id, "RUNNING");
    assert!(
        eventually(timeout, || count(cd, id) > at_pause),
        "the counter did not move after resume (stuck at {at_pause})"
    );
}
