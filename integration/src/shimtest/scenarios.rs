//! The scenarios: one short function each, asserting what a user of containerd would
//! observe. The table at the end names them; `--filter` matches those names.

use super::ctx::SPEC_RESOURCES_URL;
use super::ctx::{cmd, expect_code, expect_error, sh, wait_gone, Ctx, Outcome, Process, Verdict};
use crate::ensure;
use crate::proc;
use protobuf::well_known_types::any::Any;
use protobuf::{Message, MessageField};
use skiff_protos::shim::*;
use skiff_protos::task::Status::{self, CREATED, PAUSED, RUNNING, STOPPED};
use std::path::Path;
use std::time::{Duration, Instant};
use ttrpc::Code;

pub struct Scenario {
    pub name: &'static str,
    pub about: &'static str,
    pub run: fn(&mut Ctx) -> Outcome,
}

const SIGKILL: u32 = 9;
const SIGTERM: u32 = 15;

fn status(s: &StateResponse) -> Status {
    s.status.enum_value().unwrap_or(Status::UNKNOWN)
}

// Life cycle

fn create_returns_pid(ctx: &mut Ctx) -> Outcome {
    let c = ctx.create(&cmd("c", &["sleep", "30"]))?;
    ensure!(
        c.pid > 0 && proc::alive(c.pid),
        "Create's pid {} is not a live process",
        c.pid
    );
    let s = c.state()?;
    ensure!(
        status(&s) == CREATED,
        "State says {:?} after Create",
        s.status
    );
    ensure!(
        s.pid == c.pid,
        "State pid {} is not Create's {}",
        s.pid,
        c.pid
    );
    let bundle = c.bundle.to_string_lossy();
    ensure!(
        s.bundle == bundle,
        "State bundle {:?}, expected {bundle:?}",
        s.bundle
    );
    let stdout = c.stdout.as_ref().map(|o| o.path()).unwrap_or_default();
    ensure!(
        s.stdout == stdout,
        "State stdout {:?}, expected {stdout:?}",
        s.stdout
    );
    Ok(())
}

fn start_runs_the_process(ctx: &mut Ctx) -> Outcome {
    let mut c = ctx.create(&sh("c", "echo started; sleep 30"))?;
    let created = c.pid;
    let started = c.start()?;
    ensure!(
        started == created,
        "Start's pid {started} is not Create's {created}"
    );
    ensure!(
        c.stdout
            .as_ref()
            .unwrap()
            .wait_for("started", Duration::from_secs(5)),
        "no output after Start"
    );
    let s = c.state()?;
    ensure!(
        status(&s) == RUNNING,
        "State says {:?} after Start",
        s.status
    );
    Ok(())
}

fn exit_code_reaches_wait_and_state(ctx: &mut Ctx) -> Outcome {
    let c = ctx.run(&sh("c", "exit 3"))?;
    let code = c.wait()?;
    ensure!(code == 3, "Wait says {code}, expected 3");
    let s = c.state()?;
    ensure!(
        status(&s) == STOPPED,
        "State says {:?} after exit",
        s.status
    );
    ensure!(s.exit_status == 3, "State exit_status {}", s.exit_status);
    ensure!(s.exited_at.is_some(), "State has no exited_at");
    Ok(())
}

fn wait_blocks_until_exit(ctx: &mut Ctx) -> Outcome {
    let c = ctx.run(&cmd("c", &["sleep", "300"]))?;
    let (api, req) = (c.api.clone(), c.wait_request());
    let waiter = std::thread::spawn(move || api.wait(&req));
    std::thread::sleep(Duration::from_millis(300));
    ensure!(
        !waiter.is_finished(),
        "Wait returned while the process runs"
    );
    c.kill(SIGKILL)?;
    let r = waiter
        .join()
        .map_err(|_| Verdict::Fail("waiter panicked".into()))??;
    ensure!(
        r.exit_status == 137,
        "Wait says {}, expected 137",
        r.exit_status
    );
    ensure!(r.exited_at.is_some(), "Wait has no exited_at");
    Ok(())
}

fn wait_after_exit_returns_at_once(ctx: &mut Ctx) -> Outcome {
    let c = ctx.run(&sh("c", "exit 4"))?;
    c.wait()?;
    let began = Instant::now();
    let again = c.wait()?;
    ensure!(again == 4, "second Wait says {again}");
    ensure!(
        began.elapsed() < Duration::from_secs(1),
        "second Wait took {:?}",
        began.elapsed()
    );
    Ok(())
}

fn delete_returns_the_exit(ctx: &mut Ctx) -> Outcome {
    let c = ctx.run(&sh("c", "exit 5"))?;
    c.wait()?;
    let d = c.delete()?;
    ensure!(d.exit_status == 5, "Delete says exit {}", d.exit_status);
    ensure!(d.pid == c.pid, "Delete pid {} is not {}", d.pid, c.pid);
    ensure!(d.exited_at.is_some(), "Delete has no exited_at");
    expect_code(c.state(), Code::NOT_FOUND)?;
    Ok(())
}

fn delete_of_a_running_task_is_refused(ctx: &mut Ctx) -> Outcome {
    let c = ctx.run(&cmd("c", &["sleep", "300"]))?;
    expect_error(c.delete())?;
    let s = c.state()?;
    ensure!(
        status(&s) == RUNNING,
        "after a refused Delete the task is {:?}",
        s.status
    );
    ensure!(proc::alive(c.pid), "the process died");
    Ok(())
}

fn delete_of_a_created_task(ctx: &mut Ctx) -> Outcome {
    let c = ctx.create(&cmd("c", &["sleep", "300"]))?;
    c.delete()?;
    ensure!(
        wait_gone(c.pid, Duration::from_secs(5)),
        "process {} still runs after Delete",
        c.pid
    );
    expect_code(c.state(), Code::NOT_FOUND)?;
    Ok(())
}

fn kill_of_a_created_task(ctx: &mut Ctx) -> Outcome {
    let c = ctx.create(&cmd("c", &["sleep", "300"]))?;
    c.kill(SIGKILL)?;
    let code = c.wait()?;
    ensure!(code == 137, "Wait says {code}, expected 137");
    c.wait_status(STOPPED)?;
    Ok(())
}

fn connect_reports_shim_and_task(ctx: &mut Ctx) -> Outcome {
    let c = ctx.run(&cmd("c", &["sleep", "30"]))?;
    let r = c.api.connect_rpc(&ConnectRequest {
        id: "c".into(),
        ..Default::default()
    })?;
    ensure!(
        r.shim_pid > 0 && proc::alive(r.shim_pid),
        "shim_pid {} is not alive",
        r.shim_pid
    );
    ensure!(
        r.task_pid == c.pid,
        "task_pid {} is not {}",
        r.task_pid,
        c.pid
    );
    Ok(())
}

// Standard I/O

fn stdout_carries_exact_bytes(ctx: &mut Ctx) -> Outcome {
    let c = ctx.run(&sh("c", "printf 'one\\ntwo\\n'"))?;
    let out = c.output()?;
    ensure!(out == "one\ntwo\n", "stdout {out:?}");
    ensure!(c.errors()?.is_empty(), "stderr not empty");
    ensure!(c.wait()? == 0, "exit not 0");
    Ok(())
}

fn stderr_is_separate(ctx: &mut Ctx) -> Outcome {
    let c = ctx.run(&sh("c", "echo out; echo err >&2"))?;
    let (out, err) = (c.output()?, c.errors()?);
    ensure!(
        out == "out\n" && err == "err\n",
        "stdout {out:?}, stderr {err:?}"
    );
    Ok(())
}

fn stdin_reaches_the_process(ctx: &mut Ctx) -> Outcome {
    let mut c = ctx.run(&cmd("c", &["cat"]).stdin())?;
    c.write_stdin(b"hello through stdin\n")?;
    c.close_stdin()?;
    let out = c.output()?;
    ensure!(out == "hello through stdin\n", "stdout {out:?}");
    let code = c.wait()?;
    ensure!(code == 0, "cat exited {code} after CloseIO");
    Ok(())
}

/// Issue 28: a writer of stdin that goes away is no end of input (containerd restarts,
/// a client reattaches): the process reads on what a later writer sends, and its input
/// ends at CloseIO. containerd's Go shims hold a writer of the FIFO for this.
fn stdin_writer_that_leaves_and_returns(ctx: &mut Ctx) -> Outcome {
    let mut c = ctx.run(&cmd("c", &["cat"]).stdin())?;
    c.write_stdin(b"before\n")?;
    c.drop_stdin_writer();
    std::thread::sleep(super::patience(Duration::from_millis(300)));
    let s = c.state()?;
    ensure!(
        status(&s) == RUNNING,
        "cat is {:?} (exit {}) once the first writer closed the FIFO, before any CloseIO",
        s.status,
        s.exit_status
    );
    c.write_stdin(b"after\n")?;
    c.drop_stdin_writer();
    c.write_stdin(b"again\n")?;
    c.close_stdin()?;
    let out = c.output()?;
    ensure!(out == "before\nafter\nagain\n", "stdout {out:?}");
    let code = c.wait()?;
    ensure!(code == 0, "cat exited {code} after CloseIO");
    Ok(())
}

fn large_output_arrives_whole(ctx: &mut Ctx) -> Outcome {
    let c = ctx.run(&sh(
        "c",
        "head -c 4194304 /dev/urandom | od -An -v -tx1 | head -c 8388608",
    ))?;
    let out = c.output()?;
    ensure!(
        out.len() == 8388608,
        "received {} of 8388608 bytes",
        out.len()
    );
    Ok(())
}

fn null_io_runs(ctx: &mut Ctx) -> Outcome {
    let c = ctx.run(&sh("c", "echo nowhere; exit 6").no_stdio())?;
    let code = c.wait()?;
    ensure!(code == 6, "exit {code}");
    Ok(())
}

fn file_uri_stdout(ctx: &mut Ctx) -> Outcome {
    let log = ctx.dir.path().join("logs/out.log");
    let (mut c, mut req) = ctx.prepare(&sh("c", "echo to a file; echo errors too >&2"))?;
    req.stdout = format!("file://{}", log.display());
    req.stderr = req.stdout.clone();
    c.pid = c.api.create(&req)?.pid;
    ctx.track(&[c.pid]);
    c.start()?;
    c.wait()?;
    let text = poll_file(&log, |t| t.contains("errors too"));
    ensure!(
        text.contains("to a file\n") && text.contains("errors too\n"),
        "the log file holds {text:?}"
    );
    Ok(())
}

fn binary_uri_logger(ctx: &mut Ctx) -> Outcome {
    let dir = run_logged(
        ctx,
        "binary://",
        "?k=v",
        "echo \"$CONTAINER_NAMESPACE/$CONTAINER_ID\" > {d}/env\ncat <&3 5>&- > {d}/out &\ncat <&4 5>&- > {d}/err &\nexec 5>&-\n",
        "echo logged; echo complained >&2",
    )?;
    let out = std::fs::read_to_string(dir.join("out")).unwrap_or_default();
    let err = std::fs::read_to_string(dir.join("err")).unwrap_or_default();
    let env = std::fs::read_to_string(dir.join("env")).unwrap_or_default();
    ensure!(
        out == "logged\n" && err == "complained\n",
        "logger got stdout {out:?}, stderr {err:?}"
    );
    let expected = format!("{}/c\n", ctx.ns);
    ensure!(
        env == expected,
        "logger environment said {env:?}, expected {expected:?}"
    );
    Ok(())
}

fn terminal_output(ctx: &mut Ctx) -> Outcome {
    let c = ctx.run(&sh("c", "tty; echo done").terminal())?;
    let out = c.output()?;
    ensure!(out.starts_with("/dev/pts/"), "tty printed {out:?}");
    ensure!(
        out.contains("done\r\n"),
        "no CRLF line ending, so no terminal: {out:?}"
    );
    Ok(())
}

fn terminal_resize(ctx: &mut Ctx) -> Outcome {
    let mut c = ctx.run(&sh("c", "read a; stty size").terminal().stdin())?;
    c.resize(100, 30)?;
    c.write_stdin(b"go\n")?;
    let out = c.stdout.clone().unwrap();
    ensure!(
        out.wait_for("30 100", Duration::from_secs(10)),
        "stty size printed {:?}",
        out.text()
    );
    Ok(())
}

fn terminal_stdin(ctx: &mut Ctx) -> Outcome {
    let mut c = ctx.run(&sh("c", "read line; echo got:$line").terminal().stdin())?;
    c.write_stdin(b"typed\n")?;
    let out = c.stdout.clone().unwrap();
    ensure!(
        out.wait_for("got:typed", Duration::from_secs(10)),
        "terminal shows {:?}",
        out.text()
    );
    ensure!(c.wait()? == 0, "exit not 0");
    Ok(())
}

// Exec

fn sleeper(ctx: &mut Ctx) -> Outcome<Process> {
    ctx.run(&cmd("c", &["sleep", "300"]))
}

fn exec_output_and_exit(ctx: &mut Ctx) -> Outcome {
    let c = sleeper(ctx)?;
    let e = ctx.run_exec(&c, &sh("e", "echo in; echo err >&2; exit 7"))?;
    ensure!(e.pid > 0 && e.pid != c.pid, "exec pid {}", e.pid);
    let code = e.wait()?;
    let (out, err) = (e.output()?, e.errors()?);
    ensure!(code == 7, "exec exit {code}");
    ensure!(
        out == "in\n" && err == "err\n",
        "stdout {out:?}, stderr {err:?}"
    );
    Ok(())
}

fn exec_events(ctx: &mut Ctx) -> Outcome {
    let c = sleeper(ctx)?;
    let e = ctx.run_exec(&c, &sh("e", "exit 7"))?;
    e.wait()?;
    let topics = ctx.wait_topic("c", "/tasks/exit")?;
    let expected = [
        "/tasks/create",
        "/tasks/start",
        "/tasks/exec-added",
        "/tasks/exec-started",
        "/tasks/exit",
    ];
    ensure!(topics == expected, "topics {topics:?}");
    let events = ctx.events();
    let started = events
        .iter()
        .find(|e| e.topic == "/tasks/exec-started")
        .unwrap();
    ensure!(
        started.exec_id == "e" && started.pid == e.pid,
        "exec-started says {started:?}"
    );
    let exit = events.iter().find(|e| e.topic == "/tasks/exit").unwrap();
    ensure!(
        exit.exec_id == "e" && exit.exit_status == 7 && exit.pid == e.pid,
        "exit event says {exit:?}"
    );
    Ok(())
}

fn exec_stdin(ctx: &mut Ctx) -> Outcome {
    let c = sleeper(ctx)?;
    let mut e = ctx.run_exec(&c, &cmd("e", &["cat"]).stdin())?;
    e.write_stdin(b"into the exec\n")?;
    e.close_stdin()?;
    let out = e.output()?;
    ensure!(out == "into the exec\n", "stdout {out:?}");
    ensure!(e.wait()? == 0, "exit not 0");
    Ok(())
}

fn exec_terminal(ctx: &mut Ctx) -> Outcome {
    let c = sleeper(ctx)?;
    let e = ctx.run_exec(&c, &cmd("e", &["tty"]).terminal())?;
    let out = e.output()?;
    ensure!(
        out.starts_with("/dev/pts/") && out.ends_with("\r\n"),
        "tty printed {out:?}"
    );
    Ok(())
}

fn exec_resize(ctx: &mut Ctx) -> Outcome {
    let c = sleeper(ctx)?;
    let mut e = ctx.run_exec(&c, &sh("e", "read a; stty size").terminal().stdin())?;
    e.resize(120, 40)?;
    e.write_stdin(b"go\n")?;
    let out = e.stdout.clone().unwrap();
    ensure!(
        out.wait_for("40 120", Duration::from_secs(10)),
        "stty size printed {:?}",
        out.text()
    );
    Ok(())
}

fn exec_kill(ctx: &mut Ctx) -> Outcome {
    let c = sleeper(ctx)?;
    let e = ctx.run_exec(&c, &cmd("e", &["sleep", "300"]))?;
    e.kill(SIGKILL)?;
    let code = e.wait()?;
    ensure!(code == 137, "exec exit {code}");
    let s = c.state()?;
    ensure!(
        status(&s) == RUNNING,
        "the container is {:?} after its exec was killed",
        s.status
    );
    Ok(())
}

fn exec_state(ctx: &mut Ctx) -> Outcome {
    let c = sleeper(ctx)?;
    let mut e = ctx.exec(&c, &sh("e", "read x; exit 2").stdin())?;
    let s = e.state()?;
    // The Go shims name the exec in `id` only; either field will do.
    let named = s.exec_id == "e" || s.id == "e";
    ensure!(
        status(&s) == CREATED && named,
        "before Start: {:?} id {:?} exec_id {:?}",
        s.status,
        s.id,
        s.exec_id
    );
    e.start()?;
    ctx.track(&[e.pid]);
    let s = e.state()?;
    ensure!(
        status(&s) == RUNNING && s.pid == e.pid,
        "after Start: {:?} pid {}",
        s.status,
        s.pid
    );
    e.write_stdin(b"\n")?;
    e.wait()?;
    let s = e.state()?;
    ensure!(
        status(&s) == STOPPED && s.exit_status == 2,
        "after exit: {:?} {}",
        s.status,
        s.exit_status
    );
    Ok(())
}

fn exec_delete(ctx: &mut Ctx) -> Outcome {
    let c = sleeper(ctx)?;
    let e = ctx.run_exec(&c, &sh("e", "exit 4"))?;
    e.wait()?;
    let d = e.delete()?;
    ensure!(
        d.exit_status == 4 && d.pid == e.pid,
        "Delete says exit {} pid {}",
        d.exit_status,
        d.pid
    );
    expect_code(e.state(), Code::NOT_FOUND)?;
    Ok(())
}

fn exec_of_a_missing_binary(ctx: &mut Ctx) -> Outcome {
    let c = sleeper(ctx)?;
    let mut bad = ctx.exec(&c, &cmd("bad", &["/no/such/binary"]))?;
    let err = expect_error_start(&mut bad)?;
    ensure!(
        err.message.contains("/no/such/binary"),
        "the error does not name the binary: {err}"
    );
    let s = c.state()?;
    ensure!(status(&s) == RUNNING, "the container is {:?}", s.status);
    let good = ctx.run_exec(&c, &cmd("good", &["echo", "fine"]))?;
    ensure!(good.output()? == "fine\n", "a later exec failed");
    Ok(())
}

fn expect_error_start(p: &mut Process) -> Outcome<super::api::RpcError> {
    match p.start() {
        Ok(pid) => Err(Verdict::Fail(format!("Start succeeded with pid {pid}"))),
        Err(Verdict::Fail(reason)) => Ok(super::api::RpcError {
            method: "Start",
            code: None,
            message: reason,
        }),
        Err(v) => Err(v),
    }
}

fn exec_duplicate_id(ctx: &mut Ctx) -> Outcome {
    let c = sleeper(ctx)?;
    let _first = ctx.run_exec(&c, &cmd("dup", &["sleep", "300"]))?;
    match ctx.exec(&c, &cmd("dup", &["true"])) {
        Ok(_) => Err(Verdict::Fail(
            "a second exec with the same id was accepted".into(),
        )),
        Err(Verdict::Fail(reason))
            if reason.contains("AlreadyExists") || reason.contains("ALREADY_EXISTS") =>
        {
            Ok(())
        }
        Err(Verdict::Fail(reason)) => Err(Verdict::Fail(format!(
            "expected ALREADY_EXISTS, got {reason}"
        ))),
        Err(v) => Err(v),
    }
}

fn exec_into_a_stopped_task(ctx: &mut Ctx) -> Outcome {
    let c = ctx.run(&sh("c", "exit 0"))?;
    c.wait()?;
    match ctx.exec(&c, &cmd("late", &["true"])) {
        Ok(mut e) => {
            // Some shims accept the Exec and refuse its Start: either way nothing runs.
            expect_error_start(&mut e)?;
            Ok(())
        }
        Err(Verdict::Fail(_)) => Ok(()),
        Err(v) => Err(v),
    }
}

fn many_execs(ctx: &mut Ctx) -> Outcome {
    let c = sleeper(ctx)?;
    for i in 0..20 {
        let e = ctx.run_exec(&c, &cmd(&format!("e{i}"), &["echo", &i.to_string()]))?;
        let out = e.output()?;
        ensure!(out == format!("{i}\n"), "exec {i} printed {out:?}");
        e.wait()?;
        e.delete()?;
    }
    let pids = c.pids()?;
    ensure!(
        pids == [c.pid],
        "after 20 execs the container holds {pids:?}"
    );
    Ok(())
}

// Signals

fn kill_delivers_the_signal(ctx: &mut Ctx) -> Outcome {
    let c = ctx.run(&sh(
        "c",
        "trap 'exit 42' TERM; echo ready; sleep 300 & wait",
    ))?;
    ensure!(
        c.stdout
            .as_ref()
            .unwrap()
            .wait_for("ready", Duration::from_secs(5)),
        "the trap was never set"
    );
    c.kill(SIGTERM)?;
    let code = c.wait()?;
    ensure!(code == 42, "the TERM handler did not run: exit {code}");
    Ok(())
}

fn kill_with_sigkill(ctx: &mut Ctx) -> Outcome {
    let c = sleeper(ctx)?;
    c.kill(SIGKILL)?;
    let code = c.wait()?;
    ensure!(code == 137, "exit {code}");
    Ok(())
}

fn kill_all(ctx: &mut Ctx) -> Outcome {
    let c = ctx.run(&sh("c", "sleep 300 & sleep 300 & echo up; wait"))?;
    ensure!(
        c.stdout
            .as_ref()
            .unwrap()
            .wait_for("up", Duration::from_secs(5)),
        "children not started"
    );
    let pids = c.pids()?;
    ensure!(pids.len() == 3, "Pids lists {pids:?}, expected 3 processes");
    ctx.track(&pids);
    c.kill_all(SIGKILL)?;
    let code = c.wait()?;
    ensure!(code == 137, "exit {code}");
    for pid in pids {
        ensure!(
            wait_gone(pid, Duration::from_secs(5)),
            "process {pid} survived kill --all"
        );
    }
    Ok(())
}

fn kill_after_exit(ctx: &mut Ctx) -> Outcome {
    let c = ctx.run(&sh("c", "exit 0"))?;
    c.wait()?;
    expect_code(c.kill(SIGKILL), Code::NOT_FOUND)?;
    Ok(())
}

// Pids

fn pids_lists_every_process(ctx: &mut Ctx) -> Outcome {
    let c = ctx.run(&sh("c", "sleep 300 & sleep 300 & echo up; wait"))?;
    ensure!(
        c.stdout
            .as_ref()
            .unwrap()
            .wait_for("up", Duration::from_secs(5)),
        "children not started"
    );
    let pids = c.pids()?;
    ctx.track(&pids);
    ensure!(
        pids.len() == 3 && pids.contains(&c.pid),
        "Pids lists {pids:?} (init {})",
        c.pid
    );
    Ok(())
}

fn pids_name_the_exec(ctx: &mut Ctx) -> Outcome {
    let c = sleeper(ctx)?;
    let e = ctx.run_exec(&c, &cmd("probe", &["sleep", "300"]))?;
    let r = c.api.pids(&PidsRequest {
        id: "c".into(),
        ..Default::default()
    })?;
    let info = r.processes.iter().find(|p| p.pid == e.pid);
    let info = info.ok_or_else(|| Verdict::Fail(format!("exec pid {} not in Pids", e.pid)))?;
    let details = info
        .info
        .as_ref()
        .and_then(|a| skiff_protos::options::ProcessDetails::parse_from_bytes(&a.value).ok());
    let exec_id = details.map(|d| d.exec_id).unwrap_or_default();
    ensure!(
        exec_id == "probe",
        "the exec's process info names {exec_id:?}"
    );
    Ok(())
}

// Pause and resume

fn pause_and_resume(ctx: &mut Ctx) -> Outcome {
    let c = sleeper(ctx)?;
    c.api.pause(&PauseRequest {
        id: "c".into(),
        ..Default::default()
    })?;
    let s = c.state()?;
    ensure!(status(&s) == PAUSED, "after Pause: {:?}", s.status);
    c.api.resume(&ResumeRequest {
        id: "c".into(),
        ..Default::default()
    })?;
    let s = c.state()?;
    ensure!(status(&s) == RUNNING, "after Resume: {:?}", s.status);
    let topics = ctx.wait_topic("c", "/tasks/resumed")?;
    ensure!(
        topics.ends_with(&["/tasks/paused".into(), "/tasks/resumed".into()]),
        "topics {topics:?}"
    );
    let e = ctx.run_exec(&c, &cmd("e", &["echo", "awake"]))?;
    ensure!(
        e.output()? == "awake\n",
        "the resumed container does not run an exec"
    );
    Ok(())
}

fn pause_of_a_stopped_task(ctx: &mut Ctx) -> Outcome {
    let c = ctx.run(&sh("c", "exit 0"))?;
    c.wait()?;
    expect_error(c.api.pause(&PauseRequest {
        id: "c".into(),
        ..Default::default()
    }))?;
    Ok(())
}

// Metrics, resources, OOM

/// (memory usage, memory limit, pids) from a Stats reply of either cgroup version.
fn metrics(c: &Process) -> Outcome<(u64, u64, u64)> {
    let r = c.api.stats(&StatsRequest {
        id: c.container_id.clone(),
        ..Default::default()
    })?;
    let any = r
        .stats
        .as_ref()
        .ok_or_else(|| Verdict::Fail("Stats has no stats".into()))?;
    let bad = |e: protobuf::Error| Verdict::Fail(format!("undecodable {}: {e}", any.type_url));
    if any.type_url.ends_with("cgroups.v1.Metrics") {
        let m = skiff_protos::metrics_v1::Metrics::parse_from_bytes(&any.value).map_err(bad)?;
        let usage = m
            .memory
            .usage
            .as_ref()
            .map(|u| (u.usage, u.limit))
            .unwrap_or_default();
        Ok((usage.0, usage.1, m.pids.current))
    } else if any.type_url.ends_with("cgroups.v2.Metrics") {
        let m = skiff_protos::metrics_v2::Metrics::parse_from_bytes(&any.value).map_err(bad)?;
        Ok((m.memory.usage, m.memory.usage_limit, m.pids.current))
    } else {
        Err(Verdict::Fail(format!(
            "Stats type {:?} is neither cgroup metrics",
            any.type_url
        )))
    }
}

fn stats_report_usage(ctx: &mut Ctx) -> Outcome {
    let c = sleeper(ctx)?;
    let (memory, _, pids) = metrics(&c)?;
    ensure!(memory > 0, "memory usage 0");
    ensure!(pids >= 1, "pids.current {pids}");
    Ok(())
}

fn update_changes_the_limit(ctx: &mut Ctx) -> Outcome {
    let c = sleeper(ctx)?;
    let limit: u64 = 48 << 20;
    let resources = serde_json::json!({ "memory": { "limit": limit } });
    c.api.update(&UpdateTaskRequest {
        id: "c".into(),
        resources: MessageField::some(Any {
            type_url: SPEC_RESOURCES_URL.into(),
            value: serde_json::to_vec(&resources).unwrap_or_default(),
            ..Default::default()
        }),
        ..Default::default()
    })?;
    let (_, now, _) = metrics(&c)?;
    ensure!(now == limit, "the memory limit is {now}, expected {limit}");
    Ok(())
}

fn oom_is_reported(ctx: &mut Ctx) -> Outcome {
    let hog = "a=$(head -c 67108864 /dev/zero | tr '\\0' a); echo ${#a}";
    let c = ctx.run(&sh("c", hog).memory(32 << 20))?;
    let code = c.wait()?;
    ensure!(code == 137, "the hog exited {code}, expected 137");
    ctx.wait_topic("c", "/tasks/exit")?;
    let topics = ctx.wait_topic("c", "/tasks/oom")?;
    let oom = topics.iter().position(|t| t == "/tasks/oom");
    let exit = topics.iter().position(|t| t == "/tasks/exit");
    ensure!(
        matches!((oom, exit), (Some(o), Some(e)) if o < e),
        "expected oom before exit: {topics:?}"
    );
    Ok(())
}

// Events

fn events_of_a_life_cycle(ctx: &mut Ctx) -> Outcome {
    let c = ctx.run(&sh("c", "exit 9"))?;
    c.wait()?;
    c.delete()?;
    let topics = ctx.wait_topic("c", "/tasks/delete")?;
    ensure!(
        topics
            == [
                "/tasks/create",
                "/tasks/start",
                "/tasks/exit",
                "/tasks/delete"
            ],
        "topics {topics:?}"
    );
    let events = ctx.events();
    for e in &events {
        ensure!(
            e.pid == c.pid,
            "{} carries pid {}, expected {}",
            e.topic,
            e.pid,
            c.pid
        );
    }
    let exit = events.iter().find(|e| e.topic == "/tasks/exit").unwrap();
    ensure!(
        exit.exit_status == 9,
        "exit event status {}",
        exit.exit_status
    );
    let delete = events.iter().find(|e| e.topic == "/tasks/delete").unwrap();
    ensure!(
        delete.exit_status == 9,
        "delete event status {}",
        delete.exit_status
    );
    Ok(())
}

// Pods: two containers, one shim

fn pod_shares_one_shim(ctx: &mut Ctx) -> Outcome {
    let pod = ctx.run(&cmd("pod", &["sleep", "300"]).in_pod("pod"))?;
    let app = ctx.run(&sh("app", "echo from the app; sleep 300").in_pod("pod"))?;
    ensure!(
        app.shim == pod.shim,
        "the second container got a shim of its own"
    );
    ensure!(
        app.stdout
            .as_ref()
            .unwrap()
            .wait_for("from the app", Duration::from_secs(5)),
        "no output from the second container"
    );
    app.kill(SIGKILL)?;
    ensure!(app.wait()? == 137, "app exit");
    app.delete()?;
    let s = pod.state()?;
    ensure!(
        status(&s) == RUNNING,
        "the pod container is {:?} after the app ended",
        s.status
    );
    // The shim still serves the pod, so a Shutdown now must not end it.
    pod.api.shutdown(&ShutdownRequest::default())?;
    std::thread::sleep(Duration::from_millis(200));
    ensure!(
        proc::alive(ctx.shim_pid(pod.shim)),
        "Shutdown ended the shim with a task left"
    );
    Ok(())
}

fn pod_containers_exit_separately(ctx: &mut Ctx) -> Outcome {
    let pod = ctx.run(&cmd("pod", &["sleep", "300"]).in_pod("pod"))?;
    let a = ctx.run(&sh("a", "exit 3").in_pod("pod"))?;
    let b = ctx.run(&sh("b", "exit 4").in_pod("pod"))?;
    ensure!(a.wait()? == 3 && b.wait()? == 4, "exits mixed up");
    let topics = ctx.wait_topic("b", "/tasks/exit")?;
    ensure!(
        topics.iter().filter(|t| *t == "/tasks/exit").count() == 1,
        "b topics {topics:?}"
    );
    let s = pod.state()?;
    ensure!(status(&s) == RUNNING, "pod is {:?}", s.status);
    Ok(())
}

// The shim's own life

fn shutdown_ends_the_shim(ctx: &mut Ctx) -> Outcome {
    let c = ctx.run(&sh("c", "exit 0"))?;
    c.wait()?;
    c.delete()?;
    let pid = ctx.shim_pid(c.shim);
    let socket = super::launch::socket_path(&ctx.shim_address(c.shim));
    // The reply may or may not arrive before the shim is gone.
    let _ = c.api.shutdown(&ShutdownRequest::default());
    ensure!(
        wait_gone(pid, Duration::from_secs(5)),
        "the shim still runs after Shutdown"
    );
    ensure!(!socket.exists(), "its socket {} remains", socket.display());
    Ok(())
}

fn shutdown_with_a_task_is_ignored(ctx: &mut Ctx) -> Outcome {
    let c = sleeper(ctx)?;
    let _ = c.api.shutdown(&ShutdownRequest::default());
    std::thread::sleep(Duration::from_millis(200));
    let s = c.state()?;
    ensure!(status(&s) == RUNNING, "the task is {:?}", s.status);
    Ok(())
}

fn delete_binary_after_a_killed_shim(ctx: &mut Ctx) -> Outcome {
    let c = sleeper(ctx)?;
    let shim = ctx.shim_pid(c.shim);
    // SAFETY: kill(2) of the shim this scenario started.
    unsafe { libc::kill(shim as i32, libc::SIGKILL) };
    ensure!(
        wait_gone(shim, Duration::from_secs(5)),
        "the shim survived SIGKILL"
    );
    let (code, out, err) = ctx.binary_delete("c", &c.bundle)?;
    ensure!(code == 0, "delete exited {code}: {err}");
    let d = DeleteResponse::parse_from_bytes(&out)
        .map_err(|e| Verdict::Fail(format!("delete printed no DeleteResponse: {e}")))?;
    ensure!(
        d.exit_status == 137,
        "delete reports exit {}",
        d.exit_status
    );
    ensure!(
        wait_gone(c.pid, Duration::from_secs(5)),
        "the container's process survived delete"
    );
    let rootfs = c.bundle.join("rootfs");
    ensure!(
        !proc::mounts_under(&rootfs).contains(&rootfs),
        "the rootfs is still mounted"
    );
    Ok(())
}

// Bad requests

fn state_of_an_unknown_task(ctx: &mut Ctx) -> Outcome {
    let c = sleeper(ctx)?;
    expect_code(
        c.api.state(&StateRequest {
            id: "nobody".into(),
            ..Default::default()
        }),
        Code::NOT_FOUND,
    )?;
    Ok(())
}

fn start_of_an_unknown_task(ctx: &mut Ctx) -> Outcome {
    let c = sleeper(ctx)?;
    expect_code(
        c.api.start(&StartRequest {
            id: "nobody".into(),
            ..Default::default()
        }),
        Code::NOT_FOUND,
    )?;
    Ok(())
}

fn kill_of_an_unknown_task(ctx: &mut Ctx) -> Outcome {
    let c = sleeper(ctx)?;
    expect_code(
        c.api.kill(&KillRequest {
            id: "nobody".into(),
            signal: SIGKILL,
            ..Default::default()
        }),
        Code::NOT_FOUND,
    )?;
    Ok(())
}

fn exec_into_an_unknown_task(ctx: &mut Ctx) -> Outcome {
    let c = sleeper(ctx)?;
    let ghost = Process {
        container_id: "nobody".into(),
        exec_id: String::new(),
        api: c.api.clone(),
        pid: 0,
        bundle: c.bundle.clone(),
        stdout: None,
        stderr: None,
        stdin_path: None,
        stdin: None,
        shim: c.shim,
    };
    match ctx.exec(&ghost, &cmd("e", &["true"]).no_stdio()) {
        Ok(_) => Err(Verdict::Fail("Exec into an unknown task succeeded".into())),
        Err(Verdict::Fail(r)) if r.contains("NOT_FOUND") => Ok(()),
        Err(Verdict::Fail(r)) => Err(Verdict::Fail(format!("expected NOT_FOUND, got {r}"))),
        Err(v) => Err(v),
    }
}

fn duplicate_create_is_refused(ctx: &mut Ctx) -> Outcome {
    let (mut c, req) = ctx.prepare(&cmd("c", &["sleep", "300"]))?;
    c.pid = c.api.create(&req)?.pid;
    ctx.track(&[c.pid]);
    c.start()?;
    expect_error(c.api.create(&req))?;
    let s = c.state()?;
    ensure!(
        status(&s) == RUNNING && s.pid == c.pid,
        "the first container is {:?} pid {}",
        s.status,
        s.pid
    );
    ensure!(proc::alive(c.pid), "the first container's process died");
    Ok(())
}

fn create_with_a_missing_bundle(ctx: &mut Ctx) -> Outcome {
    let (c, mut req) = ctx.prepare(&cmd("c", &["true"]))?;
    req.bundle = ctx
        .dir
        .path()
        .join("no-such-bundle")
        .to_string_lossy()
        .into_owned();
    expect_error(c.api.create(&req))?;
    Ok(())
}

fn create_of_a_missing_binary(ctx: &mut Ctx) -> Outcome {
    let (c, req) = ctx.prepare(&cmd("c", &["/no/such/binary"]))?;
    let err = expect_error(c.api.create(&req))?;
    ensure!(
        err.message.contains("/no/such/binary"),
        "the error does not name the binary: {err}"
    );
    expect_code(c.state(), Code::NOT_FOUND)?;
    Ok(())
}

fn create_with_an_escaping_id(ctx: &mut Ctx) -> Outcome {
    let (c, mut req) = ctx.prepare(&cmd("c", &["true"]))?;
    req.id = "../escape".into();
    expect_error(c.api.create(&req))?;
    let outside = ctx.target.state_root.join("escape");
    ensure!(!outside.exists(), "{} was created", outside.display());
    Ok(())
}

fn resize_without_a_terminal(ctx: &mut Ctx) -> Outcome {
    let c = sleeper(ctx)?;
    // Harmless either way for the task: it keeps running.
    let _ = c.resize(80, 24);
    let s = c.state()?;
    ensure!(status(&s) == RUNNING, "the task is {:?}", s.status);
    Ok(())
}

// Runtime options and checkpoints

fn runtime_binary_from_options(ctx: &mut Ctx) -> Outcome {
    let log = ctx.dir.path().join("runtime.log");
    let script = ctx.dir.path().join("recording-runc");
    write_executable(
        &script,
        &format!(
            "#!/bin/sh\necho \"$*\" >> '{}'\nexec runc \"$@\"\n",
            log.display()
        ),
    )?;
    let options = skiff_protos::options::Options {
        binary_name: script.to_string_lossy().into_owned(),
        ..Default::default()
    };
    let c = ctx.run(&sh("c", "exit 0").options(options))?;
    c.wait()?;
    let calls = std::fs::read_to_string(&log).unwrap_or_default();
    ensure!(
        calls.lines().any(|l| l.contains(" create "))
            && calls.lines().any(|l| l.contains(" start ")),
        "the runtime named in the options saw {calls:?}"
    );
    Ok(())
}

fn checkpoint_writes_an_image(ctx: &mut Ctx) -> Outcome {
    let check = std::process::Command::new("criu").arg("check").output();
    match check {
        Ok(o) if o.status.success() => {}
        Ok(o) => {
            let why = String::from_utf8_lossy(&o.stderr);
            let why = why
                .lines()
                .last()
                .unwrap_or("criu check failed")
                .to_string();
            return Err(Verdict::Skip(format!(
                "CRIU cannot run on this kernel: {why}"
            )));
        }
        Err(e) => return Err(Verdict::Skip(format!("no criu: {e}"))),
    }
    let c = sleeper(ctx)?;
    let image = ctx.dir.path().join("checkpoint");
    c.api.checkpoint(&CheckpointTaskRequest {
        id: "c".into(),
        path: image.to_string_lossy().into_owned(),
        ..Default::default()
    })?;
    let files = std::fs::read_dir(&image).map(|d| d.count()).unwrap_or(0);
    ensure!(files > 0, "the checkpoint directory is empty");
    Ok(())
}

/// Runs `script` in a container whose stdout and stderr go to a logger: a shell script
/// `start` (`{d}` standing for its directory) that waits for its copies and then touches
/// `{d}/done`, named by the URI `scheme` + its path + `query`. Returns the directory
/// once the logger is done.
fn run_logged(
    ctx: &mut Ctx,
    scheme: &str,
    query: &str,
    start: &str,
    script: &str,
) -> Outcome<std::path::PathBuf> {
    let dir = ctx.dir.path().join("logger");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{e}"))?;
    let logger = dir.join("logger.sh");
    let d = dir.display().to_string();
    let body = format!(
        "#!/bin/sh\n{}wait\ntouch {d}/done\n",
        start.replace("{d}", &d)
    );
    write_executable(&logger, &body)?;
    let (mut c, mut req) = ctx.prepare(&sh("c", script))?;
    req.stdout = format!("{scheme}{}{query}", logger.display());
    req.stderr = req.stdout.clone();
    c.pid = c.api.create(&req)?.pid;
    ctx.track(&[c.pid]);
    c.start()?;
    c.wait()?;
    poll_file(&dir.join("done"), |_| true);
    Ok(dir)
}

fn poll_file(path: &Path, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + super::patience(Duration::from_secs(10));
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if done(&text) && path.exists() || Instant::now() > deadline {
            return text;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A `binary-v2://` logger writes a byte to fd 5 (CONTAINER_WAIT) when it is ready.
fn binary_v2_logger(ctx: &mut Ctx) -> Outcome {
    let dir = run_logged(
        ctx,
        "binary-v2://",
        "",
        "cat <&3 5>&- > {d}/out &\ncat <&4 5>&- > /dev/null &\nprintf r >&5\nexec 5>&-\n",
        "echo logged",
    )?;
    let out = std::fs::read_to_string(dir.join("out")).unwrap_or_default();
    ensure!(out == "logged\n", "logger got stdout {out:?}");
    Ok(())
}

/// A `binary-v2://` logger that closes fd 5 without writing has not said it is ready
/// (it may have died at start): Create fails and leaves no task.
fn binary_v2_logger_not_ready(ctx: &mut Ctx) -> Outcome {
    let script = ctx.dir.path().join("silent-logger.sh");
    write_executable(&script, "#!/bin/sh\nexec 5>&-\nexec sleep 1\n")?;
    let (c, mut req) = ctx.prepare(&sh("c", "echo never"))?;
    req.stdout = format!("binary-v2://{}", script.display());
    req.stderr = req.stdout.clone();
    expect_error(c.api.create(&req))?;
    expect_code(c.state(), Code::NOT_FOUND)?;
    Ok(())
}

/// containerd's shims treat ResizePty of a process without a terminal as a no-op:
/// clients that resize every task they attach to rely on it.
fn resize_without_a_terminal_succeeds(ctx: &mut Ctx) -> Outcome {
    let c = sleeper(ctx)?;
    c.resize(80, 24)?;
    let s = c.state()?;
    ensure!(status(&s) == RUNNING, "the task is {:?}", s.status);
    Ok(())
}

/// The Exec request's `terminal` decides: a client may leave the process spec's at false.
fn exec_terminal_from_the_request(ctx: &mut Ctx) -> Outcome {
    let c = sleeper(ctx)?;
    let e = ctx.run_exec(&c, &cmd("e", &["tty"]).terminal().spec_terminal(false))?;
    let out = e.output()?;
    ensure!(
        out.starts_with("/dev/pts/") && out.ends_with("\r\n"),
        "tty printed {out:?}"
    );
    Ok(())
}

/// A file that is no executable format fails as execve(2) fails it ("exec format error",
/// from Start or on the exec's stderr with a failing exit), never run by a shell.
fn exec_of_a_file_in_no_executable_format(ctx: &mut Ctx) -> Outcome {
    let c = sleeper(ctx)?;
    write_executable(
        &ctx.rootfs_source(&c.container_id).join("not-a-program"),
        "echo run by a shell\n",
    )?;
    let mut bad = ctx.exec(&c, &cmd("bad", &["/not-a-program"]))?;
    match bad.start() {
        Ok(pid) => {
            ctx.track(&[pid]);
            let code = bad.wait()?;
            let out = bad.output().unwrap_or_default();
            let err = bad.errors().unwrap_or_default();
            ensure!(
                code != 0 && !out.contains("run by a shell") && err.contains("exec format error"),
                "the exec exited {code}, printed {out:?}, stderr {err:?}"
            );
        }
        Err(Verdict::Fail(reason)) => ensure!(
            reason.contains("exec format error"),
            "the error is not execve's: {reason}"
        ),
        Err(v) => return Err(v),
    }
    Ok(())
}

/// containerd's Go client sends `containerd.linux.runc.CreateOptions` to every runtime
/// not named io.containerd.runc.v2 (WithUIDOwner, WithNoPivotRoot...): they are read.
fn legacy_create_options(ctx: &mut Ctx) -> Outcome {
    let legacy = skiff_protos::runctypes::CreateOptions {
        io_uid: 1000,
        io_gid: 1001,
        ..Default::default()
    };
    let options = Any {
        type_url: "containerd.linux.runc.CreateOptions".into(),
        value: legacy.write_to_bytes().map_err(|e| e.to_string())?,
        ..Default::default()
    };
    let c =
        ctx.run(&cmd("c", &["stat", "-L", "-c", "%u:%g", "/proc/self/fd/1"]).raw_options(options))?;
    // runc gives the pipes to the process's own user (here root) and keeps their group:
    // the group shows the options were read (without them it is 0).
    let out = c.output()?;
    ensure!(
        out.trim_end().ends_with(":1001"),
        "the stdout pipe is owned by {out:?}, not group 1001"
    );
    Ok(())
}

fn write_executable(path: &Path, body: &str) -> Outcome {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, body).map_err(|e| format!("{}: {e}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| Verdict::Fail(format!("{}: {e}", path.display())))
}

macro_rules! scenarios {
    ($($name:literal => $f:ident: $about:literal,)*) => {
        pub const ALL: &[Scenario] = &[$(Scenario { name: $name, about: $about, run: $f },)*];
    };
}

scenarios! {
    "lifecycle/create" => create_returns_pid: "Create returns a live pid; State says CREATED with bundle and stdio",
    "lifecycle/start" => start_runs_the_process: "Start returns Create's pid and the process runs",
    "lifecycle/exit-code" => exit_code_reaches_wait_and_state: "an exit code reaches Wait and State",
    "lifecycle/wait-blocks" => wait_blocks_until_exit: "Wait blocks while the process runs and returns its status",
    "lifecycle/wait-after-exit" => wait_after_exit_returns_at_once: "Wait after the exit answers at once",
    "lifecycle/delete" => delete_returns_the_exit: "Delete returns the exit; the task is then unknown",
    "lifecycle/delete-running" => delete_of_a_running_task_is_refused: "Delete of a running task is refused and it keeps running",
    "lifecycle/delete-created" => delete_of_a_created_task: "Delete of a created task ends its process",
    "lifecycle/kill-created" => kill_of_a_created_task: "Kill of a created task stops it with 137",
    "lifecycle/connect" => connect_reports_shim_and_task: "Connect reports the shim's and the task's pid",
    "stdio/stdout" => stdout_carries_exact_bytes: "stdout arrives byte for byte and is closed at exit",
    "stdio/stderr" => stderr_is_separate: "stderr arrives on its own FIFO",
    "stdio/stdin" => stdin_reaches_the_process: "stdin reaches the process; CloseIO ends its input",
    "stdio/stdin-reopened" => stdin_writer_that_leaves_and_returns: "a stdin writer that leaves and returns is no end of input; CloseIO is",
    "stdio/large-output" => large_output_arrives_whole: "8 MiB of output arrive whole",
    "stdio/null-io" => null_io_runs: "a task without stdio runs and exits",
    "stdio/file-uri" => file_uri_stdout: "file:// stdout and stderr go to the file",
    "stdio/binary-logger" => binary_uri_logger: "binary:// starts the logger with the streams and its environment",
    "stdio/binary-v2-logger" => binary_v2_logger: "binary-v2:// waits for the logger's ready byte",
    "stdio/binary-v2-not-ready" => binary_v2_logger_not_ready: "a binary-v2:// logger that never says ready fails Create",
    "terminal/output" => terminal_output: "a terminal task has a pty and CRLF output",
    "terminal/resize" => terminal_resize: "ResizePty reaches the task's terminal",
    "terminal/stdin" => terminal_stdin: "typed input reaches a terminal task",
    "terminal/resize-none" => resize_without_a_terminal_succeeds: "ResizePty of a task without a terminal succeeds, a no-op",
    "exec/output-and-exit" => exec_output_and_exit: "an exec's stdout, stderr and exit code",
    "exec/events" => exec_events: "exec-added, exec-started and exit events name the exec",
    "exec/stdin" => exec_stdin: "stdin and CloseIO for an exec",
    "exec/terminal" => exec_terminal: "an exec with a terminal",
    "exec/terminal-by-request" => exec_terminal_from_the_request: "the Exec request's terminal decides over the process spec's",
    "exec/no-executable-format" => exec_of_a_file_in_no_executable_format: "exec of a file in no executable format fails with exec format error",
    "exec/resize" => exec_resize: "ResizePty of an exec's terminal",
    "exec/kill" => exec_kill: "Kill of an exec leaves the container running",
    "exec/state" => exec_state: "State of an exec through created, running, stopped",
    "exec/delete" => exec_delete: "Delete of an exec returns its exit; it is then unknown",
    "exec/missing-binary" => exec_of_a_missing_binary: "Start of a missing binary fails clearly; later execs work",
    "exec/duplicate-id" => exec_duplicate_id: "a second exec with a live exec's id is ALREADY_EXISTS",
    "exec/stopped-task" => exec_into_a_stopped_task: "nothing runs when exec targets a stopped task",
    "exec/many" => many_execs: "20 execs in a row, each deleted, leave only init",
    "kill/signal" => kill_delivers_the_signal: "Kill delivers the signal to the task's handler",
    "kill/sigkill" => kill_with_sigkill: "SIGKILL ends the task with 137",
    "kill/all" => kill_all: "Kill with all ends every process of the task",
    "kill/after-exit" => kill_after_exit: "Kill after the exit is NOT_FOUND",
    "pids/all" => pids_lists_every_process: "Pids lists every process of the task",
    "pids/exec-details" => pids_name_the_exec: "Pids names an exec's process by its exec id",
    "pause/pause-resume" => pause_and_resume: "Pause and Resume, with their states and events",
    "pause/stopped" => pause_of_a_stopped_task: "Pause of a stopped task is refused",
    "metrics/stats" => stats_report_usage: "Stats reports memory and pids of the task's cgroup",
    "metrics/update" => update_changes_the_limit: "Update changes the memory limit Stats reports",
    "metrics/oom" => oom_is_reported: "an OOM kill is reported before the exit",
    "events/life-cycle" => events_of_a_life_cycle: "create, start, exit, delete with pids and statuses",
    "pod/one-shim" => pod_shares_one_shim: "two containers of a pod share one shim, which outlives the first",
    "pod/separate-exits" => pod_containers_exit_separately: "containers of a pod exit and report separately",
    "shim/shutdown" => shutdown_ends_the_shim: "Shutdown with no tasks ends the shim and removes its socket",
    "shim/shutdown-busy" => shutdown_with_a_task_is_ignored: "Shutdown while a task runs leaves it running",
    "shim/delete-after-kill" => delete_binary_after_a_killed_shim: "the binary's delete after a SIGKILLed shim cleans up and reports 137",
    "bad/state-unknown" => state_of_an_unknown_task: "State of an unknown task is NOT_FOUND",
    "bad/start-unknown" => start_of_an_unknown_task: "Start of an unknown task is NOT_FOUND",
    "bad/kill-unknown" => kill_of_an_unknown_task: "Kill of an unknown task is NOT_FOUND",
    "bad/exec-unknown" => exec_into_an_unknown_task: "Exec into an unknown task is NOT_FOUND",
    "bad/duplicate-create" => duplicate_create_is_refused: "a second Create of a live id fails; the first is untouched",
    "bad/missing-bundle" => create_with_a_missing_bundle: "Create with a bundle that does not exist fails",
    "bad/missing-binary" => create_of_a_missing_binary: "Create of a missing binary fails clearly and leaves no task",
    "bad/escaping-id" => create_with_an_escaping_id: "Create with id ../escape fails",
    "bad/resize-no-terminal" => resize_without_a_terminal: "ResizePty without a terminal does not harm the task",
    "options/runtime-binary" => runtime_binary_from_options: "the runtime binary named in the options is used",
    "options/legacy-create-options" => legacy_create_options: "containerd.linux.runc.CreateOptions are read (IoUid, IoGid)",
    "checkpoint/image" => checkpoint_writes_an_image: "Checkpoint writes a CRIU image",
}
