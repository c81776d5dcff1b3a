//! The id mappings of an idmapped mount, as containerd's snapshotters write them in a
//! mount's options: `uidmap=CONTAINER:HOST:SIZE` and `gidmap=...`, several ranges
//! separated by commas (`uidmap=0:100000:1000,1000:200000:64536`), the way a user
//! namespace's `uid_map` holds them.

use std::fmt;

/// One range: `size` ids from `container` on the inside are `host` on the outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdRange {
    pub container: u32,
    pub host: u32,
    pub size: u32,
}

/// The uid and gid mappings a mount asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdMapping {
    pub uids: Vec<IdRange>,
    pub gids: Vec<IdRange>,
}

/// The kernel takes at most this many lines in a `uid_map` (since Linux 4.15).
const MAX_RANGES: usize = 340;

impl IdMapping {
    /// The mappings of `uidmap=` and `gidmap=` option values; both must be given.
    pub fn parse(uidmap: Option<&str>, gidmap: Option<&str>) -> Result<IdMapping, String> {
        match (uidmap, gidmap) {
            (Some(u), Some(g)) => Ok(IdMapping {
                uids: parse_ranges(u).map_err(|e| format!("uidmap={u}: {e}"))?,
                gids: parse_ranges(g).map_err(|e| format!("gidmap={g}: {e}"))?,
            }),
            (Some(_), None) => Err("uidmap= is given without gidmap=".into()),
            (None, Some(_)) => Err("gidmap= is given without uidmap=".into()),
            (None, None) => Err("no uidmap= or gidmap= option".into()),
        }
    }

    /// The text of a `uid_map` (or `gid_map`) file for `ranges`: one "C H S" line each.
    pub fn map_file(ranges: &[IdRange]) -> String {
        ranges
            .iter()
            .map(|r| format!("{} {} {}\n", r.container, r.host, r.size))
            .collect()
    }
}

impl fmt::Display for IdRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.container, self.host, self.size)
    }
}

fn parse_ranges(text: &str) -> Result<Vec<IdRange>, String> {
    let ranges = text
        .split(',')
        .map(parse_range)
        .collect::<Result<Vec<_>, _>>()?;
    if ranges.len() > MAX_RANGES {
        return Err(format!(
            "{} ranges; the kernel takes at most {MAX_RANGES}",
            ranges.len()
        ));
    }
    Ok(ranges)
}

fn parse_range(text: &str) -> Result<IdRange, String> {
    let fields: Vec<&str> = text.split(':').collect();
    let [container, host, size] = fields[..] else {
        return Err(format!("{text:?} is not CONTAINER:HOST:SIZE"));
    };
    let number = |what: &str, v: &str| {
        v.parse::<u32>()
            .map_err(|_| format!("{what} {v:?} in {text:?} is not an id"))
    };
    let range = IdRange {
        container: number("container id", container)?,
        host: number("host id", host)?,
        size: number("size", size)?,
    };
    let end = |start: u32| u64::from(start) + u64::from(range.size);
    if range.size == 0 {
        return Err(format!("{text:?} maps no ids"));
    }
    // The last id, 4294967295, is no id (-1): a range may reach up to it, not past.
    if end(range.container) > u64::from(u32::MAX) || end(range.host) > u64::from(u32::MAX) {
        return Err(format!("{text:?} runs past the last id"));
    }
    Ok(range)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(container: u32, host: u32, size: u32) -> IdRange {
        IdRange {
            container,
            host,
            size,
        }
    }

    #[test]
    fn containerds_options_are_read() {
        let m = IdMapping::parse(Some("0:100000:65536"), Some("0:200000:65536")).unwrap();
        assert_eq!(m.uids, vec![range(0, 100000, 65536)]);
        assert_eq!(m.gids, vec![range(0, 200000, 65536)]);
        let m = IdMapping::parse(Some("0:1000:1,1:100000:65535"), Some("0:1000:1")).unwrap();
        assert_eq!(m.uids.len(), 2);
        assert_eq!(
            IdMapping::map_file(&m.uids),
            "0 1000 1\n1 100000 65535\n".to_string()
        );
    }

    #[test]
    fn bad_mappings_are_refused_with_the_reason() {
        let bad = |u: &str| IdMapping::parse(Some(u), Some("0:1:1")).unwrap_err();
        assert!(
            bad("0:1000").contains("CONTAINER:HOST:SIZE"),
            "{}",
            bad("0:1000")
        );
        assert!(bad("0:1000:1:2").contains("CONTAINER:HOST:SIZE"));
        assert!(bad("-1:1000:1").contains("container id"));
        assert!(bad("0:x:1").contains("host id"));
        assert!(bad("0:1000:0").contains("maps no ids"));
        assert!(bad("0:4294967295:1").contains("past the last id"));
        assert!(bad("").contains("CONTAINER:HOST:SIZE"));
        assert!(bad("0:1:1,").contains("CONTAINER:HOST:SIZE"));
        let many = vec!["0:1:1"; 341].join(",");
        assert!(bad(&many).contains("at most 340"));
        assert!(IdMapping::parse(Some("0:1:1"), None)
            .unwrap_err()
            .contains("without gidmap"));
        assert!(IdMapping::parse(None, Some("0:1:1"))
            .unwrap_err()
            .contains("without uidmap"));
    }
}
