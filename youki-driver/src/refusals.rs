//! What this driver refuses in a spec rather than run the container without it:
//! settings libcontainer 0.7 parses and does not apply. Each is named in README's table
//! of what the libcontainer shim does not support; the refusal says which setting and
//! why, before any fork.

use serde_json::Value;

/// Why libcontainer cannot run `spec` (a container's config.json) as it asks, if so.
pub(crate) fn check_container(spec: &Value) -> Result<(), String> {
    check_process(&spec["process"])?;
    for mount in spec["mounts"].as_array().into_iter().flatten() {
        check_mount(mount)?;
    }
    Ok(())
}

/// Why libcontainer cannot run `process` (a container's or an exec's) as it asks.
pub(crate) fn check_process(process: &Value) -> Result<(), String> {
    match process["selinuxLabel"].as_str() {
        // runc refuses a label where SELinux is off as well, in these words.
        Some(label) if !label.is_empty() && !selinux_enabled() => Err(
            "selinux label is specified in config, but selinux is disabled or not supported".into(),
        ),
        Some(label) if !label.is_empty() => Err(format!(
            "SELinux process label {label:?}: libcontainer applies no SELinux process \
             label (use io.containerd.skiff.v2)"
        )),
        _ => Ok(()),
    }
}

/// An idmapped mount (the `idmap`/`ridmap` options, or the mount's own uid and gid
/// mappings): libcontainer skips the option and mounts without the mapping.
fn check_mount(mount: &Value) -> Result<(), String> {
    let options = mount["options"].as_array().into_iter().flatten();
    let idmap_option = options
        .filter_map(Value::as_str)
        .any(|o| o == "idmap" || o == "ridmap");
    let mappings = !mount["uidMappings"].is_null() || !mount["gidMappings"].is_null();
    if idmap_option || mappings {
        return Err(format!(
            "the idmapped mount on {}: libcontainer does not map mounts (use \
             io.containerd.skiff.v2 with a runc that does)",
            mount["destination"].as_str().unwrap_or("?")
        ));
    }
    Ok(())
}

fn selinux_enabled() -> bool {
    std::path::Path::new("/sys/fs/selinux/enforce").exists()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_selinux_process_label_is_refused_naming_it() {
        let err = check_process(&json!({"selinuxLabel": "system_u:system_r:container_t:s0"}))
            .unwrap_err();
        assert!(err.contains("selinux"), "{err}");
        assert!(check_process(&json!({"selinuxLabel": ""})).is_ok());
        assert!(check_process(&json!({"args": ["true"]})).is_ok());
    }

    #[test]
    fn an_idmapped_mount_is_refused_naming_its_destination() {
        let spec = json!({"process": {}, "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/data", "type": "bind", "source": "/srv", "options": ["rbind", "idmap"]},
        ]});
        let err = check_container(&spec).unwrap_err();
        assert!(err.contains("/data"), "{err}");
        let mapped = json!({"mounts": [{"destination": "/m", "source": "/s",
            "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}]}]});
        assert!(check_container(&mapped).is_err());
        let plain =
            json!({"mounts": [{"destination": "/m", "source": "/s", "options": ["rbind", "rro"]}]});
        assert!(check_container(&plain).is_ok());
    }
}
