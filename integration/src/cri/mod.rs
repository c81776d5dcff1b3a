//! A CRI client for the tests: the kubelet's side of containerd's CRI plugin, over
//! gRPC on containerd's unix socket. Blocking calls (a current-thread tokio runtime
//! inside), one method per RPC the tests make.

pub mod api;
pub mod pod;

use api::*;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tonic::codec::ProstCodec;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::{Channel, Endpoint, Uri};

const SERVICE: &str = "runtime.v1.RuntimeService";

pub struct CriClient {
    runtime: tokio::runtime::Runtime,
    channel: Channel,
}

/// A failed call: the gRPC status code and containerd's message.
#[derive(Debug)]
pub struct CriError {
    pub code: tonic::Code,
    pub message: String,
}

impl std::fmt::Display for CriError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}: {}", self.code, self.message)
    }
}

pub type CriResult<T> = Result<T, CriError>;

impl CriClient {
    /// Connects to the CRI plugin behind containerd's gRPC socket.
    pub fn connect(socket: &Path) -> std::io::Result<CriClient> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let socket: PathBuf = socket.to_path_buf();
        // The URI is a placeholder: every connection is made by the connector below.
        let endpoint = Endpoint::from_static("http://cri.local")
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(120));
        let channel = runtime
            .block_on(
                endpoint.connect_with_connector(tower::service_fn(move |_: Uri| {
                    let socket = socket.clone();
                    async move {
                        let stream = tokio::net::UnixStream::connect(socket).await?;
                        Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
                    }
                })),
            )
            .map_err(std::io::Error::other)?;
        Ok(CriClient { runtime, channel })
    }

    fn call<Req, Resp>(&self, method: &str, req: Req) -> CriResult<Resp>
    where
        Req: prost::Message + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + Sync + 'static,
    {
        let path =
            PathAndQuery::try_from(format!("/{SERVICE}/{method}")).expect("a valid method path");
        let mut grpc = tonic::client::Grpc::new(self.channel.clone());
        self.runtime.block_on(async move {
            grpc.ready().await.map_err(|e| CriError {
                code: tonic::Code::Unavailable,
                message: e.to_string(),
            })?;
            grpc.unary(
                tonic::Request::new(req),
                path,
                ProstCodec::<Req, Resp>::default(),
            )
            .await
            .map(tonic::Response::into_inner)
            .map_err(|s| CriError {
                code: s.code(),
                message: s.message().to_string(),
            })
        })
    }

    pub fn version(&self) -> CriResult<VersionResponse> {
        self.call(
            "Version",
            VersionRequest {
                version: "v1".into(),
            },
        )
    }

    /// Status: the runtime handlers and their features.
    pub fn status(&self) -> CriResult<StatusResponse> {
        self.call("Status", StatusRequest { verbose: false })
    }

    pub fn run_pod_sandbox(&self, config: &PodSandboxConfig, handler: &str) -> CriResult<String> {
        let resp: RunPodSandboxResponse = self.call(
            "RunPodSandbox",
            RunPodSandboxRequest {
                config: Some(config.clone()),
                runtime_handler: handler.into(),
            },
        )?;
        Ok(resp.pod_sandbox_id)
    }

    pub fn pod_sandbox_status(&self, id: &str) -> CriResult<PodSandboxStatusResponse> {
        self.call(
            "PodSandboxStatus",
            PodSandboxStatusRequest {
                pod_sandbox_id: id.into(),
                verbose: true,
            },
        )
    }

    pub fn stop_pod_sandbox(&self, id: &str) -> CriResult<()> {
        self.sandbox_call("StopPodSandbox", id)
    }

    pub fn remove_pod_sandbox(&self, id: &str) -> CriResult<()> {
        self.sandbox_call("RemovePodSandbox", id)
    }

    fn sandbox_call(&self, method: &str, id: &str) -> CriResult<()> {
        let _: Empty = self.call(
            method,
            PodSandboxRequest {
                pod_sandbox_id: id.into(),
            },
        )?;
        Ok(())
    }

    pub fn create_container(
        &self,
        sandbox_id: &str,
        config: &ContainerConfig,
        sandbox: &PodSandboxConfig,
    ) -> CriResult<String> {
        let resp: ContainerId = self.call(
            "CreateContainer",
            CreateContainerRequest {
                pod_sandbox_id: sandbox_id.into(),
                config: Some(config.clone()),
                sandbox_config: Some(sandbox.clone()),
            },
        )?;
        Ok(resp.container_id)
    }

    pub fn start_container(&self, id: &str) -> CriResult<()> {
        self.container_call("StartContainer", id)
    }

    pub fn remove_container(&self, id: &str) -> CriResult<()> {
        self.container_call("RemoveContainer", id)
    }

    fn container_call(&self, method: &str, id: &str) -> CriResult<()> {
        let _: Empty = self.call(
            method,
            ContainerId {
                container_id: id.into(),
            },
        )?;
        Ok(())
    }

    pub fn stop_container(&self, id: &str, timeout_s: i64) -> CriResult<()> {
        let _: Empty = self.call(
            "StopContainer",
            StopContainerRequest {
                container_id: id.into(),
                timeout: timeout_s,
            },
        )?;
        Ok(())
    }

    pub fn exec_sync(&self, id: &str, cmd: &[&str], timeout_s: i64) -> CriResult<ExecSyncResponse> {
        self.call(
            "ExecSync",
            ExecSyncRequest {
                container_id: id.into(),
                cmd: cmd.iter().map(|s| s.to_string()).collect(),
                timeout: timeout_s,
            },
        )
    }

    pub fn container_stats(&self, id: &str) -> CriResult<ContainerStats> {
        let resp: ContainerStatsResponse = self.call(
            "ContainerStats",
            ContainerId {
                container_id: id.into(),
            },
        )?;
        Ok(resp.stats.unwrap_or_default())
    }

    pub fn container_status(&self, id: &str) -> CriResult<ContainerStatus> {
        let resp: ContainerStatusResponse = self.call(
            "ContainerStatus",
            ContainerStatusRequest {
                container_id: id.into(),
                verbose: false,
            },
        )?;
        Ok(resp.status.unwrap_or_default())
    }

    pub fn update_container_resources(
        &self,
        id: &str,
        resources: LinuxContainerResources,
    ) -> CriResult<()> {
        let _: Empty = self.call(
            "UpdateContainerResources",
            UpdateContainerResourcesRequest {
                container_id: id.into(),
                linux: Some(resources),
            },
        )?;
        Ok(())
    }
}
