//! `skiff image`: import, pull, ls, info, rm.

use super::args::ImageCommand;
use super::conn::{ctx, rpc_err, Conn, LONG, SHORT};
use skiff_protos::manager::{ImageRequest, ImportRequest, ListImagesRequest};
use skiff_protos::manager_ttrpc::ImagesClient;

pub fn image(c: &Conn, cmd: ImageCommand) -> Result<(), String> {
    let api = ImagesClient::new(c.client.clone());
    let named = |name: &str| ImageRequest {
        namespace: c.ns.clone(),
        name: name.to_string(),
        ..Default::default()
    };
    match cmd {
        ImageCommand::Import { file, name, quiet } => {
            import(c, &api, &file, name.unwrap_or_default(), quiet)
        }
        ImageCommand::Pull {
            reference,
            registry,
        } => {
            let i = super::pull::pull(c, &reference, &registry)?;
            println!("{} {}", i.name, i.target_digest);
            Ok(())
        }
        ImageCommand::Ls => {
            let req = ListImagesRequest {
                namespace: c.ns.clone(),
                ..Default::default()
            };
            let r = api.list_images(ctx(SHORT), &req).map_err(rpc_err)?;
            println!("{:<48} {:<73} {:>10}", "NAME", "DIGEST", "SIZE");
            for i in r.images {
                println!("{:<48} {:<73} {:>10}", i.name, i.target_digest, i.size);
            }
            Ok(())
        }
        ImageCommand::Info { name } => {
            let i = api.get_image(ctx(SHORT), &named(&name)).map_err(rpc_err)?;
            let v = serde_json::json!({"name": i.name, "target": i.target_digest, "media_type": i.target_media_type, "snapshot": i.snapshot_key, "size": i.size, "labels": i.labels});
            println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            Ok(())
        }
        ImageCommand::Rm { names } => {
            for name in names {
                api.delete_image(ctx(SHORT), &named(&name))
                    .map_err(|e| format!("removing image {name}: {}", rpc_err(e)))?;
                println!("{name}");
            }
            Ok(())
        }
    }
}

fn import(
    c: &Conn,
    api: &ImagesClient,
    file: &str,
    name: String,
    quiet: bool,
) -> Result<(), String> {
    let path = std::fs::canonicalize(file).map_err(|e| format!("{file}: {e}"))?;
    let r = super::progress::watch(c, quiet, |job_id| {
        let req = ImportRequest {
            namespace: c.ns.clone(),
            path: path.display().to_string(),
            name,
            job_id,
            ..Default::default()
        };
        api.import_image(ctx(LONG), &req)
            .map(|mut r| {
                let progress = std::mem::take(&mut r.progress);
                (r, progress)
            })
            .map_err(|e| format!("importing {file}: {}", rpc_err(e)))
    })?;
    for i in r.images {
        println!("{} {}", i.name, i.target_digest);
    }
    Ok(())
}
