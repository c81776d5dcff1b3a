//! A container's OCI runtime spec (`config.json`, through the `oci-spec` crate): the
//! image config's defaults (command, environment, working directory, user) under the
//! request's overrides, with the namespaces, mounts and capabilities containerd's
//! default spec gives; and the process spec of an exec, and the resources of an update.

use crate::archive::string_list as strings;
use crate::error::{Error, Result};
use oci_spec::runtime::{
    Capability, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxDeviceCgroupBuilder,
    LinuxMemoryBuilder, LinuxNamespaceBuilder, LinuxNamespaceType, LinuxResources,
    LinuxResourcesBuilder, Mount, MountBuilder, PosixRlimitBuilder, PosixRlimitType, Process,
    ProcessBuilder, RootBuilder, Spec, SpecBuilder, UserBuilder,
};
use serde_json::Value;

const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const CAPS: &[Capability] = &[
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fsetid,
    Capability::Fowner,
    Capability::Mknod,
    Capability::NetRaw,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::Kill,
    Capability::AuditWrite,
];
const MASKED: &[&str] = &[
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/sys/firmware",
    "/proc/scsi",
];
const READ_ONLY: &[&str] = &[
    "/proc/asound",
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// What a container's request says about its process, limits and mounts.
#[derive(Debug, Clone, Default)]
pub struct ProcessRequest {
    /// The command; the image's Entrypoint and Cmd when empty.
    pub args: Vec<String>,
    /// KEY=VALUE, over the image's.
    pub env: Vec<String>,
    pub terminal: bool,
    pub memory_limit: i64,
    /// Bind mounts, "SOURCE:DESTINATION[:ro]".
    pub mounts: Vec<String>,
}

fn spec_err(e: oci_spec::OciSpecError) -> Error {
    Error::InvalidArgument(format!("the OCI spec: {e}"))
}

/// The spec as JSON bytes; `cgroups_path` is where runc puts the container.
pub fn generate(
    id: &str,
    req: &ProcessRequest,
    image_config: &Value,
    cgroups_path: &str,
) -> Result<Vec<u8>> {
    let config = &image_config["config"];
    let mut mounts = standard_mounts()?;
    for m in &req.mounts {
        mounts.push(bind_mount(m)?);
    }
    let spec = SpecBuilder::default()
        .version("1.0.2")
        .process(process(req, config)?)
        .root(
            RootBuilder::default()
                .path("rootfs")
                .readonly(false)
                .build()
                .map_err(spec_err)?,
        )
        .hostname(id)
        .mounts(mounts)
        .linux(linux(req, cgroups_path)?)
        .build()
        .map_err(spec_err)?;
    serde_json::to_vec_pretty(&spec).map_err(|e| Error::Internal(format!("encoding JSON: {e}")))
}

fn process(req: &ProcessRequest, config: &Value) -> Result<Process> {
    let mut args = req.args.clone();
    if args.is_empty() {
        args = strings(&config["Entrypoint"]);
        args.extend(strings(&config["Cmd"]));
    }
    if args.is_empty() {
        return Err(Error::InvalidArgument(
            "no command: the image has none and none was given".into(),
        ));
    }
    let cwd = config["WorkingDir"]
        .as_str()
        .filter(|s| !s.is_empty())
        .unwrap_or("/");
    let (uid, gid) = user(config["User"].as_str().unwrap_or(""))?;
    let caps: oci_spec::runtime::Capabilities = CAPS.iter().copied().collect();
    let capabilities = LinuxCapabilitiesBuilder::default()
        .bounding(caps.clone())
        .effective(caps.clone())
        .permitted(caps)
        .build()
        .map_err(spec_err)?;
    let nofile = PosixRlimitBuilder::default()
        .typ(PosixRlimitType::RlimitNofile)
        .hard(1024u64)
        .soft(1024u64)
        .build()
        .map_err(spec_err)?;
    ProcessBuilder::default()
        .terminal(req.terminal)
        .user(
            UserBuilder::default()
                .uid(uid)
                .gid(gid)
                .build()
                .map_err(spec_err)?,
        )
        .args(args)
        .env(environment(strings(&config["Env"]), &req.env))
        .cwd(cwd)
        .capabilities(capabilities)
        .rlimits(vec![nofile])
        .no_new_privileges(true)
        .build()
        .map_err(spec_err)
}

/// The image's environment (with a default PATH) under the request's.
fn environment(mut env: Vec<String>, overrides: &[String]) -> Vec<String> {
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, DEFAULT_PATH.to_string());
    }
    for e in overrides {
        let key = e.split('=').next().unwrap_or_default();
        env.retain(|x| x.split('=').next() != Some(key));
        env.push(e.clone());
    }
    env
}

/// The image's User: empty or root, or numeric UID[:GID].
fn user(user: &str) -> Result<(u32, u32)> {
    if user.is_empty() || user == "root" {
        return Ok((0, 0));
    }
    let mut parts = user.split(':');
    let uid = parts.next().and_then(|u| u.parse().ok());
    let gid = parts.next().and_then(|g| g.parse().ok()).or(uid);
    match (uid, gid) {
        (Some(u), Some(g)) => Ok((u, g)),
        _ => Err(Error::InvalidArgument(format!(
            "image user {user:?} is not numeric; name lookup is not supported"
        ))),
    }
}

fn mount(destination: &str, typ: &str, source: &str, options: &[&str]) -> Result<Mount> {
    MountBuilder::default()
        .destination(destination)
        .typ(typ)
        .source(source)
        .options(options.iter().map(|o| o.to_string()).collect::<Vec<_>>())
        .build()
        .map_err(spec_err)
}

fn standard_mounts() -> Result<Vec<Mount>> {
    Ok(vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"])?,
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        )?,
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        )?,
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        )?,
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        )?,
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        )?,
    ])
}

/// "SOURCE:DESTINATION[:ro]", both absolute and without `..`.
fn bind_mount(m: &str) -> Result<Mount> {
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
    if !source.starts_with('/') || !dest.starts_with('/') || dest.split('/').any(|p| p == "..") {
        return Err(Error::InvalidArgument(format!(
            "mount {m:?}: both paths must be absolute, without '..'"
        )));
    }
    mount(
        dest,
        "bind",
        source,
        &["rbind", "rprivate", if ro { "ro" } else { "rw" }],
    )
}

fn linux(req: &ProcessRequest, cgroups_path: &str) -> Result<oci_spec::runtime::Linux> {
    use LinuxNamespaceType::*;
    let namespaces = [Pid, Ipc, Uts, Mount, Network]
        .into_iter()
        .map(|t| {
            LinuxNamespaceBuilder::default()
                .typ(t)
                .build()
                .map_err(spec_err)
        })
        .collect::<Result<Vec<_>>>()?;
    let strings = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    LinuxBuilder::default()
        .cgroups_path(cgroups_path)
        .resources(resources(req.memory_limit, true)?)
        .namespaces(namespaces)
        .masked_paths(strings(MASKED))
        .readonly_paths(strings(READ_ONLY))
        .build()
        .map_err(spec_err)
}

/// Devices denied (with `deny_devices`, as a new container's are) and a memory limit.
fn resources(memory_limit: i64, deny_devices: bool) -> Result<LinuxResources> {
    let mut r = LinuxResourcesBuilder::default();
    if deny_devices {
        let deny = LinuxDeviceCgroupBuilder::default()
            .allow(false)
            .access("rwm")
            .build()
            .map_err(spec_err)?;
        r = r.devices(vec![deny]);
    }
    if memory_limit > 0 {
        r = r.memory(
            LinuxMemoryBuilder::default()
                .limit(memory_limit)
                .build()
                .map_err(spec_err)?,
        );
    }
    r.build().map_err(spec_err)
}

/// The resources of an Update that sets the memory limit, as JSON.
pub fn memory_update(limit: i64) -> Result<Vec<u8>> {
    serde_json::to_vec(&resources(limit, false)?)
        .map_err(|e| Error::Internal(format!("encoding JSON: {e}")))
}

/// An exec's process spec, as JSON: the container's process with this command,
/// terminal and extra environment.
pub fn exec_process(
    container_spec: &[u8],
    args: Vec<String>,
    env: Vec<String>,
    terminal: bool,
) -> Result<Vec<u8>> {
    if args.is_empty() {
        return Err(Error::InvalidArgument("exec needs a command".into()));
    }
    let spec: Spec = serde_json::from_slice(container_spec)
        .map_err(|e| Error::Corrupt(format!("the container's spec: {e}")))?;
    let mut process = spec.process().clone().unwrap_or_default();
    let mut all = process.env().clone().unwrap_or_default();
    all.extend(env);
    process.set_args(Some(args));
    process.set_terminal(Some(terminal));
    process.set_env(Some(all));
    serde_json::to_vec(&process).map_err(|e| Error::Internal(format!("encoding JSON: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_image_gives_defaults_the_request_overrides() {
        let config =
            json!({"config": {"Env": ["PATH=/bin", "A=1"], "Cmd": ["sh"], "WorkingDir": "/w"}});
        let mut r = ProcessRequest {
            env: vec!["A=2".into()],
            ..Default::default()
        };
        let spec: Value =
            serde_json::from_slice(&generate("x", &r, &config, "/skiff/default/x").unwrap())
                .unwrap();
        assert_eq!(spec["process"]["args"], json!(["sh"]));
        assert_eq!(spec["process"]["env"], json!(["PATH=/bin", "A=2"]));
        assert_eq!(spec["process"]["cwd"], "/w");
        assert_eq!(spec["hostname"], "x");
        assert_eq!(spec["linux"]["cgroupsPath"], "/skiff/default/x");
        assert_eq!(
            spec["linux"]["resources"]["devices"],
            json!([{"allow": false, "access": "rwm"}])
        );
        assert_eq!(
            spec["process"]["capabilities"]["bounding"]
                .as_array()
                .unwrap()
                .len(),
            CAPS.len()
        );
        r.args = vec!["echo".into(), "hi".into()];
        r.memory_limit = 1 << 20;
        r.mounts = vec!["/srv:/data:ro".into()];
        let bytes = generate("x", &r, &config, "/p").unwrap();
        let spec: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(spec["process"]["args"], json!(["echo", "hi"]));
        assert_eq!(spec["linux"]["resources"]["memory"]["limit"], 1 << 20);
        assert_eq!(
            spec["mounts"][6],
            json!({"destination": "/data", "type": "bind", "source": "/srv", "options": ["rbind", "rprivate", "ro"]})
        );
        assert!(generate("x", &ProcessRequest::default(), &json!({}), "/p").is_err());
        let exec: Value = serde_json::from_slice(
            &exec_process(&bytes, vec!["id".into()], vec!["B=3".into()], true).unwrap(),
        )
        .unwrap();
        assert_eq!(
            (exec["args"].clone(), exec["terminal"].clone()),
            (json!(["id"]), json!(true))
        );
        assert_eq!(exec["env"].as_array().unwrap().last().unwrap(), "B=3");
    }
}
