//! Where a shim listens. Like containerd's own shims, the socket is named by the sha256 of
//! (containerd address, namespace, grouping id), so a restarted containerd, or the `start`
//! of a second container of the same pod, finds the same socket again.

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// containerd's state directory for shim sockets.
pub const SOCKET_DIR: &str = "/run/containerd/s";

/// The socket path for a shim serving `grouping` in `namespace` for the containerd at
/// `containerd_address`.
pub fn socket_path(containerd_address: &str, namespace: &str, grouping: &str) -> PathBuf {
    socket_path_in(
        Path::new(SOCKET_DIR),
        containerd_address,
        namespace,
        grouping,
    )
}

/// The same name in another directory (containerd 2.3's configurable `socket_dir`).
pub fn socket_path_in(
    dir: &Path,
    containerd_address: &str,
    namespace: &str,
    grouping: &str,
) -> PathBuf {
    let joined = Path::new(containerd_address).join(namespace).join(grouping);
    let digest = Sha256::digest(joined.as_os_str().as_encoded_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    dir.join(hex)
}

/// The ttrpc address form of a socket path.
pub fn unix_address(path: &Path) -> String {
    format!("unix://{}", path.display())
}

/// The path of a `unix://` address (or of a bare path).
pub fn path_of(address: &str) -> &str {
    address.strip_prefix("unix://").unwrap_or(address)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_containerds_derivation() {
        // sha256("/run/containerd/containerd.sock/default/web"), as containerd's shims compute it.
        let p = socket_path("/run/containerd/containerd.sock", "default", "web");
        let expected = {
            let d = Sha256::digest(b"/run/containerd/containerd.sock/default/web");
            d.iter().map(|b| format!("{b:02x}")).collect::<String>()
        };
        assert_eq!(p, Path::new(SOCKET_DIR).join(expected));
        assert_eq!(
            p.file_name().unwrap().len(),
            64,
            "a hex sha256 names the socket"
        );
    }

    #[test]
    fn differs_by_each_part() {
        let a = socket_path("/a.sock", "ns", "id");
        assert_ne!(a, socket_path("/b.sock", "ns", "id"));
        assert_ne!(a, socket_path("/a.sock", "ns2", "id"));
        assert_ne!(a, socket_path("/a.sock", "ns", "id2"));
    }

    #[test]
    fn unix_scheme_round_trip() {
        let p = Path::new("/run/containerd/s/abc");
        assert_eq!(unix_address(p), "unix:///run/containerd/s/abc");
        assert_eq!(
            path_of("unix:///run/containerd/s/abc"),
            "/run/containerd/s/abc"
        );
        assert_eq!(path_of("/x"), "/x");
    }
}
