//! An OCI runtime's command line (`runc`, `crun`), driven as `skiff-oci-runtime`'s
//! [`OciRuntime`](skiff_oci_runtime::OciRuntime): argument lists built from the typed
//! options, the binary run for each operation, and its JSON log turned into errors that
//! carry the runtime's own words. It knows nothing of containerd.

mod args;
mod log;
mod runtime;

pub use args::GlobalOptions;
pub use log::last_error;
pub use runtime::Runtime;
