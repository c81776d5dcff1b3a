//! The verdict matrix, the summary line per shim, the per-RPC median latencies, and
//! the same as JSON.

use super::ctx::{Target, Verdict};
use super::scenarios::Scenario;
use std::collections::BTreeSet;
use std::fmt::Write;
use std::time::Duration;

#[derive(Clone)]
pub struct Cell {
    /// None: passed.
    pub verdict: Option<Verdict>,
    pub took: Duration,
}

impl Cell {
    pub fn new(verdict: Option<Verdict>, took: Duration) -> Cell {
        Cell { verdict, took }
    }

    pub fn word(&self) -> &'static str {
        match self.verdict {
            None => "PASS",
            Some(Verdict::Fail(_)) => "FAIL",
            Some(Verdict::Skip(_)) => "SKIP",
        }
    }

    pub fn reason(&self) -> &str {
        match &self.verdict {
            None => "",
            Some(Verdict::Fail(r)) | Some(Verdict::Skip(r)) => r,
        }
    }

    pub fn detail(&self) -> String {
        let ms = self.took.as_millis();
        match &self.verdict {
            None => format!("{ms} ms"),
            Some(_) => format!("{ms} ms: {}", self.reason()),
        }
    }

    fn passed(&self) -> bool {
        self.verdict.is_none()
    }
}

pub struct Report<'a> {
    targets: &'a [Target],
    scenarios: Vec<&'a Scenario>,
    cells: Vec<Vec<Option<Cell>>>,
}

impl<'a> Report<'a> {
    pub fn new(targets: &'a [Target], scenarios: &[&'a Scenario]) -> Report<'a> {
        Report {
            targets,
            scenarios: scenarios.to_vec(),
            cells: vec![vec![None; targets.len()]; scenarios.len()],
        }
    }

    pub fn set(&mut self, scenario: usize, target: usize, cell: Cell) {
        self.cells[scenario][target] = Some(cell);
    }

    fn cell(&self, s: usize, t: usize) -> Option<&Cell> {
        self.cells[s][t].as_ref()
    }

    /// (passed, failed, skipped) of one shim.
    pub fn counts(&self, t: usize) -> (usize, usize, usize) {
        let mut c = (0, 0, 0);
        for s in 0..self.scenarios.len() {
            match self.cell(s, t).map(Cell::word) {
                Some("PASS") => c.0 += 1,
                Some("FAIL") => c.1 += 1,
                Some("SKIP") => c.2 += 1,
                _ => {}
            }
        }
        c
    }

    /// Scenarios a reference shim passes and the shim under test (the first) does not.
    pub fn regressions(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (s, scenario) in self.scenarios.iter().enumerate() {
            let ours = self.cell(s, 0).map(Cell::passed).unwrap_or(false);
            for t in 1..self.targets.len() {
                if !ours && self.cell(s, t).map(Cell::passed).unwrap_or(false) {
                    out.push((scenario.name.to_string(), self.targets[t].label.clone()));
                }
            }
        }
        out
    }

    pub fn under_test_conforms(&self) -> bool {
        self.counts(0).1 == 0 && self.regressions().is_empty()
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let width = self
            .scenarios
            .iter()
            .map(|s| s.name.len())
            .max()
            .unwrap_or(8)
            .max(8);
        let col: Vec<usize> = self.targets.iter().map(|t| t.label.len().max(4)).collect();
        let _ = write!(out, "\n{:<width$}", "scenario");
        for (t, target) in self.targets.iter().enumerate() {
            let _ = write!(out, "  {:<w$}", target.label, w = col[t]);
        }
        out.push('\n');
        for (s, scenario) in self.scenarios.iter().enumerate() {
            let _ = write!(out, "{:<width$}", scenario.name);
            for (t, w) in col.iter().enumerate() {
                let word = self.cell(s, t).map(Cell::word).unwrap_or("-");
                let _ = write!(out, "  {word:<w$}");
            }
            out.push('\n');
        }
        let mut reasons = String::new();
        for (s, scenario) in self.scenarios.iter().enumerate() {
            for (t, target) in self.targets.iter().enumerate() {
                if let Some(c) = self.cell(s, t).filter(|c| !c.passed()) {
                    let _ = writeln!(
                        reasons,
                        "  {} {} [{}]: {}",
                        c.word(),
                        scenario.name,
                        target.label,
                        c.reason()
                    );
                }
            }
        }
        if !reasons.is_empty() {
            let _ = write!(out, "\nwhy:\n{reasons}");
        }
        out.push_str(&self.render_latencies());
        out.push('\n');
        for (t, target) in self.targets.iter().enumerate() {
            let (p, f, k) = self.counts(t);
            let _ = writeln!(out, "{}: {p} passed, {f} failed, {k} skipped", target.label);
        }
        for (scenario, reference) in self.regressions() {
            let _ = writeln!(
                out,
                "NOT CONFORMING: {scenario} passes on {reference} but not on {}",
                self.targets[0].label
            );
        }
        out
    }

    fn render_latencies(&self) -> String {
        let medians: Vec<_> = self.targets.iter().map(|t| t.timings.medians()).collect();
        let names: BTreeSet<String> = medians
            .iter()
            .flatten()
            .map(|(n, _, _)| n.clone())
            .collect();
        let mut out = String::from("\nmedian latency per RPC, ms (calls)\n");
        let col: Vec<usize> = self.targets.iter().map(|t| t.label.len().max(14)).collect();
        let _ = write!(out, "{:<16}", "rpc");
        for (t, target) in self.targets.iter().enumerate() {
            let _ = write!(out, "  {:>w$}", target.label, w = col[t]);
        }
        out.push('\n');
        for name in &names {
            let _ = write!(out, "{name:<16}");
            for (t, m) in medians.iter().enumerate() {
                let cell = m
                    .iter()
                    .find(|(n, _, _)| n == name)
                    .map(|(_, d, c)| format!("{:.2} ({c})", d.as_secs_f64() * 1000.0))
                    .unwrap_or_else(|| "-".into());
                let _ = write!(out, "  {cell:>w$}", w = col[t]);
            }
            out.push('\n');
        }
        out
    }

    /// The matrix, summaries and latencies as Markdown tables (for the README).
    pub fn markdown(&self) -> String {
        let mut out = String::from("| scenario |");
        for t in self.targets {
            let _ = write!(out, " {} |", t.label);
        }
        out.push_str("\n|---|");
        out.push_str(&"---|".repeat(self.targets.len()));
        out.push('\n');
        for (s, scenario) in self.scenarios.iter().enumerate() {
            let _ = write!(out, "| `{}` |", scenario.name);
            for t in 0..self.targets.len() {
                let word = self.cell(s, t).map(Cell::word).unwrap_or("-");
                let _ = write!(out, " {word} |");
            }
            out.push('\n');
        }
        out.push_str("| **passed / failed / skipped** |");
        for t in 0..self.targets.len() {
            let (p, f, k) = self.counts(t);
            let _ = write!(out, " {p} / {f} / {k} |");
        }
        out.push_str("\n\nWhy a scenario did not pass:\n\n");
        for (s, scenario) in self.scenarios.iter().enumerate() {
            for (t, target) in self.targets.iter().enumerate() {
                if let Some(c) = self.cell(s, t).filter(|c| !c.passed()) {
                    let reason = c.reason().lines().next().unwrap_or("");
                    let _ = writeln!(
                        out,
                        "- {} `{}` on {}: {}",
                        c.word(),
                        scenario.name,
                        target.label,
                        reason
                    );
                }
            }
        }
        out.push_str("\nMedian latency of each call, ms (number of calls):\n\n| rpc |");
        let medians: Vec<_> = self.targets.iter().map(|t| t.timings.medians()).collect();
        for t in self.targets {
            let _ = write!(out, " {} |", t.label);
        }
        out.push_str("\n|---|");
        out.push_str(&"---:|".repeat(self.targets.len()));
        out.push('\n');
        let names: BTreeSet<String> = medians
            .iter()
            .flatten()
            .map(|(n, _, _)| n.clone())
            .collect();
        for name in &names {
            let _ = write!(out, "| {name} |");
            for m in &medians {
                let cell = m
                    .iter()
                    .find(|(n, _, _)| n == name)
                    .map(|(_, d, c)| format!("{:.2} ({c})", d.as_secs_f64() * 1000.0))
                    .unwrap_or_else(|| "-".into());
                let _ = write!(out, " {cell} |");
            }
            out.push('\n');
        }
        out
    }

    pub fn json(&self) -> serde_json::Value {
        let shims: Vec<_> = self
            .targets
            .iter()
            .enumerate()
            .map(|(t, target)| {
                let (p, f, k) = self.counts(t);
                let latency: serde_json::Map<String, serde_json::Value> = target
                    .timings
                    .medians()
                    .into_iter()
                    .map(|(n, d, c)| {
                        (n, serde_json::json!({ "median_ms": d.as_secs_f64() * 1000.0, "calls": c }))
                    })
                    .collect();
                serde_json::json!({
                    "label": target.label,
                    "path": target.path,
                    "passed": p, "failed": f, "skipped": k,
                    "latency": latency,
                })
            })
            .collect();
        let scenarios: Vec<_> = self
            .scenarios
            .iter()
            .enumerate()
            .map(|(s, scenario)| {
                let results: serde_json::Map<String, serde_json::Value> = self
                    .targets
                    .iter()
                    .enumerate()
                    .filter_map(|(t, target)| {
                        self.cell(s, t).map(|c| {
                            (
                                target.label.clone(),
                                serde_json::json!({
                                    "verdict": c.word(),
                                    "reason": c.reason(),
                                    "ms": c.took.as_millis() as u64,
                                }),
                            )
                        })
                    })
                    .collect();
                serde_json::json!({ "name": scenario.name, "about": scenario.about, "results": results })
            })
            .collect();
        serde_json::json!({ "shims": shims, "scenarios": scenarios })
    }
}
