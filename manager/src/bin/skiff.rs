//! The skiff command line. See `skiff_manager::cli`.

fn main() {
    std::process::exit(skiff_manager::cli::main());
}
