//! What containerd writes on `start`'s stdin, in either of its two forms, and the reply
//! each form expects on stdout.
//!
//! containerd 2.3 writes a `BootstrapParams` protobuf (the instance id and namespace again,
//! the log level, its addresses, an optional socket directory, the runtime options among
//! its extensions) and reads a `BootstrapResult` protobuf back. Every earlier containerd
//! writes the runtime options alone (an `Any`, or nothing) and reads a bare address: a
//! 2.2 daemon cannot read a protobuf reply. The two are told apart by content: the new
//! form repeats the `-id` and `-namespace` the command line gave, which an `Any` read as
//! `BootstrapParams` cannot (its type URL would be the instance id).

use crate::cli::flags::Flags;
use protobuf::well_known_types::any::Any;
use protobuf::Message;
use skiff_protos::bootstrap::{BootstrapParams, BootstrapResult, LogLevel};
use std::path::PathBuf;

/// What containerd writes at the most: a larger input is refused, not read into memory.
pub const MAX_INPUT: usize = 10 << 20;
/// The task API version a 2.3 caller is told this shim serves (v2 and v3 both are).
const TASK_API_VERSION: i32 = 3;

/// What `start` was asked, whichever way containerd asked it.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct StartInput {
    /// The runtime options, if any came.
    pub options: Option<Any>,
    /// Where the socket goes instead of the default directory (2.3's `socket_dir`).
    pub socket_dir: Option<PathBuf>,
    /// The events endpoint, when the bootstrap names it (TTRPC_ADDRESS otherwise).
    pub ttrpc_address: Option<String>,
    /// The bootstrap asks for a debug log.
    pub debug: bool,
    /// How to answer: a `BootstrapResult` protobuf, or the bare address.
    pub reply: Reply,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    #[default]
    Address,
    BootstrapResult,
}

/// Reads what containerd wrote: the bootstrap protocol when the bytes are a
/// `BootstrapParams` for this very instance, else the legacy options `Any`.
pub fn parse(input: &[u8], flags: &Flags) -> Result<StartInput, String> {
    if input.is_empty() {
        return Ok(StartInput::default());
    }
    if let Ok(params) = BootstrapParams::parse_from_bytes(input) {
        if params.instance_id == flags.id && params.namespace == flags.namespace {
            return from_bootstrap(params);
        }
    }
    let any = Any::parse_from_bytes(input)
        .map_err(|e| format!("reading the runtime options on stdin: {e}"))?;
    Ok(StartInput {
        options: Some(any),
        ..Default::default()
    })
}

fn from_bootstrap(params: BootstrapParams) -> Result<StartInput, String> {
    let socket_dir = match params.socket_dir.as_deref().filter(|d| !d.is_empty()) {
        Some(dir) => {
            crate::task::validate::absolute_path("socket_dir", dir)?;
            Some(PathBuf::from(dir))
        }
        None => None,
    };
    // The first extension that holds runtime options: others (CRI, NRI...) are not ours.
    let options = params
        .extensions
        .iter()
        .filter_map(|e| e.value.as_ref())
        .find(|any| crate::options::is_options_type(&any.type_url))
        .cloned();
    let level = params.log_level.value();
    Ok(StartInput {
        options,
        socket_dir,
        ttrpc_address: Some(params.containerd_ttrpc_address).filter(|a| !a.is_empty()),
        debug: level <= LogLevel::LOG_LEVEL_DEBUG as i32,
        reply: Reply::BootstrapResult,
    })
}

/// The bytes `start` prints for a shim serving on `address`.
pub fn reply(form: Reply, address: &str) -> Vec<u8> {
    match form {
        Reply::Address => address.as_bytes().to_vec(),
        Reply::BootstrapResult => BootstrapResult {
            version: TASK_API_VERSION,
            address: address.to_string(),
            protocol: "ttrpc".into(),
            ..Default::default()
        }
        .write_to_bytes()
        .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use skiff_protos::bootstrap::Extension;
    use skiff_protos::options::Options;

    fn flags() -> Flags {
        Flags::parse(
            "-namespace k8s.io -id web -address /run/c.sock start"
                .split(' ')
                .map(String::from),
        )
        .unwrap()
    }

    fn runc_options(root: &str) -> Any {
        Any {
            type_url: "containerd.runc.v1.Options".into(),
            value: Options {
                root: root.into(),
                ..Default::default()
            }
            .write_to_bytes()
            .unwrap(),
            ..Default::default()
        }
    }

    #[test]
    fn nothing_on_stdin_is_the_legacy_form_without_options() {
        let input = parse(b"", &flags()).unwrap();
        assert_eq!(input, StartInput::default());
        assert_eq!(reply(input.reply, "unix:///s"), b"unix:///s");
    }

    #[test]
    fn a_legacy_options_any_is_read_as_options() {
        let any = runc_options("/run/r");
        let input = parse(&any.write_to_bytes().unwrap(), &flags()).unwrap();
        assert_eq!(input.options, Some(any));
        assert_eq!(input.reply, Reply::Address);
    }

    #[test]
    fn bootstrap_params_for_this_instance_are_the_new_protocol() {
        let params = BootstrapParams {
            instance_id: "web".into(),
            namespace: "k8s.io".into(),
            log_level: LogLevel::LOG_LEVEL_DEBUG.into(),
            containerd_ttrpc_address: "/run/c.sock.ttrpc".into(),
            socket_dir: Some("/run/private/s".into()),
            extensions: vec![
                Extension {
                    value: protobuf::MessageField::some(Any {
                        type_url: "containerd.io/cri.v1.Other".into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                Extension {
                    value: protobuf::MessageField::some(runc_options("/run/x")),
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let input = parse(&params.write_to_bytes().unwrap(), &flags()).unwrap();
        assert_eq!(input.options, Some(runc_options("/run/x")));
        assert_eq!(input.socket_dir, Some(PathBuf::from("/run/private/s")));
        assert_eq!(input.ttrpc_address.as_deref(), Some("/run/c.sock.ttrpc"));
        assert!(input.debug);
        let out = reply(input.reply, "unix:///run/private/s/abc");
        let result = BootstrapResult::parse_from_bytes(&out).unwrap();
        assert_eq!(result.address, "unix:///run/private/s/abc");
        assert_eq!(result.protocol, "ttrpc");
        assert_eq!(result.version, 3);
    }

    #[test]
    fn bootstrap_params_of_another_instance_are_not_taken_for_ours() {
        let params = BootstrapParams {
            instance_id: "other".into(),
            namespace: "k8s.io".into(),
            ..Default::default()
        };
        // Read as an Any instead: its type URL is then the stray id.
        let input = parse(&params.write_to_bytes().unwrap(), &flags()).unwrap();
        assert_eq!(input.reply, Reply::Address);
        assert_eq!(input.options.unwrap().type_url, "other");
    }

    #[test]
    fn a_relative_socket_dir_is_refused() {
        let params = BootstrapParams {
            instance_id: "web".into(),
            namespace: "k8s.io".into(),
            socket_dir: Some("run/s".into()),
            ..Default::default()
        };
        let err = parse(&params.write_to_bytes().unwrap(), &flags()).unwrap_err();
        assert!(err.contains("not absolute"), "{err}");
    }
}
