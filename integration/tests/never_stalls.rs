//! One shim serves a whole pod, so nothing one container or client does may stall the
//! others: a runtime command that hangs, a container that writes as fast as it can, a
//! client that streams bytes, never reads, or holds a half frame, a recycled pid, an
//! events endpoint that is away. Each test drives the shim under test directly, as
//! containerd launches it (shimtest's harness), and checks what the other containers and
//! clients observe.

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

/// Runs `test` in a fresh context and fails the test with its verdict, then with
/// whatever it left behind.
fn run(h: &Harness, name: &str, test: impl FnOnce(&mut Ctx) -> Outcome) {
    let mut ctx = h.ctx(name).expect("context");
    let outcome = test(&mut ctx);
    let log = ctx.log_tail();
    let left = ctx.finish();
    if let Err(Verdict::Fail(why)) | Err(Verdict::Skip(why)) = outcome {
        panic!("{why}\nshim log:\n{log}");
    }
    if let Err(left) = left {
        panic!("{left}");
    }
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
    let path = dir.join(format!("runc-hanging-on-{command}"));
    let script = format!(
        "#!/bin/sh\nfor arg in \"$@\"; do\n  if [ \"$arg\" = {command} ]; then echo $$ > '{}'; exec sleep 600; fi\ndone\nexec runc \"$@\"\n",
        pid_file.display()
    );
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
fn response(stream: &mut UnixStream) -> std::io::Result<(u32, ttrpc::Code)> {
    let mut head = [0u8; 10];
    stream.read_exact(&mut head)?;
    let length = u32::from_be_bytes(head[..4].try_into().unwrap()) as usize;
    let stream_id = u32::from_be_bytes(head[4..8].try_into().unwrap());
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body)?;
    let res = <ttrpc::Response as protobuf::Message>::parse_from_bytes(&body)
        .map_err(std::io::Error::other)?;
    let code = res.status.as_ref().map_or(ttrpc::Code::OK, |s| s.code());
    Ok((stream_id, code))
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
        std::thread::sleep(Duration::from_millis(500));
        let before = cpu_ticks(shim);
        std::thread::sleep(Duration::from_secs(2));
        let spent = cpu_ticks(shim) - before;
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
        let runtime = ctx.dir.path().join("runc-listing-fds");
        let script = format!(
            "#!/bin/sh\nls -l /proc/$$/fd >> '{}' 2>&1\nexec runc \"$@\"\n",
            fds.display()
        );
        std::fs::write(&runtime, script).unwrap();
        std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o755)).unwrap();
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
