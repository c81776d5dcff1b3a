//! What a CreateSandbox asks for, read and checked: the CRI's PodSandboxConfig (in the
//! request's options) says which namespaces the pod shares and whose they are, its
//! hostname, sysctls, DNS settings and cgroup parent; the request names the pod's network
//! namespace. Everything here comes from another process and is checked before anything
//! is done with it.

use super::sysctl;
use crate::sys::pod_ns::PodNamespaces;
use crate::task::error::{Result, ShimError};
use protobuf::well_known_types::any::Any;
use protobuf::Message;
use skiff_protos::pod_sandbox_config::{NamespaceMode, PodSandboxConfig};
use skiff_protos::sandbox::CreateSandboxRequest;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The message the CRI sends in `options`, by its name (containerd's typeurl adds no
/// prefix; others may).
const POD_CONFIG_TYPE: &str = "runtime.v1.PodSandboxConfig";
/// The kernel's limit on a hostname.
const HOSTNAME_MAX: usize = 64;

/// The pod as the shim sets it up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodSpec {
    /// The pod's network namespace; None: the node's.
    pub netns: Option<PathBuf>,
    /// The pod has IPC of its own (else the node's).
    pub own_ipc: bool,
    /// The pod has a UTS namespace (hostname) of its own: with a network of its own, as
    /// with a pause container.
    pub own_uts: bool,
    /// The pod's containers share one PID namespace, whose init the shim must start.
    pub shared_pid: bool,
    /// Set in the pod's UTS namespace when it has one; empty keeps the node's name.
    pub hostname: String,
    /// Applied in the pod's namespaces, with the CRI's defaults for a pod network.
    pub sysctls: BTreeMap<String, String>,
    /// The pod's resolv.conf lines; None: the node's resolv.conf.
    pub dns: Option<Dns>,
    /// The pod's cgroup (cgroupfs path), empty when none is given.
    pub cgroup_parent: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dns {
    pub servers: Vec<String>,
    pub searches: Vec<String>,
    pub options: Vec<String>,
}

/// Reads and checks a CreateSandbox request's pod.
pub fn read(req: &CreateSandboxRequest) -> Result<PodSpec> {
    let config = pod_config(req.options.as_ref())?;
    let netns = match req.netns_path.as_str() {
        "" => None,
        path => {
            crate::task::validate::absolute_path("netns", path)
                .map_err(ShimError::InvalidArgument)?;
            Some(PathBuf::from(path))
        }
    };
    let spec = from_config(&config, netns)?;
    Ok(spec)
}

fn pod_config(options: Option<&Any>) -> Result<PodSandboxConfig> {
    let Some(any) = options.filter(|a| !a.type_url.is_empty() || !a.value.is_empty()) else {
        return Ok(PodSandboxConfig::default());
    };
    let name = any.type_url.rsplit('/').next().unwrap_or_default();
    if name != POD_CONFIG_TYPE {
        return Err(ShimError::InvalidArgument(format!(
            "sandbox options of type {:?}: expected the CRI's {POD_CONFIG_TYPE}",
            any.type_url
        )));
    }
    PodSandboxConfig::parse_from_bytes(&any.value)
        .map_err(|e| ShimError::InvalidArgument(format!("undecodable {POD_CONFIG_TYPE}: {e}")))
}

fn from_config(config: &PodSandboxConfig, netns: Option<PathBuf>) -> Result<PodSpec> {
    let linux = config.linux.get_or_default();
    let ns = linux
        .security_context
        .get_or_default()
        .namespace_options
        .get_or_default();
    if ns.userns_options.is_some()
        && ns.userns_options.mode.enum_value_or_default() == NamespaceMode::POD
    {
        return Err(ShimError::Unimplemented(
            "a pod with a user namespace of its own is not supported by skiff's sandbox: use the \
             runtime with a pause container"
                .into(),
        ));
    }
    let node = |m: protobuf::EnumOrUnknown<NamespaceMode>| {
        m.enum_value_or_default() == NamespaceMode::NODE
    };
    let pod_network = !node(ns.network);
    match (&netns, pod_network, config.linux.is_some()) {
        (None, true, true) => {
            return Err(ShimError::InvalidArgument(
                "the pod has a network of its own but the request names no network namespace"
                    .into(),
            ))
        }
        (Some(path), false, true) => {
            return Err(ShimError::InvalidArgument(format!(
                "the pod is on the node's network but the request names network namespace {}",
                path.display()
            )))
        }
        _ => {}
    }
    let hostname = config.hostname.clone();
    if hostname.len() > HOSTNAME_MAX || hostname.bytes().any(|b| b == 0 || b == b'/') {
        return Err(ShimError::InvalidArgument(format!(
            "hostname {hostname:?} is not valid"
        )));
    }
    let mut spec = PodSpec {
        own_uts: netns.is_some(),
        netns,
        own_ipc: !node(ns.ipc),
        shared_pid: ns.pid.enum_value_or_default() == NamespaceMode::POD,
        hostname,
        sysctls: linux
            .sysctls
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        dns: config.dns_config.as_ref().map(|d| Dns {
            servers: d.servers.clone(),
            searches: d.searches.clone(),
            options: d.options.clone(),
        }),
        cgroup_parent: linux.cgroup_parent.clone(),
    };
    if spec.netns.is_some() {
        // What containerd 2.x's CRI gives a pause container on a pod network by default
        // (enable_unprivileged_ports and _icmp): the shim cannot read the CRI's settings.
        spec.sysctls
            .entry("net.ipv4.ip_unprivileged_port_start".into())
            .or_insert_with(|| "0".into());
        spec.sysctls
            .entry("net.ipv4.ping_group_range".into())
            .or_insert_with(|| "0 2147483647".into());
    }
    let own = PodNamespaces {
        net: spec.netns.is_some(),
        ipc: spec.own_ipc,
        uts: spec.own_uts,
    };
    for (key, value) in &spec.sysctls {
        sysctl::check(key, value, &own).map_err(ShimError::InvalidArgument)?;
    }
    check_cgroup_parent(&spec.cgroup_parent)?;
    Ok(spec)
}

fn check_cgroup_parent(parent: &str) -> Result<()> {
    if parent.is_empty() {
        return Ok(());
    }
    let bad = parent
        .split('/')
        .any(|c| c == ".." || c == "." || c.bytes().any(|b| b == 0 || b == b'\n'));
    if bad {
        return Err(ShimError::InvalidArgument(format!(
            "cgroup parent {parent:?} is not valid"
        )));
    }
    Ok(())
}

/// The pod's resolv.conf, as the CRI writes it for a pause container.
pub fn resolv_conf(dns: &Dns) -> String {
    let mut text = String::new();
    if !dns.searches.is_empty() {
        text += &format!("search {}\n", dns.searches.join(" "));
    }
    for server in &dns.servers {
        text += &format!("nameserver {server}\n");
    }
    if !dns.options.is_empty() {
        text += &format!("options {}\n", dns.options.join(" "));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use skiff_protos::pod_sandbox_config::*;

    fn config(network: NamespaceMode, ipc: NamespaceMode, pid: NamespaceMode) -> PodSandboxConfig {
        let mut ns = NamespaceOption::new();
        ns.network = network.into();
        ns.ipc = ipc.into();
        ns.pid = pid.into();
        let mut sc = LinuxSandboxSecurityContext::new();
        sc.namespace_options = Some(ns).into();
        let mut linux = LinuxPodSandboxConfig::new();
        linux.security_context = Some(sc).into();
        let mut c = PodSandboxConfig::new();
        c.linux = Some(linux).into();
        c
    }

    fn request(config: &PodSandboxConfig, netns: &str) -> CreateSandboxRequest {
        let mut any = Any::new();
        any.type_url = POD_CONFIG_TYPE.into();
        any.value = config.write_to_bytes().unwrap();
        CreateSandboxRequest {
            sandbox_id: "pod".into(),
            options: Some(any).into(),
            netns_path: netns.into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_host_network_pod_keeps_the_nodes_uts_and_network() {
        let c = config(
            NamespaceMode::NODE,
            NamespaceMode::POD,
            NamespaceMode::CONTAINER,
        );
        let spec = read(&request(&c, "")).unwrap();
        assert_eq!(spec.netns, None);
        assert!(!spec.own_uts && spec.own_ipc && !spec.shared_pid);
        assert!(
            spec.sysctls.is_empty(),
            "no network defaults on the node's network"
        );
    }

    #[test]
    fn a_pod_network_gets_uts_and_the_cri_defaults() {
        let c = config(NamespaceMode::POD, NamespaceMode::NODE, NamespaceMode::POD);
        let spec = read(&request(&c, "/var/run/netns/cni-1")).unwrap();
        assert_eq!(spec.netns, Some(PathBuf::from("/var/run/netns/cni-1")));
        assert!(spec.own_uts && !spec.own_ipc && spec.shared_pid);
        assert_eq!(spec.sysctls["net.ipv4.ip_unprivileged_port_start"], "0");
    }

    #[test]
    fn mismatched_network_and_bad_input_are_refused() {
        let pod = config(NamespaceMode::POD, NamespaceMode::POD, NamespaceMode::POD);
        assert!(read(&request(&pod, ""))
            .unwrap_err()
            .to_string()
            .contains("names no network"));
        let node = config(NamespaceMode::NODE, NamespaceMode::POD, NamespaceMode::POD);
        assert!(read(&request(&node, "/run/netns/x")).is_err());
        assert!(read(&request(&pod, "relative/netns"))
            .unwrap_err()
            .to_string()
            .contains("absolute"));
        let mut bad = request(&pod, "/run/netns/x");
        bad.options.as_mut().unwrap().type_url = "something.Else".into();
        assert!(read(&bad)
            .unwrap_err()
            .to_string()
            .contains("expected the CRI's"));
        let mut long = node.clone();
        long.hostname = "h".repeat(65);
        assert!(read(&request(&long, "")).is_err());
        let mut escape = node.clone();
        escape.linux.mut_or_insert_default().cgroup_parent = "/kubepods/../../etc".into();
        assert!(read(&request(&escape, "")).is_err());
    }

    #[test]
    fn a_user_namespaced_pod_is_refused_as_unsupported() {
        let mut c = config(NamespaceMode::NODE, NamespaceMode::POD, NamespaceMode::POD);
        let ns = c
            .linux
            .mut_or_insert_default()
            .security_context
            .mut_or_insert_default();
        let opts = ns.namespace_options.mut_or_insert_default();
        opts.userns_options.mut_or_insert_default().mode = NamespaceMode::POD.into();
        assert!(matches!(
            read(&request(&c, "")),
            Err(ShimError::Unimplemented(_))
        ));
    }

    #[test]
    fn resolv_conf_as_the_cri_writes_it() {
        let dns = Dns {
            servers: vec!["10.0.0.10".into(), "10.0.0.11".into()],
            searches: vec!["ns.svc.cluster.local".into()],
            options: vec!["ndots:5".into()],
        };
        assert_eq!(
            resolv_conf(&dns),
            "search ns.svc.cluster.local\nnameserver 10.0.0.10\nnameserver 10.0.0.11\noptions ndots:5\n"
        );
    }
}
