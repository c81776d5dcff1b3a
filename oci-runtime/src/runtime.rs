//! The operations a shim asks of an OCI runtime, whoever performs them: runc-driver
//! runs a runtime binary for each; youki-driver does the same work in-process.

use crate::error::Result;
use crate::options::{CheckpointOptions, CreateOptions, DeleteOptions, ExecOptions, KillOptions};
use crate::state::{ContainerState, ProcessList};
use std::os::fd::OwnedFd;
use std::path::Path;

/// The standard streams a container's process gets from `create` or `exec`; `None` is
/// /dev/null. The runtime hands them on to the container, so they are the container's.
#[derive(Debug, Default)]
pub struct Stdio3 {
    pub stdin: Option<OwnedFd>,
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
}

/// One OCI runtime's view of the containers under its state root. Process-starting
/// operations (`create`, `exec`, `restore`) hand `stdio` to the new process and write its
/// pid to the options' pid file; with a console socket they send the pty master there.
pub trait OciRuntime: Send + Sync + std::fmt::Debug {
    fn create(&self, id: &str, bundle: &Path, opts: &CreateOptions, stdio: Stdio3) -> Result<()>;
    fn start(&self, id: &str) -> Result<()>;
    fn exec(&self, id: &str, opts: &ExecOptions, stdio: Stdio3) -> Result<()>;
    fn kill(&self, id: &str, signal: u32, opts: &KillOptions) -> Result<()>;
    fn delete(&self, id: &str, opts: &DeleteOptions) -> Result<()>;
    fn pause(&self, id: &str) -> Result<()>;
    fn resume(&self, id: &str) -> Result<()>;
    fn state(&self, id: &str) -> Result<ContainerState>;
    fn ps(&self, id: &str) -> Result<ProcessList>;
    /// Applies an OCI `LinuxResources` JSON document to a running container.
    fn update(&self, id: &str, resources_json: &[u8]) -> Result<()>;
    fn checkpoint(&self, id: &str, opts: &CheckpointOptions) -> Result<()>;
    /// The runtime's features document (JSON, the runtime-spec's `features.md`): what
    /// it recognizes in a config.json.
    fn features(&self) -> Result<Vec<u8>>;
    /// Recreates a checkpointed container, detached, with `stdio` as its streams.
    fn restore(
        &self,
        id: &str,
        bundle: &Path,
        opts: &CheckpointOptions,
        create: &CreateOptions,
        stdio: Stdio3,
    ) -> Result<()>;
}
