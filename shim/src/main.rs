//! containerd-shim-skiff-v2: a containerd shim-v2 runtime (`io.containerd.skiff.v2`) that
//! drives runc (or the runtime the options name).

fn main() -> std::process::ExitCode {
    skiff_shim::cli::main(&skiff_shim::options::driver::RUNC)
}
