//! ttrpc's framing, for the shim's own server and its events client: a 10-byte header
//! (payload length, stream id, both big-endian; message type; flags), then a protobuf
//! Request or Response. The ttrpc crate's threaded client and server cost the shim six
//! or more threads; this is the little of it the shim needs.

use protobuf::Message;
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

pub const HEADER: usize = 10;
pub const TYPE_REQUEST: u8 = 1;
pub const TYPE_RESPONSE: u8 = 2;
/// ttrpc's own limit on a message.
pub const MAX_MESSAGE: usize = 4 << 20;

/// (payload length, stream id, type) of a frame header.
pub fn header(b: &[u8]) -> Option<(usize, u32, u8)> {
    if b.len() < HEADER {
        return None;
    }
    let length = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
    let stream = u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
    Some((length, stream, b[8]))
}

pub fn frame(stream_id: u32, kind: u8, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + body.len());
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&stream_id.to_be_bytes());
    out.push(kind);
    out.push(0);
    out.extend_from_slice(body);
    out
}

/// A blocking unary client on one connection: requests one at a time.
pub struct UnaryClient {
    stream: UnixStream,
    next_stream: u32,
}

impl UnaryClient {
    /// `address`: a path, or `unix://PATH`.
    pub fn connect(address: &str) -> io::Result<UnaryClient> {
        let path = address.strip_prefix("unix://").unwrap_or(address);
        Ok(UnaryClient {
            stream: UnixStream::connect(path)?,
            next_stream: 1,
        })
    }

    /// Calls `/service/method`; returns the reply's payload, or the status as an error.
    pub fn call(
        &mut self,
        service: &str,
        method: &str,
        req: &impl Message,
        timeout: Duration,
    ) -> io::Result<Vec<u8>> {
        let stream_id = self.next_stream;
        // Client streams are odd.
        self.next_stream = self.next_stream.wrapping_add(2);
        let mut r = ttrpc::Request::new();
        r.service = service.to_string();
        r.method = method.to_string();
        r.timeout_nano = timeout.as_nanos() as i64;
        r.payload = req.write_to_bytes().map_err(io::Error::other)?;
        let body = r.write_to_bytes().map_err(io::Error::other)?;
        self.stream.set_write_timeout(Some(timeout))?;
        self.stream.set_read_timeout(Some(timeout))?;
        self.stream
            .write_all(&frame(stream_id, TYPE_REQUEST, &body))?;
        loop {
            let mut head = [0u8; HEADER];
            self.stream.read_exact(&mut head)?;
            let (length, id, _) = header(&head).expect("a whole header");
            if length > MAX_MESSAGE {
                return Err(io::Error::other(format!(
                    "a {length}-byte reply is too large"
                )));
            }
            let mut payload = vec![0u8; length];
            self.stream.read_exact(&mut payload)?;
            if id != stream_id {
                continue; // a late reply to a call that timed out
            }
            let res = ttrpc::Response::parse_from_bytes(&payload).map_err(io::Error::other)?;
            let status = res.status.as_ref();
            return match status.map(|s| s.code()) {
                None | Some(ttrpc::Code::OK) => Ok(res.payload),
                Some(code) => Err(io::Error::other(format!(
                    "{code:?}: {}",
                    status.map(|s| s.message()).unwrap_or_default()
                ))),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_carry_length_stream_and_type() {
        let f = frame(7, TYPE_RESPONSE, b"abc");
        assert_eq!(f.len(), HEADER + 3);
        assert_eq!(header(&f), Some((3, 7, TYPE_RESPONSE)));
        assert_eq!(&f[HEADER..], b"abc");
        assert_eq!(header(&f[..9]), None);
    }

    #[test]
    fn a_unary_call_round_trips_through_a_real_ttrpc_server() {
        use skiff_protos::events::ForwardRequest;
        use skiff_protos::events_ttrpc::{create_events, Events};
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;
        struct Count(Arc<AtomicUsize>);
        impl Events for Count {
            fn forward(
                &self,
                _: &ttrpc::TtrpcContext,
                _: ForwardRequest,
            ) -> ttrpc::Result<protobuf::well_known_types::empty::Empty> {
                self.0.fetch_add(1, Ordering::SeqCst);
                Ok(Default::default())
            }
        }
        let path = std::env::temp_dir().join(format!("skiff-wire-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let seen = Arc::new(AtomicUsize::new(0));
        let mut server = ttrpc::Server::new()
            .bind(&format!("unix://{}", path.display()))
            .unwrap()
            .register_service(create_events(Arc::new(Count(seen.clone()))));
        server.start().unwrap();
        let mut c = UnaryClient::connect(&path.display().to_string()).unwrap();
        for _ in 0..3 {
            c.call(
                "containerd.services.events.ttrpc.v1.Events",
                "Forward",
                &ForwardRequest::default(),
                Duration::from_secs(5),
            )
            .unwrap();
        }
        let err = c.call(
            "containerd.services.events.ttrpc.v1.Events",
            "Nope",
            &ForwardRequest::default(),
            Duration::from_secs(5),
        );
        assert!(err.is_err());
        assert_eq!(seen.load(Ordering::SeqCst), 3);
        server.shutdown();
        let _ = std::fs::remove_file(&path);
    }
}
