//! The features document of this driver (the runtime-spec's `features.md`), what `runc
//! features` prints for runc: containerd reads it through the shim's `-info` to learn, for
//! example, whether idmapped mounts or recursive read-only mounts can be asked for.
//!
//! Every entry says what libcontainer 0.7, as this driver builds it (the vendored copy
//! with skiff's fixes), handles: the mount options its parser knows and applies (the
//! propagation ones included) and the recursive ones it sets with mount_setattr(2)
//! (`rro` ...), every capability its caps crate names, cgroups v1 and v2 through cgroupfs
//! or systemd's system manager (SystemdCgroup; not a user manager), seccomp through
//! libseccomp; not idmapped mounts (refused: refusals.rs).

use libcontainer::syscall::linux::MountOption;
use oci_spec::runtime::{
    Arch, Cgroup as CgroupFeature, Features, LinuxFeature, LinuxNamespaceType, LinuxSeccompAction,
    MountExtensions, Seccomp, VERSION,
};

/// The recursive mount options (mount_setattr(2) with AT_RECURSIVE) libcontainer takes.
const RECURSIVE_OPTIONS: &[&str] = &[
    "rro",
    "rrw",
    "rnosuid",
    "rsuid",
    "rnodev",
    "rdev",
    "rnoexec",
    "rexec",
    "rnodiratime",
    "rdiratime",
    "rrelatime",
    "rnorelatime",
    "rnoatime",
    "ratime",
    "rstrictatime",
    "rnostrictatime",
    "rnosymfollow",
    "rsymfollow",
];

/// The document, as JSON.
pub(crate) fn document() -> Vec<u8> {
    serde_json::to_vec_pretty(&features()).expect("a features document serializes")
}

fn features() -> Features {
    let mut f = Features::default();
    f.set_oci_version_min("1.0.0".into());
    f.set_oci_version_max(VERSION.into());
    f.set_hooks(Some(
        [
            "prestart",
            "createRuntime",
            "createContainer",
            "startContainer",
            "poststart",
            "poststop",
        ]
        .map(String::from)
        .to_vec(),
    ));
    let mut options = MountOption::known_options();
    options.extend(RECURSIVE_OPTIONS.iter().map(|o| o.to_string()));
    f.set_mount_options(Some(options));
    f.set_linux(Some(linux()));
    f
}

fn linux() -> LinuxFeature {
    use LinuxNamespaceType::*;
    let mut l = LinuxFeature::default();
    l.set_namespaces(Some(vec![
        Cgroup, Ipc, Mount, Network, Pid, User, Uts, Time,
    ]));
    l.set_capabilities(Some(caps::all().iter().map(|c| c.to_string()).collect()));
    let mut cgroup = CgroupFeature::default();
    cgroup.set_v1(Some(true));
    cgroup.set_v2(Some(true));
    cgroup.set_systemd(Some(true));
    cgroup.set_systemd_user(Some(false));
    l.set_cgroup(Some(cgroup));
    l.set_seccomp(Some(seccomp()));
    // libcontainer parses an `idmap` mount option but never applies MOUNT_ATTR_IDMAP:
    // saying so keeps containerd from asking for idmapped mounts it would not get.
    let mut mounts = MountExtensions::default();
    let mut idmap = oci_spec::runtime::IDMap::default();
    idmap.set_enabled(Some(false));
    mounts.set_idmap(Some(idmap));
    l.set_mount_extensions(Some(mounts));
    l
}

fn seccomp() -> Seccomp {
    use LinuxSeccompAction::*;
    let mut s = Seccomp::default();
    s.set_enabled(Some(true));
    s.set_actions(Some(vec![
        ScmpActKill,
        ScmpActKillThread,
        ScmpActKillProcess,
        ScmpActTrap,
        ScmpActErrno,
        ScmpActTrace,
        ScmpActAllow,
        ScmpActLog,
        ScmpActNotify,
    ]));
    s.set_operators(Some(
        [
            "SCMP_CMP_NE",
            "SCMP_CMP_LT",
            "SCMP_CMP_LE",
            "SCMP_CMP_EQ",
            "SCMP_CMP_GE",
            "SCMP_CMP_GT",
            "SCMP_CMP_MASKED_EQ",
        ]
        .map(String::from)
        .to_vec(),
    ));
    s.set_archs(Some(vec![
        Arch::ScmpArchX86_64,
        Arch::ScmpArchX86,
        Arch::ScmpArchX32,
    ]));
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_recursive_option_offered_is_one_libcontainer_parses() {
        use libcontainer::syscall::linux::MountRecursive;
        use std::str::FromStr;
        for option in super::RECURSIVE_OPTIONS {
            assert!(MountRecursive::from_str(option).is_ok(), "{option}");
        }
    }

    #[test]
    fn the_document_names_what_containerd_looks_for() {
        let doc: serde_json::Value = serde_json::from_slice(&super::document()).unwrap();
        assert_eq!(doc["ociVersionMin"], "1.0.0");
        let options = doc["mountOptions"].as_array().unwrap();
        for wanted in ["rbind", "rro", "rshared", "rslave", "rprivate"] {
            assert!(options.iter().any(|o| o == wanted), "{wanted}: {options:?}");
        }
        assert_eq!(doc["linux"]["mountExtensions"]["idmap"]["enabled"], false);
        assert_eq!(doc["linux"]["cgroup"]["v2"], true);
        let caps = doc["linux"]["capabilities"].as_array().unwrap();
        assert!(caps.iter().any(|c| c == "CAP_SYS_ADMIN"), "{caps:?}");
    }
}
