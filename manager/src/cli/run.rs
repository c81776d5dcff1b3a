//! `skiff run` and `skiff exec`: a process with its stdio attached to ours (FIFOs, as ctr
//! does it) or, run detached, its output in its log; the exit status is ours.

use super::args::{ExecArgs, RunArgs};
use super::conn::{ctx, rpc_err, Conn, FOREVER, SHORT};
use crate::attach::{copy_in, copy_out, drain, follow_window, Fifos, RawTerminal};
use skiff_protos::manager::{
    ContainerRequest, CreateContainerRequest, CreateTaskRequest, ExecTaskRequest, ResizeTaskRequest,
};
use skiff_protos::manager_ttrpc::ContainersClient;

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
    let tasks = c.tasks();
    let name = if exec_id.is_empty() {
        id.to_string()
    } else {
        format!("{id}-{exec_id}")
    };
    let fifos = Fifos::make(&c.fifo_base()?, &name, stdin, terminal)?;
    let mut outputs = vec![copy_out(&fifos.stdout, std::io::stdout())];
    if let Some(err) = &fifos.stderr {
        outputs.push(copy_out(err, std::io::stderr()));
    }
    start(fifos.paths())?;
    let raw = terminal.then(RawTerminal::enter);
    tasks
        .start_task(ctx(SHORT), &c.task(id, exec_id))
        .map_err(|e| format!("starting {name}: {}", rpc_err(e)))?;
    if terminal {
        let (t, r) = (tasks.clone(), c.task(id, exec_id));
        follow_window(move |width, height| {
            let resize = ResizeTaskRequest {
                namespace: r.namespace.clone(),
                container_id: r.container_id.clone(),
                exec_id: r.exec_id.clone(),
                width,
                height,
                ..Default::default()
            };
            let _ = t.resize_task(ctx(SHORT), &resize);
        });
    }
    if let Some(p) = &fifos.stdin {
        let (t, r) = (tasks.clone(), c.task(id, exec_id));
        copy_in(p, move || {
            let _ = t.close_task_stdin(ctx(SHORT), &r);
        });
    }
    let waited = tasks
        .wait_task(ctx(FOREVER), &c.task(id, exec_id))
        .map_err(|e| format!("waiting for {name}: {}", rpc_err(e)));
    drain(&outputs);
    drop(raw);
    Ok(waited?.exit_status)
}

/// A container id when `--name` gives none.
fn generated_id() -> String {
    let n = crate::storage::db::now() as u64;
    format!(
        "skiff-{:012x}",
        (n ^ (std::process::id() as u64) << 40) & 0xffff_ffff_ffff
    )
}

fn container_request(c: &Conn, a: &RunArgs) -> CreateContainerRequest {
    let f = &a.container;
    CreateContainerRequest {
        namespace: c.ns.clone(),
        id: a.name.clone().unwrap_or_else(generated_id),
        image: a.words[0].clone(),
        args: a.words[1..].to_vec(),
        runtime_name: f.runtime.clone().unwrap_or_default(),
        env: f.env.clone(),
        labels: f.label.iter().cloned().collect(),
        terminal: f.tty,
        memory_limit: a.memory.unwrap_or(0) as i64,
        mounts: a.mount.clone(),
        ..Default::default()
    }
}

pub fn run(c: &Conn, a: RunArgs) -> Result<i32, String> {
    if a.rm && a.detach {
        return Err("--rm and -d together are not supported: remove with `skiff rm -f`".into());
    }
    let image = &a.words[0];
    let pull = match a.pull.as_str() {
        "always" => true,
        "never" => false,
        _ => !super::pull::have(c, image),
    };
    if pull {
        super::pull::pull(c, image, &a.registry).map_err(|e| match a.pull.as_str() {
            "always" => e,
            _ => format!("{image} is not among skiffd's images, and {e}"),
        })?;
    }
    let r = container_request(c, &a);
    let id = r.id.clone();
    ContainersClient::new(c.client.clone())
        .create_container(ctx(SHORT), &r)
        .map_err(|e| format!("creating {id}: {}", rpc_err(e)))?;
    let task = |stdio: [String; 3], detach: bool| {
        let [stdin, stdout, stderr] = stdio;
        let t = CreateTaskRequest {
            namespace: c.ns.clone(),
            container_id: id.clone(),
            stdin,
            stdout,
            stderr,
            terminal: r.terminal,
            detach,
            ..Default::default()
        };
        c.tasks().create_task(ctx(SHORT), &t).map(drop)
    };
    let result = if a.detach {
        task(Default::default(), true)
            .and_then(|_| c.tasks().start_task(ctx(SHORT), &c.task(&id, "")).map(drop))
            .map(|_| {
                println!("{id}");
                0
            })
            .map_err(|e| format!("starting {id}: {}", rpc_err(e)))
    } else {
        let interactive = a.interactive || r.terminal;
        attached(c, &id, "", interactive, r.terminal, |stdio| {
            task(stdio, false).map_err(|e| format!("creating the task of {id}: {}", rpc_err(e)))
        })
        .map(|code| code as i32)
    };
    if a.rm || (result.is_err() && !a.detach) {
        clean_up(c, &id, result.is_err(), a.rm);
    }
    result
}

/// After a run: its task (killed first if the run failed) and, with --rm, the container.
fn clean_up(c: &Conn, id: &str, failed: bool, remove: bool) {
    if failed {
        c.force_kill(id);
    }
    let _ = c.tasks().delete_task(ctx(SHORT), &c.task(id, ""));
    if remove {
        let req = ContainerRequest {
            namespace: c.ns.clone(),
            id: id.to_string(),
            ..Default::default()
        };
        let _ = ContainersClient::new(c.client.clone()).delete_container(ctx(SHORT), &req);
    }
}

pub fn exec(c: &Conn, a: ExecArgs) -> Result<i32, String> {
    let exec_id = a
        .exec_id
        .unwrap_or_else(|| format!("exec-{}", std::process::id()));
    let id = a.words[0].clone();
    let terminal = a.tty;
    let code = attached(
        c,
        &id,
        &exec_id,
        a.interactive || terminal,
        terminal,
        |stdio| {
            let [stdin, stdout, stderr] = stdio;
            let e = ExecTaskRequest {
                namespace: c.ns.clone(),
                container_id: id.clone(),
                exec_id: exec_id.clone(),
                args: a.words[1..].to_vec(),
                env: a.env.clone(),
                terminal,
                stdin,
                stdout,
                stderr,
                ..Default::default()
            };
            c.tasks()
                .exec_task(ctx(SHORT), &e)
                .map(drop)
                .map_err(|e| format!("exec in {id}: {}", rpc_err(e)))
        },
    );
    let _ = c.tasks().delete_task(ctx(SHORT), &c.task(&id, &exec_id));
    code.map(|c| c as i32)
}
