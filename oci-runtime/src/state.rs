use serde::Deserialize;
use std::collections::HashMap;

/// The runtime's `state` output (the OCI state document plus runc's extras).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct ContainerState {
    pub id: String,
    #[serde(default)]
    pub pid: u32,
    pub status: String,
    #[serde(default)]
    pub bundle: String,
    #[serde(default)]
    pub rootfs: String,
    #[serde(default)]
    pub annotations: Option<HashMap<String, String>>,
}

/// The pids `ps --format json` prints.
pub type ProcessList = Vec<u32>;
