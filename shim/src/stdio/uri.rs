//! Where a process's output goes, as containerd names it: a FIFO path, or a log URI
//! (`file:///path`, `binary:///path?arg=value`, `binary-v2:///...`, `fifo:///path`).

use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    None,
    /// A FIFO (or any path) the manager reads.
    Fifo(PathBuf),
    /// Append to this file.
    File(PathBuf),
    /// Start this logging binary with the output on its fds 3 and 4.
    Binary {
        path: PathBuf,
        args: Vec<String>,
        /// `binary-v2://`: the binary says it is ready by writing a byte to fd 5 before
        /// closing it; `binary://` only closes it (or exits).
        strict_ready: bool,
    },
}

pub fn parse(s: &str) -> Result<Output, String> {
    if s.is_empty() {
        return Ok(Output::None);
    }
    let Some((scheme, rest)) = s.split_once("://") else {
        return Ok(Output::Fifo(PathBuf::from(s)));
    };
    if !matches!(scheme, "fifo" | "file" | "binary" | "binary-v2") {
        return Err(format!("unsupported log URI scheme {scheme:?} in {s:?}"));
    }
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let path = percent_decode(path)?;
    if !path.starts_with('/') {
        return Err(format!("log URI {s:?} must name an absolute path"));
    }
    let path = PathBuf::from(path);
    match scheme {
        "fifo" => Ok(Output::Fifo(path)),
        "file" => Ok(Output::File(path)),
        "binary" | "binary-v2" => {
            let mut args = Vec::new();
            for pair in query.split('&').filter(|p| !p.is_empty()) {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                args.push(percent_decode(k)?);
                if !v.is_empty() {
                    args.push(percent_decode(v)?);
                }
            }
            Ok(Output::Binary {
                path,
                args,
                strict_ready: scheme == "binary-v2",
            })
        }
        _ => unreachable!("scheme checked above"),
    }
}

fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = s
                    .get(i + 1..i + 3)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| format!("bad percent escape in {s:?}"))?;
                out.push(hex);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| format!("{s:?} is not UTF-8 once decoded"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_paths_are_fifos() {
        assert_eq!(parse("").unwrap(), Output::None);
        assert_eq!(
            parse("/run/containerd/fifo/1-stdout").unwrap(),
            Output::Fifo("/run/containerd/fifo/1-stdout".into())
        );
        assert_eq!(parse("fifo:///a/b").unwrap(), Output::Fifo("/a/b".into()));
    }

    #[test]
    fn file_and_binary_uris() {
        assert_eq!(
            parse("file:///var/log/x%20y.log").unwrap(),
            Output::File("/var/log/x y.log".into())
        );
        assert_eq!(
            parse("binary:///usr/bin/logger?id=web&verbose").unwrap(),
            Output::Binary {
                path: "/usr/bin/logger".into(),
                args: vec!["id".into(), "web".into(), "verbose".into()],
                strict_ready: false,
            }
        );
        assert_eq!(
            parse("binary-v2:///usr/bin/logger").unwrap(),
            Output::Binary {
                path: "/usr/bin/logger".into(),
                args: vec![],
                strict_ready: true,
            }
        );
    }

    #[test]
    fn bad_uris_are_refused() {
        assert!(parse("http://x/y")
            .unwrap_err()
            .contains("unsupported log URI scheme"));
        assert!(parse("file://relative").unwrap_err().contains("absolute"));
        assert!(parse("file:///a%zz").unwrap_err().contains("percent"));
    }
}
