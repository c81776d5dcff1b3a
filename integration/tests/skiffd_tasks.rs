//! skiffd and skiff, part 2: containers run through shim-v2 binaries (ours, and
//! containerd's Go shim), their events, and skiffd's restart.

use skiff_integration::bundle::TempDir;
use skiff_integration::containerd::{busybox_archive, stderr, stdout, wait_with_timeout};
use skiff_integration::proc;
use skiff_integration::skiffd::{built_binary, ok, Skiffd};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

const GO_SHIM: &str = "/usr/bin/containerd-shim-runc-v2";

fn with_busybox() -> Skiffd {
    let d = Skiffd::start();
    let o = d.skiff(&["image", "import", &busybox_archive().to_string_lossy()]);
    assert!(o.status.success(), "{}", stderr(&o));
    d
}

/// The `skiff ps` line of `id`, split in words.
fn ps_line(d: &Skiffd, id: &str) -> Option<Vec<String>> {
    ok(&d.skiff(&["ps"]))
        .lines()
        .find(|l| l.split_whitespace().next() == Some(id))
        .map(|l| l.split_whitespace().map(str::to_string).collect())
}

fn wait_status(d: &Skiffd, id: &str, status: &str) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let line = ps_line(d, id);
        if line.as_ref().map(|l| l[2] == status).unwrap_or(false) {
            return line.unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "{id} never became {status}: {line:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `skiff run --rm` with a runtime (None: the default, io.containerd.skiff.v2 by name).
fn run_rm(d: &Skiffd, runtime: Option<&str>, name: &str, cmd: &[&str]) -> Output {
    let mut c = d.skiff_command();
    c.args(["run", "--rm", "--name", name]);
    if let Some(r) = runtime {
        c.args(["--runtime", r]);
    }
    c.arg("busybox")
        .args(cmd)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn run_rm_prints_and_propagates_exit_codes_with_our_shims_and_the_go_shim() {
    let d = with_busybox();
    let ours = built_binary("containerd-shim-skiff-v2")
        .display()
        .to_string();
    let youki = built_binary("containerd-shim-skiff-youki-v2")
        .display()
        .to_string();
    let mut runtimes = vec![
        ("by name", None),
        ("ours by path", Some(ours.as_str())),
        ("our libcontainer shim by path", Some(youki.as_str())),
    ];
    if std::path::Path::new(GO_SHIM).exists() {
        runtimes.push(("Go shim", Some(GO_SHIM)));
    } else {
        skiff_integration::skip(
            "skiffd with the Go shim",
            "no /usr/bin/containerd-shim-runc-v2",
        );
    }
    for (n, (what, runtime)) in runtimes.into_iter().enumerate() {
        let o = run_rm(&d, runtime, &format!("hi{n}"), &["echo", "hi"]);
        assert_eq!(
            (o.status.code(), stdout(&o).as_str()),
            (Some(0), "hi\n"),
            "{what}: {}",
            stderr(&o)
        );
        let o = run_rm(
            &d,
            runtime,
            &format!("three{n}"),
            &["sh", "-c", "echo oops >&2; exit 3"],
        );
        assert_eq!(o.status.code(), Some(3), "{what}: {}", stderr(&o));
        assert_eq!(stderr(&o), "oops\n", "{what}");
        // 137: killed from outside while `skiff run` waits.
        let name = format!("killed{n}");
        let mut c = d.skiff_command();
        c.args(["run", "--rm", "--name", &name]);
        if let Some(r) = runtime {
            c.args(["--runtime", r]);
        }
        let mut child = c
            .args(["busybox", "sleep", "300"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        wait_status(&d, &name, "running");
        ok(&d.skiff(&["kill", "-s", "KILL", &name]));
        let status = wait_with_timeout(&mut child, Duration::from_secs(15)).unwrap();
        assert_eq!(status.code(), Some(137), "{what}");
        assert!(
            ok(&d.skiff(&["ps"])).lines().count() == 1,
            "--rm left containers: {}",
            ok(&d.skiff(&["ps"]))
        );
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while !d.shim_pids().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        d.shim_pids().is_empty(),
        "shims still run after --rm: {:?}",
        d.shim_pids()
    );
}

#[test]
fn a_detached_container_through_its_life_with_events() {
    let d = with_busybox();
    let events = d
        .skiff_command()
        .arg("events")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let id = "webd";
    let out = ok(&d.skiff(&[
        "run",
        "-d",
        "--name",
        id,
        "--env",
        "GREETING=hello",
        "--memory",
        "64m",
        "busybox",
        "sh",
        "-c",
        "echo $GREETING from the log; sleep 300",
    ]));
    assert_eq!(out.trim(), id);
    let line = wait_status(&d, id, "running");
    let pid: u32 = line[3].parse().unwrap();
    assert!(proc::alive(pid));

    let o = d.skiff(&["exec", id, "sh", "-c", "echo inside; exit 4"]);
    assert_eq!(
        (o.status.code(), stdout(&o).as_str()),
        (Some(4), "inside\n"),
        "{}",
        stderr(&o)
    );
    let stats = ok(&d.skiff(&["stats", id]));
    let fields: Vec<&str> = stats.lines().nth(1).unwrap().split_whitespace().collect();
    let (usage, limit): (u64, u64) = (fields[1].parse().unwrap(), fields[2].parse().unwrap());
    assert!(usage > 0, "{stats}");
    assert_eq!(limit, 64 << 20, "{stats}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !ok(&d.skiff(&["logs", id])).contains("hello from the log") {
        assert!(
            Instant::now() < deadline,
            "logs: {}",
            ok(&d.skiff(&["logs", id]))
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    ok(&d.skiff(&["pause", id]));
    wait_status(&d, id, "paused");
    ok(&d.skiff(&["resume", id]));
    wait_status(&d, id, "running");
    let refused = d.skiff(&["rm", id]);
    assert!(
        !refused.status.success() && stderr(&refused).contains("is running"),
        "{}",
        stderr(&refused)
    );
    ok(&d.skiff(&["kill", "-s", "KILL", id]));
    let line = wait_status(&d, id, "stopped");
    assert_eq!(line[4], "137");
    ok(&d.skiff(&["rm", id]));
    assert!(ps_line(&d, id).is_none());
    assert!(!proc::alive(pid));

    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: kill(2) of the `skiff events` this test started.
    unsafe { libc::kill(events.id() as i32, libc::SIGKILL) };
    let out = events.wait_with_output().unwrap();
    let topics: Vec<String> = stdout(&out)
        .lines()
        .filter(|l| l.split_whitespace().nth(3) == Some(id))
        .map(|l| l.split_whitespace().nth(2).unwrap().to_string())
        .collect();
    let wanted = [
        "/tasks/create",
        "/tasks/start",
        "/tasks/exec-added",
        "/tasks/exec-started",
        "/tasks/exit",
        "/tasks/paused",
        "/tasks/resumed",
        "/tasks/exit",
        "/tasks/delete",
    ];
    assert_eq!(topics, wanted, "{}", stdout(&out));
}

#[test]
fn skiffd_killed_and_restarted_finds_its_containers() {
    let mut d = with_busybox();
    let ticks = "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done";
    ok(&d.skiff(&[
        "run", "-d", "--name", "survivor", "busybox", "sh", "-c", ticks,
    ]));
    let lines = |d: &Skiffd| ok(&d.skiff(&["logs", "survivor"])).lines().count();
    let deadline = Instant::now() + Duration::from_secs(10);
    while lines(&d) < 2 {
        assert!(Instant::now() < deadline, "no output logged");
        std::thread::sleep(Duration::from_millis(100));
    }
    ok(&d.skiff(&[
        "run",
        "-d",
        "--name",
        "quitter",
        "busybox",
        "sh",
        "-c",
        "sleep 1; exit 7",
    ]));
    ok(&d.skiff(&["run", "-d", "--name", "orphan", "busybox", "sleep", "300"]));
    let orphan_shims = d.shim_pids_of(Some("orphan"));
    assert!(!orphan_shims.is_empty());
    d.kill();
    // While skiffd is down: one container exits, and one shim is killed outright.
    for pid in &orphan_shims {
        // SAFETY: kill(2) of a shim this test's skiffd started.
        unsafe { libc::kill(*pid as i32, libc::SIGKILL) };
    }
    std::thread::sleep(Duration::from_secs(2));
    d.restart();
    assert_eq!(ps_line(&d, "survivor").unwrap()[2], "running");
    // Its output is logged again after the restart (the reader started anew).
    let before = lines(&d);
    let deadline = Instant::now() + Duration::from_secs(10);
    while lines(&d) < before + 3 {
        assert!(
            Instant::now() < deadline,
            "no output logged after the restart: {}",
            ok(&d.skiff(&["logs", "survivor"]))
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let quitter = ps_line(&d, "quitter").unwrap();
    assert_eq!((quitter[2].as_str(), quitter[4].as_str()), ("stopped", "7"));
    let orphan = ps_line(&d, "orphan").unwrap();
    assert_eq!(
        (orphan[2].as_str(), orphan[4].as_str()),
        ("stopped", "137"),
        "{}",
        d.log()
    );
    ok(&d.skiff(&["kill", "-s", "KILL", "survivor"]));
    wait_status(&d, "survivor", "stopped");
    ok(&d.skiff(&["rm", "survivor", "quitter", "orphan"]));
    assert_eq!(ok(&d.skiff(&["ps"])).lines().count(), 1);
    assert!(d.log().contains("is gone: cleaned up"), "{}", d.log());
}

#[test]
fn terminal_mounts_and_clear_errors() {
    let d = with_busybox();
    let tmp = TempDir::new("skiffd-mnt").unwrap();
    std::fs::write(tmp.path().join("note"), "from the host\n").unwrap();
    let mount = format!("{}:/data:ro", tmp.path().display());
    let o = run_rm(&d, None, "mnt", &[]);
    // No command: the image's Cmd (sh) reads stdin, which is not attached: it exits.
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = d
        .skiff_command()
        .args([
            "run",
            "--rm",
            "--name",
            "mnt2",
            "--mount",
            &mount,
            "busybox",
            "sh",
            "-c",
            "cat /data/note; touch /data/x",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(stdout(&o), "from the host\n");
    assert_ne!(o.status.code(), Some(0), "a read-only mount was writable");
    let o = d
        .skiff_command()
        .args(["run", "--rm", "-t", "--name", "tty", "busybox", "tty"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        stdout(&o).starts_with("/dev/pts/"),
        "{}{}",
        stdout(&o),
        stderr(&o)
    );
    for (args, expected) in [
        (
            vec!["run", "--rm", "--pull", "never", "no-such-image"],
            "does not exist",
        ),
        (
            vec![
                "run",
                "--rm",
                "--runtime",
                "io.containerd.nothing.v9",
                "busybox",
                "true",
            ],
            "containerd-shim-nothing-v9",
        ),
        (
            vec!["exec", "ghost", "true"],
            "container \"ghost\" does not exist",
        ),
        (vec!["kill", "ghost"], "container \"ghost\" has no task"),
    ] {
        let o = d.skiff(&args);
        assert!(!o.status.success(), "{args:?} succeeded");
        let err = stderr(&o);
        assert!(
            err.starts_with("skiff: ") && err.contains(expected) && err.lines().count() == 1,
            "{args:?}: {err}"
        );
    }
    assert_eq!(
        ok(&d.skiff(&["ps"])).lines().count(),
        1,
        "failed runs left containers"
    );
}

#[test]
fn run_t_forwards_window_size_and_ctrl_c() {
    use skiff_integration::pty::Pty;
    let d = with_busybox();
    let t = Duration::from_secs(15);
    let mut pty = Pty::open(30, 100).unwrap();
    let mut cmd = d.skiff_command();
    cmd.args([
        "run",
        "--rm",
        "-t",
        "--name",
        "tty1",
        "busybox",
        "sh",
        "-c",
        "read a; tty; stty size; read b; stty size",
    ]);
    let mut child = pty.spawn(cmd).unwrap();
    wait_status(&d, "tty1", "running");
    std::thread::sleep(Duration::from_millis(500));
    pty.type_text("\r").unwrap();
    pty.read_until(t, |s| s.contains("/dev/pts/") && s.contains("30 100"))
        .unwrap_or_else(|s| panic!("no /dev/pts path and 30 100; the terminal showed {s:?}"));
    pty.resize(41, 123).unwrap();
    std::thread::sleep(Duration::from_millis(800));
    pty.type_text("\r").unwrap();
    pty.read_until(t, |s| s.contains("41 123"))
        .unwrap_or_else(|s| {
            panic!("the new window size did not arrive; the terminal showed {s:?}")
        });
    let status = wait_with_timeout(&mut child, t).unwrap();
    assert_eq!(status.code(), Some(0));

    // Ctrl-C goes to the container's terminal, whose shell traps it.
    let mut pty = Pty::open(30, 100).unwrap();
    let mut cmd = d.skiff_command();
    cmd.args([
        "run",
        "--rm",
        "-t",
        "--name",
        "tty2",
        "busybox",
        "sh",
        "-c",
        "trap 'echo caught; exit 130' INT; echo ready; sleep 300 & wait",
    ]);
    let mut child = pty.spawn(cmd).unwrap();
    pty.read_until(t, |s| s.contains("ready"))
        .unwrap_or_else(|s| panic!("never ready: {s:?}"));
    pty.type_text("\u{3}").unwrap();
    pty.read_until(t, |s| s.contains("caught"))
        .unwrap_or_else(|s| panic!("Ctrl-C not delivered: {s:?}"));
    let status = wait_with_timeout(&mut child, t).unwrap();
    assert_eq!(status.code(), Some(130));
}

/// Bytes of the regular files under `dir` (FIFOs and sockets take none), a bundle's
/// mounted rootfs left out.
fn file_bytes(dir: &std::path::Path) -> u64 {
    let mut n = 0;
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let Ok(m) = e.path().symlink_metadata() else {
            continue;
        };
        if m.is_dir() && e.file_name() != "rootfs" {
            n += file_bytes(&e.path());
        } else if m.is_file() {
            n += m.len();
        }
    }
    n
}

/// Issue 31: a detached `yes` wrote its output into the state directory (tmpfs, /run by
/// default) without a cap. Now its log is under --root, rotated at --max-log-size (here
/// 1m; one rotated file), the state directory holds none of it, `skiff logs` shows the
/// latest output, and the log goes with the container.
#[test]
fn a_detached_containers_log_is_capped_and_not_in_the_state_directory() {
    let d = Skiffd::start_with(&["--max-log-size", "1m"]);
    ok(&d.skiff(&["image", "import", &busybox_archive().to_string_lossy()]));
    let id = "yes";
    ok(&d.skiff(&["run", "-d", "--name", id, "busybox", "yes"]));
    let logs = d.root().join("logs/default").join(id);
    let state = d.dir.path().join("state");
    // Until the log rotated and more than the cap went through, or 20 s.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut peak_state = 0;
    while Instant::now() < deadline {
        peak_state = peak_state.max(file_bytes(&state));
        let rotated = std::fs::metadata(logs.join("output.log.1")).is_ok();
        if rotated && d.skiff(&["logs", id]).stdout.len() > 1 << 20 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(1));
    peak_state = peak_state.max(file_bytes(&state));
    ok(&d.skiff(&["kill", "-s", "KILL", id]));
    wait_status(&d, id, "stopped");
    let on_disk = file_bytes(&logs);
    let shown = d.skiff(&["logs", id]).stdout;
    skiff_integration::report(&format!(
        "a detached `yes` with --max-log-size 1m: log {on_disk} bytes under --root, state directory at most {peak_state} bytes"
    ));
    assert!(
        peak_state < 256 << 10,
        "the state directory took {peak_state} bytes"
    );
    assert!(
        (1 << 20..=2 << 20).contains(&on_disk),
        "the log takes {on_disk} bytes"
    );
    assert!(
        std::fs::metadata(logs.join("output.log.1")).is_ok(),
        "never rotated"
    );
    assert_eq!(shown.len() as u64, on_disk);
    assert!(shown.iter().all(|b| *b == b'y' || *b == b'\n'));
    ok(&d.skiff(&["rm", id]));
    assert!(!logs.exists(), "the log outlived its container");
}
