//! `shimtest --shim PATH [--shim PATH ...] [--filter PATTERN] [--json OUT]`: a
//! conformance harness for shim-v2 binaries. See `skiff_integration::shimtest`.

fn main() {
    std::process::exit(skiff_integration::shimtest::main());
}
