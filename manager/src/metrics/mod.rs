//! Metrics: counters skiffd keeps as it works (pulls, their bytes and durations, shim
//! RPC latency), and, at each scrape, gauges read from the store (tasks and containers
//! by state, images, content bytes); served as Prometheus text at `/v1/metrics` on
//! `--metrics-address` (`server`).

mod histogram;
pub mod server;

use histogram::Histogram;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

#[derive(Default)]
struct Counters {
    pulls_ok: AtomicU64,
    pulls_failed: AtomicU64,
    pull_bytes: AtomicU64,
    pull_seconds: Mutex<Histogram>,
    /// Shim RPC latency by method.
    shim_rpc: Mutex<BTreeMap<String, Histogram>>,
}

fn counters() -> &'static Counters {
    static C: OnceLock<Counters> = OnceLock::new();
    C.get_or_init(Counters::default)
}

/// A pull ended.
pub fn pulled(ok: bool, bytes: u64, took: Duration) {
    let c = counters();
    if ok { &c.pulls_ok } else { &c.pulls_failed }.fetch_add(1, Ordering::Relaxed);
    c.pull_bytes.fetch_add(bytes, Ordering::Relaxed);
    c.pull_seconds.lock().unwrap().observe(took.as_secs_f64());
}

/// A shim RPC took `took`.
pub fn shim_call(method: &str, took: Duration) {
    counters()
        .shim_rpc
        .lock()
        .unwrap()
        .entry(method.to_string())
        .or_default()
        .observe(took.as_secs_f64());
}

pub use crate::store::stats::Gauges;

/// The Prometheus text exposition of the counters and `gauges`.
pub fn render(gauges: &Gauges) -> String {
    let mut out = String::new();
    let mut seen = std::collections::HashSet::new();
    for (name, help, labels, value) in gauges {
        if seen.insert(*name) {
            out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} gauge\n"));
        }
        out.push_str(&format!("{name}{} {value}\n", label_text(labels)));
    }
    let c = counters();
    out.push_str("# HELP skiff_pulls_total Image pulls that ended, by result.\n# TYPE skiff_pulls_total counter\n");
    out.push_str(&format!(
        "skiff_pulls_total{{result=\"ok\"}} {}\nskiff_pulls_total{{result=\"error\"}} {}\n",
        c.pulls_ok.load(Ordering::Relaxed),
        c.pulls_failed.load(Ordering::Relaxed)
    ));
    out.push_str("# HELP skiff_pull_bytes_total Bytes received from registries.\n# TYPE skiff_pull_bytes_total counter\n");
    out.push_str(&format!(
        "skiff_pull_bytes_total {}\n",
        c.pull_bytes.load(Ordering::Relaxed)
    ));
    out.push_str("# HELP skiff_pull_duration_seconds How long pulls took.\n# TYPE skiff_pull_duration_seconds histogram\n");
    c.pull_seconds
        .lock()
        .unwrap()
        .render("skiff_pull_duration_seconds", "", &mut out);
    out.push_str("# HELP skiff_shim_rpc_duration_seconds Latency of calls to shims, by method.\n# TYPE skiff_shim_rpc_duration_seconds histogram\n");
    for (method, h) in c.shim_rpc.lock().unwrap().iter() {
        h.render(
            "skiff_shim_rpc_duration_seconds",
            &format!("method=\"{}\"", escape(method)),
            &mut out,
        );
    }
    out
}

fn label_text(labels: &[(String, String)]) -> String {
    if labels.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    format!("{{{}}}", parts.join(","))
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
