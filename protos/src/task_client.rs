//! The manager's side of a shim: what its `start` printed, and Task API calls under the
//! service name that bootstrap chose (task v2, or v3 when a shim announces it).

use protobuf::Message;
use std::time::Duration;

/// What a shim's `start` printed: a bare address (containerd 1.6/1.7 shims) or 2.x's
/// `{"version":3,"address":"unix://...","protocol":"ttrpc"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bootstrap {
    pub address: String,
    pub version: u32,
}

pub fn parse_bootstrap(out: &str) -> Result<Bootstrap, String> {
    let out = out.trim();
    if out.is_empty() {
        return Err("start printed no address".into());
    }
    if !out.starts_with('{') {
        let address = if out.contains("://") {
            out.to_string()
        } else {
            format!("unix://{out}")
        };
        return Ok(Bootstrap {
            address,
            version: 2,
        });
    }
    let field = |name: &str| -> Option<String> {
        let key = format!("\"{name}\"");
        let rest = &out[out.find(&key)? + key.len()..];
        let rest = rest.trim_start().strip_prefix(':')?.trim_start();
        if let Some(s) = rest.strip_prefix('"') {
            Some(s[..s.find('"')?].to_string())
        } else {
            Some(rest.chars().take_while(|c| c.is_ascii_digit()).collect())
        }
    };
    let protocol = field("protocol").unwrap_or_else(|| "ttrpc".into());
    if protocol != "ttrpc" {
        return Err(format!(
            "start offers protocol {protocol:?}; only ttrpc is spoken"
        ));
    }
    let address = field("address").ok_or_else(|| format!("start printed no address: {out}"))?;
    let version = field("version").and_then(|v| v.parse().ok()).unwrap_or(2);
    Ok(Bootstrap { address, version })
}

/// What a shim's `start` printed, in any generation's form: a bare address, 2.x's JSON,
/// or 2.3's `BootstrapResult` protobuf (what containerd 2.3's own shims always print).
pub fn parse_start_reply(out: &[u8]) -> Result<Bootstrap, String> {
    // The text forms are printable; a protobuf starts with a field tag, a control byte.
    let text = std::str::from_utf8(out).ok().map(str::trim);
    if let Some(text) = text.filter(|t| !t.is_empty() && !t.chars().any(char::is_control)) {
        return parse_bootstrap(text);
    }
    let result = crate::bootstrap::BootstrapResult::parse_from_bytes(out)
        .map_err(|e| format!("start printed neither an address nor a BootstrapResult: {e}"))?;
    if result.address.is_empty() {
        return Err("start's BootstrapResult names no address".into());
    }
    if !result.protocol.is_empty() && result.protocol != "ttrpc" {
        return Err(format!(
            "start offers protocol {:?}; only ttrpc is spoken",
            result.protocol
        ));
    }
    Ok(Bootstrap {
        address: result.address,
        version: u32::try_from(result.version).unwrap_or(2).max(2),
    })
}

/// Who launches a shim and where its events go: what containerd passes every shim.
pub struct Launch<'a> {
    /// The manager's own API socket; the shim derives its socket name from it.
    pub address: &'a std::path::Path,
    pub publish_binary: &'a std::path::Path,
    /// The manager's `Events/Forward` endpoint (`TTRPC_ADDRESS`).
    pub ttrpc_address: &'a std::ffi::OsStr,
}

impl Launch<'_> {
    /// `SHIM -namespace NS -address ADDR -publish-binary BIN -id ID` in `bundle`, with
    /// the environment containerd 1.7 and 2.x set (1.6 sets the first two; shims of
    /// every generation accept the larger set), in a process group of its own. The
    /// caller adds the action (`start`, or `-bundle B delete`).
    pub fn command(
        &self,
        shim: &std::path::Path,
        namespace: &str,
        id: &str,
        bundle: &std::path::Path,
    ) -> std::process::Command {
        use std::os::unix::process::CommandExt;
        let mut cmd = std::process::Command::new(shim);
        cmd.args(["-namespace", namespace, "-address"])
            .arg(self.address)
            .arg("-publish-binary")
            .arg(self.publish_binary)
            .args(["-id", id])
            .current_dir(bundle)
            .env("GOMAXPROCS", "2")
            .env("TTRPC_ADDRESS", self.ttrpc_address)
            .env("GRPC_ADDRESS", self.address)
            .env("NAMESPACE", namespace)
            .env("MAX_SHIM_VERSION", "2")
            .process_group(0);
        cmd
    }
}

impl Launch<'_> {
    /// What containerd 2.3 writes on `start`'s stdin: a `BootstrapParams` naming the
    /// instance again, the addresses, the runtime options as an extension, and where the
    /// socket goes when `socket_dir` is given.
    pub fn bootstrap_params(
        &self,
        namespace: &str,
        id: &str,
        options: Option<protobuf::well_known_types::any::Any>,
        socket_dir: Option<&std::path::Path>,
    ) -> Vec<u8> {
        use crate::bootstrap::{BootstrapParams, Extension};
        let params = BootstrapParams {
            instance_id: id.to_string(),
            namespace: namespace.to_string(),
            containerd_version: "v2.3.4".into(),
            containerd_ttrpc_address: self.ttrpc_address.to_string_lossy().into_owned(),
            containerd_grpc_address: self.address.to_string_lossy().into_owned(),
            containerd_binary: self.publish_binary.to_string_lossy().into_owned(),
            extensions: options
                .into_iter()
                .map(|any| Extension {
                    value: protobuf::MessageField::some(any),
                    ..Default::default()
                })
                .collect(),
            socket_dir: socket_dir.map(|d| d.to_string_lossy().into_owned()),
            ..Default::default()
        };
        params.write_to_bytes().unwrap_or_default()
    }
}

/// The socket path behind a `unix://` address.
pub fn socket_path(address: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(address.strip_prefix("unix://").unwrap_or(address))
}

pub struct TaskClient {
    client: ttrpc::Client,
    service: &'static str,
}

impl TaskClient {
    pub fn connect(b: &Bootstrap) -> Result<TaskClient, String> {
        let client = ttrpc::Client::connect(&b.address)
            .map_err(|e| format!("cannot connect to {}: {e}", b.address))?;
        let service = if b.version >= 3 {
            "containerd.task.v3.Task"
        } else {
            "containerd.task.v2.Task"
        };
        Ok(TaskClient { client, service })
    }

    /// One unary call; a status other than OK comes back as `Error::RpcStatus`.
    pub fn call<Req: Message, Resp: Message>(
        &self,
        method: &str,
        req: &Req,
        timeout: Duration,
    ) -> ttrpc::Result<Resp> {
        let mut request = ttrpc::Request::new();
        request.service = self.service.to_string();
        request.method = method.to_string();
        request.timeout_nano = timeout.as_nanos().min(i64::MAX as u128) as i64;
        request.payload = req
            .write_to_bytes()
            .map_err(|e| ttrpc::Error::Others(e.to_string()))?;
        let response = self.client.request(request)?;
        Resp::parse_from_bytes(&response.payload)
            .map_err(|e| ttrpc::Error::Others(format!("undecodable reply: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstraps_of_every_generation_parse() {
        let b = parse_bootstrap("unix:///run/containerd/s/abc\n").unwrap();
        assert_eq!(
            b,
            Bootstrap {
                address: "unix:///run/containerd/s/abc".into(),
                version: 2
            }
        );
        let b = parse_bootstrap(
            r#"{"version":3,"address":"unix:///run/containerd/s/x","protocol":"ttrpc"}"#,
        )
        .unwrap();
        assert_eq!(
            b,
            Bootstrap {
                address: "unix:///run/containerd/s/x".into(),
                version: 3
            }
        );
        assert!(
            parse_bootstrap(r#"{"version":3,"address":"x","protocol":"grpc"}"#)
                .unwrap_err()
                .contains("grpc")
        );
        assert!(parse_bootstrap("").is_err());
        let result = crate::bootstrap::BootstrapResult {
            version: 3,
            address: "unix:///run/s/y".into(),
            protocol: "ttrpc".into(),
            ..Default::default()
        };
        let b = parse_start_reply(&result.write_to_bytes().unwrap()).unwrap();
        assert_eq!(b.address, "unix:///run/s/y");
        assert_eq!(b.version, 3);
        assert_eq!(
            parse_start_reply(b"unix:///run/s/z").unwrap().address,
            "unix:///run/s/z"
        );
        assert!(parse_start_reply(&[0xff, 0x01]).is_err());
        assert_eq!(socket_path("unix:///a/b"), std::path::PathBuf::from("/a/b"));
    }
}
