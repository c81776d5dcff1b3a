//! skiffd pulling from a real registry (Debian's docker-registry, distribution 2.8, our
//! own process on 127.0.0.1): pull and run, no blob fetched twice, clear errors (a
//! missing tag, a wrong digest, a refused login, a registry gone), TLS with basic auth,
//! a connection cut mid-blob (resumed with Range), manifests and images past the import
//! limits, a cancelled pull, and the metrics endpoint.

use skiff_integration::bundle::{busybox_rootfs, TempDir};
use skiff_integration::containerd::{stderr, stdout};
use skiff_integration::oci::{layer, layer_of_dir, Entry, Image, Parts};
use skiff_integration::registry::{lying_registry, token_registry, Faults, Proxy, Registry};
use skiff_integration::skiffd::{assert_empty, files, ok, Skiffd};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

/// busybox as one gzipped layer (about 1 MiB).
fn busybox() -> Parts {
    let tmp = TempDir::new("busybox-layer").unwrap();
    let root = tmp.path().join("root");
    busybox_rootfs(&root).unwrap();
    Image {
        layers: vec![layer_of_dir(&root)],
        gzip: true,
        ..Default::default()
    }
    .parts()
}

fn pull(d: &Skiffd, args: &[&str]) -> Output {
    let mut c = d.skiff_command();
    c.args(["image", "pull"]).args(args).stdin(Stdio::null());
    c.output().unwrap()
}

#[test]
fn pull_and_run_and_a_second_pull_fetches_no_blob_again() {
    let reg = Registry::start();
    let parts = busybox();
    reg.push("test/busybox", "1", &parts);
    let d = Skiffd::start();
    let image = format!("{}/test/busybox:1", reg.host());
    let o = pull(&d, &[&image]);
    assert!(o.status.success(), "{}{}", stderr(&o), d.log());
    assert!(
        stdout(&o).starts_with(&format!("{image} sha256:")),
        "{}",
        stdout(&o)
    );
    // Piped: one line per blob as it ends (config and layer), and the unpacking.
    let progress = stderr(&o);
    assert_eq!(
        progress
            .lines()
            .filter(|l| l.starts_with("sha256:") && l.contains("fetched"))
            .count(),
        2,
        "{progress}"
    );
    let fetched = reg.blob_gets();
    assert_eq!(fetched, 2, "{}", reg.log());
    let o = d.skiff(&["run", "--rm", &image, "echo", "pulled and run"]);
    assert_eq!(stdout(&o), "pulled and run\n", "{}", stderr(&o));
    // Again: the manifest is asked for, no blob.
    let o = pull(&d, &["--quiet", &image]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stderr(&o), "", "--quiet printed progress");
    assert_eq!(
        reg.blob_gets(),
        fetched,
        "a second pull fetched blobs again"
    );
    // `skiff run` of an image not here pulls it (a second tag of the same content:
    // its blobs are the namespace's already).
    reg.push("test/busybox", "2", &parts);
    let two = format!("{}/test/busybox:2", reg.host());
    let o = d.skiff(&["run", "--rm", &two, "echo", "two"]);
    assert_eq!(stdout(&o), "two\n", "{}", stderr(&o));
    assert_eq!(reg.blob_gets(), fetched);
    assert!(files(&d.root().join("content/ingest")).is_empty());
}

#[test]
fn a_missing_tag_a_wrong_digest_and_a_registry_gone_fail_clearly_and_leave_nothing() {
    let mut reg = Registry::start();
    let parts = busybox();
    let manifest = reg.push("test/busybox", "1", &parts);
    let d = Skiffd::start();
    let host = reg.host();
    let o = pull(&d, &[&format!("{host}/test/busybox:nope")]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("has no manifest nope for test/busybox (MANIFEST_UNKNOWN"),
        "{}",
        stderr(&o)
    );
    let o = pull(&d, &[&format!("{host}/test/nothing:1")]);
    assert!(
        stderr(&o).contains("has no manifest 1 for test/nothing"),
        "{}",
        stderr(&o)
    );
    assert_empty(&d, "missing tag");
    // The layer's bytes changed in the registry's storage (same length): served as they
    // are, and refused by their digest.
    let layer = skiff_integration::oci::digest(&parts.layers[0]);
    let file = reg.blob_file(&layer);
    let mut bytes = std::fs::read(&file).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0xff;
    std::fs::write(&file, &bytes).unwrap();
    let o = pull(&d, &[&format!("{host}/test/busybox:1")]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains(&format!(
            "wrong digest from the registry: blob {layer} does not match its digest"
        )),
        "{}",
        stderr(&o)
    );
    assert_empty(&d, "wrong digest");
    // A manifest asked for by digest whose bytes hash to something else (the real
    // registry checks its manifests as it reads them: a server that lies instead).
    let liar = lying_registry(
        parts.manifest.clone(),
        "application/vnd.oci.image.manifest.v1+json",
    );
    let other = format!("sha256:{}", "0".repeat(64));
    let o = pull(&d, &[&format!("127.0.0.1:{liar}/test/busybox@{other}")]);
    assert!(
        stderr(&o).contains(&format!(
            "sent a manifest for {other} whose content hashes to {manifest}"
        )),
        "{}",
        stderr(&o)
    );
    assert_empty(&d, "wrong manifest digest");
    reg.stop();
    let o = pull(&d, &[&format!("{host}/test/busybox:1")]);
    assert!(
        stderr(&o).contains(&format!("cannot reach the registry {host}")),
        "{}",
        stderr(&o)
    );
    assert_empty(&d, "registry gone");
}

#[test]
fn tls_with_basic_auth_needs_the_right_login() {
    let reg = Registry::start_with(true, Some(("skiff", "s3cret")));
    reg.push("private/busybox", "1", &busybox());
    // The test CA for localhost:PORT, in containerd's hosts.toml form.
    let certs = TempDir::new("certs.d").unwrap();
    let host = format!("localhost:{}", reg.port);
    let dir = certs.path().join(&host);
    std::fs::create_dir_all(&dir).unwrap();
    let ca = reg.tls.as_ref().unwrap().ca.display().to_string();
    std::fs::write(
        dir.join("hosts.toml"),
        format!("server = \"https://{host}\"\nca = \"{ca}\"\n"),
    )
    .unwrap();
    let d = Skiffd::start_with(&["--registry-config", &certs.path().to_string_lossy()]);
    let image = format!("{host}/private/busybox:1");
    let o = pull(&d, &[&image]);
    assert!(
        stderr(&o).contains(&format!("{host} requires a login for private/busybox")),
        "{}",
        stderr(&o)
    );
    let o = pull(&d, &["--user", "skiff:wrong", &image]);
    assert!(
        stderr(&o).contains(&format!("{host} refused the login of \"skiff\"")),
        "{}",
        stderr(&o)
    );
    assert_empty(&d, "refused");
    // The login from docker's config.json (HOME of the CLI).
    let home = TempDir::new("home").unwrap();
    std::fs::create_dir_all(home.path().join(".docker")).unwrap();
    let auth = skiff_manager::registry::auth::basic("skiff", "s3cret");
    let config =
        serde_json::json!({"auths": {host.clone(): {"auth": auth.trim_start_matches("Basic ")}}});
    std::fs::write(home.path().join(".docker/config.json"), config.to_string()).unwrap();
    let o = d
        .skiff_command()
        .args(["image", "pull", &image])
        .env("HOME", home.path())
        .env_remove("DOCKER_CONFIG")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let o = d.skiff(&["run", "--rm", &image, "echo", "over TLS"]);
    assert_eq!(stdout(&o), "over TLS\n", "{}", stderr(&o));
    // A registry whose CA is not trusted is refused.
    let untrusted = Skiffd::start();
    let o = pull(&untrusted, &["--user", "skiff:s3cret", &image]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("cannot reach the registry"),
        "{}",
        stderr(&o)
    );
}

/// The bearer-token challenge: a token asked of the realm, with the scope and service
/// it named, and sent with the request again.
#[test]
fn a_bearer_token_challenge_is_answered() {
    let (port, seen) = token_registry();
    let d = Skiffd::start();
    let o = pull(
        &d,
        &["--plain-http", &format!("127.0.0.1:{port}/test/busybox:1")],
    );
    assert!(
        stderr(&o).contains("has no manifest 1 for test/busybox (MANIFEST_UNKNOWN"),
        "{}",
        stderr(&o)
    );
    let seen = seen.lock().unwrap().clone();
    assert!(
        seen.iter().any(|r| r.starts_with(
            "GET /token?scope=repository%3Atest%2Fbusybox%3Apull&service=skiff-test "
        )),
        "{seen:?}"
    );
    assert!(
        seen.iter()
            .any(|r| r.starts_with("GET /v2/test/busybox/manifests/1 ")
                && r.ends_with("| Bearer token-for-anonymous")),
        "{seen:?}"
    );
}

#[test]
fn a_registry_that_drops_the_connection_mid_blob_is_resumed_with_range() {
    let reg = Registry::start();
    let parts = busybox();
    assert!(parts.layers[0].len() > 256 << 10);
    reg.push("test/busybox", "1", &parts);
    let proxy = Proxy::start(reg.port, Some(100 << 10));
    let d = Skiffd::start();
    let image = format!("127.0.0.1:{}/test/busybox:1", proxy.port);
    let o = pull(&d, &[&image]);
    assert!(o.status.success(), "{}\n{}", stderr(&o), d.log());
    assert_eq!(
        proxy.cuts.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "never cut"
    );
    let ranged: Vec<String> = proxy
        .requests()
        .into_iter()
        .filter(|r| r.to_ascii_lowercase().contains("range: bytes="))
        .collect();
    assert_eq!(ranged.len(), 1, "{:?}", proxy.requests());
    let o = d.skiff(&["run", "--rm", &image, "echo", "resumed"]);
    assert_eq!(stdout(&o), "resumed\n", "{}", stderr(&o));
}

/// A registry that breaks every blob's connection: the pull gives up after its tries,
/// says so, and leaves nothing.
#[test]
fn a_registry_that_keeps_dropping_the_connection_fails_clearly() {
    let reg = Registry::start();
    reg.push("test/busybox", "1", &busybox());
    let proxy = Proxy::with(
        reg.port,
        Faults {
            cut_after: Some(64 << 10),
            always: true,
            ..Default::default()
        },
    );
    let d = Skiffd::start();
    let o = pull(&d, &[&format!("127.0.0.1:{}/test/busybox:1", proxy.port)]);
    assert!(
        !o.status.success(),
        "cuts {} {:?}",
        proxy.cuts.load(std::sync::atomic::Ordering::SeqCst),
        proxy.requests()
    );
    assert!(
        stderr(&o).contains("the registry went away while sending blob sha256:")
            && stderr(&o).contains("after 6 tries"),
        "{}",
        stderr(&o)
    );
    assert_empty(&d, "dropped");
}

#[test]
fn manifests_and_images_past_the_limits_are_refused() {
    let reg = Registry::start();
    let d = Skiffd::start_with(&["--max-metadata-size", "64k", "--max-layers", "3"]);
    let small = || layer(&[Entry::new("f", tar::EntryType::Regular).data(b"x")]);
    let big = Image {
        layers: vec![small()],
        manifest_padding: 100_000,
        ..Default::default()
    };
    reg.push("test/big", "1", &big.parts());
    let o = pull(&d, &[&format!("{}/test/big:1", reg.host())]);
    assert!(
        stderr(&o).contains("over the import limit --max-metadata-size 65536"),
        "{}",
        stderr(&o)
    );
    let many = Image {
        layers: (0..4).map(|_| small()).collect(),
        ..Default::default()
    };
    reg.push("test/many", "1", &many.parts());
    let o = pull(&d, &[&format!("{}/test/many:1", reg.host())]);
    assert!(
        stderr(&o).contains("the image has 4 layers: over the import limit --max-layers 3"),
        "{}",
        stderr(&o)
    );
    assert_empty(&d, "limits");
}

/// An index of two images, another architecture's first: this machine's is pulled.
#[test]
fn an_index_is_resolved_to_this_platform() {
    let reg = Registry::start();
    let ours = busybox();
    let other = Image {
        layers: vec![layer(&[
            Entry::new("wrong", tar::EntryType::Regular).data(b"x")
        ])],
        ..Default::default()
    }
    .parts();
    let ours_digest = reg.push("test/multi", "ours", &ours);
    let other_digest = reg.push("test/multi", "other", &other);
    let arch = if std::env::consts::ARCH == "x86_64" {
        "amd64"
    } else {
        "arm64"
    };
    let wrong = if arch == "amd64" { "s390x" } else { "amd64" };
    let desc = |d: &str, m: &[u8], a: &str| serde_json::json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": d, "size": m.len(), "platform": {"architecture": a, "os": "linux"}});
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [desc(&other_digest, &other.manifest, wrong), desc(&ours_digest, &ours.manifest, arch)],
    }))
    .unwrap();
    reg.put_manifest(
        "test/multi",
        "1",
        &index,
        "application/vnd.oci.image.index.v1+json",
    );
    let d = Skiffd::start();
    let image = format!("{}/test/multi:1", reg.host());
    let o = pull(&d, &[&image]);
    assert_eq!(
        stdout(&o),
        format!("{image} {ours_digest}\n"),
        "{}",
        stderr(&o)
    );
    let o = d.skiff(&["run", "--rm", &image, "echo", "this platform"]);
    assert_eq!(stdout(&o), "this platform\n", "{}", stderr(&o));
}

/// A mirror in containerd's hosts.toml form is asked first.
#[test]
fn a_mirror_from_hosts_toml_is_asked_first() {
    let reg = Registry::start();
    reg.push("test/busybox", "1", &busybox());
    let mirror = Proxy::start(reg.port, None);
    let certs = TempDir::new("certs.d").unwrap();
    let dir = certs.path().join(reg.host());
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("hosts.toml"),
        format!(
            "server = \"http://{}\"\n[host.\"http://127.0.0.1:{}\"]\n  capabilities = [\"pull\", \"resolve\"]\n",
            reg.host(),
            mirror.port
        ),
    )
    .unwrap();
    let d = Skiffd::start_with(&["--registry-config", &certs.path().to_string_lossy()]);
    let o = pull(&d, &[&format!("{}/test/busybox:1", reg.host())]);
    assert!(o.status.success(), "{}", stderr(&o));
    let asked: Vec<String> = mirror
        .requests()
        .iter()
        .filter_map(|r| r.lines().next().map(str::to_string))
        .collect();
    assert!(
        asked
            .iter()
            .any(|r| r.starts_with("GET /v2/test/busybox/manifests/1 ")),
        "{asked:?}"
    );
    assert_eq!(
        asked
            .iter()
            .filter(|r| r.contains("/blobs/sha256:"))
            .count(),
        2,
        "{asked:?}"
    );
}

/// A registry's layer that is a gzip bomb (600 MiB of zeros in about 600 KiB) against
/// `--max-unpacked-size 256m`: refused with the limit named as it unpacks, nothing left.
#[test]
fn a_gzip_bomb_layer_from_a_registry_is_stopped_at_the_limit() {
    use std::io::Read;
    let reg = Registry::start();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    {
        let mut tar = tar::Builder::new(&mut gz);
        let mut h = tar::Header::new_ustar();
        h.set_path("zeros").unwrap();
        h.set_size(600 << 20);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append(&h, std::io::repeat(0).take(600 << 20)).unwrap();
        tar.finish().unwrap();
    }
    let bomb = gz.finish().unwrap();
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{}", "1".repeat(64))]},
    }))
    .unwrap();
    let digest = skiff_integration::oci::digest;
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(&config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest(&bomb), "size": bomb.len()}],
    }))
    .unwrap();
    reg.push(
        "test/bomb",
        "1",
        &Parts {
            layers: vec![bomb],
            config,
            manifest,
        },
    );
    let d = Skiffd::start_with(&["--max-unpacked-size", "256m"]);
    let o = pull(&d, &[&format!("{}/test/bomb:1", reg.host())]);
    assert!(
        stderr(&o).contains("over the import limit --max-unpacked-size 268435456"),
        "{}",
        stderr(&o)
    );
    assert_empty(&d, "bomb");
}

/// Starts `skiff image pull` and waits until its first bytes are in the ingest directory.
fn pull_under_way(d: &Skiffd, image: &str) -> std::process::Child {
    let child = d
        .skiff_command()
        .args(["image", "pull", image])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let ingest = d.root().join("content/ingest");
    let deadline = Instant::now() + Duration::from_secs(30);
    while files(&ingest).is_empty() {
        assert!(
            Instant::now() < deadline,
            "the pull never started: {}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child
}

/// Until the ingest directory is empty and skiffd logged its `nth` cancel (or `limit`).
fn wait_cancelled(d: &Skiffd, nth: usize, limit: Duration) {
    let deadline = Instant::now() + limit;
    let cancels = |d: &Skiffd| d.log().matches("was cancelled").count();
    while !(files(&d.root().join("content/ingest")).is_empty() && cancels(d) >= nth) {
        assert!(Instant::now() < deadline, "not cancelled: {}", d.log());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A pull cancelled with Ctrl-C, and one whose client was killed (no progress polls
/// for 15 s): each stops, and leaves no image, blob, ingest file or snapshot.
#[test]
fn a_cancelled_pull_or_a_vanished_client_leaves_nothing() {
    let reg = Registry::start();
    // 8 MiB of incompressible layer, through a proxy that lets 16 KiB pass every 60 ms
    // (about 270 KiB/s, 30 s in all): still fetching when the client goes, and 15 s
    // after.
    let noise: Vec<u8> = (0..8u32 << 20)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let parts = Image {
        layers: vec![layer(&[
            Entry::new("noise", tar::EntryType::Regular).data(&noise)
        ])],
        ..Default::default()
    }
    .parts();
    reg.push("test/noise", "1", &parts);
    let slow = Proxy::with(
        reg.port,
        Faults {
            pause: Some(Duration::from_millis(60)),
            ..Default::default()
        },
    );
    let d = Skiffd::start();
    let image = format!("127.0.0.1:{}/test/noise:1", slow.port);
    let child = pull_under_way(&d, &image);
    // SAFETY: kill(2) of the skiff this test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("cancelled"), "{}", stderr(&o));
    wait_cancelled(&d, 1, Duration::from_secs(10));
    assert_empty(&d, "Ctrl-C");
    let mut child = pull_under_way(&d, &image);
    let killed = Instant::now();
    let _ = child.kill();
    let _ = child.wait();
    wait_cancelled(&d, 2, Duration::from_secs(40));
    assert!(
        killed.elapsed() >= Duration::from_secs(14),
        "cancelled before the heartbeat ran out"
    );
    skiff_integration::report(&format!(
        "a pull whose client was killed was cancelled {:.1} s later",
        killed.elapsed().as_secs_f64()
    ));
    assert!(
        d.log()
            .contains("was cancelled by its client, or its client went away"),
        "{}",
        d.log()
    );
    assert_empty(&d, "client killed");
}

/// `--metrics-address 127.0.0.1:0`: skiffd says where, and serves Prometheus text.
#[test]
fn metrics_are_served_in_prometheus_text() {
    let reg = Registry::start();
    reg.push("test/busybox", "1", &busybox());
    let d = Skiffd::start_with(&["--metrics-address", "127.0.0.1:0"]);
    let image = format!("{}/test/busybox:1", reg.host());
    ok(&pull(&d, &[&image]));
    ok(&d.skiff(&["run", "-d", "--name", "m", &image, "sleep", "60"]));
    let address = d
        .log()
        .lines()
        .find_map(|l| {
            l.split("metrics on ")
                .nth(1)
                .map(str::trim)
                .map(str::to_string)
        })
        .expect("skiffd logs `metrics on HOST:PORT`");
    let body = http_get(&address, "/v1/metrics");
    assert!(body.starts_with("HTTP/1.1 200 OK\r\n"), "{body}");
    assert!(
        body.contains("Content-Type: text/plain; version=0.0.4"),
        "{body}"
    );
    for line in [
        "skiff_pulls_total{result=\"ok\"} 1\n",
        "skiff_images{namespace=\"default\"} 1\n",
        "skiff_tasks{namespace=\"default\",state=\"running\"} 1\n",
        "skiff_containers{namespace=\"default\",state=\"running\"} 1\n",
        "# TYPE skiff_pull_duration_seconds histogram\n",
        "skiff_pull_duration_seconds_count 1\n",
        "skiff_shim_rpc_duration_seconds_count{method=\"Create\"} 1\n",
    ] {
        assert!(body.contains(line), "no {line:?} in:\n{body}");
    }
    let bytes: u64 = body
        .lines()
        .find_map(|l| l.strip_prefix("skiff_content_bytes "))
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(bytes > 500_000, "{body}");
    assert!(http_get(&address, "/nope").starts_with("HTTP/1.1 404"));
    ok(&d.skiff(&["rm", "-f", "m"]));
}

fn http_get(address: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(address).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {address}\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}
