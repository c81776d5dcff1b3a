//! Arbitrary bytes as a ttrpc frame arriving on the shim's socket: the header is parsed,
//! the Request decoded, and the call dispatched through the same generated handlers and
//! Task service the shim serves with. The service has no containers, so every RPC ends
//! in an answer without touching the machine, except Create, which would write into the
//! bundle and mount: for Create the request goes through `check_create`, the checks
//! Create itself runs before any of that.
#![no_main]

use libfuzzer_sys::fuzz_target;
use protobuf::Message;
use skiff_shim::events::EventPublisher;
use skiff_shim::sys::oom::OomWatcher;
use skiff_shim::sys::poller::Poller;
use skiff_shim::sys::reaper::Reaper;
use skiff_shim::server::dispatch::TaskRpc;
use skiff_shim::task::{ShutdownSignal, TaskService};
use skiff_shim::stdio::Pumps;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

type Handlers = HashMap<String, Box<dyn ttrpc::MethodHandler + Send + Sync>>;

fn handlers() -> &'static Handlers {
    static H: OnceLock<Handlers> = OnceLock::new();
    H.get_or_init(|| {
        let publisher = EventPublisher::start(None).unwrap();
        let reaper = Reaper::new().unwrap();
        let pumps = Arc::new(Pumps::new(Arc::new(Poller::new().unwrap())));
        let oom = OomWatcher::start("fuzz".into(), publisher.clone()).unwrap();
        let service = TaskService::new(
            "fuzz".into(),
            publisher,
            reaper,
            oom,
            pumps,
            Arc::new(ShutdownSignal::default()),
        );
        skiff_protos::shim_ttrpc::create_task(Arc::new(TaskRpc(Arc::new(service))))
    })
}

fuzz_target!(|data: &[u8]| {
    // The 10-byte ttrpc header: length, stream id (big endian), type, flags.
    if data.len() < 10 {
        return;
    }
    let length = u32::from_be_bytes([data[0], data[1], data[2], data[3]]) as usize;
    let stream_id = u32::from_be_bytes([data[4], data[5], data[6], data[7]]);
    let payload = &data[10..];
    if data[8] != ttrpc::proto::MESSAGE_TYPE_REQUEST || length != payload.len() {
        return;
    }
    let Ok(req) = ttrpc::Request::parse_from_bytes(payload) else {
        return;
    };
    let key = format!("/{}/{}", req.service, req.method);
    if key == "/containerd.task.v2.Task/Create" {
        if let Ok(create) = skiff_protos::shim::CreateTaskRequest::parse_from_bytes(&req.payload) {
            let _ = TaskService::check_create(&create);
        }
        return;
    }
    let Some(handler) = handlers().get(&key) else {
        return;
    };
    let (res_tx, res_rx) = std::sync::mpsc::channel();
    let (_cancel_tx, cancel_rx) = crossbeam::channel::unbounded();
    let ctx = ttrpc::TtrpcContext {
        fd: -1,
        cancel_rx,
        mh: ttrpc::MessageHeader::new_request(stream_id, length as u32),
        res_tx,
        metadata: HashMap::new(),
        timeout_nano: req.timeout_nano,
        conn_ctx: Default::default(),
    };
    let _ = handler.handler(ctx, req);
    // A reply must come back as a well-formed frame.
    if let Ok((header, body)) = res_rx.try_recv() {
        assert_eq!(header.length as usize, body.len());
        ttrpc::Response::parse_from_bytes(&body).expect("the shim's reply decodes");
    }
});
