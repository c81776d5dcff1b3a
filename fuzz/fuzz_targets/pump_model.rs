//! The pumps' state machine under the fuzzer: its bytes are the choices of one case of
//! the pumps' model test (`shim/tests/pump_model/harness.rs`, included here): which
//! copies (pipes, FIFOs, ptys, a log file; splice or a buffer; sizes), then writers
//! that write, leave and return, readers fast, slow, away or gone, CloseIO, a process
//! going away, and turns of the loop. A byte lost, doubled or reordered, a stall, a
//! busy loop or a stream that ends when it should not (or not when it should) crashes.
#![no_main]

#[path = "../../shim/tests/pump_model/harness.rs"]
mod harness;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Writes into a broken pipe must fail with EPIPE, as in the shim (Rust's main ignores
    // SIGPIPE; libFuzzer's main is not Rust's).
    static IGNORE_SIGPIPE: std::sync::Once = std::sync::Once::new();
    // SAFETY: setting a signal's disposition to ignore, before any pipe is used.
    IGNORE_SIGPIPE.call_once(|| unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    });
    // Longer inputs add nothing a case can use: it takes at most a few hundred choices.
    let data = &data[..data.len().min(4096)];
    let mut choices = harness::FromBytes { data, at: 0 };
    if let Err(failure) = harness::run_case(&mut choices, 0) {
        panic!("{failure}");
    }
});
