//! Arbitrary bytes as what a client sends on the shim's socket: cut into frames by the
//! server's own connection reader, each request decoded and dispatched to the Task
//! service the shim serves with. The service has no containers, so every RPC ends in an
//! answer without touching the machine; an RPC that would run a runtime command (only
//! Create gets that far without a container, once its checks pass) hands back its job,
//! which is dropped unrun. Every answer must encode as a ttrpc Response.
#![no_main]

use libfuzzer_sys::fuzz_target;
use protobuf::Message;
use skiff_shim::events::EventPublisher;
use skiff_shim::server::connection::Conn;
use skiff_shim::server::dispatch::{dispatch, Call};
use skiff_shim::stdio::Pumps;
use skiff_shim::sys::oom::OomWatcher;
use skiff_shim::sys::poller::Poller;
use skiff_shim::sys::reaper::Reaper;
use skiff_shim::task::{Parts, Reply, TaskService};
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, OnceLock};

fn service() -> &'static TaskService {
    static S: OnceLock<TaskService> = OnceLock::new();
    S.get_or_init(|| {
        let poller = Arc::new(Poller::new().unwrap());
        TaskService::new(Parts {
            namespace: "fuzz".into(),
            driver: &skiff_shim::options::driver::RUNC,
            publisher: EventPublisher::start(None).unwrap(),
            reaper: Reaper::new().unwrap(),
            oom: OomWatcher::start().unwrap(),
            pumps: Arc::new(Pumps::new(poller)),
        })
    })
}

fuzz_target!(|data: &[u8]| {
    let (server_end, mut client) = UnixStream::pair().unwrap();
    server_end.set_nonblocking(true).unwrap();
    let mut conn = Conn::new(1, server_end);
    // More than a socket buffer holds would block the writer: take what fits.
    let data = &data[..data.len().min(64 * 1024)];
    client.write_all(data).unwrap();
    drop(client);
    conn.fill();
    while let Ok(Some(frame)) = conn.next_frame() {
        if frame.kind != 1 {
            continue;
        }
        let Ok(req) = ttrpc::Request::parse_from_bytes(&frame.payload) else {
            continue;
        };
        match dispatch(service(), &req.service, &req.method, &req.payload) {
            Call::Reply(Reply::Now(Ok(payload))) => {
                let res = ttrpc::Response {
                    payload,
                    ..Default::default()
                };
                ttrpc::Response::parse_from_bytes(&res.write_to_bytes().unwrap()).unwrap();
            }
            Call::Reply(Reply::Now(Err(e))) => {
                let status = skiff_shim::server::status::of(&e);
                assert!(status.code() != ttrpc::Code::OK, "an error answered OK: {e}");
            }
            Call::Reply(Reply::Later(_)) | Call::Wait(_) | Call::WaitSandbox(_) => {}
        }
    }
});
