//! The task commands of `skiff`, with docker's habits: run, ps, exec, kill, stop, rm,
//! logs, stats, events, pause, resume.

use crate::attach::{copy_in, copy_out, drain, follow_window, Fifos, RawTerminal};
use skiff_protos::manager::*;
use skiff_protos::manager_ttrpc::*;
use std::path::PathBuf;
use std::time::Duration;

pub struct Conn {
    pub client: ttrpc::Client,
    pub ns: String,
    /// Where the CLI makes its FIFOs (beside skiffd's socket).
    pub fifo_base: PathBuf,
}

pub(crate) fn ctx(timeout: Duration) -> ttrpc::context::Context {
    ttrpc::context::with_timeout(timeout.as_nanos().min(i64::MAX as u128) as i64)
}

pub(crate) const SHORT: Duration = Duration::from_secs(120);
const FOREVER: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

pub(crate) fn rpc_err(e: ttrpc::Error) -> String {
    match e {
        ttrpc::Error::RpcStatus(s) => s.message().to_string(),
        other => other.to_string(),
    }
}

fn req(c: &Conn, id: &str, exec_id: &str) -> TaskRequest {
    TaskRequest {
        namespace: c.ns.clone(),
        container_id: id.into(),
        exec_id: exec_id.into(),
        ..Default::default()
    }
}

/// SIGKILL to every process of the task; a task already gone is fine.
fn force_kill(c: &Conn, tasks: &TasksClient, id: &str) {
    let _ = tasks.kill_task(
        ctx(SHORT),
        &KillTaskRequest {
            namespace: c.ns.clone(),
            container_id: id.to_string(),
            signal: 9,
            all: true,
            ..Default::default()
        },
    );
}

/// "TERM", "SIGTERM" or "15".
pub fn parse_signal(s: &str) -> Result<u32, String> {
    if let Ok(n) = s.parse() {
        return Ok(n);
    }
    let name = s.trim_start_matches("SIG");
    let n = match name {
        "HUP" => 1,
        "INT" => 2,
        "QUIT" => 3,
        "KILL" => 9,
        "USR1" => 10,
        "USR2" => 12,
        "TERM" => 15,
        "CONT" => 18,
        "STOP" => 19,
        "WINCH" => 28,
        _ => return Err(format!("unknown signal {s:?}")),
    };
    Ok(n)
}

/// Runs a process with its stdio attached to ours; returns its exit status. `start`
/// creates the process (task or exec) given the FIFO paths.
fn attached(
    c: &Conn,
    id: &str,
    exec_id: &str,
    stdin: bool,
    terminal: bool,
    start: impl FnOnce([String; 3]) -> Result<(), String>,
) -> Result<u32, String> {
    let tasks = TasksClient::new(c.client.clone());
    let name = if exec_id.is_empty() {
        id.to_string()
    } else {
        format!("{id}-{exec_id}")
    };
    let fifos = Fifos::make(&c.fifo_base, &name, stdin, terminal)?;
    let mut outputs = vec![copy_out(&fifos.stdout, std::io::stdout())];
    if let Some(err) = &fifos.stderr {
        outputs.push(copy_out(err, std::io::stderr()));
    }
    start(fifos.paths())?;
    let raw = terminal.then(RawTerminal::enter);
    tasks
        .start_task(ctx(SHORT), &req(c, id, exec_id))
        .map_err(|e| format!("starting {name}: {}", rpc_err(e)))?;
    if terminal {
        let (t, r) = (tasks.clone(), req(c, id, exec_id));
        follow_window(move |w, h| {
            let _ = t.resize_task(
                ctx(SHORT),
                &ResizeTaskRequest {
                    namespace: r.namespace.clone(),
                    container_id: r.container_id.clone(),
                    exec_id: r.exec_id.clone(),
                    width: w,
                    height: h,
                    ..Default::default()
                },
            );
        });
    }
    if let Some(p) = &fifos.stdin {
        let (t, r) = (tasks.clone(), req(c, id, exec_id));
        copy_in(p, move || {
            let _ = t.close_task_stdin(ctx(SHORT), &r);
        });
    }
    let waited = tasks
        .wait_task(ctx(FOREVER), &req(c, id, exec_id))
        .map_err(|e| format!("waiting for {name}: {}", rpc_err(e)));
    drain(&outputs);
    drop(raw);
    Ok(waited?.exit_status)
}

pub fn run(c: &Conn, args: &[String]) -> Result<i32, String> {
    let mut r = CreateContainerRequest {
        namespace: c.ns.clone(),
        ..Default::default()
    };
    let (mut rm, mut detach, mut interactive) = (false, false, false);
    let mut pos: Vec<String> = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if !pos.is_empty() {
            pos.push(a.clone());
            continue;
        }
        let mut value = || {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{a} needs a value"))
        };
        match a.as_str() {
            "--rm" => rm = true,
            "-d" | "--detach" => detach = true,
            "-t" | "--tty" => r.terminal = true,
            "-i" | "--interactive" => interactive = true,
            "-it" | "-ti" => (r.terminal, interactive) = (true, true),
            "--runtime" => r.runtime_name = value()?,
            "--env" | "-e" => r.env.push(value()?),
            "--mount" | "-v" => r.mounts.push(value()?),
            "--memory" | "-m" => r.memory_limit = crate::units::parse_size(&value()?)? as i64,
            "--name" => r.id = value()?,
            "--label" => {
                let v = value()?;
                let (k, val) = v
                    .split_once('=')
                    .ok_or_else(|| format!("{v:?} is not KEY=VALUE"))?;
                r.labels.insert(k.into(), val.into());
            }
            flag if flag.starts_with('-') => return Err(format!("unknown option {flag}")),
            _ => pos.push(a.clone()),
        }
    }
    if rm && detach {
        return Err("--rm and -d together are not supported: remove with `skiff rm -f`".into());
    }
    r.image = pos.first().cloned().ok_or("missing IMAGE")?;
    r.args = pos[1..].to_vec();
    if r.id.is_empty() {
        let n = crate::db::now() as u64;
        r.id = format!(
            "skiff-{:012x}",
            (n ^ (std::process::id() as u64) << 40) & 0xffff_ffff_ffff
        );
    }
    let id = r.id.clone();
    ContainersClient::new(c.client.clone())
        .create_container(ctx(SHORT), &r)
        .map_err(|e| format!("creating {id}: {}", rpc_err(e)))?;
    let tasks = TasksClient::new(c.client.clone());
    let result = if detach {
        let t = CreateTaskRequest {
            namespace: c.ns.clone(),
            container_id: id.clone(),
            terminal: r.terminal,
            detach: true,
            ..Default::default()
        };
        tasks
            .create_task(ctx(SHORT), &t)
            .and_then(|_| tasks.start_task(ctx(SHORT), &req(c, &id, "")))
            .map(|_| {
                println!("{id}");
                0
            })
            .map_err(|e| format!("starting {id}: {}", rpc_err(e)))
    } else {
        attached(
            c,
            &id,
            "",
            interactive || r.terminal,
            r.terminal,
            |[stdin, stdout, stderr]| {
                let t = CreateTaskRequest {
                    namespace: c.ns.clone(),
                    container_id: id.clone(),
                    stdin,
                    stdout,
                    stderr,
                    terminal: r.terminal,
                    ..Default::default()
                };
                tasks
                    .create_task(ctx(SHORT), &t)
                    .map(drop)
                    .map_err(|e| format!("creating the task of {id}: {}", rpc_err(e)))
            },
        )
        .map(|code| code as i32)
    };
    if rm || (result.is_err() && !detach) {
        if result.is_err() {
            force_kill(c, &tasks, &id);
        }
        let _ = tasks.delete_task(ctx(SHORT), &req(c, &id, ""));
        if rm {
            let _ = ContainersClient::new(c.client.clone()).delete_container(
                ctx(SHORT),
                &ContainerRequest {
                    namespace: c.ns.clone(),
                    id: id.clone(),
                    ..Default::default()
                },
            );
        }
    }
    result
}

pub fn exec(c: &Conn, args: &[String]) -> Result<i32, String> {
    let (mut terminal, mut interactive) = (false, false);
    let mut exec_id = format!("exec-{}", std::process::id());
    let mut env = Vec::new();
    let mut pos: Vec<String> = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if !pos.is_empty() {
            pos.push(a.clone());
            continue;
        }
        match a.as_str() {
            "-t" | "--tty" => terminal = true,
            "-i" | "--interactive" => interactive = true,
            "-it" | "-ti" => (terminal, interactive) = (true, true),
            "--exec-id" => exec_id = it.next().cloned().ok_or("--exec-id needs a value")?,
            "--env" | "-e" => env.push(it.next().cloned().ok_or("--env needs a value")?),
            flag if flag.starts_with('-') => return Err(format!("unknown option {flag}")),
            _ => pos.push(a.clone()),
        }
    }
    let id = pos.first().cloned().ok_or("missing ID")?;
    let cmd = pos[1..].to_vec();
    if cmd.is_empty() {
        return Err("missing COMMAND".into());
    }
    let tasks = TasksClient::new(c.client.clone());
    let code = attached(
        c,
        &id,
        &exec_id,
        interactive || terminal,
        terminal,
        |[stdin, stdout, stderr]| {
            let e = ExecTaskRequest {
                namespace: c.ns.clone(),
                container_id: id.clone(),
                exec_id: exec_id.clone(),
                args: cmd.clone(),
                env: env.clone(),
                terminal,
                stdin,
                stdout,
                stderr,
                ..Default::default()
            };
            tasks
                .exec_task(ctx(SHORT), &e)
                .map(drop)
                .map_err(|e| format!("exec in {id}: {}", rpc_err(e)))
        },
    );
    let _ = tasks.delete_task(ctx(SHORT), &req(c, &id, &exec_id));
    code.map(|c| c as i32)
}

pub fn ps(c: &Conn) -> Result<i32, String> {
    let containers = ContainersClient::new(c.client.clone())
        .list_containers(
            ctx(SHORT),
            &ListContainersRequest {
                namespace: c.ns.clone(),
                ..Default::default()
            },
        )
        .map_err(rpc_err)?;
    let tasks = TasksClient::new(c.client.clone())
        .list_tasks(
            ctx(SHORT),
            &ListTasksRequest {
                namespace: c.ns.clone(),
                ..Default::default()
            },
        )
        .map_err(rpc_err)?;
    println!(
        "{:<24} {:<40} {:<10} {:>8} {:>5}",
        "ID", "IMAGE", "STATUS", "PID", "EXIT"
    );
    for ct in containers.containers {
        match tasks.tasks.iter().find(|t| t.container_id == ct.id) {
            Some(t) => {
                let exit = if t.status == "stopped" {
                    t.exit_status.to_string()
                } else {
                    String::new()
                };
                println!(
                    "{:<24} {:<40} {:<10} {:>8} {:>5}",
                    ct.id, ct.image, t.status, t.pid, exit
                );
            }
            None => println!(
                "{:<24} {:<40} {:<10} {:>8} {:>5}",
                ct.id, ct.image, "no task", "", ""
            ),
        }
    }
    Ok(0)
}

pub fn kill(c: &Conn, args: &[String]) -> Result<i32, String> {
    let mut signal = 15;
    let mut all = false;
    let mut ids = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-s" | "--signal" => signal = parse_signal(it.next().ok_or("--signal needs a value")?)?,
            "-a" | "--all" => all = true,
            _ => ids.push(a.clone()),
        }
    }
    if ids.is_empty() {
        return Err("missing ID".into());
    }
    let tasks = TasksClient::new(c.client.clone());
    for id in ids {
        tasks
            .kill_task(
                ctx(SHORT),
                &KillTaskRequest {
                    namespace: c.ns.clone(),
                    container_id: id.clone(),
                    signal,
                    all,
                    ..Default::default()
                },
            )
            .map_err(|e| format!("killing {id}: {}", rpc_err(e)))?;
    }
    Ok(0)
}

pub fn stop(c: &Conn, args: &[String]) -> Result<i32, String> {
    let mut grace = 10u64;
    let mut ids = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-t" | "--time" => {
                grace = it
                    .next()
                    .and_then(|s| s.parse().ok())
                    .ok_or("--time takes seconds")?
            }
            _ => ids.push(a.clone()),
        }
    }
    let tasks = TasksClient::new(c.client.clone());
    for id in ids {
        let kill = |signal| {
            tasks.kill_task(
                ctx(SHORT),
                &KillTaskRequest {
                    namespace: c.ns.clone(),
                    container_id: id.clone(),
                    signal,
                    all: signal == 9,
                    ..Default::default()
                },
            )
        };
        kill(15).map_err(|e| format!("stopping {id}: {}", rpc_err(e)))?;
        if tasks
            .wait_task(ctx(Duration::from_secs(grace)), &req(c, &id, ""))
            .is_err()
        {
            kill(9).map_err(|e| format!("killing {id}: {}", rpc_err(e)))?;
            tasks
                .wait_task(ctx(SHORT), &req(c, &id, ""))
                .map_err(|e| format!("waiting for {id}: {}", rpc_err(e)))?;
        }
        println!("{id}");
    }
    Ok(0)
}

pub fn rm(c: &Conn, args: &[String]) -> Result<i32, String> {
    let force = args.iter().any(|a| a == "-f" || a == "--force");
    let tasks = TasksClient::new(c.client.clone());
    for id in args.iter().filter(|a| !a.starts_with('-')) {
        if let Ok(t) = tasks.get_task(ctx(SHORT), &req(c, id, "")) {
            if t.status != "stopped" {
                if !force {
                    return Err(format!("{id} is {}: stop it first or use -f", t.status));
                }
                force_kill(c, &tasks, id);
                let _ = tasks.wait_task(ctx(SHORT), &req(c, id, ""));
            }
            tasks
                .delete_task(ctx(SHORT), &req(c, id, ""))
                .map_err(|e| format!("removing the task of {id}: {}", rpc_err(e)))?;
        }
        ContainersClient::new(c.client.clone())
            .delete_container(
                ctx(SHORT),
                &ContainerRequest {
                    namespace: c.ns.clone(),
                    id: id.clone(),
                    ..Default::default()
                },
            )
            .map_err(|e| format!("removing {id}: {}", rpc_err(e)))?;
        println!("{id}");
    }
    Ok(0)
}

pub fn logs(c: &Conn, args: &[String]) -> Result<i32, String> {
    let id = args.first().ok_or("missing ID")?;
    let r = TasksClient::new(c.client.clone())
        .task_logs(ctx(SHORT), &req(c, id, ""))
        .map_err(rpc_err)?;
    use std::io::Write;
    std::io::stdout()
        .write_all(&r.data)
        .map_err(|e| e.to_string())?;
    Ok(0)
}

pub fn stats(c: &Conn, args: &[String]) -> Result<i32, String> {
    let tasks = TasksClient::new(c.client.clone());
    println!(
        "{:<24} {:>14} {:>14} {:>14} {:>6}",
        "ID", "MEM USAGE", "MEM LIMIT", "CPU NS", "PIDS"
    );
    for id in args {
        let s = tasks
            .task_stats(ctx(SHORT), &req(c, id, ""))
            .map_err(|e| format!("stats of {id}: {}", rpc_err(e)))?;
        println!(
            "{:<24} {:>14} {:>14} {:>14} {:>6}",
            id, s.memory_usage, s.memory_limit, s.cpu_usage_ns, s.pids
        );
    }
    Ok(0)
}

pub fn pause(c: &Conn, args: &[String], resume: bool) -> Result<i32, String> {
    let tasks = TasksClient::new(c.client.clone());
    for id in args {
        let r = if resume {
            tasks.resume_task(ctx(SHORT), &req(c, id, ""))
        } else {
            tasks.pause_task(ctx(SHORT), &req(c, id, ""))
        };
        r.map_err(|e| {
            format!(
                "{} {id}: {}",
                if resume { "resuming" } else { "pausing" },
                rpc_err(e)
            )
        })?;
    }
    Ok(0)
}

/// Prints events as they come, until killed.
pub fn events(c: &Conn) -> Result<i32, String> {
    let api = EventsClient::new(c.client.clone());
    let mut after = 0;
    loop {
        let r = api
            .poll_events(
                ctx(Duration::from_secs(30)),
                &PollEventsRequest {
                    namespace: c.ns.clone(),
                    after,
                    timeout_ms: 10_000,
                    ..Default::default()
                },
            )
            .map_err(rpc_err)?;
        for e in r.events {
            after = e.seq;
            let mut line = format!("{} {} {} {}", e.at, e.namespace, e.topic, e.container_id);
            if !e.exec_id.is_empty() {
                line += &format!(" exec_id={}", e.exec_id);
            }
            if e.pid > 0 {
                line += &format!(" pid={}", e.pid);
            }
            if e.topic == "/tasks/exit" || e.topic == "/tasks/delete" {
                line += &format!(" exit_status={}", e.exit_status);
            }
            println!("{line}");
        }
        use std::io::Write;
        let _ = std::io::stdout().flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_parse() {
        assert_eq!(parse_signal("SIGKILL"), Ok(9));
        assert_eq!(parse_signal("TERM"), Ok(15));
        assert_eq!(parse_signal("2"), Ok(2));
        assert!(parse_signal("NOPE").is_err());
    }
}
