//! Where a registry is reached, in containerd's `hosts.toml` form: a directory per
//! registry under skiffd's `--registry-config` (`/etc/skiff/certs.d/docker.io/hosts.toml`,
//! `.../localhost:5000/hosts.toml`, `_default` for any other), naming the upstream
//! `server` and mirrors (`[host."https://mirror:5000"]`) tried first, in order, each with
//! its `capabilities` (`pull`, `resolve`), `ca` files, `skip_verify` and `override_path`.
//! Without a `hosts.toml`, `*.crt` files in the directory are extra CAs (docker's
//! `certs.d`). Plain HTTP is used only where a URL says `http://`, with `--plain-http`,
//! or for a registry on the loopback (`localhost`, `127.0.0.1`, `[::1]`), which is tried
//! with TLS first and falls back to HTTP when it does not speak TLS, as containerd does.

use crate::error::{Error, Result};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

pub const DEFAULT_CONFIG_DIR: &str = "/etc/skiff/certs.d";

/// One place a registry's API answers.
#[derive(Debug)]
pub struct Endpoint {
    /// `https://host:port` (no path).
    pub origin: String,
    /// Prefix of every API path (`/v2`, or a mirror's own).
    pub prefix: String,
    pub resolve: bool,
    pub pull: bool,
    pub ca: Vec<PathBuf>,
    pub skip_verify: bool,
    /// A loopback registry tried with TLS first: switched to plain HTTP once it is seen
    /// not to speak TLS.
    pub http_fallback: bool,
    pub plain: AtomicBool,
}

impl Endpoint {
    fn new(url: &str, override_path: bool) -> Result<Endpoint> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| Error::InvalidArgument(format!("registry URL {url:?} has no scheme")))?;
        if scheme != "https" && scheme != "http" {
            return Err(Error::InvalidArgument(format!(
                "registry URL {url:?}: only http and https"
            )));
        }
        let (host, path) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        let prefix = if override_path {
            path.to_string()
        } else {
            format!("{path}/v2")
        };
        Ok(Endpoint {
            origin: format!("https://{host}"),
            prefix,
            resolve: true,
            pull: true,
            ca: Vec::new(),
            skip_verify: false,
            http_fallback: false,
            plain: AtomicBool::new(scheme == "http"),
        })
    }

    pub fn host(&self) -> &str {
        self.origin.trim_start_matches("https://")
    }

    pub fn is_plain(&self) -> bool {
        self.plain.load(Ordering::Relaxed)
    }

    pub fn fall_back_to_http(&self) {
        self.plain.store(true, Ordering::Relaxed);
    }

    /// The URL of an API path (`/myrepo/manifests/latest`).
    pub fn url(&self, path: &str) -> String {
        let scheme = if self.is_plain() { "http" } else { "https" };
        format!("{scheme}://{}{}{path}", self.host(), self.prefix)
    }
}

#[derive(Deserialize, Default)]
struct HostsFile {
    server: Option<String>,
    ca: Option<OneOrMany>,
    skip_verify: Option<bool>,
    /// Mirrors in the order the file gives them (toml's preserve_order).
    #[serde(default)]
    host: toml::Table,
}

#[derive(Deserialize, Default)]
struct HostEntry {
    capabilities: Option<Vec<String>>,
    ca: Option<OneOrMany>,
    skip_verify: Option<bool>,
    override_path: Option<bool>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn paths(&self, dir: &Path) -> Vec<PathBuf> {
        let list = match self {
            OneOrMany::One(s) => vec![s.clone()],
            OneOrMany::Many(v) => v.clone(),
        };
        list.into_iter().map(|p| dir.join(p)).collect()
    }
}

pub fn is_loopback(host: &str) -> bool {
    let name = match host.rsplit_once(':') {
        Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
        _ => host,
    };
    matches!(name, "localhost" | "[::1]" | "::1") || name.starts_with("127.")
}

/// The endpoints to try for `registry` (API host `api_host`), mirrors first.
pub fn endpoints(
    config_dir: &Path,
    registry: &str,
    api_host: &str,
    plain_http: bool,
) -> Result<Vec<Endpoint>> {
    let dir = [registry, "_default"]
        .iter()
        .map(|d| config_dir.join(d))
        .find(|d| d.is_dir());
    let file = match dir.as_ref().map(|d| d.join("hosts.toml")) {
        Some(p) if p.is_file() => {
            let text = std::fs::read_to_string(&p)
                .map_err(|e| Error::InvalidArgument(format!("reading {}: {e}", p.display())))?;
            toml::from_str::<HostsFile>(&text)
                .map_err(|e| Error::InvalidArgument(format!("{}: {e}", p.display())))?
        }
        _ => HostsFile::default(),
    };
    let dir = dir.unwrap_or_default();
    let default_scheme = if plain_http { "http" } else { "https" };
    let mut out = Vec::new();
    for (url, entry) in &file.host {
        let h: HostEntry = entry
            .clone()
            .try_into()
            .map_err(|e| Error::InvalidArgument(format!("hosts.toml, host {url:?}: {e}")))?;
        let mut e = Endpoint::new(url, h.override_path.unwrap_or(false))?;
        if let Some(caps) = &h.capabilities {
            e.resolve = caps.iter().any(|c| c == "resolve");
            e.pull = caps.iter().any(|c| c == "pull");
        }
        e.ca = h.ca.as_ref().map(|c| c.paths(&dir)).unwrap_or_default();
        e.skip_verify = h.skip_verify.unwrap_or(false);
        out.push(e);
    }
    let explicit = file.server.is_some();
    let server = file
        .server
        .clone()
        .unwrap_or_else(|| format!("{default_scheme}://{api_host}"));
    let mut e = Endpoint::new(&server, false)?;
    e.ca = match &file.ca {
        Some(c) => c.paths(&dir),
        None => crt_files(&dir),
    };
    e.skip_verify = file.skip_verify.unwrap_or(false);
    e.http_fallback = !explicit && !plain_http && is_loopback(api_host);
    out.push(e);
    Ok(out)
}

/// `*.crt` in a docker-style certs.d directory.
fn crt_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "crt"))
        .collect();
    v.sort();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirrors_come_first_and_loopback_may_fall_back_to_http() {
        let dir = std::env::temp_dir().join(format!("skiff-hosts-{}", std::process::id()));
        let host = dir.join("docker.io");
        std::fs::create_dir_all(&host).unwrap();
        std::fs::write(
            host.join("hosts.toml"),
            r#"server = "https://registry-1.docker.io"
[host."https://mirror.example"]
  ca = "mirror-ca.pem"
[host."http://127.0.0.1:5001/cache"]
  capabilities = ["pull"]
"#,
        )
        .unwrap();
        let e = endpoints(&dir, "docker.io", "registry-1.docker.io", false).unwrap();
        let urls: Vec<String> = e.iter().map(|e| e.url("/x")).collect();
        assert_eq!(
            urls,
            [
                "https://mirror.example/v2/x",
                "http://127.0.0.1:5001/cache/v2/x",
                "https://registry-1.docker.io/v2/x"
            ]
        );
        assert!(e[1].pull && !e[1].resolve);
        assert_eq!(e[0].ca, vec![host.join("mirror-ca.pem")]);
        let e = endpoints(&dir, "localhost:5000", "localhost:5000", false).unwrap();
        assert_eq!(e.len(), 1);
        assert!(e[0].http_fallback && !e[0].is_plain());
        let e = endpoints(&dir, "example.com", "example.com", false).unwrap();
        assert!(!e[0].http_fallback);
        let e = endpoints(&dir, "example.com", "example.com", true).unwrap();
        assert!(e[0].is_plain());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
