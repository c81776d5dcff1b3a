//! What a shim's `start` printed, in any generation's form: a bare address (containerd
//! 1.6 and 1.7 shims), 2.x's JSON, or 2.3's `BootstrapResult` protobuf.

use protobuf::Message;

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
    let reply: serde_json::Value = serde_json::from_str(out)
        .map_err(|e| format!("start printed JSON that cannot be read ({e}): {out}"))?;
    let text = |name: &str| reply.get(name).and_then(|v| v.as_str());
    let protocol = text("protocol").unwrap_or("ttrpc");
    if protocol != "ttrpc" {
        return Err(format!(
            "start offers protocol {protocol:?}; only ttrpc is spoken"
        ));
    }
    let address = text("address")
        .ok_or_else(|| format!("start printed no address: {out}"))?
        .to_string();
    let version = reply
        .get("version")
        .and_then(|v| v.as_u64())
        .and_then(|v| u32::try_from(v).ok())
        .unwrap_or(2);
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
    let result = skiff_protos::bootstrap::BootstrapResult::parse_from_bytes(out)
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
        let result = skiff_protos::bootstrap::BootstrapResult {
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
        assert!(parse_bootstrap("{not json")
            .unwrap_err()
            .contains("cannot be read"));
        // A key named inside a value is not the key.
        let b =
            parse_bootstrap(r#"{"note":"\"address\":\"wrong\"","address":"unix:///r"}"#).unwrap();
        assert_eq!(b.address, "unix:///r");
    }
}
