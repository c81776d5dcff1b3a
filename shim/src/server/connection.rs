//! One client connection: what it sent, read in bounded amounts and cut into frames (a
//! header announcing more than ttrpc's limit is refused before its body is read; no more
//! is read while a read budget of whole frames waits to be served), and what the shim
//! answers, queued and written as the client takes it (a client that does not read never
//! blocks the loop; one that lets too much pile up is dropped).

use crate::wire::frame::{self, HEADER, MAX_MESSAGE};
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;

/// What one wake-up reads from a connection at the most, before the loop serves others;
/// and what whole frames may wait in its inbox before it is read again.
pub const READ_BUDGET: usize = 256 * 1024;
/// What one read(2) takes.
const CHUNK: usize = 16 * 1024;
/// Answers waiting for a client that does not read, at the most.
pub const OUTBOX_LIMIT: usize = 16 << 20;

pub struct Conn {
    pub id: u64,
    pub stream: UnixStream,
    inbox: Vec<u8>,
    /// Where the unparsed part of `inbox` starts.
    parsed: usize,
    outbox: VecDeque<Vec<u8>>,
    /// Bytes of the first frame in `outbox` already written.
    written: usize,
    queued: usize,
    /// The client closed its side (or reading failed): once the outbox is empty, close.
    pub read_closed: bool,
}

/// A whole frame from the client.
pub struct Frame {
    pub stream_id: u32,
    pub kind: u8,
    pub payload: Vec<u8>,
}

/// A frame the client announced but that cannot be taken.
#[derive(Debug, PartialEq, Eq)]
pub struct TooLarge {
    pub stream_id: u32,
    pub length: usize,
}

impl Conn {
    pub fn new(id: u64, stream: UnixStream) -> Conn {
        Conn {
            id,
            stream,
            inbox: Vec::new(),
            parsed: 0,
            outbox: VecDeque::new(),
            written: 0,
            queued: 0,
            read_closed: false,
        }
    }

    /// Reads what the client sent, at most [`READ_BUDGET`] bytes, and none while its
    /// inbox already holds that much with a whole frame in it: the inbox never holds much
    /// more than a budget or one frame, however fast the client sends. True if more may
    /// wait.
    pub fn fill(&mut self) -> bool {
        let mut chunk = [0u8; CHUNK];
        let mut taken = 0;
        while taken < READ_BUDGET {
            if !self.wants_input() {
                return true;
            }
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    self.read_closed = true;
                    return false;
                }
                Ok(n) => {
                    self.inbox.extend_from_slice(&chunk[..n]);
                    taken += n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    self.read_closed = true;
                    return false;
                }
            }
        }
        true
    }

    /// The next whole frame read so far.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, TooLarge> {
        let rest = &self.inbox[self.parsed..];
        let Some((length, stream_id, kind)) = frame::header(rest) else {
            return Ok(None);
        };
        if length > MAX_MESSAGE {
            // Nothing after it can be framed: the connection is read no more.
            self.inbox.clear();
            self.parsed = 0;
            self.read_closed = true;
            return Err(TooLarge { stream_id, length });
        }
        if rest.len() < HEADER + length {
            return Ok(None);
        }
        let payload = rest[HEADER..HEADER + length].to_vec();
        self.parsed += HEADER + length;
        // Forget what was parsed once it is most of the buffer (no drain per frame).
        if self.parsed == self.inbox.len() {
            self.inbox.clear();
            self.parsed = 0;
        } else if self.parsed > 64 * 1024 && self.parsed * 2 > self.inbox.len() {
            self.inbox.drain(..self.parsed);
            self.parsed = 0;
        }
        Ok(Some(Frame {
            stream_id,
            kind,
            payload,
        }))
    }

    /// Whether a whole frame is buffered, or a header the loop must refuse: the loop
    /// comes back for it.
    pub fn has_whole_frame(&self) -> bool {
        let rest = &self.inbox[self.parsed..];
        match frame::header(rest) {
            Some((length, _, _)) => length > MAX_MESSAGE || rest.len() >= HEADER + length,
            None => false,
        }
    }

    /// The client has sent all it will, and nothing of it is left to serve: what remains
    /// is the start of a frame it hung up in the middle of. Only the answers already
    /// queued are left to write.
    pub fn is_finished(&self) -> bool {
        self.read_closed && !self.has_whole_frame()
    }

    /// Bytes received and not yet taken as frames.
    pub fn buffered(&self) -> usize {
        self.inbox.len() - self.parsed
    }

    /// Whether reading more is needed: less than a budget waits, or no whole frame.
    fn wants_input(&self) -> bool {
        !self.read_closed && (self.buffered() < READ_BUDGET || !self.has_whole_frame())
    }

    /// Queues a frame for the client; false when the client let too much pile up.
    pub fn queue(&mut self, frame: Vec<u8>) -> bool {
        self.queued += frame.len();
        self.outbox.push_back(frame);
        self.queued <= OUTBOX_LIMIT
    }

    /// Writes what the client takes now; Ok(true) when nothing is left queued.
    pub fn flush(&mut self) -> io::Result<bool> {
        while let Some(front) = self.outbox.front() {
            match self.stream.write(&front[self.written..]) {
                Ok(n) => {
                    self.written += n;
                    if self.written == front.len() {
                        self.queued -= front.len();
                        self.outbox.pop_front();
                        self.written = 0;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    pub fn has_unwritten(&self) -> bool {
        !self.outbox.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::frame::{frame, TYPE_REQUEST};

    fn pair() -> (Conn, UnixStream) {
        let (a, b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        (Conn::new(1, a), b)
    }

    #[test]
    fn frames_are_cut_from_what_arrives_in_pieces() {
        let (mut conn, mut client) = pair();
        let mut bytes = frame(1, TYPE_REQUEST, b"first");
        bytes.extend(frame(3, TYPE_REQUEST, b"second"));
        client.write_all(&bytes[..7]).unwrap();
        conn.fill();
        assert!(conn.next_frame().unwrap().is_none(), "half a header");
        client.write_all(&bytes[7..]).unwrap();
        conn.fill();
        let a = conn.next_frame().unwrap().unwrap();
        let b = conn.next_frame().unwrap().unwrap();
        assert_eq!((a.stream_id, a.payload.as_slice()), (1, &b"first"[..]));
        assert_eq!((b.stream_id, b.payload.as_slice()), (3, &b"second"[..]));
        assert!(conn.next_frame().unwrap().is_none());
    }

    #[test]
    fn a_header_announcing_too_much_is_refused_before_its_body() {
        let (mut conn, mut client) = pair();
        let mut header = vec![0xff, 0xff, 0xff, 0xff];
        header.extend_from_slice(&5u32.to_be_bytes());
        header.extend_from_slice(&[TYPE_REQUEST, 0]);
        client.write_all(&header).unwrap();
        conn.fill();
        assert_eq!(
            conn.next_frame().err(),
            Some(TooLarge {
                stream_id: 5,
                length: u32::MAX as usize
            })
        );
        assert!(conn.is_finished(), "refused once, then read no more");
        assert!(conn.next_frame().unwrap().is_none());
    }

    #[test]
    fn a_client_that_hangs_up_mid_frame_is_finished_at_every_cut() {
        let bytes = frame(1, TYPE_REQUEST, b"a body of some bytes");
        for cut in 0..bytes.len() {
            let (mut conn, mut client) = pair();
            client.write_all(&bytes[..cut]).unwrap();
            client.shutdown(std::net::Shutdown::Write).unwrap();
            conn.fill();
            assert!(conn.next_frame().unwrap().is_none(), "cut at {cut}");
            assert!(!conn.has_whole_frame(), "cut at {cut}");
            assert!(
                conn.is_finished(),
                "cut at {cut}: the connection is not done"
            );
        }
        let (mut conn, mut client) = pair();
        client.write_all(&bytes).unwrap();
        client.shutdown(std::net::Shutdown::Write).unwrap();
        conn.fill();
        assert!(!conn.is_finished(), "a whole frame is left to serve");
        assert!(conn.next_frame().unwrap().is_some());
        assert!(conn.is_finished());
    }

    #[test]
    fn the_inbox_holds_no_more_than_a_budget_of_whole_frames() {
        let (mut conn, client) = pair();
        let one = frame(1, TYPE_REQUEST, &[7u8; 50]);
        let mut writer = client.try_clone().unwrap();
        let all = one.repeat(8 << 20 >> 6);
        let send = std::thread::spawn(move || writer.write_all(&all));
        let mut most = 0;
        for _ in 0..200 {
            conn.fill();
            most = most.max(conn.buffered());
            // Served slower than sent: one frame a round.
            conn.next_frame().unwrap();
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert!(most <= READ_BUDGET + CHUNK, "the inbox held {most} bytes");
        drop(conn);
        drop(client);
        let _ = send.join();
    }

    #[test]
    fn a_frame_larger_than_the_budget_is_read_whole() {
        let (mut conn, client) = pair();
        let big = frame(9, TYPE_REQUEST, &vec![1u8; 3 * READ_BUDGET]);
        let mut writer = client.try_clone().unwrap();
        let send = std::thread::spawn(move || writer.write_all(&big));
        let mut got = None;
        for _ in 0..1000 {
            conn.fill();
            if let Some(f) = conn.next_frame().unwrap() {
                got = Some(f);
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let f = got.expect("the frame arrived whole");
        assert_eq!((f.stream_id, f.payload.len()), (9, 3 * READ_BUDGET));
        send.join().unwrap().unwrap();
    }

    #[test]
    fn a_client_that_never_reads_is_given_up_on() {
        let (mut conn, _client) = pair();
        let big = vec![0u8; 1 << 20];
        let mut kept = true;
        for _ in 0..(OUTBOX_LIMIT >> 20) + 2 {
            kept &= conn.queue(big.clone());
            let _ = conn.flush();
        }
        assert!(!kept, "the outbox is bounded");
    }
}
