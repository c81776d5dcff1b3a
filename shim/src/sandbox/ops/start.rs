//! StartSandbox (the sandbox becomes ready and names its pid) and Platform.

use crate::events::timestamp;
use crate::sandbox::SandboxService;
use crate::task::error::Result;
use protobuf::MessageField;
use skiff_protos::platform::Platform;
use skiff_protos::sandbox::{
    PlatformRequest, PlatformResponse, StartSandboxRequest, StartSandboxResponse,
};

impl SandboxService {
    pub fn start(&self, req: StartSandboxRequest) -> Result<StartSandboxResponse> {
        self.with_pod(&req.sandbox_id, |pod| {
            pod.start()?;
            Ok(StartSandboxResponse {
                pid: pod.pid(),
                created_at: MessageField::some(timestamp(pod.created_at())),
                ..Default::default()
            })
        })
    }

    pub fn platform(&self, req: PlatformRequest) -> Result<PlatformResponse> {
        self.with_pod(&req.sandbox_id, |_| {
            Ok(PlatformResponse {
                platform: MessageField::some(Platform {
                    os: "linux".into(),
                    architecture: go_arch(std::env::consts::ARCH).into(),
                    ..Default::default()
                }),
                ..Default::default()
            })
        })
    }
}

/// An architecture in Go's (and the OCI image spec's) spelling.
fn go_arch(rust: &str) -> &str {
    match rust {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        "loongarch64" => "loong64",
        other => other,
    }
}
