//! The Task API served on the shim's main thread: one epoll loop over the listening
//! socket and its connections. ttrpc frames are read here and handed to the generated
//! handlers one at a time; a Wait whose process still runs is parked, not given a
//! thread, and answered when an exit wakes the loop. This replaces the ttrpc crate's
//! threaded server (a listener, and per connection a reader, a writer and a worker
//! pool), which was most of an idle shim's threads.

use crate::service::{ShutdownSignal, TaskService};
use protobuf::Message;
use skiff_protos::shim::{WaitRequest, WaitResponse};
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::Arc;
use ttrpc::{Code, MessageHeader, MethodHandler, Request, Response, TtrpcContext};

use crate::wire::{frame, HEADER, MAX_MESSAGE, TYPE_REQUEST, TYPE_RESPONSE};

pub type Methods = HashMap<String, Box<dyn MethodHandler + Send + Sync>>;

/// Wakes the loop from another thread (an exit was handled: parked Waits may be done).
#[derive(Clone)]
pub struct Waker(Arc<OwnedFd>);

impl Waker {
    pub fn new() -> io::Result<Waker> {
        // SAFETY: eventfd returns a new descriptor or -1.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd was just created and is owned here.
        Ok(Waker(Arc::new(unsafe { OwnedFd::from_raw_fd(fd) })))
    }

    pub fn wake(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a local to our eventfd.
        unsafe { libc::write(self.0.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }

    fn drain(&self) {
        let mut n: u64 = 0;
        // SAFETY: reads 8 bytes into a local from our eventfd.
        unsafe { libc::read(self.0.as_raw_fd(), (&mut n as *mut u64).cast(), 8) };
    }
}

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
    epoll: OwnedFd,
    listener: UnixListener,
    waker: Waker,
    conns: HashMap<RawFd, Conn>,
    parked: Vec<Parked>,
    methods: Methods,
    service: Arc<TaskService>,
    oom: Arc<crate::oom::OomWatcher>,
    /// No payload transform: one context serves every request.
    conn_ctx: Arc<ttrpc::ConnectionContext>,
}

fn epoll_add(epoll: RawFd, fd: RawFd) -> io::Result<()> {
    let mut ev = libc::epoll_event {
        events: (libc::EPOLLIN | libc::EPOLLRDHUP) as u32,
        u64: fd as u64,
    };
    // SAFETY: registers a descriptor we own with our epoll instance.
    if unsafe { libc::epoll_ctl(epoll, libc::EPOLL_CTL_ADD, fd, &mut ev) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

impl Server {
    pub fn new(
        listener: UnixListener,
        methods: Methods,
        service: Arc<TaskService>,
        waker: Waker,
        oom: Arc<crate::oom::OomWatcher>,
    ) -> io::Result<Server> {
        listener.set_nonblocking(true)?;
        // SAFETY: epoll_create1 returns a new descriptor or -1.
        let epfd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if epfd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: just created, owned here.
        let epoll = unsafe { OwnedFd::from_raw_fd(epfd) };
        epoll_add(epfd, listener.as_raw_fd())?;
        epoll_add(epfd, waker.0.as_raw_fd())?;
        epoll_add(epfd, oom.fd())?;
        Ok(Server {
            epoll,
            listener,
            waker,
            conns: HashMap::new(),
            parked: Vec::new(),
            methods,
            service,
            oom,
            conn_ctx: Arc::default(),
        })
    }

    /// Serves until a Shutdown is granted.
    pub fn run(&mut self, shutdown: &ShutdownSignal) {
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; 32];
        while !shutdown.is_requested() {
            // SAFETY: waits on our epoll instance into a local array.
            let n = unsafe {
                libc::epoll_wait(
                    self.epoll.as_raw_fd(),
                    events.as_mut_ptr(),
                    events.len() as i32,
                    1000,
                )
            };
            for ev in events.iter().take(n.max(0) as usize) {
                let fd = ev.u64 as RawFd;
                if fd == self.listener.as_raw_fd() {
                    self.accept();
                } else if fd == self.oom.fd() {
                    self.oom.process_ready();
                } else if fd == self.waker.0.as_raw_fd() {
                    self.waker.drain();
                    self.answer_parked();
                } else {
                    self.readable(fd);
                }
                if shutdown.is_requested() {
                    break;
                }
            }
        }
    }

    fn accept(&mut self) {
        while let Ok((stream, _)) = self.listener.accept() {
            if stream.set_nonblocking(true).is_err()
                || epoll_add(self.epoll.as_raw_fd(), stream.as_raw_fd()).is_err()
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
            // SAFETY: removes a registered descriptor from our epoll instance.
            unsafe {
                libc::epoll_ctl(
                    self.epoll.as_raw_fd(),
                    libc::EPOLL_CTL_DEL,
                    fd,
                    std::ptr::null_mut(),
                )
            };
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
        let (length, stream_id, type_) = crate::wire::header(&conn.buf)?;
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
