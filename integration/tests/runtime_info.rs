//! `SHIM -info`, as containerd 2.2 and 2.3 run it: the options (an Any) on stdin, a
//! `containerd.types.RuntimeInfo` protobuf on stdout, whose features are the OCI
//! runtime's own document (`runc features` for the runc shim).

use protobuf::well_known_types::any::Any;
use protobuf::Message;
use skiff_integration::containerd::workspace_dir;
use skiff_protos::introspection::RuntimeInfo;
use skiff_protos::options::Options;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

const FEATURES_URL: &str = "types.containerd.io/opencontainers/runtime-spec/1/features/Features";

fn binary(name: &str) -> PathBuf {
    let path = workspace_dir().join("target/debug").join(name);
    assert!(
        path.exists(),
        "{} is missing: cargo build first",
        path.display()
    );
    path
}

/// Runs `-info` with `stdin`; returns the process output.
fn run_info(shim: &str, stdin: &[u8]) -> Output {
    let mut child = Command::new(binary(shim))
        .env("PATH", skiff_integration::runc::path_with(&[]))
        .arg("-info")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running -info");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

fn runtime_info(out: &Output) -> RuntimeInfo {
    assert!(
        out.status.success(),
        "-info failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    RuntimeInfo::parse_from_bytes(&out.stdout).expect("a RuntimeInfo on stdout")
}

fn options(binary_name: &str) -> Any {
    Any {
        type_url: "containerd.runc.v1.Options".into(),
        value: Options {
            binary_name: binary_name.into(),
            ..Default::default()
        }
        .write_to_bytes()
        .unwrap(),
        ..Default::default()
    }
}

fn features_json(info: &RuntimeInfo) -> serde_json::Value {
    let features = info.features.as_ref().expect("a features document");
    assert_eq!(features.type_url, FEATURES_URL);
    serde_json::from_slice(&features.value).expect("the features are JSON")
}

#[test]
fn the_runc_shim_reports_what_runc_features_says() {
    let info = runtime_info(&run_info("containerd-shim-skiff-v2", b""));
    assert_eq!(info.name, "io.containerd.skiff.v2");
    assert_eq!(
        info.version.as_ref().map(|v| v.version.as_str()),
        Some(env!("CARGO_PKG_VERSION"))
    );
    let runc = skiff_integration::runc::command()
        .arg("features")
        .output()
        .unwrap();
    let expected: serde_json::Value = serde_json::from_slice(&runc.stdout).unwrap();
    assert_eq!(features_json(&info), expected);
}

#[test]
fn the_options_given_are_echoed_and_name_the_runtime_asked() {
    let given = options("runc");
    let info = runtime_info(&run_info(
        "containerd-shim-skiff-v2",
        &given.write_to_bytes().unwrap(),
    ));
    assert_eq!(info.options.as_ref(), Some(&given));
    assert!(info.features.is_some());
    // crun 1.8 has no `features` command: no document, and no failure (as the Go shim).
    if std::path::Path::new("/usr/bin/crun").exists() {
        let info = runtime_info(&run_info(
            "containerd-shim-skiff-v2",
            &options("/usr/bin/crun").write_to_bytes().unwrap(),
        ));
        let crun = Command::new("crun").arg("features").output().unwrap();
        assert_eq!(info.features.is_some(), crun.status.success());
    }
}

#[test]
fn a_runtime_that_cannot_run_is_named() {
    let out = run_info(
        "containerd-shim-skiff-v2",
        &options("/nonexistent/runc").write_to_bytes().unwrap(),
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/runc"), "{err}");
}

#[test]
fn the_libcontainer_shim_reports_libcontainers_features() {
    let info = runtime_info(&run_info("containerd-shim-skiff-youki-v2", b""));
    assert_eq!(info.name, "io.containerd.skiff-youki.v2");
    let doc = features_json(&info);
    assert_eq!(doc["ociVersionMin"], "1.0.0");
    assert_eq!(doc["linux"]["cgroup"]["v2"], true);
    let options = doc["mountOptions"].as_array().expect("mount options");
    assert!(options.iter().any(|o| o == "rbind"), "{options:?}");
    // Recursive read-only mounts are offered (containerd 2.x's CRI asks for them only
    // then); idmapped mounts are not (the shim refuses them).
    assert!(options.iter().any(|o| o == "rro"), "{options:?}");
    assert_eq!(doc["linux"]["mountExtensions"]["idmap"]["enabled"], false);
}
