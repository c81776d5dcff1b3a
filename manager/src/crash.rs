//! Deliberate crashes at named points of skiffd's work, for the tests that show a crash
//! anywhere there leaves a state the next start recovers or cleans. With the variable
//! `SKIFFD_CRASH_AT` set to a point's name, skiffd kills itself (SIGKILL, as a crash
//! gives no chance to clean up) when it gets there; without it, nothing happens.

pub fn point(name: &str) {
    if std::env::var_os("SKIFFD_CRASH_AT").is_some_and(|v| v == name) {
        crate::log::error(&format!("SKIFFD_CRASH_AT={name}: crashing here"));
        let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
    }
}
