//! The shim's own configuration file, named by `runtimeoptions.v1.Options.config_path`.
//! containerd's CRI plugin sends that message, not the runc options, to a shim whose
//! runtime_type is anything but io.containerd.runc.v2, and fills config_path from
//! `ConfigPath` in the runtime's options table. The file holds the runc options under
//! the names the CRI configuration gives them (`SystemdCgroup = true`, `Root = "..."`),
//! one `Key = value` per line: the flat part of TOML, which is all these options need.

use skiff_protos::options::Options;
use std::path::Path;

const KEYS: &str = "BinaryName, Root, SystemdCgroup, NoPivotRoot, NoNewKeyring, ShimCgroup, \
                    IoUid, IoGid, CriuPath, CriuImagePath, CriuWorkPath";

/// Reads the file into runc options; errors name the file and line.
pub fn read(path: &Path) -> Result<Options, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("reading runtime options file {}: {e}", path.display()))?;
    parse(&text).map_err(|e| format!("runtime options file {}: {e}", path.display()))
}

pub fn parse(text: &str) -> Result<Options, String> {
    let mut opts = Options::default();
    for (n, raw) in text.lines().enumerate() {
        let line = strip_comment(raw).trim();
        if line.is_empty() {
            continue;
        }
        if line.starts_with('[') {
            return Err(format!(
                "line {}: tables are not supported: put the options at the top level",
                n + 1
            ));
        }
        let (key, value) = line
            .split_once('=')
            .ok_or_else(|| format!("line {}: expected Key = value, found {line:?}", n + 1))?;
        let (key, value) = (key.trim().trim_matches('"'), Value::parse(value.trim()));
        let value = value.map_err(|e| format!("line {}: {key}: {e}", n + 1))?;
        set(&mut opts, key, value).map_err(|e| format!("line {}: {e}", n + 1))?;
    }
    Ok(opts)
}

enum Value {
    Str(String),
    Bool(bool),
    Int(i64),
}

impl Value {
    fn parse(s: &str) -> Result<Value, String> {
        if let Some(inner) = s.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
            if inner.contains(['"', '\\']) {
                return Err("escapes in strings are not supported".into());
            }
            return Ok(Value::Str(inner.to_string()));
        }
        if let Some(inner) = s.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')) {
            return Ok(Value::Str(inner.to_string()));
        }
        match s {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => s
                .parse()
                .map(Value::Int)
                .map_err(|_| format!("{s:?} is not a string, boolean or integer")),
        }
    }
}

fn set(opts: &mut Options, key: &str, value: Value) -> Result<(), String> {
    let wrong = |want: &str| format!("{key} takes {want}");
    match (key, value) {
        ("BinaryName", Value::Str(s)) => opts.binary_name = s,
        ("Root", Value::Str(s)) => opts.root = s,
        ("ShimCgroup", Value::Str(s)) => opts.shim_cgroup = s,
        ("CriuPath", Value::Str(s)) => opts.criu_path = s,
        ("CriuImagePath", Value::Str(s)) => opts.criu_image_path = s,
        ("CriuWorkPath", Value::Str(s)) => opts.criu_work_path = s,
        ("SystemdCgroup", Value::Bool(b)) => opts.systemd_cgroup = b,
        ("NoPivotRoot", Value::Bool(b)) => opts.no_pivot_root = b,
        ("NoNewKeyring", Value::Bool(b)) => opts.no_new_keyring = b,
        ("IoUid", Value::Int(i)) => opts.io_uid = u32::try_from(i).map_err(|_| wrong("a uid"))?,
        ("IoGid", Value::Int(i)) => opts.io_gid = u32::try_from(i).map_err(|_| wrong("a gid"))?,
        (
            "BinaryName" | "Root" | "ShimCgroup" | "CriuPath" | "CriuImagePath" | "CriuWorkPath",
            _,
        ) => return Err(wrong("a string")),
        ("SystemdCgroup" | "NoPivotRoot" | "NoNewKeyring", _) => {
            return Err(wrong("true or false"))
        }
        ("IoUid" | "IoGid", _) => return Err(wrong("an integer")),
        _ => return Err(format!("unknown option {key:?} (known: {KEYS})")),
    }
    Ok(())
}

/// Drops a `#` comment that is not inside a string.
fn strip_comment(line: &str) -> &str {
    let mut quote = None;
    for (i, c) in line.char_indices() {
        match (c, quote) {
            ('"' | '\'', None) => quote = Some(c),
            (q, Some(open)) if q == open => quote = None,
            ('#', None) => return &line[..i],
            _ => {}
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_runc_options_by_their_cri_names() {
        let opts = parse(
            "# skiff\nSystemdCgroup = true\nRoot = \"/run/skiff/runc\" # state\n\
             BinaryName = '/usr/bin/crun'\nIoUid = 1000\nNoNewKeyring = false\n",
        )
        .unwrap();
        assert!(opts.systemd_cgroup);
        assert_eq!(opts.root, "/run/skiff/runc");
        assert_eq!(opts.binary_name, "/usr/bin/crun");
        assert_eq!(opts.io_uid, 1000);
    }

    #[test]
    fn mistakes_are_named_with_their_line() {
        assert_eq!(
            parse("Root = true").unwrap_err(),
            "line 1: Root takes a string"
        );
        assert!(parse("\nSystemCgroup = true")
            .unwrap_err()
            .starts_with("line 2: unknown option \"SystemCgroup\""));
        assert!(parse("[options]\nRoot = \"/x\"")
            .unwrap_err()
            .contains("tables are not supported"));
        assert_eq!(
            parse("IoUid = -1").unwrap_err(),
            "line 1: IoUid takes a uid"
        );
    }
}
