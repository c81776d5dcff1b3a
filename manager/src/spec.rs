//! The OCI runtime spec of a new container: the image config's defaults (entrypoint and
//! command, environment, working directory, user) under the request's overrides, with
//! the namespaces, mounts and capabilities containerd's default spec gives.

use crate::error::{Error, Result};
use crate::store::NewContainer;
use serde_json::{json, Value};

const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// The spec as JSON bytes; `cgroups_path` is where runc puts the container.
pub fn generate(c: &NewContainer, image_config: &Value, cgroups_path: &str) -> Result<Vec<u8>> {
    let config = &image_config["config"];
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let args = if c.args.is_empty() {
        let mut a = strings(&config["Entrypoint"]);
        a.extend(strings(&config["Cmd"]));
        a
    } else {
        c.args.clone()
    };
    if args.is_empty() {
        return Err(Error::InvalidArgument(
            "no command: the image has none and none was given".into(),
        ));
    }
    let mut env = strings(&config["Env"]);
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, DEFAULT_PATH.to_string());
    }
    for e in &c.env {
        let key = e.split('=').next().unwrap_or_default();
        env.retain(|x| x.split('=').next() != Some(key));
        env.push(e.clone());
    }
    let cwd = config["WorkingDir"]
        .as_str()
        .filter(|s| !s.is_empty())
        .unwrap_or("/");
    let (uid, gid) = match config["User"].as_str().unwrap_or("") {
        "" | "root" => (0, 0),
        user => {
            let mut parts = user.split(':');
            let uid = parts.next().and_then(|u| u.parse().ok());
            let gid = parts.next().and_then(|g| g.parse().ok()).or(uid);
            match (uid, gid) {
                (Some(u), Some(g)) => (u, g),
                _ => {
                    return Err(Error::InvalidArgument(format!(
                        "image user {user:?} is not numeric; name lookup is not supported"
                    )))
                }
            }
        }
    };
    let mut resources = json!({ "devices": [{ "allow": false, "access": "rwm" }] });
    if c.memory_limit > 0 {
        resources["memory"] = json!({ "limit": c.memory_limit });
    }
    let spec = json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": c.terminal,
            "user": { "uid": uid, "gid": gid },
            "args": args,
            "env": env,
            "cwd": cwd,
            "capabilities": { "bounding": CAPS, "effective": CAPS, "permitted": CAPS },
            "rlimits": [{ "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 }],
            "noNewPrivileges": true
        },
        "root": { "path": "rootfs", "readonly": false },
        "hostname": c.id,
        "mounts": [
            { "destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"] },
            { "destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"] },
            { "destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"] },
            { "destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
            { "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"] },
            { "destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"] }
        ],
        "linux": {
            "cgroupsPath": cgroups_path,
            "resources": resources,
            "namespaces": [{ "type": "pid" }, { "type": "ipc" }, { "type": "uts" }, { "type": "mount" }, { "type": "network" }],
            "maskedPaths": ["/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
            "readonlyPaths": ["/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
        }
    });
    let mut spec = spec;
    for m in &c.mounts {
        let parts: Vec<&str> = m.split(':').collect();
        let (source, dest, ro) = match parts.as_slice() {
            [s, d] => (*s, *d, false),
            [s, d, "ro"] => (*s, *d, true),
            _ => {
                return Err(Error::InvalidArgument(format!(
                    "mount {m:?} is not SOURCE:DESTINATION[:ro]"
                )))
            }
        };
        if !source.starts_with('/') || !dest.starts_with('/') || dest.split('/').any(|p| p == "..")
        {
            return Err(Error::InvalidArgument(format!(
                "mount {m:?}: both paths must be absolute, without '..'"
            )));
        }
        let mut options = vec!["rbind", "rprivate"];
        options.push(if ro { "ro" } else { "rw" });
        if let Some(all) = spec["mounts"].as_array_mut() {
            all.push(json!({ "destination": dest, "type": "bind", "source": source, "options": options }));
        }
    }
    serde_json::to_vec_pretty(&spec).map_err(|e| Error::Io(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_image_gives_defaults_the_request_overrides() {
        let config =
            json!({"config": {"Env": ["PATH=/bin", "A=1"], "Cmd": ["sh"], "WorkingDir": "/w"}});
        let mut c = NewContainer {
            id: "x".into(),
            env: vec!["A=2".into()],
            ..Default::default()
        };
        let spec: Value =
            serde_json::from_slice(&generate(&c, &config, "/skiff/default/x").unwrap()).unwrap();
        assert_eq!(spec["process"]["args"], json!(["sh"]));
        assert_eq!(spec["process"]["env"], json!(["PATH=/bin", "A=2"]));
        assert_eq!(spec["process"]["cwd"], "/w");
        c.args = vec!["echo".into(), "hi".into()];
        c.memory_limit = 1 << 20;
        let spec: Value = serde_json::from_slice(&generate(&c, &config, "/p").unwrap()).unwrap();
        assert_eq!(spec["process"]["args"], json!(["echo", "hi"]));
        assert_eq!(spec["linux"]["resources"]["memory"]["limit"], 1 << 20);
        assert!(generate(&NewContainer::default(), &json!({}), "/p").is_err());
    }
}
