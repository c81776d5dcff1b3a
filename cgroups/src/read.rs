//! Reading the kernel's cgroup files: single numbers, "max", and key-value tables.

use std::collections::HashMap;
use std::fs;
use std::path::Path;

/// A file holding one number; "max" (no limit) reads as u64::MAX; missing reads as 0.
pub fn number(dir: &Path, file: &str) -> u64 {
    fs::read_to_string(dir.join(file))
        .ok()
        .and_then(|s| parse_number(s.trim()))
        .unwrap_or(0)
}

pub fn parse_number(s: &str) -> Option<u64> {
    if s == "max" {
        return Some(u64::MAX);
    }
    s.parse().ok()
}

/// A file of "key value" lines (memory.stat, cpu.stat, memory.events...).
pub fn table(dir: &Path, file: &str) -> HashMap<String, u64> {
    fs::read_to_string(dir.join(file))
        .map(|s| parse_table(&s))
        .unwrap_or_default()
}

pub fn parse_table(text: &str) -> HashMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            let key = parts.next()?;
            let value = parse_number(parts.next()?)?;
            Some((key.to_string(), value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_tables() {
        assert_eq!(parse_number("max"), Some(u64::MAX));
        assert_eq!(parse_number("42"), Some(42));
        assert_eq!(parse_number("x"), None);
        let t = parse_table("anon 10\nfile 20\nbroken\n");
        assert_eq!(t["anon"], 10);
        assert_eq!(t["file"], 20);
        assert_eq!(t.len(), 2);
    }
}
