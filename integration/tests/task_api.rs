//! The rest of the Task API under containerd, through ctr: exec, terminals, pause and
//! resume, kill --all, runtime options (another runtime binary) and log URIs. Also the
//! runtime options sent directly over ttrpc.

use skiff_integration::bundle::{busybox_bundle, TempDir};
use skiff_integration::containerd::{
    assert_binary_name_refused, shim_binary, shim_uses_libcontainer, stderr, stdout,
    wait_with_timeout, Containerd, Options, BUSYBOX_IMAGE,
};
use skiff_integration::proc;
use skiff_integration::pty::Pty;
use skiff_integration::shim_client::{recording_runtime, runc_options, ShimProcess};
use std::process::Stdio;
use std::time::{Duration, Instant};

fn shim() -> String {
    shim_binary().to_string_lossy().into_owned()
}

#[test]
fn exec_returns_output_and_exit_code_with_events() {
    let cd = Containerd::start();
    let events = cd.events();
    cd.run_detached("ex", &[], &["sleep", "300"]);
    let out = cd.ctr(&[
        "task",
        "exec",
        "--exec-id",
        "probe",
        "ex",
        "sh",
        "-c",
        "echo inside; echo oops >&2; exit 7",
    ]);
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    assert_eq!(stdout(&out), "inside\n");
    assert_eq!(stderr(&out), "oops\n");
    let topics = events.wait_for("ex", Duration::from_secs(10), |t| t.len() >= 5);
    assert_eq!(
        topics,
        [
            "/tasks/create",
            "/tasks/start",
            "/tasks/exec-added",
            "/tasks/exec-started",
            "/tasks/exit"
        ]
    );
    let exit = events
        .lines()
        .into_iter()
        .find(|l| l.contains("/tasks/exit") && l.contains("\"container_id\":\"ex\""))
        .unwrap();
    assert!(exit.contains("\"id\":\"probe\""), "{exit}");
    assert!(exit.contains("\"exit_status\":7"), "{exit}");
    cd.remove("ex");
}

#[test]
fn exec_of_a_missing_binary_fails_and_the_task_keeps_running() {
    let cd = Containerd::start();
    cd.run_detached("exnope", &[], &["sleep", "300"]);
    let out = cd.ctr(&[
        "task",
        "exec",
        "--exec-id",
        "bad",
        "exnope",
        "/no/such/thing",
    ]);
    assert!(!out.status.success());
    let expected = if shim_uses_libcontainer() {
        "libcontainer exec failed: failed to create container: exec process failed with error error in executing process : executable '/no/such/thing' not found"
    } else {
        "runc exec failed: unable to start container process: exec: \"/no/such/thing\": stat /no/such/thing: no such file or directory"
    };
    assert!(stderr(&out).contains(expected), "{}", stderr(&out));
    cd.wait_status("exnope", "RUNNING");
    // And exec still works afterwards.
    let out = cd.ctr(&[
        "task",
        "exec",
        "--exec-id",
        "good",
        "exnope",
        "echo",
        "still here",
    ]);
    assert_eq!(stdout(&out), "still here\n", "{}", stderr(&out));
    cd.remove("exnope");
}

#[test]
fn exec_into_a_stopped_task_is_refused() {
    let cd = Containerd::start();
    cd.run_detached("exstop", &[], &["sleep", "300"]);
    let out = cd.ctr(&["task", "kill", "--signal", "SIGKILL", "exstop"]);
    assert!(out.status.success());
    cd.wait_status("exstop", "STOPPED");
    let out = cd.ctr(&["task", "exec", "--exec-id", "late", "exstop", "true"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("container \"exstop\" is stopped: cannot exec in it"),
        "{}",
        stderr(&out)
    );
    cd.remove("exstop");
}

/// The container side of the terminal tests: waits for a line, shows its terminal and
/// size, waits for another, shows the size again. (Not an interactive shell: busybox's
/// line editor queries the cursor position and swallows typed input meanwhile.)
const TERMINAL_SCRIPT: &str = "read a; tty; stty size; read b; stty size";

/// Drives `ctr` at a terminal: `tty` shows a /dev/pts path; a window change reaches the
/// container's terminal.
fn drive_terminal(cd: &Containerd, args: &[&str]) {
    let mut pty = Pty::open(30, 100).unwrap();
    let mut cmd = cd.ctr_command();
    cmd.args(args).args(["sh", "-c", TERMINAL_SCRIPT]);
    let mut child = pty.spawn(cmd).unwrap();
    let t = Duration::from_secs(15);
    // ctr sends the window size once the process has started.
    std::thread::sleep(Duration::from_secs(2));
    pty.type_text("\n").unwrap();
    let shown = pty
        .read_until(t, |s| s.contains("/dev/pts/") && s.contains("30 100"))
        .unwrap_or_else(|s| panic!("no /dev/pts path and 30 100; the terminal showed {s:?}"));
    assert!(shown.contains("/dev/pts/"));
    pty.resize(41, 123).unwrap();
    // ctr forwards the SIGWINCH as ResizePty; give it a moment.
    std::thread::sleep(Duration::from_secs(1));
    pty.type_text("\n").unwrap();
    pty.read_until(t, |s| s.contains("41 123"))
        .unwrap_or_else(|s| panic!("resized window not seen; the terminal showed {s:?}"));
    let status = wait_with_timeout(&mut child, t).expect("ctr ends when the script ends");
    assert_eq!(status.code(), Some(0));
}

#[test]
fn run_with_a_terminal() {
    let cd = Containerd::start();
    let s = shim();
    drive_terminal(
        &cd,
        &["run", "--rm", "-t", "--runtime", &s, BUSYBOX_IMAGE, "tty1"],
    );
    assert!(cd.task_line("tty1").is_none());
}

#[test]
fn exec_with_a_terminal() {
    let cd = Containerd::start();
    cd.run_detached("tty2", &[], &["sleep", "300"]);
    let shim_pid = cd.shim_pids()[0];
    let fds_before = proc::fd_count(shim_pid);
    drive_terminal(&cd, &["task", "exec", "-t", "--exec-id", "sh1", "tty2"]);
    // The pty is closed once the exec is gone.
    let deadline = Instant::now() + Duration::from_secs(5);
    while proc::fd_count(shim_pid) > fds_before && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        proc::fd_count(shim_pid),
        fds_before,
        "the shim's fds after a tty exec"
    );
    cd.remove("tty2");
}

#[test]
fn pause_freezes_and_resume_thaws() {
    let cd = Containerd::start();
    let pid = cd.run_detached(
        "frozen",
        &[],
        &[
            "sh",
            "-c",
            "i=0; while true; do i=$((i+1)); echo $i > /tmp/count; usleep 20000; done",
        ],
    );
    let counter = cd.bundle("frozen").join("rootfs/tmp/count");
    let read = || -> u64 {
        std::fs::read_to_string(&counter)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    };
    let eventually = |pred: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !pred() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        pred()
    };
    assert!(eventually(&|| read() > 0), "the counter runs");
    let out = cd.ctr(&["task", "pause", "frozen"]);
    assert!(out.status.success(), "{}", stderr(&out));
    cd.wait_status("frozen", "PAUSED");
    let at_pause = read();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(read(), at_pause, "the counter moved while paused");
    let out = cd.ctr(&["task", "resume", "frozen"]);
    assert!(out.status.success(), "{}", stderr(&out));
    cd.wait_status("frozen", "RUNNING");
    // Kept long: on a loaded two-core machine a thawed shell can wait its turn.
    let deadline = Instant::now() + Duration::from_secs(30);
    while read() <= at_pause && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        read() > at_pause,
        "the counter did not move after resume (stuck at {at_pause}); {}",
        freezer_report(pid)
    );
    cd.remove("frozen");
}

/// What the kernel says about a container's freezer cgroup and its processes, for a
/// failure message: whether a resumed task is still frozen, and where each task sleeps.
fn freezer_report(init: u32) -> String {
    let cgroup = std::fs::read_to_string(format!("/proc/{init}/cgroup"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, ctrl, path) = (f.next()?, f.next()?, f.next()?);
            ctrl.split(',')
                .any(|c| c == "freezer")
                .then(|| path.to_string())
        });
    let state = cgroup
        .as_ref()
        .map(|c| {
            let f = format!("/sys/fs/cgroup/freezer{c}/freezer.state");
            std::fs::read_to_string(&f).unwrap_or_else(|e| format!("{f}: {e}"))
        })
        .unwrap_or_else(|| "no freezer cgroup".into());
    let mut tasks = vec![init];
    tasks.extend(proc::children(init));
    let tasks: Vec<String> = tasks
        .iter()
        .map(|p| {
            let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
            let st = stat
                .rsplit_once(')')
                .map(|(_, r)| r.trim_start().chars().next());
            let wchan = std::fs::read_to_string(format!("/proc/{p}/wchan")).unwrap_or_default();
            format!("{p}: {st:?} in {wchan}")
        })
        .collect();
    format!(
        "freezer {:?} is {}, tasks {}",
        cgroup,
        state.trim(),
        tasks.join(", ")
    )
}

#[test]
fn kill_all_ends_init_and_execs() {
    let cd = Containerd::start();
    cd.run_detached("many", &[], &["sleep", "300"]);
    let out = cd.ctr(&[
        "task",
        "exec",
        "--detach",
        "--exec-id",
        "side",
        "many",
        "sleep",
        "300",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    // ctr task ps lists both, the exec with its id.
    let deadline = Instant::now() + Duration::from_secs(10);
    let pids: Vec<u32> = loop {
        let ps = stdout(&cd.ctr(&["task", "ps", "many"]));
        let pids: Vec<u32> = ps
            .lines()
            .skip(1)
            .filter_map(|l| l.split_whitespace().next()?.parse().ok())
            .collect();
        if pids.len() == 2 {
            assert!(ps.contains("side"), "exec id in ps: {ps}");
            break pids;
        }
        assert!(Instant::now() < deadline, "ps: {ps}");
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = cd.ctr(&["task", "kill", "--all", "--signal", "SIGKILL", "many"]);
    assert!(out.status.success(), "{}", stderr(&out));
    cd.wait_status("many", "STOPPED");
    for pid in pids {
        let deadline = Instant::now() + Duration::from_secs(5);
        while proc::alive(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(!proc::alive(pid), "pid {pid} survived kill --all");
    }
    cd.remove("many");
}

#[test]
fn log_uri_file_receives_the_output() {
    let cd = Containerd::start();
    let log = cd.dir().join("logs/out.log");
    let uri = format!("file://{}", log.display());
    let s = shim();
    let out = cd.ctr(&[
        "run",
        "--rm",
        "--log-uri",
        &uri,
        "--runtime",
        &s,
        BUSYBOX_IMAGE,
        "logged",
        "sh",
        "-c",
        "echo line one; echo line two >&2",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(&log).expect("log file");
    assert!(text.contains("line one\n"), "{text:?}");
    assert!(text.contains("line two\n"), "{text:?}");
}

#[test]
fn log_uri_binary_gets_the_streams() {
    let cd = Containerd::start();
    let dir = cd.dir().join("logger");
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("logger.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nexec 5>&-\necho \"$CONTAINER_NAMESPACE/$CONTAINER_ID $*\" > {d}/who\ncat <&3 > {d}/out &\ncat <&4 > {d}/err &\nwait\n",
            d = dir.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let uri = format!("binary://{}?tag=web", script.display());
    let s = shim();
    let out = cd.ctr(&[
        "run",
        "--rm",
        "--log-uri",
        &uri,
        "--runtime",
        &s,
        BUSYBOX_IMAGE,
        "binlog",
        "sh",
        "-c",
        "echo to stdout; echo to stderr >&2",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let read = |f: &str| {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let t = std::fs::read_to_string(dir.join(f)).unwrap_or_default();
            if !t.is_empty() || Instant::now() > deadline {
                return t;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    assert_eq!(read("out"), "to stdout\n");
    assert_eq!(read("err"), "to stderr\n");
    assert_eq!(read("who"), format!("{}/binlog tag web\n", cd.namespace));
    // The logger ends once the container's streams are closed (a logger left waiting
    // would be a process leaked per container).
    let loggers = || {
        proc::pids_of(&script.to_string_lossy())
            .into_iter()
            .chain(proc::pids_of("/bin/sh").into_iter().filter(|p| {
                std::fs::read(format!("/proc/{p}/cmdline"))
                    .map(|c| String::from_utf8_lossy(&c).contains(&*script.to_string_lossy()))
                    .unwrap_or(false)
            }))
            .filter(|p| proc::alive(*p))
            .collect::<Vec<u32>>()
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while !loggers().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(loggers(), Vec::<u32>::new(), "log binary still running");
}

#[test]
fn runc_binary_option_through_ctr_as_a_drop_in() {
    // Our shim installed under the Go shim's name, first on containerd's PATH: ctr's
    // --runc-binary only works with the runtime name io.containerd.runc.v2.
    let bin = TempDir::new("skiff-dropin").unwrap();
    let ours = bin.path().join("containerd-shim-runc-v2");
    std::fs::copy(shim_binary(), &ours).unwrap();
    let record = bin.path().join("invocations.log");
    let wrapper = recording_runtime(bin.path(), &record).unwrap();
    let cd = Containerd::start_with(Options {
        path_prefix: Some(bin.path().to_path_buf()),
        ..Default::default()
    });
    let w = wrapper.to_string_lossy().into_owned();
    let out = cd.ctr(&[
        "run",
        "-d",
        "--runtime",
        "io.containerd.runc.v2",
        "--runc-binary",
        &w,
        BUSYBOX_IMAGE,
        "wrapped",
        "sleep",
        "300",
    ]);
    if shim_uses_libcontainer() {
        assert_binary_name_refused(&cd, &out, "wrapped");
        assert!(!record.exists(), "the named binary never ran");
        return;
    }
    assert!(out.status.success(), "{}", stderr(&out));
    cd.wait_status("wrapped", "RUNNING");
    // The shim serving it is our binary.
    let shim_pid: u32 = std::fs::read_to_string(cd.bundle("wrapped").join("shim.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(
        std::fs::read_link(format!("/proc/{shim_pid}/exe")).unwrap(),
        ours
    );
    let out = cd.ctr(&[
        "task",
        "exec",
        "--exec-id",
        "e",
        "wrapped",
        "echo",
        "via wrapper",
    ]);
    assert_eq!(stdout(&out), "via wrapper\n", "{}", stderr(&out));
    cd.remove("wrapped");
    let calls = std::fs::read_to_string(&record).unwrap();
    for verb in ["create", "start", "exec", "kill", "delete"] {
        assert!(
            calls
                .lines()
                .any(|l| l.split_whitespace().any(|w| w == verb) && l.contains("wrapped")),
            "no {verb} through the wrapper:\n{calls}"
        );
    }
}

#[test]
fn runc_binary_option_over_ttrpc() {
    use skiff_protos::shim::*;
    let tmp = TempDir::new("skiff-opts").unwrap();
    let record = tmp.path().join("invocations.log");
    let wrapper = recording_runtime(tmp.path(), &record).unwrap();
    let id = format!("opt{}", std::process::id());
    let ns = format!("skiff-opts-{}", std::process::id());
    let _cgroups = skiff_integration::containerd::CgroupCleanup(ns.clone());
    let bundle = busybox_bundle(
        &tmp.path().join("bundle"),
        &["sh", "-c", "echo ran under the wrapper"],
        &format!("/{ns}/{id}"),
    )
    .unwrap();
    let fake_containerd = tmp.path().join("containerd.sock");
    let shim = ShimProcess::start(
        &shim_binary(),
        &bundle,
        &ns,
        &id,
        &fake_containerd.to_string_lossy(),
        &tmp.path().join("no-events.sock").to_string_lossy(),
    )
    .unwrap();
    let out_file = tmp.path().join("stdout.log");
    let create = CreateTaskRequest {
        id: id.clone(),
        bundle: bundle.to_string_lossy().into_owned(),
        stdout: format!("file://{}", out_file.display()),
        options: protobuf::MessageField::some(runc_options(&skiff_protos::options::Options {
            binary_name: wrapper.to_string_lossy().into_owned(),
            root: tmp.path().join("runc-root").to_string_lossy().into_owned(),
            ..Default::default()
        })),
        ..Default::default()
    };
    let c = &shim.client;
    if shim_uses_libcontainer() {
        let err = c.create(ShimProcess::ctx(), &create).unwrap_err();
        let text = format!("{err:?}");
        assert!(
            text.contains("UNIMPLEMENTED") && text.contains("does not support create: BinaryName"),
            "{text}"
        );
        assert!(!record.exists(), "the named binary never ran");
        return;
    }
    let created = c.create(ShimProcess::ctx(), &create).expect("Create");
    assert!(created.pid > 0);
    c.start(
        ShimProcess::ctx(),
        &StartRequest {
            id: id.clone(),
            ..Default::default()
        },
    )
    .expect("Start");
    let waited = c
        .wait(
            ShimProcess::ctx(),
            &WaitRequest {
                id: id.clone(),
                ..Default::default()
            },
        )
        .expect("Wait");
    assert_eq!(waited.exit_status, 0);
    c.delete(
        ShimProcess::ctx(),
        &DeleteRequest {
            id: id.clone(),
            ..Default::default()
        },
    )
    .expect("Delete");
    let _ = c.shutdown(
        ShimProcess::ctx(),
        &ShutdownRequest {
            id: id.clone(),
            ..Default::default()
        },
    );
    assert_eq!(
        std::fs::read_to_string(&out_file).unwrap(),
        "ran under the wrapper\n"
    );
    let calls = std::fs::read_to_string(&record).unwrap();
    assert!(
        calls.contains(&format!(
            "--root {}",
            tmp.path().join("runc-root/").join(&ns).display()
        )) || calls.contains(&format!(
            "--root {}",
            tmp.path().join("runc-root").join(&ns).display()
        )),
        "the Root option reached the runtime:\n{calls}"
    );
    assert!(
        calls
            .lines()
            .any(|l| l.contains(" create ") && l.ends_with(&id)),
        "{calls}"
    );
    // The shim exits after Shutdown.
    let deadline = Instant::now() + Duration::from_secs(5);
    while proc::alive(shim.pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!proc::alive(shim.pid), "shim still running after Shutdown");
}

#[test]
fn five_hundred_execs_leave_no_zombie_fd_or_thread() {
    let cd = Containerd::start();
    cd.run_detached("busy", &[], &["sleep", "3000"]);
    let shim_pid = cd.shim_pids()[0];
    let exec = |n: usize| {
        let id = format!("e{n}");
        let out = cd.ctr(&["task", "exec", "--exec-id", &id, "busy", "true"]);
        assert!(out.status.success(), "exec {n}: {}", stderr(&out));
    };
    // Warm up: connections and lazily started threads exist before the baseline.
    exec(0);
    std::thread::sleep(Duration::from_millis(300));
    let (fds, threads) = (proc::fd_count(shim_pid), proc::thread_count(shim_pid));
    for n in 1..=500 {
        exec(n);
    }
    // The shim has no pool: its thread count at rest is exact.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = (proc::fd_count(shim_pid), proc::thread_count(shim_pid));
        let zombies = proc::zombie_children(shim_pid);
        if now.0 == fds && now.1 == threads && zombies.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "after 500 execs: fds {} (was {fds}), threads {} (was {threads}), zombies {zombies:?}",
            now.0,
            now.1
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // One event loop and the event sender (issue 10's target: at most 2). The Go shim
    // has about a dozen; this holds for ours only.
    if std::env::var_os("SKIFF_SHIM").is_none() {
        assert!(threads <= 2, "an idle shim runs {threads} threads");
    }
    skiff_integration::report(&format!(
        "500 execs into one container: shim fds {fds} -> {}, threads {threads} -> {}, no zombies",
        proc::fd_count(shim_pid),
        proc::thread_count(shim_pid)
    ));
    cd.remove("busy");
}

#[test]
fn shim_cgroup_option_moves_the_shim() {
    use protobuf::Message;
    use std::io::Write;
    let tmp = TempDir::new("skiff-shimcg").unwrap();
    let id = format!("cg{}", std::process::id());
    let bundle = busybox_bundle(
        &tmp.path().join("bundle"),
        &["true"],
        &format!("/skiff-cg-{id}/c"),
    )
    .unwrap();
    let _cgroups = skiff_integration::containerd::CgroupCleanup(format!("skiff-cg-{id}"));
    let cgroup = format!("skiff-shimcg-{}", std::process::id());
    let memory = std::path::Path::new("/sys/fs/cgroup/memory").join(&cgroup);
    let unified = std::path::Path::new("/sys/fs/cgroup").join(&cgroup);
    let dir = if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        unified
    } else {
        memory
    };
    std::fs::create_dir_all(&dir).unwrap();
    let options = runc_options(&skiff_protos::options::Options {
        shim_cgroup: format!("/{cgroup}"),
        ..Default::default()
    });
    let mut start = std::process::Command::new(shim_binary())
        .args(["-namespace", "skiff-cg", "-address"])
        .arg(tmp.path().join("containerd.sock"))
        .args(["-id", &id, "start"])
        .current_dir(&bundle)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    start
        .stdin
        .take()
        .unwrap()
        .write_all(&options.write_to_bytes().unwrap())
        .unwrap();
    let out = start.wait_with_output().unwrap();
    assert!(out.status.success());
    let address = stdout(&out);
    let pid: u32 = std::fs::read_to_string(bundle.join("shim.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap();
    // Back to the root before it exits: an exited shim can linger as a zombie (its
    // parent is init), and a cgroup holding one cannot be removed.
    let _ = std::fs::write(dir.parent().unwrap().join("cgroup.procs"), pid.to_string());
    // Shut the shim down (no container: it exits), then remove the cgroup.
    let client =
        skiff_protos::shim_ttrpc::TaskClient::new(ttrpc::Client::connect(&address).unwrap());
    let _ = client.shutdown(ShimProcess::ctx(), &Default::default());
    let deadline = Instant::now() + Duration::from_secs(5);
    while proc::alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = std::fs::remove_dir(&dir);
    assert!(
        procs.lines().any(|l| l.trim() == pid.to_string()),
        "shim {pid} not in {}: {procs:?}",
        dir.display()
    );
    assert!(
        !proc::alive(pid),
        "the shim exits on Shutdown with no container"
    );
}
