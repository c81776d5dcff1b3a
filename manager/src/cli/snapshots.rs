//! `skiff snapshot` (ls, prepare, view, commit, mounts, usage, rm) and `skiff content ls`.

use super::args::{ContentCommand, SnapshotCommand};
use super::conn::{ctx, rpc_err, Conn, SHORT};
use skiff_protos::manager::{
    CommitSnapshotRequest, ListContentRequest, ListSnapshotsRequest, MountsResponse,
    PrepareSnapshotRequest, SnapshotRequest,
};
use skiff_protos::manager_ttrpc::{ContentClient, SnapshotsClient};

fn print_mounts(r: MountsResponse) {
    for m in r.mounts {
        println!("{} {} {}", m.type_, m.source, m.options.join(","));
    }
}

pub fn snapshot(c: &Conn, cmd: SnapshotCommand) -> Result<(), String> {
    let api = SnapshotsClient::new(c.client.clone());
    let one = |key: String| SnapshotRequest {
        namespace: c.ns.clone(),
        key,
        ..Default::default()
    };
    let prepare = |key: String, parent: String| PrepareSnapshotRequest {
        namespace: c.ns.clone(),
        key,
        parent,
        ..Default::default()
    };
    match cmd {
        SnapshotCommand::Ls => list(c, &api),
        SnapshotCommand::Prepare { key, parent } => {
            let r = prepare(key, parent.unwrap_or_default());
            api.prepare(ctx(SHORT), &r)
                .map(print_mounts)
                .map_err(rpc_err)
        }
        SnapshotCommand::View { key, parent } => {
            let r = prepare(key, parent);
            api.view(ctx(SHORT), &r).map(print_mounts).map_err(rpc_err)
        }
        SnapshotCommand::Commit { name, key } => {
            let r = CommitSnapshotRequest {
                namespace: c.ns.clone(),
                name,
                key,
                ..Default::default()
            };
            api.commit(ctx(SHORT), &r).map(drop).map_err(rpc_err)
        }
        SnapshotCommand::Mounts { key } => api
            .mounts(ctx(SHORT), &one(key))
            .map(print_mounts)
            .map_err(rpc_err),
        SnapshotCommand::Usage { key } => {
            let u = api.usage(ctx(SHORT), &one(key)).map_err(rpc_err)?;
            println!("{} bytes, {} inodes", u.size, u.inodes);
            Ok(())
        }
        SnapshotCommand::Rm { key } => api.remove(ctx(SHORT), &one(key)).map(drop).map_err(rpc_err),
    }
}

fn list(c: &Conn, api: &SnapshotsClient) -> Result<(), String> {
    let req = ListSnapshotsRequest {
        namespace: c.ns.clone(),
        ..Default::default()
    };
    let r = api.list_snapshots(ctx(SHORT), &req).map_err(rpc_err)?;
    println!("{:<75} {:<75} KIND", "KEY", "PARENT");
    for s in r.snapshots {
        println!("{:<75} {:<75} {}", s.key, s.parent, s.kind);
    }
    Ok(())
}

pub fn content(c: &Conn, cmd: ContentCommand) -> Result<(), String> {
    let ContentCommand::Ls = cmd;
    let req = ListContentRequest {
        namespace: c.ns.clone(),
        ..Default::default()
    };
    let r = ContentClient::new(c.client.clone())
        .list_content(ctx(SHORT), &req)
        .map_err(rpc_err)?;
    println!("{:<73} {:>10} MEDIA TYPE", "DIGEST", "SIZE");
    for b in r.blobs {
        println!("{:<73} {:>10} {}", b.digest, b.size, b.media_type);
    }
    Ok(())
}
