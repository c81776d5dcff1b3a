//! The skiff manager daemon. See `skiff_manager::daemon`.

fn main() {
    std::process::exit(skiff_manager::daemon::main());
}
