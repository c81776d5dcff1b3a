//! What a container's runtime is (binary, state root, cgroup driver), from its options;
//! saved in the bundle at Create so that `delete`, run later by a new process, drives the
//! same runtime the same way.

use skiff_protos::options::Options;
use std::path::{Path, PathBuf};

/// The runtime binary when the options name none.
pub const DEFAULT_RUNTIME_BINARY: &str = "runc";
const SAVED_OPTIONS: &str = "options.json";

/// What a container's runtime is: saved in the bundle at Create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeSettings {
    pub binary: String,
    pub root: PathBuf,
    pub systemd_cgroup: bool,
}

impl RuntimeSettings {
    /// The settings of a container in `namespace`: the options' binary and root, or
    /// runc and `default_root` (the driver's) for what they leave out.
    pub fn from_options(opts: &Options, namespace: &str, default_root: &Path) -> RuntimeSettings {
        let binary = if opts.binary_name.is_empty() {
            DEFAULT_RUNTIME_BINARY.to_string()
        } else {
            opts.binary_name.clone()
        };
        let root = if opts.root.is_empty() {
            default_root
        } else {
            Path::new(&opts.root)
        };
        RuntimeSettings {
            binary,
            root: Path::new(root).join(namespace),
            systemd_cgroup: opts.systemd_cgroup,
        }
    }

    pub fn save(&self, bundle: &Path) -> std::io::Result<()> {
        let doc = serde_json::json!({
            "binary": self.binary,
            "root": self.root,
            "systemd_cgroup": self.systemd_cgroup,
        });
        std::fs::write(bundle.join(SAVED_OPTIONS), doc.to_string())
    }

    /// The settings saved in a bundle, or the defaults for the namespace.
    pub fn load(bundle: &Path, namespace: &str, default_root: &Path) -> RuntimeSettings {
        let fallback =
            || RuntimeSettings::from_options(&Options::default(), namespace, default_root);
        let Ok(text) = std::fs::read(bundle.join(SAVED_OPTIONS)) else {
            return fallback();
        };
        let Ok(doc) = serde_json::from_slice::<serde_json::Value>(&text) else {
            return fallback();
        };
        let mut s = fallback();
        if let Some(b) = doc["binary"].as_str() {
            s.binary = b.to_string();
        }
        if let Some(r) = doc["root"].as_str() {
            s.root = PathBuf::from(r);
        }
        s.systemd_cgroup = doc["systemd_cgroup"].as_bool().unwrap_or(false);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_round_trip_through_the_bundle() {
        let dir = std::env::temp_dir().join(format!("skiff-opts-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let s = RuntimeSettings {
            binary: "/opt/runc".into(),
            root: "/run/r/ns".into(),
            systemd_cgroup: true,
        };
        s.save(&dir).unwrap();
        assert_eq!(
            RuntimeSettings::load(&dir, "ns", Path::new("/run/default")),
            s
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
