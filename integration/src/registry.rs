//! A private registry per test: Debian's `docker-registry` (distribution 2.8) started
//! as our own process on 127.0.0.1 with a free port, a temporary root and config (never
//! the package's service), optionally with TLS (a CA and certificate made at test time
//! with openssl) and basic auth (an htpasswd file, bcrypt, from apache2-utils); images
//! pushed to it over the distribution API (`push`); and a TCP proxy in front of it that
//! counts requests and can cut a blob's response short (`Proxy`).

use crate::oci::{digest, Parts};
use skiff_test_support::bundle::TempDir;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

/// A free port on 127.0.0.1 (bound, then released for the registry to take).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// TLS material made at test time: a CA, and a certificate for localhost and
/// 127.0.0.1 signed by it.
pub struct Tls {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Tls {
    pub fn make(dir: &Path) -> Tls {
        let run = |args: &[&str]| {
            let o = Command::new("openssl")
                .args(args)
                .current_dir(dir)
                .output()
                .expect("openssl (Debian's openssl package)");
            assert!(
                o.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        };
        std::fs::write(
            dir.join("san.cnf"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
        )
        .unwrap();
        run(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=skiff test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ]);
        run(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ]);
        run(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "san.cnf",
            "-out",
            "server.pem",
        ]);
        Tls {
            ca: dir.join("ca.pem"),
            cert: dir.join("server.pem"),
            key: dir.join("server.key"),
        }
    }
}

pub struct Registry {
    pub dir: TempDir,
    pub port: u16,
    child: Option<Child>,
    pub tls: Option<Tls>,
    /// (user, password) when it wants a login.
    pub login: Option<(String, String)>,
}

impl Registry {
    pub fn start() -> Registry {
        Registry::start_with(false, None)
    }

    /// With TLS (`tls`) and basic auth (`login`).
    pub fn start_with(tls: bool, login: Option<(&str, &str)>) -> Registry {
        assert!(
            Path::new(REGISTRY_BIN).exists(),
            "{REGISTRY_BIN} is missing: apt-get install docker-registry (.ci/run does)"
        );
        let dir = TempDir::new("registry").unwrap();
        let tls = tls.then(|| Tls::make(dir.path()));
        let port = free_port();
        let mut config = format!(
            "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.path().join("data").display()
        );
        if let Some(t) = &tls {
            config.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                t.cert.display(),
                t.key.display()
            ));
        }
        if let Some((user, password)) = login {
            let o = Command::new("htpasswd")
                .args(["-Bbn", user, password])
                .output()
                .expect("htpasswd (Debian's apache2-utils)");
            assert!(o.status.success());
            std::fs::write(dir.path().join("htpasswd"), &o.stdout).unwrap();
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: skiff-test\n    path: {}\n",
                dir.path().join("htpasswd").display()
            ));
        }
        std::fs::write(dir.path().join("config.yml"), config).unwrap();
        let mut r = Registry {
            dir,
            port,
            child: None,
            tls,
            login: login.map(|(u, p)| (u.to_string(), p.to_string())),
        };
        r.spawn();
        r
    }

    fn spawn(&mut self) {
        let log = std::fs::File::create(self.dir.path().join("registry.log")).unwrap();
        let child = Command::new(REGISTRY_BIN)
            .arg("serve")
            .arg(self.dir.path().join("config.yml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting docker-registry");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "the registry did not come up:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Its log (the access log too: a line per request).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// Blob GETs it has served so far (from its access log).
    pub fn blob_gets(&self) -> usize {
        self.log()
            .lines()
            .filter(|l| l.contains("\"GET /v2/") && l.contains("/blobs/sha256:"))
            .count()
    }

    /// `127.0.0.1:PORT` (or `localhost:PORT` with TLS: the certificate names both).
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn base(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// Where a blob's bytes are kept (to corrupt them).
    pub fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.dir
            .path()
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn agent(&self) -> ureq::Agent {
        let mut tls = ureq::tls::TlsConfig::builder();
        if let Some(t) = &self.tls {
            let pem = std::fs::read(&t.ca).unwrap();
            let ca = ureq::tls::Certificate::from_pem(&pem).unwrap();
            tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&[ca]));
        }
        let _ = rustls_ring_default();
        ureq::Agent::config_builder()
            .tls_config(tls.build())
            .http_status_as_error(false)
            .build()
            .into()
    }

    fn authorization(&self) -> Option<String> {
        self.login
            .as_ref()
            .map(|(u, p)| skiff_manager::registry::auth::basic(u, p))
    }

    /// Pushes an image as `repo:tag` over the distribution API: each blob by a POST
    /// that opens an upload and a PUT that completes it, then the manifest.
    pub fn push(&self, repo: &str, tag: &str, parts: &Parts) -> String {
        let agent = self.agent();
        let mut blobs: Vec<&Vec<u8>> = parts.layers.iter().collect();
        blobs.push(&parts.config);
        for blob in blobs {
            let mut post = agent.post(format!("{}/v2/{repo}/blobs/uploads/", self.base()));
            if let Some(a) = self.authorization() {
                post = post.header("Authorization", &a);
            }
            let r = post.send_empty().unwrap();
            assert_eq!(r.status(), 202, "opening an upload");
            let location = r.headers()["location"].to_str().unwrap().to_string();
            let url = if location.starts_with("http") {
                location
            } else {
                format!("{}{location}", self.base())
            };
            let sep = if url.contains('?') { '&' } else { '?' };
            let mut put = agent
                .put(format!("{url}{sep}digest={}", digest(blob)))
                .header("Content-Type", "application/octet-stream");
            if let Some(a) = self.authorization() {
                put = put.header("Authorization", &a);
            }
            let r = put.send(&blob[..]).unwrap();
            assert_eq!(r.status(), 201, "completing an upload");
        }
        self.put_manifest(
            repo,
            tag,
            &parts.manifest,
            "application/vnd.oci.image.manifest.v1+json",
        )
    }

    /// PUT of a manifest or index as `repo:reference`; its digest.
    pub fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        bytes: &[u8],
        media_type: &str,
    ) -> String {
        let mut put = self
            .agent()
            .put(format!("{}/v2/{repo}/manifests/{reference}", self.base()))
            .header("Content-Type", media_type);
        if let Some(a) = self.authorization() {
            put = put.header("Authorization", &a);
        }
        let r = put.send(bytes).unwrap();
        assert_eq!(r.status(), 201, "putting the manifest");
        digest(bytes)
    }
}

fn rustls_ring_default() -> Result<(), ()> {
    #[allow(deprecated)]
    rustls::crypto::ring::default_provider()
        .install_default()
        .map_err(drop)
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A TCP proxy in front of a server: it keeps the request lines it sees, and cuts the
/// first response to a blob GET after `cut_after` bytes (then passes all).
pub struct Proxy {
    pub port: u16,
    pub requests: Arc<Mutex<Vec<String>>>,
    pub cuts: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

/// What the proxy does to responses.
#[derive(Clone, Copy, Default)]
pub struct Faults {
    /// Cut the first blob response this many bytes on.
    pub cut_after: Option<u64>,
    /// Pause this long after every 16 KiB sent (a slow registry).
    pub pause: Option<Duration>,
    /// Cut every blob response, not only the first (a registry gone for good).
    pub always: bool,
}

impl Proxy {
    pub fn start(upstream: u16, cut_after: Option<u64>) -> Proxy {
        Proxy::with(
            upstream,
            Faults {
                cut_after,
                ..Default::default()
            },
        )
    }

    pub fn with(upstream: u16, faults: Faults) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let cuts = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, c, s) = (requests.clone(), cuts.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let _ = client.set_nonblocking(false);
                        let (r, c) = (r.clone(), c.clone());
                        std::thread::spawn(move || relay(client, upstream, &r, &c, faults));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Proxy {
            port,
            requests,
            cuts,
            stop,
        }
    }

    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// One client connection: requests up (their heads recorded), responses down; once a
/// blob was asked for on it, the response is cut once, `cut_after` bytes on, if asked.
fn relay(
    client: TcpStream,
    upstream: u16,
    requests: &Arc<Mutex<Vec<String>>>,
    cuts: &AtomicU64,
    faults: Faults,
) {
    let cut_after = faults.cut_after;
    let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
        return;
    };
    let (mut c_read, mut s_write) = (client.try_clone().unwrap(), server.try_clone().unwrap());
    let blob_asked = Arc::new(AtomicBool::new(false));
    let asked = blob_asked.clone();
    // Recorded as they pass (a pooled connection may stay open past the test's look).
    let rec = requests.clone();
    let up = std::thread::spawn(move || {
        // Raw bytes (a TLS hello must pass untouched); request heads are read off them.
        let mut buf = [0u8; 16 * 1024];
        loop {
            let n = match c_read.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let text = String::from_utf8_lossy(&buf[..n]);
            for head in text
                .split("\r\n\r\n")
                .filter(|h| h.starts_with("GET ") || h.starts_with("HEAD "))
            {
                if head.starts_with("GET ") && head.contains("/blobs/sha256:") {
                    asked.store(true, Ordering::SeqCst);
                }
                rec.lock().unwrap().push(head.to_string());
            }
            if s_write.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = s_write.shutdown(std::net::Shutdown::Write);
    });
    let (mut s_read, mut c_write) = (server, client);
    let mut buf = [0u8; 16 * 1024];
    let mut sent = 0u64;
    loop {
        let n = match s_read.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let cut = cut_after.filter(|_| {
            blob_asked.load(Ordering::SeqCst) && (faults.always || cuts.load(Ordering::SeqCst) == 0)
        });
        if cut.is_none() || !blob_asked.load(Ordering::SeqCst) {
            sent = 0;
        }
        if let Some(limit) = cut {
            if sent + n as u64 > limit {
                let keep = (limit - sent.min(limit)) as usize;
                let _ = c_write.write_all(&buf[..keep]);
                cuts.fetch_add(1, Ordering::SeqCst);
                let _ = c_write.shutdown(std::net::Shutdown::Both);
                let _ = s_read.shutdown(std::net::Shutdown::Both);
                break;
            }
        }
        sent += n as u64;
        if c_write.write_all(&buf[..n]).is_err() {
            break;
        }
        if let Some(p) = faults.pause {
            std::thread::sleep(p);
        }
    }
    let _ = c_write.shutdown(std::net::Shutdown::Both);
    let _ = up.join();
}

/// A server that answers every request with `body` as `content_type` (a registry
/// that sends what it was not asked for); its port. It serves until the test ends.
pub fn lying_registry(body: Vec<u8>, content_type: &'static str) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            // One read, whatever it holds (a TLS hello too: answered in plain HTTP, as a
            // plain server would).
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf);
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = conn.write_all(&body);
        }
    });
    port
}

/// A registry front that wants a bearer token (`WWW-Authenticate: Bearer realm=...`):
/// its token service at `/token` hands `token-for-<user>` to a basic login (or an
/// anonymous token), and every API request with a token it handed out is answered 404
/// MANIFEST_UNKNOWN (enough to show the token was taken). Returns its port and the
/// requests it saw (request line and Authorization header).
pub fn token_registry() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let mut head = Vec::new();
            let mut buf = [0u8; 4096];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let head = String::from_utf8_lossy(&head).to_string();
            let line = head.lines().next().unwrap_or("").to_string();
            let authz = head
                .lines()
                .find_map(|l| {
                    l.strip_prefix("Authorization: ")
                        .or_else(|| l.strip_prefix("authorization: "))
                })
                .unwrap_or("")
                .to_string();
            log.lock().unwrap().push(format!("{line} | {authz}"));
            let (status, extra, body) = if line.starts_with("GET /token?") {
                let user = authz
                    .strip_prefix("Basic ")
                    .map(|_| "basic")
                    .unwrap_or("anonymous");
                (
                    "200 OK",
                    String::new(),
                    format!("{{\"token\":\"token-for-{user}\"}}"),
                )
            } else if authz.starts_with("Bearer token-for-") {
                (
                    "404 Not Found",
                    String::new(),
                    r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#
                        .to_string(),
                )
            } else {
                (
                    "401 Unauthorized",
                    format!(
                        "WWW-Authenticate: Bearer realm=\"http://127.0.0.1:{port}/token\",service=\"skiff-test\",scope=\"repository:test/busybox:pull\"\r\n"
                    ),
                    r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#.to_string(),
                )
            };
            let _ = write!(
                conn,
                "HTTP/1.1 {status}\r\n{extra}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (port, seen)
}
