//! The shim's one loop, on its main thread: the listening socket and its connections,
//! SIGCHLD (the reaper's signalfd), OOM notifications and the stdio pumps all wait on
//! one epoll instance. ttrpc frames are read here and handed to the generated handlers
//! one at a time; a Wait whose process still runs is parked and answered when its exit
//! has been reported. This replaces the ttrpc crate's threaded server (a listener, and
//! per connection a reader, a writer and a worker pool) and a thread per stdio stream.

use crate::stdio::{Pumps, PUMP_TOKEN};
use crate::sys::poller::{Poller, READABLE};
use crate::sys::reaper::Reaper;
use crate::task::{ShutdownSignal, TaskService};
use protobuf::Message;
use skiff_protos::shim::{WaitRequest, WaitResponse};
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::Arc;
use std::time::{Duration, Instant};
use ttrpc::{Code, MessageHeader, MethodHandler, Request, Response, TtrpcContext};

use crate::wire::frame::{frame, HEADER, MAX_MESSAGE, TYPE_REQUEST, TYPE_RESPONSE};

pub type Methods = HashMap<String, Box<dyn MethodHandler + Send + Sync>>;

/// How long the loop sleeps at most, to notice a Shutdown granted without an event.
const IDLE_WAKE: Duration = Duration::from_secs(1);

struct Conn {
    stream: UnixStream,
    buf: Vec<u8>,
}

struct Parked {
    fd: RawFd,
    stream_id: u32,
    req: WaitRequest,
}

pub struct Server {
    poller: Arc<Poller>,
    listener: UnixListener,
    conns: HashMap<RawFd, Conn>,
    parked: Vec<Parked>,
    methods: Methods,
    service: Arc<TaskService>,
    reaper: Arc<Reaper>,
    oom: Arc<crate::sys::oom::OomWatcher>,
    pumps: Arc<Pumps>,
    /// No payload transform: one context serves every request.
    conn_ctx: Arc<ttrpc::ConnectionContext>,
}

/// What the server's loop watches besides its own sockets.
pub struct Sources {
    pub poller: Arc<Poller>,
    pub reaper: Arc<Reaper>,
    pub oom: Arc<crate::sys::oom::OomWatcher>,
    pub pumps: Arc<Pumps>,
}

impl Server {
    pub fn new(
        listener: UnixListener,
        methods: Methods,
        service: Arc<TaskService>,
        sources: Sources,
    ) -> io::Result<Server> {
        listener.set_nonblocking(true)?;
        let Sources {
            poller,
            reaper,
            oom,
            pumps,
        } = sources;
        for fd in [listener.as_raw_fd(), reaper.fd(), oom.fd()] {
            poller.add(fd, READABLE, fd as u64)?;
        }
        Ok(Server {
            poller,
            listener,
            conns: HashMap::new(),
            parked: Vec::new(),
            methods,
            service,
            reaper,
            oom,
            pumps,
            conn_ctx: Arc::default(),
        })
    }

    /// Serves until a Shutdown is granted.
    pub fn run(&mut self, shutdown: &ShutdownSignal) {
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; 32];
        let mut next_report: Option<Instant> = None;
        while !shutdown.is_requested() {
            let mut timeout = next_report.map_or(IDLE_WAKE, |at| {
                at.saturating_duration_since(Instant::now()).min(IDLE_WAKE)
            });
            if let Some(pumps) = self.pumps.next_run() {
                timeout = timeout.min(pumps);
            }
            let n = self.poller.wait(&mut events, timeout);
            // Exits are looked at only when something may have moved them: SIGCHLD, a
            // request (a runtime command waited for in a handler reaps on the loop's
            // behalf), a copy that ended, or an exit's drain time running out. Not
            // for every chunk of output carried.
            let mut exits_due = n == 0;
            for ev in &events[..n] {
                let token = ev.u64;
                if token & PUMP_TOKEN != 0 {
                    exits_due |= self.pumps.ready(token, ev.events);
                    continue;
                }
                exits_due = true;
                let fd = token as RawFd;
                if fd == self.listener.as_raw_fd() {
                    self.accept();
                } else if fd == self.oom.fd() {
                    self.oom.process_ready();
                } else if fd != self.reaper.fd() {
                    self.readable(fd);
                }
                if shutdown.is_requested() {
                    break;
                }
            }
            exits_due |= self.pumps.run_pending();
            if exits_due {
                next_report = self.exits();
            }
        }
    }

    /// Hands reaped exits to the service, reports those whose output has drained, and
    /// answers the Waits they end. Returns when to look again.
    fn exits(&mut self) -> Option<Instant> {
        for exit in self.reaper.take_exits() {
            self.service.handle_exit(exit);
        }
        let next = self.service.report_exits();
        if !self.parked.is_empty() {
            self.answer_parked();
        }
        next
    }

    fn accept(&mut self) {
        while let Ok((stream, _)) = self.listener.accept() {
            let fd = stream.as_raw_fd();
            if stream.set_nonblocking(true).is_err()
                || self.poller.add(fd, READABLE, fd as u64).is_err()
            {
                continue;
            }
            self.conns.insert(
                stream.as_raw_fd(),
                Conn {
                    stream,
                    buf: Vec::new(),
                },
            );
        }
    }

    fn close(&mut self, fd: RawFd) {
        if let Some(conn) = self.conns.remove(&fd) {
            self.poller.remove(fd);
            drop(conn);
        }
        self.parked.retain(|p| p.fd != fd);
    }

    fn readable(&mut self, fd: RawFd) {
        let mut chunk = [0u8; 16 * 1024];
        let mut closed = false;
        {
            let Some(conn) = self.conns.get_mut(&fd) else {
                return;
            };
            loop {
                match conn.stream.read(&mut chunk) {
                    Ok(0) => {
                        closed = true;
                        break;
                    }
                    Ok(n) => conn.buf.extend_from_slice(&chunk[..n]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => {
                        closed = true;
                        break;
                    }
                }
            }
        }
        while let Some((mh, payload)) = self.next_frame(fd) {
            if mh.type_ == TYPE_REQUEST {
                self.dispatch(fd, mh, &payload);
            }
        }
        let oversized = self
            .conns
            .get(&fd)
            .map(|c| c.buf.len() > MAX_MESSAGE + HEADER)
            .unwrap_or(false);
        if closed || oversized {
            self.close(fd);
        }
    }

    /// The next whole frame buffered for `fd`.
    fn next_frame(&mut self, fd: RawFd) -> Option<(MessageHeader, Vec<u8>)> {
        let conn = self.conns.get_mut(&fd)?;
        if conn.buf.len() < HEADER {
            return None;
        }
        let (length, stream_id, type_) = crate::wire::frame::header(&conn.buf)?;
        if length > MAX_MESSAGE || conn.buf.len() < HEADER + length {
            return None;
        }
        let mh = MessageHeader {
            length: length as u32,
            stream_id,
            type_,
            flags: conn.buf[9],
        };
        let payload = conn.buf[HEADER..HEADER + length].to_vec();
        conn.buf.drain(..HEADER + length);
        Some((mh, payload))
    }

    fn dispatch(&mut self, fd: RawFd, mh: MessageHeader, payload: &[u8]) {
        let req = match Request::parse_from_bytes(payload) {
            Ok(r) => r,
            Err(e) => {
                return self.reply_status(
                    fd,
                    mh.stream_id,
                    Code::INVALID_ARGUMENT,
                    format!("undecodable request: {e}"),
                )
            }
        };
        let path = format!("/{}/{}", req.service, req.method);
        if req.method == "Wait" && self.methods.contains_key(&path) {
            return match WaitRequest::parse_from_bytes(&req.payload) {
                Ok(w) => self.wait(fd, mh.stream_id, w),
                Err(e) => self.reply_status(
                    fd,
                    mh.stream_id,
                    Code::INVALID_ARGUMENT,
                    format!("undecodable WaitRequest: {e}"),
                ),
            };
        }
        let Some(handler) = self.methods.get(&path) else {
            return self.reply_status(
                fd,
                mh.stream_id,
                Code::UNIMPLEMENTED,
                format!("{path} is not supported"),
            );
        };
        let (tx, rx) = std::sync::mpsc::channel();
        let mut metadata: HashMap<String, Vec<String>> = HashMap::new();
        for kv in &req.metadata {
            metadata
                .entry(kv.key.clone())
                .or_default()
                .push(kv.value.clone());
        }
        let ctx = TtrpcContext {
            fd,
            cancel_rx: crossbeam_channel::never(),
            mh,
            res_tx: tx,
            metadata,
            timeout_nano: req.timeout_nano,
            conn_ctx: self.conn_ctx.clone(),
        };
        let stream_id = mh.stream_id;
        if let Err(e) = handler.handler(ctx, req) {
            return self.reply_status(fd, stream_id, Code::UNKNOWN, e.to_string());
        }
        for (_, body) in rx.try_iter() {
            self.write_frame(fd, stream_id, &body);
        }
    }

    fn wait(&mut self, fd: RawFd, stream_id: u32, req: WaitRequest) {
        match self.service.try_wait(&req) {
            Ok(Some(resp)) => self.reply_ok(fd, stream_id, &resp),
            Ok(None) => self.parked.push(Parked { fd, stream_id, req }),
            Err(e) => match ttrpc::Error::from(e) {
                ttrpc::Error::RpcStatus(s) => self.reply(fd, stream_id, s, Vec::new()),
                other => self.reply_status(fd, stream_id, Code::UNKNOWN, other.to_string()),
            },
        }
    }

    fn answer_parked(&mut self) {
        let parked = std::mem::take(&mut self.parked);
        for p in parked {
            self.wait(p.fd, p.stream_id, p.req);
        }
    }

    fn reply_ok(&mut self, fd: RawFd, stream_id: u32, resp: &WaitResponse) {
        let ok = ttrpc::get_status(Code::OK, String::new());
        self.reply(fd, stream_id, ok, resp.write_to_bytes().unwrap_or_default());
    }

    fn reply_status(&mut self, fd: RawFd, stream_id: u32, code: Code, message: String) {
        self.reply(fd, stream_id, ttrpc::get_status(code, message), Vec::new());
    }

    fn reply(&mut self, fd: RawFd, stream_id: u32, status: ttrpc::Status, payload: Vec<u8>) {
        let res = Response {
            status: protobuf::MessageField::some(status),
            payload,
            ..Default::default()
        };
        let body = res.write_to_bytes().unwrap_or_default();
        self.write_frame(fd, stream_id, &body);
    }

    /// Writes one response frame; a client that stops reading for 10 s is dropped.
    fn write_frame(&mut self, fd: RawFd, stream_id: u32, body: &[u8]) {
        let frame = frame(stream_id, TYPE_RESPONSE, body);
        let Some(conn) = self.conns.get_mut(&fd) else {
            return;
        };
        let mut written = 0;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while written < frame.len() {
            match conn.stream.write(&frame[written..]) {
                Ok(n) => written += n,
                Err(e)
                    if e.kind() == io::ErrorKind::WouldBlock
                        && std::time::Instant::now() < deadline =>
                {
                    let mut pfd = libc::pollfd {
                        fd,
                        events: libc::POLLOUT,
                        revents: 0,
                    };
                    // SAFETY: poll on one valid pollfd.
                    unsafe { libc::poll(&mut pfd, 1, 100) };
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.close(fd);
                    return;
                }
            }
        }
    }
}
