//! A Prometheus histogram: cumulative bucket counts, a sum and a count.

const BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0,
];

#[derive(Default)]
pub struct Histogram {
    counts: [u64; 12],
    sum: f64,
    count: u64,
}

impl Histogram {
    pub fn observe(&mut self, v: f64) {
        for (i, b) in BUCKETS.iter().enumerate() {
            if v <= *b {
                self.counts[i] += 1;
            }
        }
        self.sum += v;
        self.count += 1;
    }

    /// `name_bucket{labels,le=".."}`, `name_sum`, `name_count` lines.
    pub fn render(&self, name: &str, labels: &str, out: &mut String) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (i, b) in BUCKETS.iter().enumerate() {
            out.push_str(&format!(
                "{name}_bucket{{{labels}{sep}le=\"{b}\"}} {}\n",
                self.counts[i]
            ));
        }
        out.push_str(&format!(
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}\n",
            self.count
        ));
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        out.push_str(&format!(
            "{name}_sum{braces} {}\n{name}_count{braces} {}\n",
            self.sum, self.count
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative() {
        let mut h = Histogram::default();
        h.observe(0.003);
        h.observe(2.0);
        let mut out = String::new();
        h.render("x", "m=\"a\"", &mut out);
        assert!(out.contains("x_bucket{m=\"a\",le=\"0.005\"} 1\n"), "{out}");
        assert!(out.contains("x_bucket{m=\"a\",le=\"5\"} 2\n"), "{out}");
        assert!(
            out.contains(
                "x_bucket{m=\"a\",le=\"+Inf\"} 2\nx_sum{m=\"a\"} 2.003\nx_count{m=\"a\"} 2\n"
            ),
            "{out}"
        );
    }
}
