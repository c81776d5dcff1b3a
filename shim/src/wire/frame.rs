//! ttrpc's framing, shared by the shim's server and its events client: a 10-byte header
//! (payload length, stream id, both big-endian; message type; flags), then a protobuf
//! Request or Response. The ttrpc crate's threaded client and server cost the shim six
//! or more threads; this is the little of it the shim needs.

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
}
