//! `skiff container`: create, ls, info, label, rm.

use super::args::{ContainerCommand, CreateArgs};
use super::conn::{ctx, rpc_err, Conn, SHORT};
use skiff_protos::manager::{
    ContainerRequest, CreateContainerRequest, LabelContainerRequest, ListContainersRequest,
};
use skiff_protos::manager_ttrpc::ContainersClient;
use std::collections::HashMap;

pub fn container(c: &Conn, cmd: ContainerCommand) -> Result<(), String> {
    let api = ContainersClient::new(c.client.clone());
    let one = |id: &str| ContainerRequest {
        namespace: c.ns.clone(),
        id: id.to_string(),
        ..Default::default()
    };
    match cmd {
        ContainerCommand::Create(a) => {
            let r = create_request(c, a);
            let made = api
                .create_container(ctx(SHORT), &r)
                .map_err(|e| format!("creating {}: {}", r.id, rpc_err(e)))?;
            println!("{}", made.id);
            Ok(())
        }
        ContainerCommand::Ls { label } => list(c, &api, label),
        ContainerCommand::Info { id } => {
            let ct = api.get_container(ctx(SHORT), &one(&id)).map_err(rpc_err)?;
            let spec: serde_json::Value = serde_json::from_slice(&ct.spec).unwrap_or_default();
            let labels: HashMap<_, _> = ct.labels.clone();
            let v = serde_json::json!({
                "id": ct.id, "image": ct.image, "runtime": ct.runtime_name, "labels": labels,
                "snapshotter": ct.snapshotter, "snapshot_key": ct.snapshot_key,
                "created_at": ct.created_at, "updated_at": ct.updated_at, "spec": spec,
            });
            println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            Ok(())
        }
        ContainerCommand::Label { id, labels } => {
            let r = LabelContainerRequest {
                namespace: c.ns.clone(),
                id,
                labels: labels.into_iter().collect(),
                ..Default::default()
            };
            let ct = api.label_container(ctx(SHORT), &r).map_err(rpc_err)?;
            println!("{}", labels_line(&ct.labels));
            Ok(())
        }
        ContainerCommand::Rm { ids } => {
            for id in ids {
                api.delete_container(ctx(SHORT), &one(&id))
                    .map_err(|e| format!("removing container {id}: {}", rpc_err(e)))?;
                println!("{id}");
            }
            Ok(())
        }
    }
}

fn create_request(c: &Conn, a: CreateArgs) -> CreateContainerRequest {
    let mut words = a.words.into_iter();
    CreateContainerRequest {
        namespace: c.ns.clone(),
        image: words.next().unwrap_or_default(),
        id: words.next().unwrap_or_default(),
        args: words.collect(),
        labels: a.container.label.into_iter().collect(),
        env: a.container.env,
        runtime_name: a.container.runtime.unwrap_or_default(),
        memory_limit: a.memory.unwrap_or(0),
        terminal: a.container.tty,
        ..Default::default()
    }
}

fn list(c: &Conn, api: &ContainersClient, label_filters: Vec<String>) -> Result<(), String> {
    let req = ListContainersRequest {
        namespace: c.ns.clone(),
        label_filters,
        ..Default::default()
    };
    let r = api.list_containers(ctx(SHORT), &req).map_err(rpc_err)?;
    println!("{:<24} {:<40} {:<28} LABELS", "ID", "IMAGE", "RUNTIME");
    for ct in r.containers {
        println!(
            "{:<24} {:<40} {:<28} {}",
            ct.id,
            ct.image,
            ct.runtime_name,
            labels_line(&ct.labels)
        );
    }
    Ok(())
}

/// k=v,k=v, sorted.
fn labels_line(labels: &HashMap<String, String>) -> String {
    let mut all: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    all.sort();
    all.join(",")
}
