//! `-info`: containerd 2.2 and 2.3 run `SHIM -info` (the runtime options, an `Any`, on its
//! stdin) and read a `containerd.types.RuntimeInfo` protobuf from its stdout: the shim's
//! name and version, the options it was given, and the OCI runtime's features document,
//! from which the CRI plugin learns, for example, whether user namespaces and recursive
//! read-only mounts can be offered to the kubelet.

use crate::options::driver::Driver;
use protobuf::well_known_types::any::Any;
use protobuf::{Message, MessageField};
use skiff_protos::introspection::{RuntimeInfo, RuntimeVersion};
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

/// containerd's type URL for the runtime-spec features document, a JSON value in an Any.
pub const FEATURES_TYPE_URL: &str =
    "types.containerd.io/opencontainers/runtime-spec/1/features/Features";

/// The RuntimeInfo bytes for the options on stdin.
pub fn run(driver: &Driver) -> Result<Vec<u8>, String> {
    let mut input = Vec::new();
    let interactive = std::io::IsTerminal::is_terminal(&std::io::stdin());
    if !interactive {
        std::io::stdin()
            .take(crate::cli::bootstrap::MAX_INPUT as u64)
            .read_to_end(&mut input)
            .map_err(|e| format!("reading the runtime options on stdin: {e}"))?;
    }
    let options = if input.is_empty() {
        None
    } else {
        Some(
            Any::parse_from_bytes(&input)
                .map_err(|e| format!("reading the runtime options on stdin: {e}"))?,
        )
    };
    info(driver, options).map(|i| i.write_to_bytes().unwrap_or_default())
}

/// What this shim says of itself, given these options.
pub fn info(driver: &Driver, options: Option<Any>) -> Result<RuntimeInfo, String> {
    let decoded = crate::options::decode(options.as_ref()).map_err(|e| e.to_string())?;
    // The namespace only places container state; no container is touched here.
    let settings = driver.settings(&decoded, "default");
    let runtime = driver.runtime(
        &settings,
        Path::new("/"),
        Arc::new(skiff_oci_runtime::DirectMonitor),
    );
    let features = match runtime.features() {
        Ok(doc) => Some(Any {
            type_url: FEATURES_TYPE_URL.into(),
            value: doc,
            ..Default::default()
        }),
        // A runtime that cannot be run at all makes the answer wrong: say why.
        Err(e @ skiff_oci_runtime::Error::Spawn { .. }) => return Err(e.to_string()),
        // One without a `features` command (crun 1.8, youki before 0.3) has none to tell,
        // as containerd's Go shim answers then.
        Err(e) => {
            eprintln!("no features document: {e}");
            None
        }
    };
    Ok(RuntimeInfo {
        name: driver.runtime_name.to_string(),
        version: MessageField::some(RuntimeVersion {
            version: env!("CARGO_PKG_VERSION").to_string(),
            revision: option_env!("SKIFF_REVISION")
                .unwrap_or_default()
                .to_string(),
            ..Default::default()
        }),
        options: MessageField::from_option(options),
        features: MessageField::from_option(features),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_runtime_binary_is_named() {
        let opts = skiff_protos::options::Options {
            binary_name: "/nonexistent/runc".into(),
            ..Default::default()
        };
        let any = Any {
            type_url: "containerd.runc.v1.Options".into(),
            value: opts.write_to_bytes().unwrap(),
            ..Default::default()
        };
        let err = info(&crate::options::driver::RUNC, Some(any)).unwrap_err();
        assert!(err.contains("/nonexistent/runc"), "{err}");
    }
}
