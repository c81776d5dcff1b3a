//! A session with one repository of one registry: its endpoints (mirrors, then the
//! server), an HTTP agent for each (ureq with rustls: the system's roots plus any CA
//! files the host's configuration names), and the authorisation each one asked for.
//! A 401 is answered once per endpoint: a bearer token fetched from the challenge's
//! realm (with the user's credentials, if any), or basic credentials.

use super::auth::{self, Challenge};
use super::hosts::{self, Endpoint};
use super::reference::Reference;
use crate::error::{Error, Result};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use ureq::tls::{Certificate, RootCerts, TlsConfig};

pub type Response = http::Response<ureq::Body>;

/// How skiffd reaches registries (its flags) and who the user is (the request's).
#[derive(Clone, Default)]
pub struct Options {
    pub config_dir: PathBuf,
    pub plain_http: bool,
    pub credentials: Option<(String, String)>,
}

pub struct Session {
    pub reference: Reference,
    pub endpoints: Vec<Endpoint>,
    agents: Vec<ureq::Agent>,
    credentials: Option<(String, String)>,
    /// Authorization header per endpoint, once a challenge was answered.
    authorization: Mutex<HashMap<usize, String>>,
}

/// The system's roots (read once).
fn system_roots() -> Arc<Vec<Certificate<'static>>> {
    static ROOTS: OnceLock<Arc<Vec<Certificate<'static>>>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let found = rustls_native_certs::load_native_certs();
            Arc::new(
                found
                    .certs
                    .iter()
                    .map(|der| Certificate::from_der(der).to_owned())
                    .collect(),
            )
        })
        .clone()
}

fn agent(e: &Endpoint) -> Result<ureq::Agent> {
    // ring rather than aws-lc-rs (rustls' default, which needs cmake and a C build):
    // ring's provider lacks only post-quantum key exchange, which registries do not need.
    #[allow(deprecated)]
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut roots = (*system_roots()).clone();
    for ca in &e.ca {
        let pem = std::fs::read(ca)
            .map_err(|err| Error::InvalidArgument(format!("CA file {}: {err}", ca.display())))?;
        for item in ureq::tls::parse_pem(&pem) {
            if let Ok(ureq::tls::PemItem::Certificate(c)) = item {
                roots.push(c);
            }
        }
    }
    let tls = TlsConfig::builder()
        .root_certs(RootCerts::Specific(Arc::new(roots)))
        .disable_verification(e.skip_verify)
        .build();
    let config = ureq::Agent::config_builder()
        .tls_config(tls)
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        .timeout_recv_body(None)
        .timeout_per_read(Some(Duration::from_secs(60)))
        .max_redirects(5)
        .user_agent(concat!("skiffd/", env!("CARGO_PKG_VERSION")))
        .build();
    Ok(config.into())
}

/// An error of a registry's JSON body (`{"errors":[{"code":..,"message":..}]}`).
pub fn registry_error(body: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    v["errors"]
        .as_array()
        .and_then(|e| e.first())
        .map(|e| {
            format!(
                "{}: {}",
                e["code"].as_str().unwrap_or("ERROR"),
                e["message"].as_str().unwrap_or("")
            )
        })
        .unwrap_or_default()
}

impl Session {
    pub fn open(reference: Reference, options: &Options) -> Result<Session> {
        let endpoints = hosts::endpoints(
            &options.config_dir,
            &reference.registry,
            reference.api_host(),
            options.plain_http,
        )?;
        let agents = endpoints.iter().map(agent).collect::<Result<Vec<_>>>()?;
        Ok(Session {
            reference,
            endpoints,
            agents,
            credentials: options.credentials.clone(),
            authorization: Mutex::new(HashMap::new()),
        })
    }

    /// GET of `path` under the repository (`/manifests/latest`) at endpoint `i`,
    /// answering one authentication challenge. The status is the caller's to judge.
    pub fn get(&self, i: usize, path: &str, headers: &[(&str, String)]) -> Result<Response> {
        let e = &self.endpoints[i];
        let url = e.url(&format!("/{}{path}", self.reference.repository));
        let authz = self.authorization.lock().unwrap().get(&i).cloned();
        let resp = self.send(i, &url, headers, authz.as_deref())?;
        if resp.status() != 401 {
            return Ok(resp);
        }
        let challenge = resp
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .and_then(auth::parse_challenge)
            .ok_or_else(|| {
                Error::Unauthenticated(format!(
                    "{} requires authentication in a form skiffd cannot answer",
                    e.host()
                ))
            })?;
        let header = self.answer(i, &challenge)?;
        self.authorization.lock().unwrap().insert(i, header.clone());
        let resp = self.send(i, &url, headers, Some(&header))?;
        if resp.status() == 401 || resp.status() == 403 {
            return Err(self.refused(e));
        }
        Ok(resp)
    }

    fn refused(&self, e: &Endpoint) -> Error {
        match &self.credentials {
            Some((user, _)) => Error::Unauthenticated(format!(
                "{} refused the login of {user:?} for {}",
                e.host(),
                self.reference.repository
            )),
            None => Error::Unauthenticated(format!(
                "{} requires a login for {} (none given: `skiff image pull --user`, or docker's config.json)",
                e.host(),
                self.reference.repository
            )),
        }
    }

    /// One request; a loopback registry that does not speak TLS is retried over HTTP.
    fn send(
        &self,
        i: usize,
        url: &str,
        headers: &[(&str, String)],
        authz: Option<&str>,
    ) -> Result<Response> {
        let e = &self.endpoints[i];
        let mut req = self.agents[i].get(url);
        for (k, v) in headers {
            req = req.header(*k, v.as_str());
        }
        if let Some(a) = authz {
            req = req.header("Authorization", a);
        }
        match req.call() {
            Ok(r) => Ok(r),
            Err(err) if e.http_fallback && !e.is_plain() && not_tls(&err) => {
                e.fall_back_to_http();
                self.send(i, &url.replacen("https://", "http://", 1), headers, authz)
            }
            Err(err) => Err(unreachable(e.host(), err)),
        }
    }

    /// The Authorization header that answers `challenge`.
    fn answer(&self, i: usize, challenge: &Challenge) -> Result<String> {
        let e = &self.endpoints[i];
        let may_send = !e.is_plain() || hosts::is_loopback(e.host());
        match challenge {
            Challenge::Basic => {
                let (u, p) = self.credentials.as_ref().ok_or_else(|| self.refused(e))?;
                if !may_send {
                    return Err(Error::Unauthenticated(format!(
                        "{} asks for a password over plain HTTP: refused (use TLS)",
                        e.host()
                    )));
                }
                Ok(auth::basic(u, p))
            }
            Challenge::Bearer {
                realm,
                service,
                scope,
            } => self.token(i, realm, service.as_deref(), scope.as_deref()),
        }
    }

    fn token(
        &self,
        i: usize,
        realm: &str,
        service: Option<&str>,
        scope: Option<&str>,
    ) -> Result<String> {
        let e = &self.endpoints[i];
        let scope = scope
            .map(str::to_string)
            .unwrap_or_else(|| format!("repository:{}:pull", self.reference.repository));
        let mut url = format!("{realm}?scope={}", encode(&scope));
        if let Some(s) = service {
            url.push_str(&format!("&service={}", encode(s)));
        }
        let mut req = self.agents[i].get(&url);
        if let Some((u, p)) = &self.credentials {
            if !realm.starts_with("https://") && !hosts::is_loopback(e.host()) {
                return Err(Error::Unauthenticated(format!(
                    "the token service {realm} of {} is not TLS: credentials not sent",
                    e.host()
                )));
            }
            req = req.header("Authorization", auth::basic(u, p));
        }
        let mut resp = req.call().map_err(|err| unreachable(realm, err))?;
        if resp.status() == 401 || resp.status() == 403 {
            return Err(self.refused(e));
        }
        if resp.status() != 200 {
            return Err(Error::Unavailable(format!(
                "the token service {realm} of {} answered {}",
                e.host(),
                resp.status()
            )));
        }
        let body = resp
            .body_mut()
            .with_config()
            .limit(1 << 20)
            .read_to_vec()
            .map_err(|err| unreachable(realm, err))?;
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        let token = v["token"]
            .as_str()
            .or(v["access_token"].as_str())
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                Error::Unavailable(format!("the token service {realm} gave no token"))
            })?;
        Ok(format!("Bearer {token}"))
    }
}

/// Whether a failed HTTPS attempt met a server that speaks plain HTTP: its answer to
/// our hello is not a TLS record. (A certificate that does not verify is not that.)
fn not_tls(err: &ureq::Error) -> bool {
    match err {
        ureq::Error::Rustls(e) => matches!(
            e,
            rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. }
        ),
        ureq::Error::Io(e) => {
            e.to_string().contains("InvalidContentType")
                || e.to_string().contains("corrupt message")
        }
        _ => false,
    }
}

/// A registry that cannot be reached, or went away.
pub fn unreachable(host: &str, err: ureq::Error) -> Error {
    Error::Unavailable(format!("cannot reach the registry {host}: {err}"))
}

fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
