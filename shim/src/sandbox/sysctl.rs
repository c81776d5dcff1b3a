//! The pod's sysctls. Only namespaced ones can be a pod's: IPC ones (kernel.shm*,
//! kernel.msg*, kernel.sem, fs.mqueue.*) in the pod's IPC namespace, net.* in its network
//! namespace, kernel.hostname/domainname in its UTS namespace; a pod on the node's IPC or
//! network cannot set those (it would change the node's), and no other sysctl is ever a
//! pod's (runc refuses the same). They are written under /proc/sys by the thread that is
//! in the pod's namespaces, which is what /proc/sys resolves them against.

use crate::sys::pod_ns::PodNamespaces;
use std::path::PathBuf;

const IPC: &[&str] = &[
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];
/// The longest value accepted: sysctl values are short.
const VALUE_MAX: usize = 4096;

/// Whether `key` may be set to `value` in a pod with namespaces of its own `own`.
pub fn check(key: &str, value: &str, own: &PodNamespaces) -> Result<(), String> {
    let dotted = normalize(key)?;
    if value.len() > VALUE_MAX || value.contains('\0') {
        return Err(format!("sysctl {key}: the value is not valid"));
    }
    let (owned, what) = if IPC.contains(&dotted.as_str()) || dotted.starts_with("fs.mqueue.") {
        (own.ipc, "the node's IPC namespace")
    } else if dotted.starts_with("net.") {
        (own.net, "the node's network namespace")
    } else if dotted == "kernel.hostname" || dotted == "kernel.domainname" {
        (own.uts, "the node's UTS namespace")
    } else {
        return Err(format!(
            "sysctl {key} is not namespaced: a pod cannot set it"
        ));
    };
    if !owned {
        return Err(format!(
            "sysctl {key} would change {what}: the pod shares it"
        ));
    }
    Ok(())
}

/// Writes one checked sysctl, from the thread that is in the pod's namespaces.
pub fn apply(key: &str, value: &str) -> Result<(), String> {
    let path = path_of(key)?;
    std::fs::write(&path, value)
        .map_err(|e| format!("setting sysctl {key} ({}): {e}", path.display()))
}

/// The key in dotted form. Kubernetes also accepts `/` as the separator, and then a dot
/// belongs to a name (an interface `eth0.100`): such a key is taken as written.
fn normalize(key: &str) -> Result<String, String> {
    let sep = if key.contains('/') { '/' } else { '.' };
    let parts: Vec<&str> = key.split(sep).collect();
    let ok = |p: &&str| {
        !p.is_empty()
            && *p != "."
            && *p != ".."
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'+' | b':'))
    };
    if parts.len() < 2 || !parts.iter().all(ok) {
        return Err(format!("sysctl {key:?} is not a valid name"));
    }
    Ok(if sep == '/' {
        parts.join(".")
    } else {
        key.to_string()
    })
}

fn path_of(key: &str) -> Result<PathBuf, String> {
    normalize(key)?;
    let relative = if key.contains('/') {
        key.to_string()
    } else {
        key.replace('.', "/")
    };
    Ok(PathBuf::from("/proc/sys").join(relative))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(net: bool, ipc: bool) -> PodNamespaces {
        PodNamespaces { net, ipc, uts: net }
    }

    #[test]
    fn namespaced_sysctls_in_namespaces_of_the_pods_own() {
        let p = pod(true, true);
        for key in [
            "kernel.shm_rmid_forced",
            "fs.mqueue.msg_max",
            "net.ipv4.ip_forward",
            "kernel.hostname",
            "net/ipv4/conf/eth0.100/forwarding",
        ] {
            assert_eq!(check(key, "1", &p), Ok(()), "{key}");
        }
    }

    #[test]
    fn the_nodes_namespaces_and_global_sysctls_are_refused() {
        let host = pod(false, false);
        assert!(check("net.ipv4.ip_forward", "1", &host)
            .unwrap_err()
            .contains("node's network"));
        assert!(check("kernel.shmmax", "1", &host)
            .unwrap_err()
            .contains("node's IPC"));
        assert!(check("vm.swappiness", "1", &pod(true, true))
            .unwrap_err()
            .contains("not namespaced"));
        for bad in ["net", "net..x", "net/../../etc/x", "net.ipv4.a b", ""] {
            assert!(check(bad, "1", &pod(true, true)).is_err(), "{bad}");
        }
        assert!(check("net.ipv4.ip_forward", "1\0", &pod(true, true)).is_err());
    }

    #[test]
    fn paths_under_proc_sys() {
        assert_eq!(
            path_of("net.ipv4.ip_forward").unwrap(),
            PathBuf::from("/proc/sys/net/ipv4/ip_forward")
        );
        assert_eq!(
            path_of("net/ipv4/conf/eth0.100/forwarding").unwrap(),
            PathBuf::from("/proc/sys/net/ipv4/conf/eth0.100/forwarding")
        );
    }
}
