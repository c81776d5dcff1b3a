//! The metrics endpoint: a small HTTP/1.1 server on its own thread answering
//! `GET /v1/metrics` with Prometheus text (as containerd's `/v1/metrics`), one
//! connection at a time, each with a deadline, a request of at most 8 KiB; anything
//! else gets 404 or 405.

use crate::store::Store;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

/// Binds `address` (port 0 picks one) and serves on a thread; the address bound.
pub fn start(address: &str, store: Arc<Store>) -> Result<std::net::SocketAddr, String> {
    let listener =
        TcpListener::bind(address).map_err(|e| format!("metrics address {address}: {e}"))?;
    let bound = listener
        .local_addr()
        .map_err(|e| format!("metrics address {address}: {e}"))?;
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            for conn in listener.incoming().flatten() {
                let _ = serve(conn, &store);
            }
        })
        .map_err(|e| format!("starting the metrics server: {e}"))?;
    Ok(bound)
}

fn serve(mut conn: TcpStream, store: &Store) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    conn.set_write_timeout(Some(Duration::from_secs(5)))?;
    let mut req = Vec::new();
    let mut buf = [0u8; 1024];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") && req.len() < 8192 {
        let n = conn.read(&mut buf)?;
        if n == 0 {
            break;
        }
        req.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&req);
    let mut words = line.lines().next().unwrap_or("").split_whitespace();
    let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let (status, body) = match (method, path.split('?').next().unwrap_or("")) {
        ("GET", "/v1/metrics") => match store.gauges() {
            Ok(g) => ("200 OK", super::render(&g)),
            Err(e) => ("500 Internal Server Error", format!("{e}\n")),
        },
        ("GET", _) => (
            "404 Not Found",
            "not found: metrics are at /v1/metrics\n".into(),
        ),
        _ => ("405 Method Not Allowed", "only GET\n".into()),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes())?;
    conn.write_all(body.as_bytes())
}
