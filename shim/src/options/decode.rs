//! Decoding the runtime options a request carries, whatever type containerd or its client
//! sent them as: `containerd.runc.v1.Options`, the CRI plugin's `runtimeoptions.v1.Options`
//! (naming a file of them), or the legacy `containerd.linux.runc.CreateOptions`.

use super::OptionsError;
use protobuf::well_known_types::any::Any;
use protobuf::Message;
use skiff_protos::options::Options;
use std::path::Path;

type Result<T> = std::result::Result<T, OptionsError>;

/// Type URLs under which containerd has sent the runc options.
const OPTIONS_TYPE_URLS: &[&str] = &[
    "containerd.runc.v1.Options",
    "type.googleapis.com/containerd.runc.v1.Options",
    "types.containerd.io/containerd.runc.v1.Options",
];

/// The legacy runc options of containerd 1.x, which containerd's Go client still sends to
/// every runtime not named io.containerd.runc.v2 (WithNoPivotRoot, WithShimCgroup, ...).
const LEGACY_OPTIONS_TYPE_URLS: &[&str] = &[
    "containerd.linux.runc.CreateOptions",
    "type.googleapis.com/containerd.linux.runc.CreateOptions",
    "types.containerd.io/containerd.linux.runc.CreateOptions",
];

/// What containerd's CRI plugin sends a shim of another runtime type than runc's.
const CRI_OPTIONS_TYPE_URLS: &[&str] = &[
    "runtimeoptions.v1.Options",
    "type.googleapis.com/runtimeoptions.v1.Options",
    "types.containerd.io/runtimeoptions.v1.Options",
];

pub fn decode(any: Option<&Any>) -> Result<Options> {
    let Some(any) = any.filter(|a| !a.type_url.is_empty() || !a.value.is_empty()) else {
        return Ok(Options::default());
    };
    let url = any.type_url.as_str();
    if CRI_OPTIONS_TYPE_URLS.contains(&url) {
        return decode_cri(&any.value);
    }
    if LEGACY_OPTIONS_TYPE_URLS.contains(&url) {
        return decode_legacy(&any.value);
    }
    if !OPTIONS_TYPE_URLS.contains(&url) {
        return Err(OptionsError(format!(
            "unsupported runtime options type {:?}: expected containerd.runc.v1.Options, \
             runtimeoptions.v1.Options or containerd.linux.runc.CreateOptions",
            any.type_url
        )));
    }
    Options::parse_from_bytes(&any.value)
        .map_err(|e| OptionsError(format!("cannot decode containerd.runc.v1.Options: {e}")))
}

/// Whether `type_url` names runtime options this shim reads.
pub fn is_options_type(type_url: &str) -> bool {
    [
        OPTIONS_TYPE_URLS,
        LEGACY_OPTIONS_TYPE_URLS,
        CRI_OPTIONS_TYPE_URLS,
    ]
    .iter()
    .any(|urls| urls.contains(&type_url))
}

/// The legacy options carry what a Create needs under other field numbers; the fields
/// that belong to checkpoints (open_tcp, terminal, ...) mean nothing to a Create.
fn decode_legacy(value: &[u8]) -> Result<Options> {
    let legacy = skiff_protos::runctypes::CreateOptions::parse_from_bytes(value).map_err(|e| {
        OptionsError(format!(
            "cannot decode containerd.linux.runc.CreateOptions: {e}"
        ))
    })?;
    Ok(Options {
        no_pivot_root: legacy.no_pivot_root,
        no_new_keyring: legacy.no_new_keyring,
        shim_cgroup: legacy.shim_cgroup,
        io_uid: legacy.io_uid,
        io_gid: legacy.io_gid,
        criu_work_path: legacy.criu_work_path,
        criu_image_path: legacy.criu_image_path,
        ..Default::default()
    })
}

/// The CRI plugin's options: the runc options are in the file config_path names, if any.
fn decode_cri(value: &[u8]) -> Result<Options> {
    let cri = skiff_protos::runtimeoptions::Options::parse_from_bytes(value)
        .map_err(|e| OptionsError(format!("cannot decode runtimeoptions.v1.Options: {e}")))?;
    if cri.config_path.is_empty() {
        return Ok(Options::default());
    }
    super::file::read(Path::new(&cri.config_path)).map_err(OptionsError)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::RuntimeSettings;

    const RUNC_ROOT: &str = "/run/containerd/runc";

    #[test]
    fn no_options_means_runc_in_the_namespace_root() {
        let opts = decode(None).unwrap();
        let s = RuntimeSettings::from_options(&opts, "k8s.io", Path::new(RUNC_ROOT));
        assert_eq!(s.binary, "runc");
        assert_eq!(s.root, Path::new("/run/containerd/runc/k8s.io"));
    }

    #[test]
    fn runc_options_are_decoded_under_any_known_name() {
        let opts = Options {
            binary_name: "/usr/bin/crun".into(),
            root: "/run/other".into(),
            systemd_cgroup: true,
            ..Default::default()
        };
        for url in OPTIONS_TYPE_URLS {
            let any = Any {
                type_url: url.to_string(),
                value: opts.write_to_bytes().unwrap(),
                ..Default::default()
            };
            let decoded = decode(Some(&any)).unwrap();
            let s = RuntimeSettings::from_options(&decoded, "default", Path::new(RUNC_ROOT));
            assert_eq!(s.binary, "/usr/bin/crun");
            assert_eq!(s.root, Path::new("/run/other/default"));
            assert!(s.systemd_cgroup);
        }
    }

    #[test]
    fn unknown_option_types_are_refused() {
        let any = Any {
            type_url: "example.com/Other".into(),
            value: vec![1, 2, 3],
            ..Default::default()
        };
        let err = decode(Some(&any)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unsupported runtime options type \"example.com/Other\": expected containerd.runc.v1.Options, runtimeoptions.v1.Options or containerd.linux.runc.CreateOptions"
        );
    }

    #[test]
    fn legacy_create_options_carry_the_create_settings() {
        let legacy = skiff_protos::runctypes::CreateOptions {
            no_pivot_root: true,
            no_new_keyring: true,
            shim_cgroup: "/pods/shim".into(),
            io_uid: 1000,
            io_gid: 1001,
            open_tcp: true,
            ..Default::default()
        };
        let any = Any {
            type_url: "containerd.linux.runc.CreateOptions".into(),
            value: legacy.write_to_bytes().unwrap(),
            ..Default::default()
        };
        let opts = decode(Some(&any)).unwrap();
        assert!(opts.no_pivot_root && opts.no_new_keyring);
        assert_eq!(opts.shim_cgroup, "/pods/shim");
        assert_eq!((opts.io_uid, opts.io_gid), (1000, 1001));
        assert!(opts.binary_name.is_empty(), "runc stays the runtime");
    }

    #[test]
    fn deprecated_fields_of_containerd_2_are_ignored() {
        // task_api_address and task_api_version (12, 13) are deprecated in 2.x, criu_path
        // (8) removed: options that carry them still decode.
        let opts = Options {
            criu_path: "/usr/sbin/criu".into(),
            task_api_address: "ttrpc+unix:///run/x".into(),
            task_api_version: 3,
            root: "/run/r".into(),
            ..Default::default()
        };
        let any = Any {
            type_url: "containerd.runc.v1.Options".into(),
            value: opts.write_to_bytes().unwrap(),
            ..Default::default()
        };
        let s =
            RuntimeSettings::from_options(&decode(Some(&any)).unwrap(), "ns", Path::new(RUNC_ROOT));
        assert_eq!(s.root, Path::new("/run/r/ns"));
    }
}
