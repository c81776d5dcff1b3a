//! Who may talk to the shim: a peer of the shim's own uid, as containerd's shims require
//! (containerd runs as root, and so does the shim). The socket is private to root too,
//! but a peer check does not depend on the permissions of a directory.

use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
use std::os::unix::net::UnixStream;

pub fn check(stream: &UnixStream) -> Result<(), String> {
    let creds = getsockopt(stream, PeerCredentials)
        .map_err(|e| format!("reading the peer's credentials: {e}"))?;
    let own = nix::unistd::geteuid().as_raw();
    if creds.uid() != own {
        return Err(format!(
            "peer pid {} runs as uid {}, not {own}",
            creds.pid(),
            creds.uid()
        ));
    }
    Ok(())
}
