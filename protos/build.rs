// Generates Rust for every .proto under proto/ with ttrpc-codegen (pure Rust: no protoc).
use std::path::PathBuf;

fn main() {
    let root = PathBuf::from("proto");
    let inputs = [
        "types/mount.proto",
        "types/envelope.proto",
        "types/task.proto",
        "types/introspection.proto",
        "bootstrap/bootstrap.proto",
        "runctypes/runctypes.proto",
        "task/v2/shim.proto",
        "events/task_events.proto",
        "services/events/v1/events.proto",
        "runc/options.proto",
        "runtimeoptions/runtimeoptions.proto",
        "cgroups/metrics_v1.proto",
        "cgroups/metrics_v2.proto",
        "skiff/v1/manager.proto",
        "types/platform.proto",
        "types/metrics.proto",
        "sandbox/v1/sandbox.proto",
        "cri/v1/pod_sandbox_config.proto",
    ];
    for input in inputs {
        println!("cargo:rerun-if-changed=proto/{input}");
    }
    ttrpc_codegen::Codegen::new()
        .include(&root)
        .inputs(inputs.iter().map(|p| root.join(p)))
        .rust_protobuf()
        .customize(ttrpc_codegen::Customize {
            gen_mod: true,
            ..Default::default()
        })
        .rust_protobuf_customize(ttrpc_codegen::ProtobufCustomize::default().gen_mod_rs(true))
        .run()
        .expect("generating code from the .proto files");
    wrap_modules();
}

/// The generated files carry inner attributes (`#![...]`, `//!`), which `include!` cannot
/// take; strip them and write `modules.rs`, one inline module per generated file.
fn wrap_modules() {
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .expect("reading OUT_DIR")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".rs") && n != "mod.rs" && n != "modules.rs")
        .collect();
    names.sort();
    let mut modules = String::new();
    for name in names {
        let path = out.join(&name);
        let text = std::fs::read_to_string(&path).expect("reading generated file");
        let kept: Vec<&str> = text
            .lines()
            .filter(|l| !l.starts_with("#![") && !l.starts_with("//!"))
            .collect();
        std::fs::write(&path, kept.join("\n")).expect("writing generated file");
        let module = name.trim_end_matches(".rs");
        modules.push_str(&format!(
            "pub mod {module} {{ include!(concat!(env!(\"OUT_DIR\"), \"/{name}\")); }}\n"
        ));
    }
    std::fs::write(out.join("modules.rs"), modules).expect("writing modules.rs");
}
