//! The task commands of `skiff`, with docker's habits: ps, kill, stop, rm, logs, stats,
//! events, pause, resume.

use super::conn::{ctx, rpc_err, Conn, SHORT};
use skiff_protos::manager::{
    ContainerRequest, ListContainersRequest, ListTasksRequest, PollEventsRequest,
};
use skiff_protos::manager_ttrpc::{ContainersClient, EventsClient};
use std::time::Duration;

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
    let tasks = c
        .tasks()
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

pub fn kill(c: &Conn, signal: u32, all: bool, ids: &[String]) -> Result<i32, String> {
    let tasks = c.tasks();
    for id in ids {
        tasks
            .kill_task(ctx(SHORT), &c.kill_request(id, signal, all))
            .map_err(|e| format!("killing {id}: {}", rpc_err(e)))?;
    }
    Ok(0)
}

pub fn stop(c: &Conn, grace: u64, ids: &[String]) -> Result<i32, String> {
    let tasks = c.tasks();
    for id in ids {
        let kill = |signal| tasks.kill_task(ctx(SHORT), &c.kill_request(id, signal, signal == 9));
        kill(15).map_err(|e| format!("stopping {id}: {}", rpc_err(e)))?;
        if tasks
            .wait_task(ctx(Duration::from_secs(grace)), &c.task(id, ""))
            .is_err()
        {
            kill(9).map_err(|e| format!("killing {id}: {}", rpc_err(e)))?;
            tasks
                .wait_task(ctx(SHORT), &c.task(id, ""))
                .map_err(|e| format!("waiting for {id}: {}", rpc_err(e)))?;
        }
        println!("{id}");
    }
    Ok(0)
}

pub fn rm(c: &Conn, force: bool, ids: &[String]) -> Result<i32, String> {
    let tasks = c.tasks();
    for id in ids {
        if let Ok(t) = tasks.get_task(ctx(SHORT), &c.task(id, "")) {
            if t.status != "stopped" {
                if !force {
                    return Err(format!("{id} is {}: stop it first or use -f", t.status));
                }
                c.force_kill(id);
                let _ = tasks.wait_task(ctx(SHORT), &c.task(id, ""));
            }
            tasks
                .delete_task(ctx(SHORT), &c.task(id, ""))
                .map_err(|e| format!("removing the task of {id}: {}", rpc_err(e)))?;
        }
        let req = ContainerRequest {
            namespace: c.ns.clone(),
            id: id.clone(),
            ..Default::default()
        };
        ContainersClient::new(c.client.clone())
            .delete_container(ctx(SHORT), &req)
            .map_err(|e| format!("removing {id}: {}", rpc_err(e)))?;
        println!("{id}");
    }
    Ok(0)
}

pub fn logs(c: &Conn, id: &str) -> Result<i32, String> {
    let r = c
        .tasks()
        .task_logs(ctx(SHORT), &c.task(id, ""))
        .map_err(rpc_err)?;
    use std::io::Write;
    std::io::stdout()
        .write_all(&r.data)
        .map_err(|e| e.to_string())?;
    Ok(0)
}

pub fn stats(c: &Conn, ids: &[String]) -> Result<i32, String> {
    let tasks = c.tasks();
    println!(
        "{:<24} {:>14} {:>14} {:>14} {:>6}",
        "ID", "MEM USAGE", "MEM LIMIT", "CPU NS", "PIDS"
    );
    for id in ids {
        let s = tasks
            .task_stats(ctx(SHORT), &c.task(id, ""))
            .map_err(|e| format!("stats of {id}: {}", rpc_err(e)))?;
        println!(
            "{:<24} {:>14} {:>14} {:>14} {:>6}",
            id, s.memory_usage, s.memory_limit, s.cpu_usage_ns, s.pids
        );
    }
    Ok(0)
}

pub fn pause(c: &Conn, ids: &[String], resume: bool) -> Result<i32, String> {
    let tasks = c.tasks();
    for id in ids {
        let r = if resume {
            tasks.resume_task(ctx(SHORT), &c.task(id, ""))
        } else {
            tasks.pause_task(ctx(SHORT), &c.task(id, ""))
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
