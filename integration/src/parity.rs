//! The machinery of `tests/libcontainer_parity.rs`: runs a spec variant with the runc
//! shim (runc 1.1.5, and runc 1.5.1 where installed) and with the libcontainer shim,
//! has the container's init and an exec in it report what they see of themselves, and
//! compares the reports.

use crate::containerd::workspace_dir;
use crate::shimtest::ctx::{cmd, Ctx, Outcome, Process, Verdict};
use crate::shimtest::harness::Harness;
use crate::volume::Volume;
use serde_json::{json, Value};
use skiff_protos::options::Options;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The label of the system's runc (Debian 12's 1.1.5).
const RUNC_1_1: &str = "runc 1.1.5";
const RUNC_1_5: &str = "/var/cache/runc/1.5.1/usr/sbin/runc";

/// One runtime of the comparison: a shim binary, and the runc it runs (if any).
pub struct Runtime {
    pub label: &'static str,
    pub harness: Harness,
    pub options: Option<Options>,
}

fn binary(name: &str) -> PathBuf {
    let path = workspace_dir().join("target/debug").join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --bins` first (make test does)",
        path.display()
    );
    path
}

/// runc 1.5.1: `$SKIFF_RUNC_1_5`, else where the machines keep it.
fn runc_1_5() -> Option<PathBuf> {
    let path = std::env::var_os("SKIFF_RUNC_1_5")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(RUNC_1_5));
    path.exists().then_some(path)
}

/// The runtimes compared: runc 1.1.5 first, runc 1.5.1 if installed, libcontainer last.
pub fn runtimes() -> Vec<Runtime> {
    // `$SKIFF_RUNC_SHIM` and `$SKIFF_LIBCONTAINER_SHIM` name the shims where they are not
    // in this tree's target/debug (the cgroup v2 VM), or another build to compare.
    let runc_shim = std::env::var_os("SKIFF_RUNC_SHIM")
        .map(PathBuf::from)
        .unwrap_or_else(|| binary("containerd-shim-skiff-v2"));
    let runc_root = Path::new("/run/containerd/runc");
    let mut all = Vec::new();
    // `$SKIFF_PARITY_WITHOUT_RUNC_1_1` leaves the system's runc out where runc 1.5.1 is
    // there (the emulated VM: a third less time; the hosts compare the two runcs).
    let without_1_1 = std::env::var_os("SKIFF_PARITY_WITHOUT_RUNC_1_1").is_some();
    if !without_1_1 || runc_1_5().is_none() {
        all.push(Runtime {
            label: RUNC_1_1,
            harness: Harness::new(&runc_shim, runc_root).expect("a harness"),
            options: None,
        });
    }
    match runc_1_5() {
        Some(runc) => all.push(Runtime {
            label: "runc 1.5.1",
            harness: Harness::new(&runc_shim, runc_root).expect("a harness"),
            options: Some(Options {
                binary_name: runc.to_string_lossy().into_owned(),
                ..Default::default()
            }),
        }),
        None => crate::skip(
            "libcontainer_parity (runc 1.5.1)",
            &format!("{RUNC_1_5} is not installed: the libcontainer shim is compared with runc 1.1.5 alone"),
        ),
    }
    let libcontainer_shim = std::env::var_os("SKIFF_LIBCONTAINER_SHIM")
        .map(PathBuf::from)
        .unwrap_or_else(|| binary("containerd-shim-skiff-youki-v2"));
    all.push(Runtime {
        label: "libcontainer",
        harness: Harness::new(&libcontainer_shim, Path::new("/run/containerd/youki"))
            .expect("a harness"),
        options: None,
    });
    all
}

/// What the probe prints, one `key: value` line per observation; multi-line values are
/// printed under a `[section]` header and kept whole. The mount table is sorted: the
/// runtimes bind the default devices in different orders. The process looks at itself
/// through /proc/$$ (the shell the runtime exec'd), never at a child, whose
/// capabilities execve recomputes.
pub const PROBE: &str = r#"
s=/proc/$$/status
for f in Seccomp Seccomp_filters NoNewPrivs CapInh CapPrm CapEff CapBnd CapAmb Uid Gid Groups; do
  grep "^$f:" $s || echo "$f: (none)"
done
echo "attr current: $(cat /proc/$$/attr/current 2>&1)"
echo "attr exec: $(cat /proc/$$/attr/exec 2>&1)"
for n in cgroup ipc mnt net pid time user uts; do
  [ "$(readlink /proc/$$/ns/$n)" = "$(readlink /proc/1/ns/$n)" ] && same=yes || same=no
  echo "namespace $n as the init's: $same"
done
echo "uid_map: $(cat /proc/$$/uid_map | tr -s ' ' | tr '\n' ';')"
echo "hostname: $(hostname)"
echo "ip_forward: $(cat /proc/sys/net/ipv4/ip_forward 2>&1)"
echo "umask: $(umask)"
echo "oom_score_adj: $(cat /proc/$$/oom_score_adj)"
echo "cwd: $(pwd)"
echo "personality: $(uname -m)"
echo "nice policy rt_priority: $(cut -d' ' -f19,40,41 /proc/$$/stat)"
echo "ionice: $(ionice -p $$ 2>&1)"
echo "sethostname: $(hostname parity-probe 2>&1 && echo allowed)"
echo "unshare: $(unshare -U true 2>&1 && echo allowed)"
if [ -n "$PARITY_DEVICE" ]; then
  echo "device mknod: $(mknod /tmp/parity-dev $PARITY_DEVICE 2>&1 && echo made)"
  echo "device open: $(head -c 1 /tmp/parity-dev 2>&1 >/dev/null && echo opened)"
  rm -f /tmp/parity-dev
fi
echo "[limits]"; cat /proc/$$/limits
echo "[env]"; env | grep -v -e '^SHLVL=' -e '^PWD=' -e '^_=' | sort
echo "[cgroup]"; cat /proc/$$/cgroup
echo "[mounts]"
awk '{ o=""; for (i=7; $i!="-"; i++) { p=$i; sub(/:.*/,"",p); o=o p " " }; print $5, $6, $(i+1), o }' /proc/$$/mountinfo | sort
echo "[end]"
"#;

/// A probe's report: `key: value` lines, and sections (`[name]` to the next header).
pub type Report = BTreeMap<String, String>;

fn parse(text: &str, cgroup: &str) -> Report {
    let mut report = Report::new();
    let mut section: Option<String> = None;
    for line in text.lines() {
        // The container's own cgroup path differs per run: named once for all.
        let line = line.replace(cgroup, "/CONTAINER");
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = Some(name.to_string());
            continue;
        }
        match &section {
            Some(name) => report
                .entry(format!("[{name}]"))
                .or_default()
                .push_str(&format!("{line}\n")),
            None => {
                if let Some((k, v)) = line.split_once(':') {
                    report.insert(k.trim().to_string(), v.trim().to_string());
                }
            }
        }
    }
    report.remove("[end]");
    report
}

/// One row of the table: how the spec differs from the busybox bundle's.
pub struct Variant {
    pub name: &'static str,
    pub spec: fn(&mut Value),
    /// The reason the libcontainer shim refuses this spec, as README's table says it.
    pub refused: Option<&'static str>,
    /// The options of a bind mount of a host volume on /mnt/vol ([`Volume`]).
    pub volume: Option<&'static [&'static str]>,
}

/// What one runtime showed for one variant.
#[derive(Debug, Clone, PartialEq)]
pub enum Seen {
    Ran {
        init: Report,
        exec: Report,
    },
    /// Create or the exec failed: the error as the shim reported it.
    Refused(String),
}

/// Runs `variant` with `runtime`: its init probes itself, then an exec probes itself.
fn observe(runtime: &Runtime, variant: &Variant) -> Seen {
    let name = format!("{}-{}", variant.name, runtime.label.replace([' ', '.'], ""));
    let mut ctx = runtime.harness.ctx(&name).expect("a context");
    let seen = match run_variant(&mut ctx, runtime, variant) {
        Ok(seen) => seen,
        Err(Verdict::Fail(e)) | Err(Verdict::Skip(e)) => Seen::Refused(e),
    };
    if let Err(e) = ctx.finish() {
        panic!("{} with {}: {e}", variant.name, runtime.label);
    }
    seen
}

fn run_variant(ctx: &mut Ctx<'_>, runtime: &Runtime, variant: &Variant) -> Outcome<Seen> {
    let volume = match variant.volume {
        Some(_) => Some(Volume::new().map_err(Verdict::Fail)?),
        None => None,
    };
    let seen = run_container(ctx, runtime, variant, volume.as_ref());
    if let Some(v) = volume {
        v.remove();
    }
    seen
}

fn run_container(
    ctx: &mut Ctx<'_>,
    runtime: &Runtime,
    variant: &Variant,
    volume: Option<&Volume>,
) -> Outcome<Seen> {
    let init_script = format!("{PROBE}\nexec sleep 300");
    let mut setup = cmd("c", &["sh", "-c", &init_script]);
    if let Some(options) = &runtime.options {
        setup = setup.options(options.clone());
    }
    let bundle = ctx.bundle(&setup)?;
    let spec_path = bundle.join("config.json");
    let mut spec: Value = serde_json::from_slice(&std::fs::read(&spec_path).unwrap()).unwrap();
    (variant.spec)(&mut spec);
    if let (Some(volume), Some(options)) = (volume, variant.volume) {
        spec["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/mnt/vol", "type": "bind",
            "source": volume.path(), "options": options,
        }));
    }
    let listener = match spec["linux"]["seccomp"]["listenerPath"].as_str() {
        Some(LISTENER) => {
            let path = ctx.dir.path().join("seccomp-listener.sock");
            spec["linux"]["seccomp"]["listenerPath"] = json!(path);
            Some(SeccompListener::start(&path))
        }
        _ => None,
    };
    std::fs::write(&spec_path, serde_json::to_vec_pretty(&spec).unwrap()).unwrap();
    if !spec["linux"]["uidMappings"].is_null() {
        // The container's root is another user of the host: it must reach its rootfs.
        use std::os::unix::fs::PermissionsExt;
        for dir in ["", "bundles", "bundles/c", "rootfs"] {
            let path = ctx.dir.path().join(dir);
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755));
        }
    }
    let cgroup = ctx.cgroup_of("c");
    let (mut init, req) = ctx.prepare_in(&setup, bundle)?;
    init.pid = init.api.create(&req)?.pid;
    ctx.track(&[init.pid]);
    init.start()?;
    let stdout = init.stdout.clone().expect("stdout");
    if !stdout.wait_for("[end]", Duration::from_secs(20)) {
        let state = init.state().map(|s| (s.status, s.exit_status));
        return Err(Verdict::Fail(format!(
            "the init's probe did not finish: {:?} {:?}, state {state:?}; the shim's log: {}",
            stdout.text(),
            init.stderr.as_ref().map(|c| c.text()),
            ctx.log_tail()
        )));
    }
    let mut init_report = parse(&stdout.text(), &cgroup);
    if let Some(l) = &listener {
        init_report.insert("seccomp listener".into(), l.heard());
    }
    let mut extra = "";
    if let Some(volume) = volume {
        volume.mount_late().map_err(Verdict::Fail)?;
        extra = VOLUME_PROBE;
    }
    let exec = exec_probe(ctx, &init, &spec, extra)?;
    let mut exec_report = parse(&exec, &cgroup);
    if let Some(volume) = volume {
        exec_report.insert(
            "the host sees the exec's mount".into(),
            volume.host_sees_inner().to_string(),
        );
    }
    if let Some(l) = &listener {
        exec_report.insert("seccomp listener".into(), l.heard());
    }
    Ok(Seen::Ran {
        init: init_report,
        exec: exec_report,
    })
}

/// Execs the probe with the container's process, as containerd does; returns its output.
fn exec_probe(ctx: &mut Ctx<'_>, init: &Process, spec: &Value, extra: &str) -> Outcome<String> {
    let mut process = spec["process"].clone();
    process["args"] = json!(["sh", "-c", format!("{extra}\n{PROBE}")]);
    process["terminal"] = json!(false);
    let mut p = ctx.exec_process(init, &cmd("probe", &["sh"]), process)?;
    let pid = p.start()?;
    ctx.track(&[pid]);
    let code = p.wait()?;
    let out = p.output()?;
    if code != 0 {
        return Err(Verdict::Fail(format!(
            "the exec's probe exited {code}: {out} {}",
            p.errors().unwrap_or_default()
        )));
    }
    Ok(out)
}

/// The differences between two reports, one line each, leaving out `ignored` keys.
fn differences(a: &Seen, b: &Seen, ignored: impl Fn(&str, &str) -> bool) -> Vec<String> {
    match (a, b) {
        (Seen::Ran { init: ai, exec: ae }, Seen::Ran { init: bi, exec: be }) => {
            let mut out = Vec::new();
            for (process, x, y) in [("init", ai, bi), ("exec", ae, be)] {
                let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
                for key in keys {
                    if ignored(process, key) {
                        continue;
                    }
                    if x.get(key) != y.get(key) {
                        out.push(format!(
                            "{process} {key}: {:?} vs {:?}",
                            x.get(key),
                            y.get(key)
                        ));
                    }
                }
            }
            out
        }
        (Seen::Refused(_), Seen::Refused(_)) => Vec::new(),
        (a, b) => vec![format!("{} vs {}", outcome(a), outcome(b))],
    }
}

fn outcome(seen: &Seen) -> String {
    match seen {
        Seen::Ran { .. } => "ran".into(),
        Seen::Refused(e) => format!("refused ({e})"),
    }
}

/// Runs every variant with every runtime and fails with every difference found.
/// `runc_1_1_differs(variant, process, key)` says where runc 1.1.5 is known to do
/// otherwise than 1.5.1: not held against it, nor, without 1.5.1, against libcontainer.
pub fn compare(table: &[Variant], runc_1_1_differs: impl Fn(&str, &str, &str) -> bool) {
    let runtimes = runtimes();
    let mut failures = Vec::new();
    for variant in table {
        let seen: Vec<Seen> = runtimes.iter().map(|r| observe(r, variant)).collect();
        // SKIFF_PARITY_SHOW=NAME prints what each runtime showed for the variant NAME.
        if std::env::var("SKIFF_PARITY_SHOW").is_ok_and(|v| v == variant.name) {
            for (r, s) in runtimes.iter().zip(&seen) {
                eprintln!("== {} with {}: {s:#?}", variant.name, r.label);
            }
        }
        let youki = seen.last().expect("libcontainer ran");
        let reference = &seen[seen.len() - 2];
        let reference_label = runtimes[runtimes.len() - 2].label;
        if let Some(reason) = variant.refused {
            match youki {
                Seen::Refused(e) if e.contains(reason) => continue,
                other => failures.push(format!(
                    "{}: the libcontainer shim should refuse it ({reason}); it {}",
                    variant.name,
                    outcome(other)
                )),
            }
            continue;
        }
        // Without runc 1.5.1, runc 1.1.5 is the reference but where it is known to lag.
        let lagging = reference_label == RUNC_1_1;
        let ignored = |p: &str, k: &str| lagging && runc_1_1_differs(variant.name, p, k);
        for d in differences(reference, youki, ignored) {
            failures.push(format!(
                "{}: {reference_label} vs libcontainer: {d}",
                variant.name
            ));
        }
        if seen.len() == 3 && runtimes[0].label == RUNC_1_1 {
            let ignored = |p: &str, k: &str| runc_1_1_differs(variant.name, p, k);
            for d in differences(&seen[0], &seen[1], ignored) {
                failures.push(format!("{}: runc 1.1.5 vs runc 1.5.1: {d}", variant.name));
            }
        }
        if let (Seen::Refused(e), Seen::Refused(_)) = (reference, youki) {
            // Agreement, but nothing was seen to compare (AppArmor on a host without it):
            // recorded among the skips.
            crate::skip(
                &format!("libcontainer_parity {}", variant.name),
                &format!("every runtime refused it on this machine: {e}"),
            );
        }
    }
    assert!(
        failures.is_empty(),
        "the runtimes disagree:\n{}",
        failures.join("\n")
    );
}

/// What an exec in a container with a volume on /mnt/vol does before it probes: writes
/// to the volume and to the volume's submount, and mounts on the volume (the host then
/// looks whether that mount reached it).
const VOLUME_PROBE: &str = r#"
echo "write to the volume: $(touch /mnt/vol/f 2>&1 && echo ok)"
echo "write to its submount: $(touch /mnt/vol/sub/f 2>&1 && echo ok)"
echo "mount on the volume: $(mount -t tmpfs inner /mnt/vol/inner 2>&1 && echo ok)"
"#;

/// The listenerPath a variant's profile names for [`SeccompListener`]'s socket.
pub const LISTENER: &str = "LISTENER";

/// A seccomp agent's socket: takes what the runtime sends for each process whose
/// profile has SCMP_ACT_NOTIFY rules (the process's state, and the notify fd), keeps
/// the state's `fds` and `metadata`, and closes the fd at once, so that every notified
/// syscall fails with ENOSYS.
struct SeccompListener {
    heard: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl SeccompListener {
    fn start(path: &Path) -> SeccompListener {
        let listener = std::os::unix::net::UnixListener::bind(path).expect("listener socket");
        let heard = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = heard.clone();
        // Ends with the test process; a context's directory (and socket) goes first.
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                sink.lock().unwrap().push(receive_state(&stream));
            }
        });
        SeccompListener { heard }
    }

    /// What it was sent so far, one entry per process.
    fn heard(&self) -> String {
        // The runtime sends before it reports the process started; give it a moment.
        std::thread::sleep(Duration::from_millis(100));
        self.heard.lock().unwrap().join("; ")
    }
}

/// One message of a runtime to a seccomp agent: "fds=[...] metadata=... fd=yes|no".
fn receive_state(stream: &std::os::unix::net::UnixStream) -> String {
    use std::os::fd::AsRawFd;
    let mut data = vec![0u8; 1 << 16];
    let mut control = [0u64; 16];
    let mut iov = libc::iovec {
        iov_base: data.as_mut_ptr().cast(),
        iov_len: data.len(),
    };
    // SAFETY: a zeroed msghdr is valid; its buffers outlive the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control);
    // SAFETY: recvmsg(2) into the buffers above.
    let n = unsafe { libc::recvmsg(stream.as_raw_fd(), &mut msg, 0) };
    if n < 0 {
        return format!("recvmsg: {}", std::io::Error::last_os_error());
    }
    let mut fd_received = false;
    // SAFETY: walking the control messages recvmsg filled in, within msg_controllen.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let fd = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<i32>());
                libc::close(fd);
                fd_received = true;
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    let state: Value = serde_json::from_slice(&data[..n as usize]).unwrap_or_default();
    format!(
        "fds={} metadata={} fd={}",
        state["fds"],
        state["metadata"],
        if fd_received { "yes" } else { "no" }
    )
}
