//! Hand-made HTTP/2 frames, for requests that no client library sends on
//! purpose: `:authority` disagreeing with `host`, header blocks split into
//! many CONTINUATION frames. Header blocks use HPACK literals without
//! indexing or Huffman coding (RFC 7541 6.2.2), so what is sent is what
//! the test wrote.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
pub const DATA: u8 = 0;
pub const HEADERS: u8 = 1;
pub const RST_STREAM: u8 = 3;
pub const SETTINGS: u8 = 4;
pub const PING: u8 = 6;
pub const GOAWAY: u8 = 7;
pub const CONTINUATION: u8 = 9;
pub const END_STREAM: u8 = 0x1;
pub const END_HEADERS: u8 = 0x4;
pub const ACK: u8 = 0x1;
/// Error codes (RFC 9113 7).
pub const PROTOCOL_ERROR: u32 = 0x1;
pub const ENHANCE_YOUR_CALM: u32 = 0xb;

pub fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    f.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An HPACK integer with an `n`-bit prefix, the first byte's high bits `flags`.
fn integer(flags: u8, n: u32, mut value: usize, out: &mut Vec<u8>) {
    let max = (1usize << n) - 1;
    if value < max {
        out.push(flags | value as u8);
        return;
    }
    out.push(flags | max as u8);
    value -= max;
    while value >= 128 {
        out.push((value % 128) as u8 | 0x80);
        value /= 128;
    }
    out.push(value as u8);
}

/// Literal header field without indexing, new name, no Huffman.
pub fn literal(name: &str, value: &str) -> Vec<u8> {
    let mut out = vec![0x00];
    integer(0, 7, name.len(), &mut out);
    out.extend_from_slice(name.as_bytes());
    integer(0, 7, value.len(), &mut out);
    out.extend_from_slice(value.as_bytes());
    out
}

/// A header block of `fields`, in order.
pub fn block(fields: &[(&str, &str)]) -> Vec<u8> {
    fields.iter().flat_map(|(n, v)| literal(n, v)).collect()
}

#[derive(Debug)]
pub struct Frame {
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
    pub payload: Vec<u8>,
}

impl Frame {
    /// The error code of a RST_STREAM or GOAWAY frame.
    pub fn error_code(&self) -> Option<u32> {
        let at = match self.kind {
            RST_STREAM => 0,
            GOAWAY => 4,
            _ => return None,
        };
        let b = self.payload.get(at..at + 4)?;
        Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A response HEADERS frame saying `:status: 200`: h2 encodes it as the
    /// static table's entry 8, one byte.
    pub fn is_status_200(&self) -> bool {
        self.kind == HEADERS && self.payload.first() == Some(&0x88)
    }
}

/// A client connection that has sent the preface and its SETTINGS.
pub struct Client {
    s: TcpStream,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(PREFACE).unwrap();
        s.write_all(&frame(SETTINGS, 0, 0, &[])).unwrap();
        Client { s }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).unwrap();
    }

    /// A GET on `stream` with `fields` after the pseudo-headers, in one
    /// HEADERS frame.
    pub fn get(&mut self, stream: u32, fields: &[(&str, &str)]) {
        let f = frame(HEADERS, END_STREAM | END_HEADERS, stream, &block(fields));
        self.send(&f);
    }

    fn read_frame(&mut self) -> Option<Frame> {
        let mut head = [0u8; 9];
        self.s.read_exact(&mut head).ok()?;
        let len = (head[0] as usize) << 16 | (head[1] as usize) << 8 | head[2] as usize;
        let mut payload = vec![0; len];
        self.s.read_exact(&mut payload).ok()?;
        Some(Frame {
            kind: head[3],
            flags: head[4],
            stream: u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff,
            payload,
        })
    }

    /// The next HEADERS, RST_STREAM or GOAWAY frame (SETTINGS and PINGs are
    /// acknowledged on the way), or `None` when the peer closes or goes
    /// quiet for 5 s.
    pub fn next_answer(&mut self) -> Option<Frame> {
        loop {
            let f = self.read_frame()?;
            match f.kind {
                SETTINGS if f.flags & ACK == 0 => self.send(&frame(SETTINGS, ACK, 0, &[])),
                PING if f.flags & ACK == 0 => self.send(&frame(PING, ACK, 0, &f.payload)),
                HEADERS | RST_STREAM | GOAWAY => return Some(f),
                _ => {}
            }
        }
    }
}
