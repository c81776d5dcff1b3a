//! A blocking unary ttrpc client on one connection: how the shim forwards its events to
//! the manager's `Events/Forward` endpoint.

use crate::wire::frame::{frame, header, HEADER, MAX_MESSAGE, TYPE_REQUEST};
use protobuf::Message;
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

/// Why a call failed: the connection (try again on a new one), or the server's answer
/// (it took the request and refused it: trying again would get the same answer).
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("{0}")]
    Transport(#[from] io::Error),
    #[error("{code:?}: {message}")]
    Refused { code: ttrpc::Code, message: String },
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
    ) -> Result<Vec<u8>, CallError> {
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
                return Err(io::Error::other(format!("a {length}-byte reply is too large")).into());
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
                Some(code) => Err(CallError::Refused {
                    code,
                    message: status.map(|s| s.message()).unwrap_or_default().to_string(),
                }),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
