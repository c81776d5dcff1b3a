//! `skiff`: the command line of skiffd, with ctr's habits (`skiff image import`,
//! `skiff container ls`). Errors are one line on stderr and exit status 1.

use skiff_protos::manager::*;
use skiff_protos::manager_ttrpc::*;
use std::collections::HashMap;
use std::time::Duration;

const USAGE: &str = "usage: skiff [--address SOCK] [-n NAMESPACE] COMMAND

  image import FILE [--name NAME]     import an OCI layout or docker save archive
  image ls | image info NAME | image rm NAME
  container create [--label K=V]... [--env K=V]... [--runtime NAME] [--memory BYTES] [-t] IMAGE ID [CMD ARG...]
  container ls [--label K[=V]]... | container info ID | container label ID K=V... | container rm ID
  snapshot ls | snapshot prepare KEY [PARENT] | snapshot view KEY PARENT | snapshot commit NAME KEY
  snapshot mounts KEY | snapshot usage KEY | snapshot rm KEY
  content ls

  run [--rm] [-d] [-t] [-i] [--name ID] [--runtime NAME|PATH] [--env K=V]... [--mount SRC:DST[:ro]]...
      [--memory 64m] [--label K=V]... IMAGE [CMD ARG...]     exits with the container's status
  ps | exec [-t] [-i] ID CMD ARG... | kill [-s SIGNAL] [--all] ID... | stop [-t SECONDS] ID...
  rm [-f] ID... | logs ID | stats ID... | events | pause ID... | resume ID...";

use crate::cli_task::{self as task, ctx, rpc_err, Conn, SHORT};

const LONG: Duration = Duration::from_secs(1800);

pub fn main() -> i32 {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if matches!(
        argv.first().map(String::as_str),
        Some("-h") | Some("--help")
    ) {
        println!("{USAGE}");
        return 0;
    }
    match run(&argv) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("skiff: {e}");
            1
        }
    }
}

fn run(argv: &[String]) -> Result<i32, String> {
    let mut address =
        std::env::var("SKIFF_ADDRESS").unwrap_or_else(|_| crate::daemon::DEFAULT_ADDRESS.into());
    let mut ns = std::env::var("SKIFF_NAMESPACE").unwrap_or_else(|_| "default".into());
    let mut rest = argv;
    loop {
        match rest.first().map(String::as_str) {
            Some("--address") | Some("-a") => {
                address = rest.get(1).cloned().ok_or("--address needs a value")?;
                rest = &rest[2..];
            }
            Some("--namespace") | Some("-n") => {
                ns = rest.get(1).cloned().ok_or("--namespace needs a value")?;
                rest = &rest[2..];
            }
            Some("-h") | Some("--help") | None => return Err(USAGE.into()),
            _ => break,
        }
    }
    let client = ttrpc::Client::connect(&format!("unix://{address}"))
        .map_err(|e| format!("cannot reach skiffd at {address}: {e}"))?;
    let fifo_base = std::path::Path::new(&address)
        .parent()
        .unwrap_or(std::path::Path::new("/run/skiff"))
        .join("fifo");
    let c = Conn {
        client,
        ns,
        fifo_base,
    };
    let (group, cmd, args) = (
        rest[0].as_str(),
        rest.get(1).map(String::as_str).unwrap_or(""),
        &rest[rest.len().min(2)..],
    );
    let all = &rest[1..];
    let done = |r: Result<(), String>| r.map(|_| 0);
    match group {
        "image" | "images" | "i" => done(image(&c, cmd, args)),
        "container" | "containers" | "c" => done(container(&c, cmd, args)),
        "snapshot" | "snapshots" => done(snapshot(&c, cmd, args)),
        "content" => done(content(&c, cmd)),
        "run" => task::run(&c, all),
        "exec" => task::exec(&c, all),
        "ps" => task::ps(&c),
        "kill" => task::kill(&c, all),
        "stop" => task::stop(&c, all),
        "rm" => task::rm(&c, all),
        "logs" => task::logs(&c, all),
        "stats" => task::stats(&c, all),
        "events" => task::events(&c),
        "pause" => task::pause(&c, all, false),
        "resume" => task::pause(&c, all, true),
        other => Err(format!("unknown command {other:?}\n{USAGE}")),
    }
}

fn need<'a>(args: &'a [String], i: usize, what: &str) -> Result<&'a str, String> {
    args.get(i)
        .map(String::as_str)
        .ok_or_else(|| format!("missing {what}"))
}

fn image(c: &Conn, cmd: &str, args: &[String]) -> Result<(), String> {
    let api = ImagesClient::new(c.client.clone());
    match cmd {
        "import" => {
            let mut file = None;
            let mut name = String::new();
            let mut it = args.iter();
            while let Some(a) = it.next() {
                match a.as_str() {
                    "--name" => name = it.next().cloned().ok_or("--name needs a value")?,
                    _ => file = Some(a.clone()),
                }
            }
            let file = file.ok_or("missing FILE")?;
            let path = std::fs::canonicalize(&file).map_err(|e| format!("{file}: {e}"))?;
            let r = api
                .import_image(
                    ctx(LONG),
                    &ImportRequest {
                        namespace: c.ns.clone(),
                        path: path.display().to_string(),
                        name,
                        ..Default::default()
                    },
                )
                .map_err(|e| format!("importing {file}: {}", rpc_err(e)))?;
            for i in r.images {
                println!("{} {}", i.name, i.target_digest);
            }
            Ok(())
        }
        "ls" | "list" => {
            let r = api
                .list_images(
                    ctx(SHORT),
                    &ListImagesRequest {
                        namespace: c.ns.clone(),
                        ..Default::default()
                    },
                )
                .map_err(rpc_err)?;
            println!("{:<48} {:<73} {:>10}", "NAME", "DIGEST", "SIZE");
            for i in r.images {
                println!("{:<48} {:<73} {:>10}", i.name, i.target_digest, i.size);
            }
            Ok(())
        }
        "info" => {
            let i = api
                .get_image(
                    ctx(SHORT),
                    &ImageRequest {
                        namespace: c.ns.clone(),
                        name: need(args, 0, "NAME")?.into(),
                        ..Default::default()
                    },
                )
                .map_err(rpc_err)?;
            let v = serde_json::json!({"name": i.name, "target": i.target_digest, "media_type": i.target_media_type, "snapshot": i.snapshot_key, "size": i.size, "labels": i.labels});
            println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            Ok(())
        }
        "rm" | "remove" | "delete" => {
            for name in args {
                api.delete_image(
                    ctx(SHORT),
                    &ImageRequest {
                        namespace: c.ns.clone(),
                        name: name.clone(),
                        ..Default::default()
                    },
                )
                .map_err(|e| format!("removing image {name}: {}", rpc_err(e)))?;
                println!("{name}");
            }
            Ok(())
        }
        other => Err(format!("unknown image command {other:?}\n{USAGE}")),
    }
}

fn kv(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?} is not KEY=VALUE"))?;
    Ok((k.to_string(), v.to_string()))
}

fn container(c: &Conn, cmd: &str, args: &[String]) -> Result<(), String> {
    let api = ContainersClient::new(c.client.clone());
    match cmd {
        "create" => {
            let mut r = CreateContainerRequest {
                namespace: c.ns.clone(),
                ..Default::default()
            };
            let mut pos = Vec::new();
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
                    "--label" => {
                        let (k, v) = kv(&value()?)?;
                        r.labels.insert(k, v);
                    }
                    "--env" => r.env.push(value()?),
                    "--runtime" => r.runtime_name = value()?,
                    "--memory" => {
                        r.memory_limit = value()?.parse().map_err(|_| "--memory takes bytes")?
                    }
                    "-t" | "--tty" => r.terminal = true,
                    _ => pos.push(a.clone()),
                }
            }
            r.image = pos.first().cloned().ok_or("missing IMAGE")?;
            r.id = pos.get(1).cloned().ok_or("missing ID")?;
            r.args = pos[2..].to_vec();
            let made = api
                .create_container(ctx(SHORT), &r)
                .map_err(|e| format!("creating {}: {}", r.id, rpc_err(e)))?;
            println!("{}", made.id);
            Ok(())
        }
        "ls" | "list" => {
            let mut filters = Vec::new();
            let mut it = args.iter();
            while let Some(a) = it.next() {
                match a.as_str() {
                    "--label" => filters.push(it.next().cloned().ok_or("--label needs a value")?),
                    other => return Err(format!("unexpected {other:?}")),
                }
            }
            let r = api
                .list_containers(
                    ctx(SHORT),
                    &ListContainersRequest {
                        namespace: c.ns.clone(),
                        label_filters: filters,
                        ..Default::default()
                    },
                )
                .map_err(rpc_err)?;
            println!("{:<24} {:<40} {:<28} LABELS", "ID", "IMAGE", "RUNTIME");
            for ct in r.containers {
                let mut labels: Vec<String> =
                    ct.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                labels.sort();
                println!(
                    "{:<24} {:<40} {:<28} {}",
                    ct.id,
                    ct.image,
                    ct.runtime_name,
                    labels.join(",")
                );
            }
            Ok(())
        }
        "info" => {
            let ct = api
                .get_container(
                    ctx(SHORT),
                    &ContainerRequest {
                        namespace: c.ns.clone(),
                        id: need(args, 0, "ID")?.into(),
                        ..Default::default()
                    },
                )
                .map_err(rpc_err)?;
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
        "label" => {
            let id = need(args, 0, "ID")?.to_string();
            let mut r = LabelContainerRequest {
                namespace: c.ns.clone(),
                id,
                ..Default::default()
            };
            for a in &args[1..] {
                let (k, v) = kv(a)?;
                r.labels.insert(k, v);
            }
            let ct = api.label_container(ctx(SHORT), &r).map_err(rpc_err)?;
            let mut labels: Vec<String> =
                ct.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            labels.sort();
            println!("{}", labels.join(","));
            Ok(())
        }
        "rm" | "remove" | "delete" => {
            for id in args {
                api.delete_container(
                    ctx(SHORT),
                    &ContainerRequest {
                        namespace: c.ns.clone(),
                        id: id.clone(),
                        ..Default::default()
                    },
                )
                .map_err(|e| format!("removing container {id}: {}", rpc_err(e)))?;
                println!("{id}");
            }
            Ok(())
        }
        other => Err(format!("unknown container command {other:?}\n{USAGE}")),
    }
}

fn print_mounts(r: MountsResponse) {
    for m in r.mounts {
        println!("{} {} {}", m.type_, m.source, m.options.join(","));
    }
}

fn snapshot(c: &Conn, cmd: &str, args: &[String]) -> Result<(), String> {
    let api = SnapshotsClient::new(c.client.clone());
    let ns = c.ns.clone();
    let key = |i| need(args, i, "KEY").map(str::to_string);
    match cmd {
        "ls" | "list" => {
            let r = api
                .list_snapshots(
                    ctx(SHORT),
                    &ListSnapshotsRequest {
                        namespace: ns,
                        ..Default::default()
                    },
                )
                .map_err(rpc_err)?;
            println!("{:<75} {:<75} KIND", "KEY", "PARENT");
            for s in r.snapshots {
                println!("{:<75} {:<75} {}", s.key, s.parent, s.kind);
            }
            Ok(())
        }
        "prepare" | "view" => {
            let r = PrepareSnapshotRequest {
                namespace: ns,
                key: key(0)?,
                parent: args.get(1).cloned().unwrap_or_default(),
                ..Default::default()
            };
            let m = if cmd == "view" {
                api.view(ctx(SHORT), &r)
            } else {
                api.prepare(ctx(SHORT), &r)
            }
            .map_err(rpc_err)?;
            print_mounts(m);
            Ok(())
        }
        "commit" => {
            let r = CommitSnapshotRequest {
                namespace: ns,
                name: need(args, 0, "NAME")?.into(),
                key: need(args, 1, "KEY")?.into(),
                ..Default::default()
            };
            api.commit(ctx(SHORT), &r).map_err(rpc_err).map(drop)
        }
        "mounts" => {
            let m = api
                .mounts(
                    ctx(SHORT),
                    &SnapshotRequest {
                        namespace: ns,
                        key: key(0)?,
                        ..Default::default()
                    },
                )
                .map_err(rpc_err)?;
            print_mounts(m);
            Ok(())
        }
        "usage" => {
            let u = api
                .usage(
                    ctx(SHORT),
                    &SnapshotRequest {
                        namespace: ns,
                        key: key(0)?,
                        ..Default::default()
                    },
                )
                .map_err(rpc_err)?;
            println!("{} bytes, {} inodes", u.size, u.inodes);
            Ok(())
        }
        "rm" | "remove" => api
            .remove(
                ctx(SHORT),
                &SnapshotRequest {
                    namespace: ns,
                    key: key(0)?,
                    ..Default::default()
                },
            )
            .map_err(rpc_err)
            .map(drop),
        other => Err(format!("unknown snapshot command {other:?}\n{USAGE}")),
    }
}

fn content(c: &Conn, cmd: &str) -> Result<(), String> {
    let api = ContentClient::new(c.client.clone());
    match cmd {
        "ls" | "list" => {
            let r = api
                .list_content(
                    ctx(SHORT),
                    &ListContentRequest {
                        namespace: c.ns.clone(),
                        ..Default::default()
                    },
                )
                .map_err(rpc_err)?;
            println!("{:<73} {:>10} MEDIA TYPE", "DIGEST", "SIZE");
            for b in r.blobs {
                println!("{:<73} {:>10} {}", b.digest, b.size, b.media_type);
            }
            Ok(())
        }
        other => Err(format!("unknown content command {other:?}\n{USAGE}")),
    }
}
