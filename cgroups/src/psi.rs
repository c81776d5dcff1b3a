//! Pressure stall information: a cgroup v2 directory's `cpu.pressure`, `memory.pressure`
//! and `io.pressure`, each a "some" and a "full" line of
//! `avg10=0.12 avg60=0.05 avg300=0.00 total=123456` (percent, and microseconds).
//! A kernel without PSI (or a cgroup with it turned off) has no such file to read: no
//! figures then, rather than zeros that look measured.

use protobuf::MessageField;
use skiff_protos::metrics_v2::{PSIData, PSIStats};
use std::path::Path;

/// The figures of `dir/file` (`cpu.pressure`...), if it can be read.
pub fn read(dir: &Path, file: &str) -> MessageField<PSIStats> {
    std::fs::read_to_string(dir.join(file))
        .ok()
        .and_then(|text| parse(&text))
        .into()
}

pub fn parse(text: &str) -> Option<PSIStats> {
    let mut stats = PSIStats::new();
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let slot = match fields.next() {
            Some("some") => &mut stats.some,
            Some("full") => &mut stats.full,
            _ => continue,
        };
        let mut data = PSIData::new();
        for field in fields {
            let Some((key, value)) = field.split_once('=') else {
                continue;
            };
            match key {
                "avg10" => data.avg10 = value.parse().ok()?,
                "avg60" => data.avg60 = value.parse().ok()?,
                "avg300" => data.avg300 = value.parse().ok()?,
                "total" => data.total = value.parse().ok()?,
                _ => {}
            }
        }
        *slot = MessageField::some(data);
    }
    (stats.some.is_some() || stats.full.is_some()).then_some(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_lines_are_read() {
        let s = parse(
            "some avg10=1.50 avg60=0.25 avg300=0.00 total=123456\n\
             full avg10=0.00 avg60=0.10 avg300=0.02 total=789\n",
        )
        .unwrap();
        let some = s.some.unwrap();
        assert_eq!(
            (some.avg10, some.avg60, some.avg300, some.total),
            (1.5, 0.25, 0.0, 123456)
        );
        let full = s.full.unwrap();
        assert_eq!((full.avg60, full.total), (0.1, 789));
    }

    #[test]
    fn nothing_readable_is_no_figures() {
        assert!(parse("").is_none());
        assert!(parse("some avg10=x avg60=0 avg300=0 total=1\n").is_none());
        let only_some = parse("some avg10=0.00 avg60=0.00 avg300=0.00 total=5\n").unwrap();
        assert!(only_some.full.is_none());
    }
}
