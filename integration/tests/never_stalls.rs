//! One shim serves a whole pod, so nothing one container or client does may stall the
//! others, or spin the shim: a runtime command that hangs or is slow, a container that
//! writes as fast as it can, a client that streams bytes, never reads, holds a half frame
//! or hangs up in the middle of one, parks Waits by the thousand, a recycled pid, an
//! exit or a Kill or a Delete while a Start runs, an events endpoint that is away. Each
//! test drives the shim under test directly, as containerd launches it (shimtest's
//! harness), and checks what the other containers and clients observe.

use skiff_integration::containerd::{default_state_root, shim_binary};
use skiff_integration::shimtest::ctx::{cmd, sh, Ctx, Outcome, Process, Verdict};
use skiff_integration::shimtest::harness::Harness;
use skiff_integration::{ensure, proc};
use skiff_protos::options::Options;
use skiff_protos::shim::*;
use skiff_protos::task::Status::RUNNING;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What another container's requests may take while something else misbehaves.
const PROMPT: Duration = Duration::from_secs(1);
const SIGWINCH: u32 = 28;
const SIGKILL: u32 = 9;

/// Tests that put a wrapper in the runtime binary's place cannot run with the libcontainer
/// shim, which runs no runtime binary: they say so and pass over.
fn runs_a_runtime_binary(test: &str) -> bool {
    if skiff_integration::containerd::shim_uses_libcontainer() {
        skiff_integration::skip(
            test,
            "the libcontainer shim runs no runtime binary (BinaryName)",
        );
        return false;
    }
    true
}

fn harness() -> Harness {
    Harness::new(&shim_binary(), default_state_root()).expect("harness")
}

/// Runs `test` in a fresh context (see [`Harness::run`]).
fn run(h: &Harness, name: &str, test: impl FnOnce(&mut Ctx) -> Outcome) {
    h.run(name, test)
}

/// `f`, which must answer within `limit`.
fn promptly<T>(what: &str, limit: Duration, f: impl FnOnce() -> T) -> Outcome<T> {
    let started = Instant::now();
    let out = f();
    let took = started.elapsed();
    ensure!(took < limit, "{what} took {took:?}");
    Ok(out)
}

/// A runtime binary that hangs on one command (writing its pid to `pid_file` first) and
/// hands every other to runc.
fn hanging_runtime(dir: &Path, command: &str, pid_file: &Path) -> PathBuf {
    let script = format!(
        "#!/bin/sh\nfor arg in \"$@\"; do\n  if [ \"$arg\" = {command} ]; then echo $$ > '{}'; exec sleep 600; fi\ndone\nexec runc \"$@\"\n",
        pid_file.display()
    );
    runtime_script(dir.join(format!("runc-hanging-on-{command}")), &script)
}

/// An executable shell script at `path`, in the runtime binary's place.
fn runtime_script(path: PathBuf, script: &str) -> PathBuf {
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// Waits for the pid a hanging runtime wrote.
fn hung_pid(pid_file: &Path) -> Outcome<u32> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(pid) = std::fs::read_to_string(pid_file)
            .ok()
            .and_then(|t| t.trim().parse().ok())
        {
            return Ok(pid);
        }
        ensure!(Instant::now() < deadline, "the runtime never hung");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn kill_pid(pid: u32) {
    // SAFETY: kill(2) of the hung runtime command this test made hang.
    unsafe {
        libc::kill(pid as i32, libc::SIGKILL);
    }
}

/// A container of pod `pod` that prints a numbered line a second.
fn ticker(ctx: &mut Ctx, id: &str, pod: &str, options: Option<Options>) -> Outcome<Process> {
    let mut setup = sh(
        id,
        "i=0; while true; do echo tick $i; i=$((i+1)); sleep 1; done",
    )
    .in_pod(pod);
    if let Some(o) = options {
        setup = setup.options(o);
    }
    ctx.run(&setup)
}

/// The ticker's output goes on: a line it had not printed when asked.
fn ticks_on(c: &Process) -> Outcome {
    let seen = c.stdout.as_ref().unwrap().text().matches("tick").count();
    let next = format!("tick {}", seen + 1);
    ensure!(
        c.stdout
            .as_ref()
            .unwrap()
            .wait_for(&next, Duration::from_secs(5)),
        "the ticker's output stopped at {seen} lines"
    );
    Ok(())
}

/// Stats of a container: what containerd 2.3's CRI asks of every container every second.
fn stats(c: &Process) -> Outcome {
    let r = c.api.stats(&StatsRequest {
        id: c.container_id.clone(),
        ..Default::default()
    })?;
    ensure!(
        r.stats.is_some(),
        "Stats of {} carries no metrics",
        c.container_id
    );
    Ok(())
}

/// State and Stats of `c` answer at once (containerd 2.3 tears a new container down when
/// State takes over 2 s), and say it runs.
fn state_and_stats_answer(c: &Process) -> Outcome {
    let s = promptly("State", PROMPT, || c.state())??;
    ensure!(
        s.status.enum_value() == Ok(RUNNING),
        "State says {:?}",
        s.status
    );
    promptly("Stats", PROMPT, || stats(c))?
}

/// What the rest of a pod observes while a runtime command of another request hangs.
fn the_pod_is_served(a: &Process) -> Outcome {
    state_and_stats_answer(a)?;
    promptly("Kill", PROMPT, || a.kill(SIGWINCH))??;
    ticks_on(a)
}

#[test]
fn a_hung_create_stalls_nothing_else_of_the_pod() {
    if !runs_a_runtime_binary("a_hung_create_stalls_nothing_else_of_the_pod") {
        return;
    }
    let h = harness();
    run(&h, "hung-create", |ctx| {
        let a = ticker(ctx, "a", "a", None)?;
        let pid_file = ctx.dir.path().join("hung.pid");
        let runtime = hanging_runtime(ctx.dir.path(), "create", &pid_file);
        let setup = cmd("b", &["true"]).in_pod("a").options(Options {
            binary_name: runtime.display().to_string(),
            ..Default::default()
        });
        let (b, req) = ctx.prepare(&setup)?;
        let api = b.api.clone();
        let create = std::thread::spawn(move || api.create(&req));
        let hung = hung_pid(&pid_file)?;
        the_pod_is_served(&a)?;
        // A's exit is reported while B's Create still hangs.
        promptly("Kill", PROMPT, || a.kill(SIGKILL))??;
        let code = promptly("Wait", Duration::from_secs(5), || a.wait())??;
        ensure!(code == 137, "A exited {code}");
        // Killing the hung command ends B's Create, as a failure.
        kill_pid(hung);
        let created = create.join().expect("the Create thread");
        ensure!(created.is_err(), "B's Create succeeded: {created:?}");
        Ok(())
    });
}

/// An Update whose runtime command hangs (a cgroup write stuck in the kernel) holds up
/// later in-turn commands of its container, but never a State or Stats: of that
/// container, or of another of the pod.
#[test]
fn a_hung_update_delays_neither_state_nor_stats() {
    if !runs_a_runtime_binary("a_hung_update_delays_neither_state_nor_stats") {
        return;
    }
    let h = harness();
    run(&h, "hung-update", |ctx| {
        let pid_file = ctx.dir.path().join("hung.pid");
        let runtime = hanging_runtime(ctx.dir.path(), "update", &pid_file);
        let options = Options {
            binary_name: runtime.display().to_string(),
            ..Default::default()
        };
        let a = ticker(ctx, "a", "a", Some(options))?;
        let b = ticker(ctx, "b", "a", None)?;
        let api = a.api.clone();
        let req = UpdateTaskRequest {
            id: a.container_id.clone(),
            resources: protobuf::MessageField::some(protobuf::well_known_types::any::Any {
                type_url: "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources".into(),
                value: br#"{"pids":{"limit":100}}"#.to_vec(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let update = std::thread::spawn(move || api.update(&req));
        let hung = hung_pid(&pid_file)?;
        // As the CRI's stats collector asks, a few rounds of both containers.
        for _ in 0..3 {
            state_and_stats_answer(&a)?;
            state_and_stats_answer(&b)?;
            std::thread::sleep(Duration::from_millis(200));
        }
        ticks_on(&a)?;
        kill_pid(hung);
        let updated = update.join().expect("the Update thread");
        ensure!(updated.is_err(), "the hung Update succeeded: {updated:?}");
        state_and_stats_answer(&a)
    });
}

#[test]
fn a_hung_exec_stalls_nothing_else_of_its_container() {
    if !runs_a_runtime_binary("a_hung_exec_stalls_nothing_else_of_its_container") {
        return;
    }
    let h = harness();
    run(&h, "hung-exec", |ctx| {
        let pid_file = ctx.dir.path().join("hung.pid");
        let runtime = hanging_runtime(ctx.dir.path(), "exec", &pid_file);
        let options = Options {
            binary_name: runtime.display().to_string(),
            ..Default::default()
        };
        let a = ticker(ctx, "a", "a", Some(options))?;
        let mut e = ctx.exec(&a, &cmd("e", &["true"]))?;
        let start = std::thread::spawn(move || e.start().map_err(|v| format!("{v:?}")));
        let hung = hung_pid(&pid_file)?;
        let pids = promptly("Pids", PROMPT, || a.pids())??;
        ensure!(pids.contains(&a.pid), "Pids says {pids:?}");
        the_pod_is_served(&a)?;
        kill_pid(hung);
        let started = start.join().expect("the Start thread");
        ensure!(
            started.is_err(),
            "the hung exec's Start succeeded: {started:?}"
        );
        Ok(())
    });
}

/// A runtime binary that hands every command to runc, sleeping `before` seconds before
/// `command` and `after` seconds after it (a slow hook, a loaded machine).
fn slow_runtime(dir: &Path, command: &str, before: u32, after: u32) -> PathBuf {
    let script = format!(
        "#!/bin/sh\nslow=\nfor arg in \"$@\"; do [ \"$arg\" = {command} ] && slow=1; done\n[ -n \"$slow\" ] && sleep {before}\nrunc \"$@\"\nrc=$?\n[ -n \"$slow\" ] && sleep {after}\nexit $rc\n"
    );
    runtime_script(dir.join(format!("runc-slow-on-{command}")), &script)
}

fn binary(runtime: &Path) -> Options {
    Options {
        binary_name: runtime.display().to_string(),
        ..Default::default()
    }
}

/// Start of `p` on a thread of its own: (its answer, how long it took).
fn start_in_background(p: &Process) -> std::thread::JoinHandle<(Result<u32, String>, Duration)> {
    let api = p.api.clone();
    let req = StartRequest {
        id: p.container_id.clone(),
        exec_id: p.exec_id.clone(),
        ..Default::default()
    };
    std::thread::spawn(move || {
        let began = Instant::now();
        let r = api.start(&req).map(|r| r.pid).map_err(|e| e.to_string());
        (r, began.elapsed())
    })
}

/// An init that exits while its Start still runs (a runtime whose `start` returns 6 s
/// after the process began, as a slow poststart hook makes it) has its exit reported
/// after the Start; meanwhile the loop sleeps, though the exit's 2 s drain deadline has
/// passed: there is nothing it can do before the Start ends.
#[test]
fn an_exit_during_a_long_start_leaves_the_loop_idle() {
    if !runs_a_runtime_binary("an_exit_during_a_long_start_leaves_the_loop_idle") {
        return;
    }
    let h = harness();
    run(&h, "long-start", |ctx| {
        let runtime = slow_runtime(ctx.dir.path(), "start", 0, 6);
        let c = ctx.create(&cmd("c", &["true"]).options(binary(&runtime)))?;
        let shim = ctx.shim_pid(c.shim);
        let began = Instant::now();
        let starting = start_in_background(&c);
        let deadline = began + Duration::from_secs(2);
        while proc::alive(c.pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let exited_early = !proc::alive(c.pid);
        std::thread::sleep(
            (began + Duration::from_millis(2500)).saturating_duration_since(Instant::now()),
        );
        let spent = ticks_over(shim, Duration::from_secs(2));
        let (started, took) = starting.join().expect("the Start thread");
        skiff_integration::report(&format!(
            "never_stalls: an init that exited during a {took:?} Start: {spent} CPU ticks of the shim from 2.5 s to 4.5 s"
        ));
        ensure!(exited_early, "the init had not exited 2 s into its Start");
        ensure!(started.is_ok(), "Start: {started:?}");
        ensure!(
            took >= Duration::from_secs(5),
            "the Start took only {took:?}"
        );
        let code = c.wait()?;
        ensure!(code == 0, "the init exited {code}");
        let topics = ctx.wait_topic("c", "/tasks/exit")?;
        let at = |t: &str| topics.iter().position(|x| x == t);
        ensure!(
            at("/tasks/start") < at("/tasks/exit"),
            "events out of order: {topics:?}"
        );
        ensure!(
            spent <= 5,
            "the shim used {spent} CPU ticks (of 10 ms) in 2 s while the Start of an exited init ran"
        );
        Ok(())
    });
}

/// Processes of `c` are its init alone again (within 5 s), and the shim has no zombie.
fn nothing_left_but_the_init(c: &Process, shim: u32) -> Outcome {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let pids = c.pids()?;
        let zombies = proc::zombie_children(shim);
        if pids == [c.pid] && zombies.is_empty() {
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "left running in the container: {:?} (its init is {}); zombies of the shim: {zombies:?}",
            pids,
            c.pid
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// CRI's way with a `kubectl exec` whose client went away while the exec started slowly
/// (containerd's WithProcessKill): Wait, Kill, then Delete once the exit came (a Kill
/// refused as FAILED_PRECONDITION is taken as nothing to kill). The Kill reaches the
/// process once its start has ended, its exit is reported, and nothing is left running.
#[test]
fn an_exec_killed_while_it_starts_is_killed_once_started() {
    if !runs_a_runtime_binary("an_exec_killed_while_it_starts_is_killed_once_started") {
        return;
    }
    let h = harness();
    run(&h, "kill-starting-exec", |ctx| {
        let runtime = slow_runtime(ctx.dir.path(), "exec", 3, 0);
        let c = ctx.run(&cmd("c", &["sleep", "300"]).options(binary(&runtime)))?;
        let shim = ctx.shim_pid(c.shim);
        let e = ctx.exec(&c, &cmd("e", &["sleep", "300"]))?;
        let starting = start_in_background(&e);
        std::thread::sleep(Duration::from_millis(500));
        let api = e.api.clone();
        let req = e.wait_request();
        let waiting = std::thread::spawn(move || api.wait(&req));
        let killed = e.kill(SIGKILL);
        let exit = match &killed {
            Ok(()) => Some(waiting.join().expect("the Wait thread")),
            Err(err) if err.code == Some(ttrpc::Code::FAILED_PRECONDITION) => None,
            Err(err) => return Err(Verdict::Fail(format!("Kill: {err}"))),
        };
        let deleted = e.delete();
        let (started, _) = starting.join().expect("the Start thread");
        let seen = format!(
            "Kill: {killed:?}; exit: {:?}; Delete: {:?}; Start: {started:?}",
            exit.as_ref().map(|r| r.as_ref().map(|w| w.exit_status)),
            deleted.as_ref().map(|d| d.exit_status)
        );
        let left = nothing_left_but_the_init(&c, shim);
        ensure!(left.is_ok(), "{left:?}; the client saw {seen}");
        ensure!(
            killed.is_ok() && started.is_ok() && deleted.is_ok(),
            "the client saw {seen}"
        );
        ensure!(
            matches!(exit, Some(Ok(ref w)) if w.exit_status == 137),
            "the client saw {seen}"
        );
        Ok(())
    });
}

/// Delete of an exec, or of an init, while its start runs is refused at once, and says
/// why; the process started is owned as before (Kill, Wait and Delete reach it).
#[test]
fn delete_of_a_process_being_started_is_refused() {
    if !runs_a_runtime_binary("delete_of_a_process_being_started_is_refused") {
        return;
    }
    let h = harness();
    run(&h, "delete-starting", |ctx| {
        let exec_runtime = slow_runtime(ctx.dir.path(), "exec", 3, 0);
        let c = ctx.run(&cmd("c", &["sleep", "300"]).options(binary(&exec_runtime)))?;
        let shim = ctx.shim_pid(c.shim);
        let mut e = ctx.exec(&c, &cmd("e", &["sleep", "300"]))?;
        let starting = start_in_background(&e);
        std::thread::sleep(Duration::from_millis(500));
        refused_while_starting(&e, "exec e")?;
        let (started, _) = starting.join().expect("the Start thread");
        e.pid = started.map_err(Verdict::Fail)?;
        ensure!(
            e.state()?.status.enum_value() == Ok(RUNNING),
            "the exec is not running after its Start"
        );
        e.kill(SIGKILL)?;
        ensure!(e.wait()? == 137, "the exec's exit was not reported");
        e.delete()?;
        nothing_left_but_the_init(&c, shim)?;

        let start_runtime = slow_runtime(ctx.dir.path(), "start", 3, 0);
        let d = ctx.create(&cmd("d", &["sleep", "300"]).options(binary(&start_runtime)))?;
        let starting = start_in_background(&d);
        std::thread::sleep(Duration::from_millis(500));
        refused_while_starting(&d, "init process")?;
        let (started, _) = starting.join().expect("the Start thread");
        started.map_err(Verdict::Fail)?;
        std::thread::sleep(Duration::from_millis(500));
        ensure!(
            d.state()?.status.enum_value() == Ok(RUNNING),
            "the container is not running after its Start"
        );
        Ok(())
    });
}

/// Delete of `p`, whose start is in flight, answers at once FAILED_PRECONDITION naming it.
fn refused_while_starting(p: &Process, name: &str) -> Outcome {
    let began = Instant::now();
    let deleted = p.delete();
    let took = began.elapsed();
    match deleted {
        Err(err)
            if err.code == Some(ttrpc::Code::FAILED_PRECONDITION)
                && err.message.contains(name)
                && err.message.contains("being started")
                && took < PROMPT =>
        {
            Ok(())
        }
        other => Err(Verdict::Fail(format!(
            "Delete of the {name} being started answered in {took:?}: {other:?}"
        ))),
    }
}

/// A pids cgroup holding a shim at the number of tasks it has: it can start no thread
/// (as a shim with `ShimCgroup` in a pod whose pids limit a fork bomb reached). Dropping
/// it puts the shim back where it was.
struct PidsCap {
    dir: PathBuf,
    pid: u32,
    home: PathBuf,
}

impl PidsCap {
    fn hold(pid: u32) -> Outcome<PidsCap> {
        let (base, home) = pids_hierarchy(pid)?;
        let dir = base.join(format!("skiff-no-threads-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let cap = PidsCap {
            dir,
            pid,
            home: base.join(home.trim_start_matches('/')),
        };
        std::fs::write(cap.dir.join("cgroup.procs"), pid.to_string())
            .map_err(|e| format!("moving the shim: {e}"))?;
        let tasks = std::fs::read_to_string(cap.dir.join("pids.current"))
            .map_err(|e| format!("pids.current: {e}"))?;
        std::fs::write(cap.dir.join("pids.max"), tasks.trim())
            .map_err(|e| format!("pids.max: {e}"))?;
        Ok(cap)
    }

    fn lift(&self) {
        let _ = std::fs::write(self.dir.join("pids.max"), "max");
    }
}

impl Drop for PidsCap {
    fn drop(&mut self) {
        self.lift();
        let _ = std::fs::write(self.home.join("cgroup.procs"), self.pid.to_string());
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// Where the pids controller is mounted, and `pid`'s cgroup in it.
fn pids_hierarchy(pid: u32) -> Outcome<(PathBuf, String)> {
    let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).map_err(|e| e.to_string())?;
    for line in own.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next(), parts.next(), parts.next());
        let (Some(controllers), Some(path)) = (controllers, path) else {
            continue;
        };
        if controllers.split(',').any(|c| c == "pids") {
            return Ok(("/sys/fs/cgroup/pids".into(), path.to_string()));
        }
        if controllers.is_empty()
            && std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers")
                .is_ok_and(|c| c.split_whitespace().any(|c| c == "pids"))
        {
            return Ok(("/sys/fs/cgroup".into(), path.to_string()));
        }
    }
    Err(Verdict::Skip("no pids controller on this machine".into()))
}

/// A shim that cannot start a thread refuses a Create and a Start with
/// RESOURCE_EXHAUSTED, and takes back nothing it promised: once threads can be had again,
/// the same Create and the same Start succeed.
#[test]
fn a_shim_out_of_threads_refuses_then_serves_the_same_requests() {
    let h = harness();
    run(&h, "no-threads", |ctx| {
        let mut a = ctx.create(&cmd("a", &["sleep", "300"]).in_pod("p"))?;
        let (b, create_b) = ctx.prepare(&cmd("b", &["sleep", "300"]).in_pod("p"))?;
        let cap = PidsCap::hold(ctx.shim_pid(a.shim))?;
        let exhausted = |what: &str, r: Result<String, String>| -> Outcome {
            match r {
                Err(m) if m.contains("RESOURCE_EXHAUSTED") || m.contains("no thread") => Ok(()),
                other => Err(Verdict::Fail(format!(
                    "{what} with no thread to run it answered {other:?}"
                ))),
            }
        };
        exhausted(
            "Start",
            a.start()
                .map(|p| p.to_string())
                .map_err(|e| format!("{e:?}")),
        )?;
        exhausted(
            "Create",
            b.api
                .create(&create_b)
                .map(|r| r.pid.to_string())
                .map_err(|e| format!("{e:?}")),
        )?;
        cap.lift();
        a.start()
            .map_err(|e| Verdict::Fail(format!("Start once threads were back: {e:?}")))?;
        let created = b
            .api
            .create(&create_b)
            .map_err(|e| Verdict::Fail(format!("Create once threads were back: {e:?}")))?;
        ctx.track(&[created.pid]);
        drop(cap);
        ensure!(
            a.state()?.status.enum_value() == Ok(RUNNING),
            "the container is not running after its second Start"
        );
        a.kill(SIGKILL)?;
        ensure!(a.wait()? == 137, "the container's exit was not reported");
        a.delete()?;
        b.delete()?;
        Ok(())
    });
}

/// A container writing as fast as it can to a `file://` log (skiffd's detached tasks log
/// so) must not keep the shim from its socket: the copy to a file is slower than the
/// writers, so the pipe is never empty.
#[test]
fn a_container_flooding_its_log_file_does_not_slow_state() {
    let h = harness();
    run(&h, "flood", |ctx| {
        // Writers that keep the pipe full (the copy to the file never finds it empty),
        // 1 GiB at the most.
        let writers = "for i in 1 2 3 4 5 6 7 8; do head -c 134217728 /dev/zero & done; wait";
        let (mut c, mut req) = ctx.prepare(&sh("c", writers))?;
        let log = ctx.dir.path().join("flood.log");
        req.stdout = format!("file://{}", log.display());
        req.stderr = req.stdout.clone();
        c.pid = c.api.create(&req)?.pid;
        ctx.track(&[c.pid]);
        c.start()?;
        std::thread::sleep(Duration::from_millis(200));
        let mut took = Vec::new();
        for _ in 0..100 {
            let started = Instant::now();
            c.state()?;
            took.push(started.elapsed());
        }
        took.sort();
        let p99 = took[98];
        let size = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
        ensure!(
            p99 < Duration::from_millis(50),
            "State p99 {p99:?} (median {:?}) while {size} bytes were logged",
            took[50]
        );
        ensure!(size > 0, "nothing reached the log file");
        c.kill_all(SIGKILL)?;
        c.wait()?;
        Ok(())
    });
}

/// Issue 31: a `file://` log whose writes hang (a network filesystem whose server is
/// away: here a FUSE filesystem that does not answer) must stall nothing else of the
/// pod. The log's writes wait beside the loop; the pod's other container is served and
/// its output flows, and State of the logging container itself is answered.
#[test]
fn a_log_file_whose_writes_hang_stalls_nothing_else_of_the_pod() {
    if !std::path::Path::new("/dev/fuse").exists() {
        skiff_integration::skip(
            "a_log_file_whose_writes_hang_stalls_nothing_else_of_the_pod",
            "no /dev/fuse on this machine",
        );
        return;
    }
    let h = harness();
    run(&h, "hung-log", |ctx| {
        let a = ticker(ctx, "a", "a", None)?;
        let fs = skiff_integration::hung_fs::HungFs::mount(&ctx.dir.path().join("hung"))
            .map_err(|e| format!("mounting the hung filesystem: {e}"))?;
        let setup = sh("b", "while true; do echo logged; done").in_pod("a");
        let (mut b, mut req) = ctx.prepare(&setup)?;
        req.stdout = format!("file://{}", fs.file().display());
        req.stderr = req.stdout.clone();
        b.pid = b.api.create(&req)?.pid;
        ctx.track(&[b.pid]);
        b.start()?;
        ensure!(
            fs.wait_for_a_hung_write(Duration::from_secs(5)),
            "nothing was written to the log"
        );
        the_pod_is_served(&a)?;
        let s = promptly("State of the logging container", PROMPT, || b.state())??;
        ensure!(s.status.enum_value() == Ok(RUNNING), "B is {:?}", s.status);
        // The server is back: the log takes what waited, and the container can end.
        fs.release();
        promptly("Kill", PROMPT, || b.kill_all(SIGKILL))??;
        let code = promptly("Wait", Duration::from_secs(10), || b.wait())??;
        ensure!(code == 137, "B exited {code}");
        let log = fs.contents();
        ensure!(
            log.starts_with(b"logged\n"),
            "the log holds {:?}",
            String::from_utf8_lossy(&log[..log.len().min(40)])
        );
        a.kill(SIGKILL)?;
        a.wait()?;
        Ok(())
    });
}

// Raw clients: bytes on the shim's socket, as a broken or hostile client sends them.

const TASK: &str = "containerd.task.v2.Task";

/// A request frame: the 10-byte header, then a ttrpc Request.
fn request(stream_id: u32, method: &str, payload: &impl protobuf::Message) -> Vec<u8> {
    let req = ttrpc::Request {
        service: TASK.into(),
        method: method.into(),
        payload: payload.write_to_bytes().unwrap(),
        timeout_nano: 10_000_000_000,
        ..Default::default()
    };
    let body = protobuf::Message::write_to_bytes(&req).unwrap();
    let mut frame = Vec::with_capacity(10 + body.len());
    frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
    frame.extend_from_slice(&stream_id.to_be_bytes());
    frame.extend_from_slice(&[1, 0]);
    frame.extend_from_slice(&body);
    frame
}

fn state_of(id: &str) -> StateRequest {
    StateRequest {
        id: id.into(),
        ..Default::default()
    }
}

/// Reads one response frame: (stream id, status code).
fn response(stream: &mut impl Read) -> std::io::Result<(u32, ttrpc::Code)> {
    response_status(stream).map(|(stream_id, code, _)| (stream_id, code))
}

/// Reads one response frame: (stream id, status code, status message).
fn response_status(stream: &mut impl Read) -> std::io::Result<(u32, ttrpc::Code, String)> {
    let mut head = [0u8; 10];
    stream.read_exact(&mut head)?;
    let length = u32::from_be_bytes(head[..4].try_into().unwrap()) as usize;
    let stream_id = u32::from_be_bytes(head[4..8].try_into().unwrap());
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body)?;
    let res = <ttrpc::Response as protobuf::Message>::parse_from_bytes(&body)
        .map_err(std::io::Error::other)?;
    let (code, message) = res
        .status
        .as_ref()
        .map_or((ttrpc::Code::OK, String::new()), |s| {
            (s.code(), s.message.clone())
        });
    Ok((stream_id, code, message))
}

fn raw(address: &str) -> UnixStream {
    let s = UnixStream::connect(address.trim_start_matches("unix://")).expect("connecting");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// A State of `id` on a connection of its own answers promptly.
fn answers(address: &str, id: &str) -> Outcome {
    let mut s = raw(address);
    promptly("State", PROMPT, || -> Outcome {
        s.write_all(&request(1, "State", &state_of(id)))
            .map_err(|e| e.to_string())?;
        let (stream, code) = response(&mut s).map_err(|e| format!("no State answer: {e}"))?;
        ensure!(
            stream == 1 && code == ttrpc::Code::OK,
            "State answered {code:?}"
        );
        Ok(())
    })?
}

#[test]
fn a_header_announcing_four_gib_is_refused_without_reading_it() {
    let h = harness();
    run(&h, "huge-header", |ctx| {
        let c = ctx.run(&cmd("c", &["sleep", "300"]))?;
        let address = ctx.shim_address(c.shim);
        let shim = ctx.shim_pid(c.shim);
        let before = proc::rss_kib(shim);
        let mut s = raw(&address);
        let mut header = u32::MAX.to_be_bytes().to_vec();
        header.extend_from_slice(&7u32.to_be_bytes());
        header.extend_from_slice(&[1, 0]);
        s.write_all(&header).map_err(|e| e.to_string())?;
        // Bytes of the announced body follow; the shim must not wait for (or keep) them.
        let _ = s.write_all(&vec![0u8; 1 << 20]);
        let (stream, code) = response(&mut s).map_err(|e| format!("no error answer: {e}"))?;
        ensure!(
            stream == 7 && code != ttrpc::Code::OK,
            "answered {code:?} on {stream}"
        );
        // Closed: an end of file, or a reset (the shim closed with bytes unread).
        let mut rest = Vec::new();
        let closed = match s.read_to_end(&mut rest) {
            Ok(_) => true,
            Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
        };
        ensure!(closed, "the connection was not closed");
        let after = proc::rss_kib(shim);
        ensure!(
            after < before + 1024,
            "the shim grew from {before} KiB to {after} KiB"
        );
        answers(&address, "c")
    });
}

/// A header announcing too much, from a client that does not read its answers (so the
/// refusal waits in the shim): refused once, and the connection costs no CPU after.
#[test]
fn a_refused_header_from_a_client_that_does_not_read_costs_no_cpu() {
    let h = harness();
    run(&h, "huge-header-deaf", |ctx| {
        let c = ctx.run(&cmd("c", &["sleep", "300"]))?;
        let address = ctx.shim_address(c.shim);
        let shim = ctx.shim_pid(c.shim);
        let mut deaf = raw(&address);
        // Answers enough to fill the socket's buffers, none of them read.
        let mut bytes = request(1, "State", &state_of("c")).repeat(20_000);
        bytes.extend_from_slice(&u32::MAX.to_be_bytes());
        bytes.extend_from_slice(&[0, 0, 0, 7, 1, 0]);
        deaf.write_all(&bytes).map_err(|e| e.to_string())?;
        let spent = ticks_in_two_seconds(shim);
        ensure!(
            spent <= 5,
            "the shim used {spent} CPU ticks (of 10 ms) in 2 s after refusing a header to a client that does not read"
        );
        answers(&address, "c")
    });
}

#[test]
fn half_a_frame_then_silence_holds_up_no_one() {
    let h = harness();
    run(&h, "half-frame", |ctx| {
        let c = ctx.run(&cmd("c", &["sleep", "300"]))?;
        let address = ctx.shim_address(c.shim);
        let mut silent = raw(&address);
        let frame = request(1, "State", &state_of("c"));
        silent.write_all(&frame[..5]).map_err(|e| e.to_string())?;
        for _ in 0..5 {
            answers(&address, "c")?;
        }
        drop(silent);
        Ok(())
    });
}

/// Whether the shim closes a connection whose client has sent all it will: an end of
/// file (or a reset) within `limit`.
fn closed_by_the_shim(s: &mut UnixStream, limit: Duration) -> bool {
    s.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) => return e.kind() == std::io::ErrorKind::ConnectionReset,
        }
    }
}

/// The CPU ticks (10 ms) the shim uses in 2 s, half a second after what it was given.
fn ticks_in_two_seconds(shim: u32) -> u64 {
    std::thread::sleep(Duration::from_millis(500));
    ticks_over(shim, Duration::from_secs(2))
}

/// The CPU ticks (10 ms) a process uses in the next `span`.
fn ticks_over(pid: u32, span: Duration) -> u64 {
    let before = cpu_ticks(pid);
    std::thread::sleep(span);
    cpu_ticks(pid) - before
}

/// A client that hangs up in the middle of a frame (a containerd killed between two
/// writes of a big request) is closed, and costs the shim nothing afterwards: for a cut
/// at every byte of a frame's header and body, with the client's writing side shut, and
/// for cuts of a 64 KiB frame, with the client gone altogether.
#[test]
fn a_client_that_hangs_up_mid_frame_is_closed_and_costs_no_cpu() {
    let h = harness();
    run(&h, "cut-frames", |ctx| {
        let c = ctx.run(&cmd("c", &["sleep", "300"]))?;
        let address = ctx.shim_address(c.shim);
        let shim = ctx.shim_pid(c.shim);
        let frame = request(1, "State", &state_of("c"));
        let mut left_open = Vec::new();
        for cut in 1..frame.len() {
            let mut s = raw(&address);
            s.write_all(&frame[..cut]).map_err(|e| e.to_string())?;
            s.shutdown(std::net::Shutdown::Write)
                .map_err(|e| e.to_string())?;
            if !closed_by_the_shim(&mut s, Duration::from_secs(1)) {
                left_open.push(cut);
            }
        }
        let big = request(3, "State", &state_of(&"x".repeat(64 * 1024)));
        for cut in [10, 4096, big.len() / 2, big.len() - 1] {
            let mut s = raw(&address);
            s.write_all(&big[..cut]).map_err(|e| e.to_string())?;
        }
        let spent = ticks_in_two_seconds(shim);
        skiff_integration::report(&format!(
            "never_stalls: {} clients hung up mid-frame: {} left open, {spent} CPU ticks of the shim in the 2 s after",
            frame.len() + 3,
            left_open.len()
        ));
        ensure!(
            left_open.is_empty(),
            "the shim kept open {} of {} connections whose client hung up mid-frame (cut after bytes {left_open:?}), and used {spent} CPU ticks in 2 s afterwards",
            left_open.len(),
            frame.len() - 1
        );
        ensure!(
            spent <= 5,
            "the shim used {spent} CPU ticks (of 10 ms) in the 2 s after clients hung up mid-frame"
        );
        answers(&address, "c")
    });
}

/// A client that sends frames faster than the shim serves them (64 a wake-up) is read
/// no faster than it is served: the shim does not buffer what it sent. The frames are
/// ones the shim takes and answers nothing to (a response sent to a server), so that
/// only what it reads counts, not answers waiting for a slow reader; a State after them
/// says when all were taken.
#[test]
fn a_client_pipelining_faster_than_it_is_served_does_not_grow_the_shim() {
    let h = harness();
    run(&h, "inbox", |ctx| {
        let c = ctx.run(&cmd("c", &["sleep", "300"]))?;
        let address = ctx.shim_address(c.shim);
        let shim = ctx.shim_pid(c.shim);
        let before = proc::peak_rss_kib(shim);
        let mut unanswered = request(1, "State", &state_of("c"));
        unanswered[8] = 2;
        const COUNT: usize = 400_000;
        let mut bytes = unanswered.repeat(COUNT);
        bytes.extend(request(3, "State", &state_of("c")));
        let mut s = raw(&address);
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        s.write_all(&bytes).map_err(|e| e.to_string())?;
        let (stream, code) = response(&mut s).map_err(|e| format!("no State answer: {e}"))?;
        ensure!(
            stream == 3 && code == ttrpc::Code::OK,
            "State answered {code:?} on {stream}"
        );
        let after = proc::peak_rss_kib(shim);
        skiff_integration::report(&format!(
            "never_stalls: {} MiB of pipelined frames: the shim's peak RSS {before} -> {after} KiB",
            bytes.len() >> 20
        ));
        ensure!(
            after < before + 8 * 1024,
            "the shim's peak RSS grew from {before} KiB to {after} KiB taking {} MiB of pipelined frames",
            bytes.len() >> 20
        );
        Ok(())
    });
}

/// How many Waits the shim keeps parked at once.
const PARKED_WAIT_CAP: usize = 4096;

/// Waits for running processes are parked up to a cap; the ones over it are refused
/// with a clear error at once, and the parked ones are all answered at the exit.
#[test]
fn waits_over_the_cap_are_refused_and_the_parked_ones_answered() {
    let h = harness();
    run(&h, "wait-cap", |ctx| {
        let c = ctx.run(&cmd("c", &["sleep", "300"]))?;
        let address = ctx.shim_address(c.shim);
        let wait = WaitRequest {
            id: "c".into(),
            ..Default::default()
        };
        let over = 10;
        let mut s = raw(&address);
        let all: Vec<u8> = (0..PARKED_WAIT_CAP + over)
            .flat_map(|i| request(2 * i as u32 + 1, "Wait", &wait))
            .collect();
        s.write_all(&all).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        for i in 0..over {
            let (stream, code, message) =
                response_status(&mut s).map_err(|e| format!("refusal {i} of {over}: {e}"))?;
            ensure!(
                code == ttrpc::Code::RESOURCE_EXHAUSTED && message.contains("Waits"),
                "Wait on stream {stream} answered {code:?} {message:?} while the process runs"
            );
            ensure!(
                stream as usize > 2 * PARKED_WAIT_CAP,
                "Wait {stream} was refused, not one over the cap"
            );
        }
        c.kill(SIGKILL)?;
        let mut answered = 0;
        while answered < PARKED_WAIT_CAP {
            let (stream, code, message) =
                response_status(&mut s).map_err(|e| format!("after {answered} Waits: {e}"))?;
            ensure!(
                code == ttrpc::Code::OK,
                "parked Wait {stream} answered {code:?} {message:?}"
            );
            answered += 1;
        }
        c.wait()?;
        Ok(())
    });
}

#[test]
fn a_client_that_never_reads_its_answers_holds_up_no_one() {
    let h = harness();
    run(&h, "never-reads", |ctx| {
        let c = ctx.run(&cmd("c", &["sleep", "300"]))?;
        let address = ctx.shim_address(c.shim);
        let shim = ctx.shim_pid(c.shim);
        let before = proc::rss_kib(shim);
        let mut deaf = raw(&address);
        deaf.set_write_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let frame = request(1, "State", &state_of("c"));
        let deadline = Instant::now() + Duration::from_secs(3);
        let mut sent = 0;
        while Instant::now() < deadline {
            // The shim stops reading once its answers pile up (or drops the client).
            match deaf.write(&frame) {
                Ok(_) => sent += 1,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => break,
            }
            if sent % 1000 == 0 {
                answers(&address, "c")?;
            }
        }
        answers(&address, "c")?;
        let after = proc::rss_kib(shim);
        ensure!(
            after < before + 32 * 1024,
            "the shim grew from {before} KiB to {after} KiB for a client that never reads ({sent} requests)"
        );
        Ok(())
    });
}

#[test]
fn ten_thousand_pipelined_requests_are_all_answered() {
    let h = harness();
    run(&h, "pipelined", |ctx| {
        let c = ctx.run(&cmd("c", &["sleep", "300"]))?;
        let address = ctx.shim_address(c.shim);
        let mut s = raw(&address);
        let mut writer = s.try_clone().unwrap();
        let send = std::thread::spawn(move || {
            let mut all = Vec::new();
            for i in 0..10_000u32 {
                all.extend(request(2 * i + 1, "State", &state_of("c")));
            }
            writer.write_all(&all)
        });
        let mut answered = 0;
        while answered < 10_000 {
            let (_, code) = response(&mut s).map_err(|e| format!("after {answered}: {e}"))?;
            ensure!(code == ttrpc::Code::OK, "answer {answered} was {code:?}");
            answered += 1;
        }
        send.join().unwrap().map_err(|e| e.to_string())?;
        Ok(())
    });
}

/// CPU time (user + system) a process has used, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    field(11) + field(12)
}

/// Sets a process's soft limit of open files.
fn limit_files(pid: u32, soft: u64) -> u64 {
    let mut old = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: prlimit(2) on the shim this test started, with pointers to locals.
    unsafe {
        libc::prlimit(pid as i32, libc::RLIMIT_NOFILE, std::ptr::null(), &mut old);
        let new = libc::rlimit {
            rlim_cur: soft,
            rlim_max: old.rlim_max,
        };
        libc::prlimit(pid as i32, libc::RLIMIT_NOFILE, &new, std::ptr::null_mut());
    }
    old.rlim_cur
}

#[test]
fn running_out_of_file_descriptors_does_not_make_the_shim_spin() {
    let h = harness();
    run(&h, "emfile", |ctx| {
        let c = ctx.run(&cmd("c", &["sleep", "300"]))?;
        let address = ctx.shim_address(c.shim);
        let shim = ctx.shim_pid(c.shim);
        let mut kept = raw(&address);
        let used = proc::fd_count(shim) as u64;
        let old = limit_files(shim, used + 8);
        // More connections than the shim may open: the kernel queues the rest.
        let crowd: Vec<UnixStream> = (0..40)
            .filter_map(|_| UnixStream::connect(address.trim_start_matches("unix://")).ok())
            .collect();
        let spent = ticks_in_two_seconds(shim);
        // 5% of 2 s, in ticks of 10 ms.
        ensure!(
            spent <= 10,
            "the shim used {spent} ticks of CPU in 2 s with {} connections waiting",
            crowd.len()
        );
        kept.write_all(&request(1, "State", &state_of("c")))
            .map_err(|e| e.to_string())?;
        let (_, code) =
            promptly("State", PROMPT, || response(&mut kept))?.map_err(|e| e.to_string())?;
        ensure!(code == ttrpc::Code::OK, "State answered {code:?}");
        drop(crowd);
        limit_files(shim, old);
        // With descriptors free again, new clients are served.
        let deadline = Instant::now() + Duration::from_secs(5);
        while answers(&address, "c").is_err() {
            ensure!(
                Instant::now() < deadline,
                "new clients are not served again"
            );
        }
        Ok(())
    });
}

#[test]
fn a_peer_of_another_uid_is_refused() {
    let h = harness().bootstrap();
    let h = &h;
    run(h, "peer", |ctx| {
        let c = ctx.run(&cmd("c", &["sleep", "300"]))?;
        let address = ctx.shim_address(c.shim);
        let path = PathBuf::from(address.trim_start_matches("unix://"));
        // Let any uid reach the socket (it is in the harness's own directory): only the
        // shim's own check stands in the way.
        for p in path.ancestors().take_while(|p| p.starts_with(h.dir())) {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o777)).unwrap();
        }
        let frame = request(1, "State", &state_of("c"));
        let outsider = std::thread::spawn(move || -> Result<usize, String> {
            // SAFETY: this thread alone becomes nobody (setresuid(2) is per thread at
            // the system call level); it only connects and ends.
            unsafe {
                libc::syscall(libc::SYS_setresgid, 65534, 65534, 65534);
                libc::syscall(libc::SYS_setresuid, 65534, 65534, 65534);
            }
            let mut s = UnixStream::connect(&path).map_err(|e| format!("connecting: {e}"))?;
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let _ = s.write_all(&frame);
            let mut got = Vec::new();
            let _ = s.read_to_end(&mut got);
            Ok(got.len())
        });
        let answered = outsider.join().unwrap()?;
        ensure!(answered == 0, "uid 65534 got {answered} bytes of answer");
        answers(&address, "c")
    });
}

/// The inode of the unix socket bound to `path`, from /proc/net/unix.
fn socket_inode(path: &str) -> Option<String> {
    let table = std::fs::read_to_string("/proc/net/unix").ok()?;
    table
        .lines()
        .find(|l| l.ends_with(path))
        .and_then(|l| l.split_whitespace().nth(6).map(str::to_string))
}

#[test]
fn runtime_commands_do_not_inherit_the_shims_socket() {
    if !runs_a_runtime_binary("runtime_commands_do_not_inherit_the_shims_socket") {
        return;
    }
    let h = harness();
    run(&h, "cloexec", |ctx| {
        let fds = ctx.dir.path().join("fds");
        let script = format!(
            "#!/bin/sh\nls -l /proc/$$/fd >> '{}' 2>&1\nexec runc \"$@\"\n",
            fds.display()
        );
        let runtime = runtime_script(ctx.dir.path().join("runc-listing-fds"), &script);
        let c = ctx.run(&cmd("c", &["sleep", "300"]).options(Options {
            binary_name: runtime.display().to_string(),
            ..Default::default()
        }))?;
        let address = ctx.shim_address(c.shim);
        let inode = socket_inode(address.trim_start_matches("unix://"))
            .ok_or_else(|| "the shim's socket is not in /proc/net/unix".to_string())?;
        let listed = std::fs::read_to_string(&fds).unwrap_or_default();
        ensure!(
            !listed.is_empty(),
            "the runtime was not run through the wrapper"
        );
        ensure!(
            !listed.contains(&format!("socket:[{inode}]")),
            "a runtime command holds the shim's listening socket:\n{listed}"
        );
        Ok(())
    });
}

#[test]
fn waits_of_a_closed_connection_answer_no_one_else() {
    let h = harness();
    run(&h, "stale-waits", |ctx| {
        let c = ctx.run(&cmd("c", &["sleep", "300"]))?;
        let address = ctx.shim_address(c.shim);
        let wait = WaitRequest {
            id: "c".into(),
            ..Default::default()
        };
        let mut first = raw(&address);
        first
            .write_all(&[request(1, "Wait", &wait), request(3, "Wait", &wait)].concat())
            .map_err(|e| e.to_string())?;
        std::thread::sleep(Duration::from_millis(200));
        drop(first);
        std::thread::sleep(Duration::from_millis(200));
        // Likely on the closed connection's fd in the shim.
        let mut second = raw(&address);
        second
            .write_all(&request(1, "State", &state_of("c")))
            .map_err(|e| e.to_string())?;
        response(&mut second).map_err(|e| e.to_string())?;
        c.kill(SIGKILL)?;
        c.wait()?;
        second
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let mut stray = [0u8; 64];
        match second.read(&mut stray) {
            Ok(n) if n > 0 => Err(Verdict::Fail(format!(
                "{n} bytes of a stale Wait answer arrived"
            ))),
            _ => Ok(()),
        }
    });
}

fn set_last_pid(pid: u32) {
    let _ = std::fs::write("/proc/sys/kernel/ns_last_pid", pid.to_string());
}

/// The pid to set as the last one given so that the `n`-th free pid after it is
/// `target`: pids in use are skipped by the kernel.
fn last_before_free(target: u32, n: u32) -> u32 {
    let free = |p: u32| !Path::new(&format!("/proc/{p}")).exists();
    let (mut at, mut counted) = (target, 1);
    while counted < n && at > 300 {
        at -= 1;
        if free(at) {
            counted += 1;
        }
    }
    at - 1
}

fn last_pid() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/ns_last_pid")
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0)
}

/// A process's exit the shim never claims (a `binary://` logger's) must not be taken for
/// the exit of a later exec that is given the same pid: the exec runs on, and is reported
/// when it ends.
#[test]
fn a_recycled_pid_never_receives_another_process_exit() {
    let h = harness();
    run(&h, "pid-reuse", |ctx| {
        let pid_file = ctx.dir.path().join("logger.pid");
        let logger = ctx.dir.path().join("logger.sh");
        let script = format!(
            "#!/bin/sh\necho $$ > '{}'\nexec 5>&-\nexit 0\n",
            pid_file.display()
        );
        std::fs::write(&logger, script).unwrap();
        std::fs::set_permissions(&logger, std::fs::Permissions::from_mode(0o755)).unwrap();
        let (mut c, mut req) = ctx.prepare(&cmd("c", &["sleep", "300"]))?;
        req.stdout = format!("binary://{}", logger.display());
        req.stderr = req.stdout.clone();
        c.pid = c.api.create(&req)?.pid;
        ctx.track(&[c.pid]);
        c.start()?;
        let gone: u32 = hung_pid(&pid_file)?;
        let deadline = Instant::now() + Duration::from_secs(5);
        while proc::alive(gone) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        // How many pids an exec's start takes before its process's: learnt, then used
        // to have the next exec's process get the logger's old pid.
        // Other tests fork meanwhile and may take the pid first: several attempts.
        for attempt in 0..50 {
            let before = last_pid();
            set_last_pid(before + 1000);
            let mut probe = ctx.exec(&c, &cmd(&format!("p{attempt}"), &["true"]))?;
            let offset = probe.start()?.saturating_sub(before + 1000);
            probe.wait()?;
            set_last_pid(last_before_free(gone, offset));
            let mut e = ctx.exec(&c, &cmd(&format!("e{attempt}"), &["sleep", "30"]))?;
            // Not tracked for the cleanup: pids are being recycled on purpose, and the
            // container's end ends its execs anyway.
            let pid = e.start()?;
            if pid != gone {
                e.kill(SIGKILL)?;
                e.wait()?;
                continue;
            }
            std::thread::sleep(Duration::from_millis(500));
            let s = e.state()?;
            ensure!(
                s.status.enum_value() == Ok(RUNNING),
                "the exec given pid {pid} is {:?}: it received the logger's exit",
                s.status
            );
            e.kill(SIGKILL)?;
            ensure!(
                e.wait()? == 137,
                "the exec's own exit is not the one reported"
            );
            return Ok(());
        }
        Err(Verdict::Fail(format!(
            "no exec got pid {gone} in 50 attempts"
        )))
    });
}

/// An exec that has exited is NOT_FOUND to Kill, even while its exit waits to be
/// reported (a child of it holds its output) and its pid already names another process,
/// which the Kill must not reach.
#[test]
fn kill_of_an_exec_that_has_exited_is_not_found() {
    let h = harness();
    run(&h, "kill-exited", |ctx| {
        let c = ctx.run(&cmd("c", &["sleep", "300"]))?;
        // Its child holds its output (and, in a session of its own, not its pid).
        let mut e = ctx.exec(&c, &sh("e", "setsid sleep 30 & exit 0"))?;
        let pid = e.start()?;
        let deadline = Instant::now() + Duration::from_secs(5);
        while Path::new(&format!("/proc/{pid}")).exists() {
            ensure!(Instant::now() < deadline, "the exec did not end");
            std::thread::sleep(Duration::from_millis(5));
        }
        // Another process takes the exec's pid (a fork of ours may take it first: again).
        let mut other = std::process::Command::new("true").spawn().unwrap();
        for attempt in 0..50 {
            let _ = other.kill();
            let _ = other.wait();
            // The kernel frees a reaped pid only after an RCU grace period: try again.
            std::thread::sleep(Duration::from_millis(10 * attempt.min(5) as u64));
            set_last_pid(last_before_free(pid, 1));
            other = std::process::Command::new("sleep")
                .arg("60")
                .spawn()
                .unwrap();
            if other.id() == pid {
                break;
            }
        }
        let recycled = other.id() == pid;
        ensure!(recycled, "no process could be given the exec's pid {pid}");
        let answer = e.kill(SIGKILL);
        let other_alive = other.try_wait().map(|s| s.is_none()).unwrap_or(false);
        let _ = other.kill();
        let _ = other.wait();
        match answer {
            Err(err) if err.code == Some(ttrpc::Code::NOT_FOUND) => {}
            other => return Err(Verdict::Fail(format!("Kill of the exited exec: {other:?}"))),
        }
        ensure!(
            other_alive,
            "the Kill reached the process that had the exec's pid (recycled: {recycled})"
        );
        Ok(())
    });
}

/// The manager is away while 10,000 events happen: the shim keeps the latest within its
/// bound, says how many it dropped, and delivers the rest when the manager is back.
#[test]
fn events_outlive_an_absent_manager_within_a_bound() {
    let h = Harness::without_events(&shim_binary(), default_state_root()).expect("harness");
    let mut ctx = h.ctx("events-away").expect("context");
    let outcome = (|| -> Outcome {
        let c = ctx.run(&cmd("c", &["sleep", "300"]))?;
        let shim = ctx.shim_pid(c.shim);
        let before = proc::rss_kib(shim);
        for i in 0..10_000 {
            let e = ctx.exec(&c, &cmd(&format!("e{i}"), &["true"]).no_stdio())?;
            e.delete()?;
        }
        let after = proc::rss_kib(shim);
        ensure!(
            after < before + 8 * 1024,
            "the shim grew from {before} KiB to {after} KiB holding events"
        );
        h.serve_events()?;
        let ns = ctx.ns.clone();
        let seen = h
            .events()
            .wait_until(&ns, Duration::from_secs(20), |events| {
                events.iter().any(|e| e.exec_id == "e9999")
            });
        ensure!(
            seen.iter().any(|e| e.exec_id == "e9999"),
            "the latest event never arrived ({} did)",
            seen.len()
        );
        let log = ctx.log_lines(50);
        ensure!(
            log.contains("were dropped"),
            "no count of dropped events in the log:\n{log}"
        );
        Ok(())
    })();
    let left = ctx.finish();
    if let Err(Verdict::Fail(why)) | Err(Verdict::Skip(why)) = outcome {
        panic!("{why}");
    }
    left.expect("nothing left");
}
