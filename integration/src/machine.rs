//! What this machine can do that some tests need: a pure cgroup v2 hierarchy, a CRIU
//! that works, crun, systemd as init. A test asks with [`has`]; where the answer is no,
//! it is recorded as skipped, with the reason (see [`crate::skip`]).
//!
//! `SKIFF_REQUIRE` (a comma-separated list of [`Need`] names, and `block-io`) says what a
//! machine is known to have: the cgroup v2 VM stage sets it, so a test there that finds
//! one missing fails instead of skipping, and the stage cannot pass without having run it.

use std::path::Path;
use std::process::Command;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// The unified hierarchy alone at /sys/fs/cgroup (not v1, not hybrid).
    CgroupV2,
    /// `criu check` passes.
    Criu,
    /// crun runs a container here (1.8 refuses hybrid cgroups).
    Crun,
    /// systemd is PID 1 and answers on D-Bus (the systemd cgroup driver needs it).
    Systemd,
}

impl Need {
    pub fn name(self) -> &'static str {
        match self {
            Need::CgroupV2 => "cgroup-v2",
            Need::Criu => "criu",
            Need::Crun => "crun",
            Need::Systemd => "systemd",
        }
    }

    /// Why the machine lacks it, or None when it has it.
    fn missing(self) -> Option<String> {
        match self {
            Need::CgroupV2 => (!cgroup_v2())
                .then(|| "needs a pure cgroup v2 machine (this one mounts cgroup v1 or hybrid); make test runs it in its cgroup v2 VM stage".into()),
            Need::Criu => match Command::new("criu").arg("check").output() {
                Ok(o) if o.status.success() => None,
                Ok(o) => Some(format!(
                    "CRIU cannot run here ({}); make test runs it in its cgroup v2 VM stage",
                    String::from_utf8_lossy(&o.stderr).lines().last().unwrap_or("criu check failed")
                )),
                Err(e) => Some(format!("no criu: {e}")),
            },
            Need::Crun => crun_problem(),
            Need::Systemd => (!Path::new("/run/systemd/system").exists())
                .then(|| "needs systemd as init (the systemd cgroup driver talks to it over D-Bus); make test runs it in its VM booted with systemd".into()),
        }
    }
}

/// Whether /sys/fs/cgroup is the unified hierarchy itself.
pub fn cgroup_v2() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// Whether the machine has what `test` needs. If not, the test is recorded as skipped
/// and the caller returns; under `SKIFF_REQUIRE` naming it, this panics instead.
pub fn has(test: &str, need: Need) -> bool {
    let Some(why) = need.missing() else {
        return true;
    };
    lacks(test, need.name(), &why);
    false
}

/// Records that the machine lacks `name` (a [`Need`], or a narrower capability such as
/// `block-io`) for `test`: a skip with `why`, or a panic where `SKIFF_REQUIRE` names it.
pub fn lacks(test: &str, name: &str, why: &str) {
    let required = std::env::var("SKIFF_REQUIRE").unwrap_or_default();
    if required.split(',').any(|n| n.trim() == name) {
        panic!("{test}: this machine must have {name} (SKIFF_REQUIRE) but {why}");
    }
    crate::skip(test, why);
}

/// crun 1.8 refuses hybrid machines; asking `crun features` does not tell, so it runs a
/// container of `true` from a busybox bundle.
fn crun_problem() -> Option<String> {
    let tmp = skiff_test_support::bundle::TempDir::new("skiff-crun-probe").ok()?;
    let cgroup = format!("skiff-crun-probe-{}", std::process::id());
    let _cleanup = crate::containerd::CgroupCleanup(cgroup.clone());
    let bundle = skiff_test_support::bundle::busybox_bundle(
        &tmp.path().join("b"),
        &["true"],
        &format!("/{cgroup}"),
    )
    .ok()?;
    let out = Command::new("crun")
        .arg("--root")
        .arg(tmp.path().join("root"))
        .args(["run", "--bundle"])
        .arg(&bundle)
        .arg(format!("probe{}", std::process::id()))
        .stdin(std::process::Stdio::null())
        .output();
    match out {
        Ok(o) if o.status.success() => None,
        Ok(o) => Some(format!(
            "crun cannot run containers on this machine ({}); make test runs it in its cgroup v2 VM stage",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Some(format!("crun is not runnable: {e}")),
    }
}
