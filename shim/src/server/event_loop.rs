//! The shim's one loop, on its main thread: the listening socket and its connections,
//! SIGCHLD (the reaper's signalfd), OOM notifications, the stdio pumps and finished
//! runtime commands all wait on one epoll instance. Nothing here waits on anything slow:
//! runtime commands run on threads of their own ([`super::jobs`]), reads and copies
//! take at most a budget per wake-up, and answers are queued for clients that are slow
//! to read them.

use super::connection::{Conn, Frame};
use super::dispatch::{dispatch, dispatch_sandbox, Call};
use super::jobs::{Finished, Jobs, ReplyTo};
use super::status;
use crate::sandbox::SandboxService;
use crate::stdio::Pumps;
use crate::sys::oom::OomWatcher;
use crate::sys::poller::{Poller, READABLE, WRITABLE};
use crate::sys::reaper::Reaper;
use crate::sys::token::Token;
use crate::task::{Reply, TaskService};
use crate::wire::frame::{frame, TYPE_REQUEST, TYPE_RESPONSE};
use protobuf::Message;
use skiff_protos::sandbox::WaitSandboxRequest;
use skiff_protos::shim::WaitRequest;
use std::collections::HashMap;
use std::io;
use std::os::unix::net::UnixListener;
use std::sync::Arc;
use std::time::{Duration, Instant};
use ttrpc::{Request, Response};

/// How long the loop sleeps at most, to notice a Shutdown granted without an event.
const IDLE_WAKE: Duration = Duration::from_secs(1);
/// Connections served at once; more are closed as they come.
const MAX_CONNECTIONS: usize = 128;
/// Frames taken from one connection per wake-up before the others are served.
const FRAMES_PER_WAKE: usize = 64;
/// How long accepting pauses when the shim is out of file descriptors.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);
/// Waits parked at once, for all clients; one more is refused (each holds memory until
/// its process exits).
const MAX_PARKED_WAITS: usize = 4096;

/// A Wait whose process still runs, answered once its exit is reported.
struct Parked {
    to: ReplyTo,
    req: WaitRequest,
}

/// What the loop watches besides its own sockets.
pub struct Sources {
    pub poller: Arc<Poller>,
    pub reaper: Arc<Reaper>,
    pub oom: Arc<OomWatcher>,
    pub pumps: Arc<Pumps>,
}

pub struct Server {
    sources: Sources,
    listener: UnixListener,
    conns: HashMap<u64, Conn>,
    next_conn: u64,
    /// Connections with frames read but not yet served.
    busy: Vec<u64>,
    parked: Vec<Parked>,
    jobs: Jobs,
    service: Arc<TaskService>,
    /// containerd's Sandbox API, and its WaitSandbox requests until the sandbox ends.
    sandbox: SandboxService,
    sandbox_waits: Vec<(ReplyTo, WaitSandboxRequest)>,
    /// Accepting resumes then (the shim ran out of file descriptors).
    accept_paused: Option<Instant>,
    next_report: Option<Instant>,
}

impl Server {
    pub fn new(
        listener: UnixListener,
        service: Arc<TaskService>,
        sources: Sources,
    ) -> io::Result<Server> {
        listener.set_nonblocking(true)?;
        let jobs = Jobs::new()?;
        let poller = &sources.poller;
        poller.add(&listener, READABLE, Token::Listener)?;
        poller.add(sources.reaper.fd(), READABLE, Token::Reaper)?;
        poller.add(sources.oom.fd(), READABLE, Token::Oom)?;
        poller.add(jobs.fd(), READABLE, Token::Jobs)?;
        Ok(Server {
            sources,
            listener,
            conns: HashMap::new(),
            next_conn: 0,
            busy: Vec::new(),
            parked: Vec::new(),
            jobs,
            sandbox: SandboxService::new(service.clone()),
            sandbox_waits: Vec::new(),
            service,
            accept_paused: None,
            next_report: None,
        })
    }

    /// Serves until a Shutdown is granted.
    pub fn run(&mut self) {
        let mut events = crate::sys::poller::events::<64>();
        while !self
            .sandbox
            .shim_may_exit(self.service.shutdown_requested())
        {
            let n = self.sources.poller.wait(&mut events, self.timeout());
            let mut exits_due = n == 0;
            for ev in &events[..n] {
                if let (ready, Some(token)) = crate::sys::poller::parts(ev) {
                    exits_due |= self.event(token, ready);
                }
            }
            exits_due |= self.sources.pumps.run_pending();
            self.resume_accepting();
            self.serve_busy();
            if exits_due {
                self.exits();
            }
            self.own_jobs();
        }
    }

    /// How long to sleep: not past an exit's drain time, a pump or connection with more
    /// to do, or the end of an accept pause.
    fn timeout(&self) -> Duration {
        sleep_for(
            Instant::now(),
            &[self.next_report, self.accept_paused],
            self.sources.pumps.next_run(),
            !self.busy.is_empty(),
        )
    }

    /// Handles one readiness; true when exits may have moved.
    fn event(&mut self, token: Token, events: u32) -> bool {
        match token {
            Token::PumpSource(_) | Token::PumpTarget(_) | Token::PumpHelper(_) => {
                return self.sources.pumps.ready(token, events);
            }
            Token::Connection(id) => {
                self.connection_ready(id, events);
                return false;
            }
            Token::Listener => self.accept(),
            Token::Oom => self.service.oom_ready(),
            Token::Jobs => {
                let finished = self.jobs.collect();
                self.finish(finished);
            }
            Token::Reaper | Token::OomWatch(_) => {}
        }
        // SIGCHLD, a finished command: exits may be due.
        true
    }

    /// Hands reaped exits to the service, reports those whose output has drained, and
    /// answers the Waits they end.
    fn exits(&mut self) {
        let exits = self.sandbox.reaped(self.sources.reaper.reap());
        self.service.reaped(exits);
        self.retry_sandbox_waits();
        self.next_report = self.service.report_exits();
        if !self.parked.is_empty() {
            let parked = std::mem::take(&mut self.parked);
            for p in parked {
                self.wait(p.to, p.req);
            }
        }
    }

    /// Runs the jobs the task model started itself (no one waits for their answer).
    fn own_jobs(&mut self) {
        for job in self.service.take_own_jobs() {
            let finished = self.jobs.submit(job.map(|()| Vec::new()), None);
            self.finish(finished);
        }
    }

    fn accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => self.admit(stream),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) => {
                    // The listener stays readable: stop watching it for a while rather
                    // than spin on it.
                    log::warn!("accepting a connection: {e}; pausing for {ACCEPT_PAUSE:?}");
                    self.sources.poller.remove(&self.listener);
                    self.accept_paused = Some(Instant::now() + ACCEPT_PAUSE);
                    return;
                }
                Err(_) => return,
            }
        }
    }

    fn resume_accepting(&mut self) {
        if self.accept_paused.is_some_and(|at| Instant::now() >= at) {
            self.accept_paused = None;
            let _ = self
                .sources
                .poller
                .add(&self.listener, READABLE, Token::Listener);
        }
    }

    /// A new connection: only from a peer of the shim's own uid (containerd and the shim
    /// both run as root), and only up to [`MAX_CONNECTIONS`].
    fn admit(&mut self, stream: std::os::unix::net::UnixStream) {
        if let Err(why) = super::peer::check(&stream) {
            log::warn!("refused a connection: {why}");
            return;
        }
        if self.conns.len() >= MAX_CONNECTIONS {
            log::warn!("refused a connection: {MAX_CONNECTIONS} are open");
            return;
        }
        self.next_conn += 1;
        let id = self.next_conn;
        if stream.set_nonblocking(true).is_err()
            || self
                .sources
                .poller
                .add(&stream, READABLE, Token::Connection(id))
                .is_err()
        {
            return;
        }
        self.conns.insert(id, Conn::new(id, stream));
    }

    fn close(&mut self, id: u64) {
        if let Some(conn) = self.conns.remove(&id) {
            self.sources.poller.remove(&conn.stream);
        }
        self.parked.retain(|p| p.to.conn != id);
        self.sandbox_waits.retain(|(to, _)| to.conn != id);
        self.busy.retain(|b| *b != id);
    }

    fn connection_ready(&mut self, id: u64, events: u32) {
        if events & WRITABLE != 0 {
            self.flush(id);
        }
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        let hung_up = events & ((libc::EPOLLHUP | libc::EPOLLERR) as u32) != 0;
        if events & READABLE != 0 || hung_up {
            conn.fill();
            if hung_up && conn.is_finished() {
                // Nothing left to serve, and no one to write answers to.
                return self.close(id);
            }
            if (conn.has_whole_frame() || conn.read_closed) && !self.busy.contains(&id) {
                self.busy.push(id);
            }
        }
    }

    /// Serves the frames read from each busy connection, at most [`FRAMES_PER_WAKE`]
    /// each; those with more stay busy for the next round.
    fn serve_busy(&mut self) {
        for id in std::mem::take(&mut self.busy) {
            let mut served = 0;
            while served < FRAMES_PER_WAKE {
                let Some(conn) = self.conns.get_mut(&id) else {
                    break;
                };
                match conn.next_frame() {
                    Ok(Some(frame)) => self.request(id, frame),
                    Ok(None) => break,
                    Err(too_large) => {
                        let e = crate::task::error::ShimError::InvalidArgument(format!(
                            "a message of {} bytes is larger than ttrpc's limit",
                            too_large.length
                        ));
                        let to = ReplyTo {
                            conn: id,
                            stream_id: too_large.stream_id,
                        };
                        self.reply(to, Err(e));
                        self.close_when_written(id);
                        break;
                    }
                }
                served += 1;
            }
            let Some(conn) = self.conns.get(&id) else {
                continue;
            };
            if conn.is_finished() {
                if conn.buffered() > 0 {
                    log::debug!("a client hung up in the middle of a frame");
                }
                self.close_when_written(id);
            } else if conn.has_whole_frame() {
                self.busy.push(id);
            }
        }
    }

    /// One request frame: decoded, dispatched, answered now or later.
    fn request(&mut self, conn: u64, frame: Frame) {
        if frame.kind != TYPE_REQUEST {
            return;
        }
        let to = ReplyTo {
            conn,
            stream_id: frame.stream_id,
        };
        let req = match Request::parse_from_bytes(&frame.payload) {
            Ok(r) => r,
            Err(e) => {
                let e = crate::task::error::ShimError::InvalidArgument(format!(
                    "undecodable request: {e}"
                ));
                return self.reply(to, Err(e));
            }
        };
        let to_sandbox = req.service == crate::sandbox::SERVICE;
        let call = if to_sandbox {
            dispatch_sandbox(&self.sandbox, &req.method, &req.payload)
        } else {
            dispatch(&self.service, &req.service, &req.method, &req.payload)
        };
        match call {
            Call::Wait(wait) => self.wait(to, wait),
            Call::WaitSandbox(wait) => self.wait_sandbox(to, wait),
            Call::Reply(Reply::Now(r)) => self.reply(to, r),
            Call::Reply(Reply::Later(job)) => {
                let finished = self.jobs.submit(job, Some(to));
                self.finish(finished);
            }
        }
        if to_sandbox {
            // A StopSandbox ends a sandbox without a process of its own at once.
            self.retry_sandbox_waits();
        }
    }

    fn wait(&mut self, to: ReplyTo, req: WaitRequest) {
        match self.service.try_wait(&req) {
            Ok(Some(resp)) => self.reply(to, Ok(resp.write_to_bytes().unwrap_or_default())),
            Ok(None) if self.parked.len() >= MAX_PARKED_WAITS => {
                let e = crate::task::error::ShimError::ResourceExhausted(format!(
                    "{MAX_PARKED_WAITS} Waits already wait for exits in this shim: Wait for {} refused",
                    waited_for(&req)
                ));
                self.reply(to, Err(e));
            }
            Ok(None) => self.parked.push(Parked { to, req }),
            Err(e) => self.reply(to, Err(e)),
        }
    }

    fn retry_sandbox_waits(&mut self) {
        for (to, req) in std::mem::take(&mut self.sandbox_waits) {
            self.wait_sandbox(to, req);
        }
    }

    fn wait_sandbox(&mut self, to: ReplyTo, req: WaitSandboxRequest) {
        match self.sandbox.try_wait(&req) {
            Ok(Some(resp)) => self.reply(to, Ok(resp.write_to_bytes().unwrap_or_default())),
            Ok(None) => self.sandbox_waits.push((to, req)),
            Err(e) => self.reply(to, Err(e)),
        }
    }

    /// Applies finished jobs to the task model and answers their requests.
    fn finish(&mut self, finished: Vec<Finished>) {
        for Finished { finish, to } in finished {
            let result = finish(&self.service);
            if let Some(to) = to {
                self.reply(to, result);
            } else if let Err(e) = result {
                log::warn!("{e}");
            }
        }
    }

    fn reply(&mut self, to: ReplyTo, result: crate::task::error::Result<Vec<u8>>) {
        let (status, payload) = match result {
            Ok(payload) => (status::ok(), payload),
            Err(e) => {
                log::debug!("request on stream {}: {e}", to.stream_id);
                (status::of(&e), Vec::new())
            }
        };
        let res = Response {
            status: protobuf::MessageField::some(status),
            payload,
            ..Default::default()
        };
        let body = res.write_to_bytes().unwrap_or_default();
        // A Wait answered after its client went away has no connection to go to: the
        // connection id, unlike an fd, is never reused.
        let Some(conn) = self.conns.get_mut(&to.conn) else {
            return;
        };
        if !conn.queue(frame(to.stream_id, TYPE_RESPONSE, &body)) {
            log::warn!("dropping a client that does not read its answers");
            return self.close(to.conn);
        }
        self.flush(to.conn);
    }

    /// Writes what a connection's client takes; watches for room when more is left.
    fn flush(&mut self, id: u64) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        match conn.flush() {
            Ok(true) if conn.read_closed => self.close(id),
            Ok(_) => self.watch(id),
            Err(_) => self.close(id),
        }
    }

    /// Watches a connection for what it waits for: input until its client stopped
    /// sending (an end of file is readable for ever: watching it would spin the loop),
    /// room while answers are queued.
    fn watch(&self, id: u64) {
        let Some(conn) = self.conns.get(&id) else {
            return;
        };
        let interest = interest(conn.read_closed, conn.has_unwritten());
        let _ = self
            .sources
            .poller
            .modify(&conn.stream, interest, Token::Connection(id));
    }

    /// Closes a connection once what is queued for it has been written.
    fn close_when_written(&mut self, id: u64) {
        match self.conns.get_mut(&id) {
            Some(conn) if conn.has_unwritten() => {
                conn.read_closed = true;
                self.watch(id);
            }
            _ => self.close(id),
        }
    }
}

/// What a Wait waits for, in its refusal.
fn waited_for(req: &WaitRequest) -> String {
    match req.exec_id.as_str() {
        "" => format!("container {:?}", req.id),
        exec => format!("exec {exec:?} of container {:?}", req.id),
    }
}

/// What a connection is watched for: input until its client stopped sending (an end of
/// file is readable for ever), room while answers wait to be written.
fn interest(read_closed: bool, unwritten: bool) -> u32 {
    let mut interest = 0;
    if !read_closed {
        interest |= READABLE;
    }
    if unwritten {
        interest |= WRITABLE;
    }
    interest
}

/// How long the loop may sleep: until the earliest deadline it can act on (an exit's
/// drain time, the end of an accept pause), when the pumps ask, not at all while a
/// connection has frames left to serve, and at most [`IDLE_WAKE`].
fn sleep_for(
    now: Instant,
    deadlines: &[Option<Instant>],
    pumps: Option<Duration>,
    busy: bool,
) -> Duration {
    if busy {
        return Duration::ZERO;
    }
    deadlines
        .iter()
        .flatten()
        .map(|at| at.saturating_duration_since(now))
        .chain(pumps)
        .fold(IDLE_WAKE, Duration::min)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_whose_client_stopped_sending_is_not_watched_for_input() {
        assert_eq!(interest(false, false), READABLE);
        assert_eq!(interest(false, true), READABLE | WRITABLE);
        assert_eq!(interest(true, true), WRITABLE);
        assert_eq!(
            interest(true, false),
            0,
            "an end of file would wake the loop for ever"
        );
    }

    #[test]
    fn the_loop_sleeps_until_the_earliest_thing_it_can_do() {
        let now = Instant::now();
        let soon = now + Duration::from_millis(40);
        let later = now + Duration::from_secs(3);
        assert_eq!(sleep_for(now, &[None, None], None, false), IDLE_WAKE);
        assert_eq!(
            sleep_for(now, &[Some(later), Some(soon)], None, false),
            Duration::from_millis(40)
        );
        let past = now.checked_sub(Duration::from_secs(1)).unwrap_or(now);
        assert_eq!(sleep_for(now, &[Some(past)], None, false), Duration::ZERO);
        assert_eq!(
            sleep_for(now, &[Some(later)], Some(Duration::from_millis(50)), false),
            Duration::from_millis(50)
        );
        assert_eq!(sleep_for(now, &[Some(later)], None, true), Duration::ZERO);
        assert!(sleep_for(now, &[Some(now + IDLE_WAKE * 2)], None, false) <= IDLE_WAKE);
    }
}
