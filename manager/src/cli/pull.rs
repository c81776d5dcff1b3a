//! `skiff image pull` (and `skiff run` pulling a missing image): the reference, the
//! login (`--user`, else docker's config.json for the registry), the pull under
//! progress.

use super::args::RegistryFlags;
use super::conn::{ctx, rpc_err, Conn, LONG, SHORT};
use super::progress::watch;
use crate::registry::{auth, Reference};
use skiff_protos::manager::{Image, ImageRequest, PullRequest};
use skiff_protos::manager_ttrpc::ImagesClient;

/// (user, password): `--user USER:PASSWORD`, else docker's config.json.
fn login(flags: &RegistryFlags, registry: &str) -> Result<Option<(String, String)>, String> {
    if let Some(u) = &flags.user {
        let (user, password) = u.split_once(':').ok_or("--user takes USER:PASSWORD")?;
        return Ok(Some((user.to_string(), password.to_string())));
    }
    let Some(path) = auth::docker_config_path() else {
        return Ok(None);
    };
    match std::fs::read(&path) {
        Ok(bytes) => {
            let config: serde_json::Value =
                serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
            Ok(auth::credentials_from(&config, registry))
        }
        Err(_) => Ok(None),
    }
}

pub fn pull(c: &Conn, reference: &str, flags: &RegistryFlags) -> Result<Image, String> {
    let r = Reference::parse(reference).map_err(|e| e.to_string())?;
    let credentials = login(flags, &r.registry)?;
    let (username, password) = credentials.unwrap_or_default();
    let api = ImagesClient::new(c.client.clone());
    let name = r.to_string();
    watch(c, flags.quiet, |job_id| {
        let req = PullRequest {
            namespace: c.ns.clone(),
            reference: name.clone(),
            plain_http: flags.plain_http,
            username,
            password,
            job_id,
            ..Default::default()
        };
        api.pull_image(ctx(LONG), &req)
            .map(|r| (r.image.unwrap_or_default(), r.progress))
            .map_err(|e| format!("pulling {name}: {}", rpc_err(e)))
    })
}

/// Whether the namespace has `image` (as named, or as its normalised reference).
pub fn have(c: &Conn, image: &str) -> bool {
    let api = ImagesClient::new(c.client.clone());
    let mut names = vec![image.to_string()];
    if let Ok(r) = Reference::parse(image) {
        names.push(r.to_string());
    }
    names.iter().any(|name| {
        let req = ImageRequest {
            namespace: c.ns.clone(),
            name: name.clone(),
            ..Default::default()
        };
        api.get_image(ctx(SHORT), &req).is_ok()
    })
}
