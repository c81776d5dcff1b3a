//! What the shim itself reads from a bundle's `config.json` (the runtime reads the rest):
//! the pod a container belongs to, and whether it has a PID namespace of its own.

use std::path::Path;

/// The annotation that puts the containers of one Kubernetes pod under one shim.
pub const SANDBOX_ANNOTATION: &str = "io.kubernetes.cri.sandbox-id";

fn read(bundle: &Path) -> Option<serde_json::Value> {
    let text = std::fs::read(bundle.join("config.json")).ok()?;
    serde_json::from_slice(&text).ok()
}

/// The sandbox id of the pod the bundle's container belongs to, if it names one.
pub fn sandbox_id(bundle: &Path) -> Option<String> {
    read(bundle)?["annotations"][SANDBOX_ANNOTATION]
        .as_str()
        .map(str::to_string)
}

/// Whether the container's processes live in a PID namespace it does not own (the host's,
/// or one joined by path): its init's exit then does not end them, so the shim must. An
/// unreadable spec counts as shared, as in containerd's shims: killing too much of a
/// container whose init is gone is safer than leaving processes behind.
pub fn shares_pid_namespace(bundle: &Path) -> bool {
    let Some(spec) = read(bundle) else {
        return true;
    };
    let own = spec["linux"]["namespaces"].as_array().is_some_and(|list| {
        list.iter()
            .any(|ns| ns["type"] == "pid" && ns["path"].as_str().is_none_or(|p| p.is_empty()))
    });
    !own
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bundle directory holding `config`, removed when dropped.
    struct Bundle(std::path::PathBuf);

    impl std::ops::Deref for Bundle {
        type Target = Path;
        fn deref(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Bundle {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn bundle(config: &str) -> Bundle {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("skiff-spec-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("config.json"), config).unwrap();
        Bundle(dir)
    }

    #[test]
    fn a_pid_namespace_of_its_own_is_not_shared() {
        let own = bundle(r#"{"linux":{"namespaces":[{"type":"mount"},{"type":"pid"}]}}"#);
        assert!(!shares_pid_namespace(&own));
        let own_empty_path = bundle(r#"{"linux":{"namespaces":[{"type":"pid","path":""}]}}"#);
        assert!(!shares_pid_namespace(&own_empty_path));
    }

    #[test]
    fn the_hosts_or_a_joined_pid_namespace_is_shared() {
        let host = bundle(r#"{"linux":{"namespaces":[{"type":"mount"}]}}"#);
        assert!(shares_pid_namespace(&host));
        let joined = bundle(r#"{"linux":{"namespaces":[{"type":"pid","path":"/proc/7/ns/pid"}]}}"#);
        assert!(shares_pid_namespace(&joined));
        let unreadable = bundle("not json");
        assert!(shares_pid_namespace(&unreadable));
    }

    #[test]
    fn the_sandbox_annotation_names_the_pod() {
        let pod = bundle(r#"{"annotations":{"io.kubernetes.cri.sandbox-id":"p1"}}"#);
        assert_eq!(sandbox_id(&pod).as_deref(), Some("p1"));
        assert_eq!(sandbox_id(&bundle("{}")), None);
    }
}
