//! Starting a shim binary as containerd starts it: its command line and environment, and
//! the `BootstrapParams` containerd 2.3 writes on its stdin.

use protobuf::Message;

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
        use skiff_protos::bootstrap::{BootstrapParams, Extension};
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_unix_address_names_its_socket() {
        assert_eq!(socket_path("unix:///a/b"), std::path::PathBuf::from("/a/b"));
        assert_eq!(socket_path("/a/b"), std::path::PathBuf::from("/a/b"));
    }
}
