//! A strict scanner for the raw bytes of an HTTP/1.x request stream.
//!
//! hyper's parser (httparse) is lenient where a proxy must not be: it
//! accepts bare-LF line endings, and when a request carries both
//! Transfer-Encoding and Content-Length it silently drops the latter, so a
//! check on the parsed head can never see the conflict. A front-end and a
//! back-end that disagree on framing is what request smuggling is made of,
//! so the proxy runs every inbound byte through this scanner before hyper
//! sees it, and refuses the connection at the first ambiguous byte.
//!
//! The scanner only rejects; it never reframes. It follows message framing
//! (Content-Length and chunked bodies, trailers) to find each next head, and
//! steps aside for good after an HTTP/2 preface or an upgrade request.
//! Memory is a fixed 128-byte line buffer; bodies are skipped by count.

use http::StatusCode;

/// The longest header line prefix kept to interpret framing headers.
const LINE_KEEP: usize = 128;

/// What is wrong with the byte stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    #[error("bare LF line ending")]
    BareLf,
    #[error("CR not followed by LF")]
    BareCr,
    #[error("NUL byte in the request head")]
    Nul,
    #[error("fragment (#) in the request-target")]
    Fragment,
    #[error("obsolete line folding (obs-fold) in a header")]
    ObsFold,
    #[error("malformed header line: {0}")]
    BadHeaderLine(&'static str),
    #[error("both Transfer-Encoding and Content-Length")]
    TransferEncodingWithContentLength,
    #[error("more than one Content-Length header")]
    MultipleContentLength,
    #[error("Content-Length is not a single decimal number")]
    InvalidContentLength,
    #[error("Transfer-Encoding other than a single \"chunked\"")]
    UnsupportedTransferEncoding,
    #[error("invalid chunk size line")]
    BadChunkSize,
    #[error("chunk data not followed by CRLF")]
    BadChunkEnd,
}

impl FramingError {
    pub fn status(&self) -> StatusCode {
        match self {
            FramingError::UnsupportedTransferEncoding => StatusCode::NOT_IMPLEMENTED,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LineKind {
    Request,
    Header,
    ChunkSize,
    Trailer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Line(LineKind),
    Body(u64),
    ChunkData(u64),
    /// Expecting the CR (0) or LF (1) after chunk data.
    ChunkEnd(u8),
    Passthrough,
    Failed,
}

/// Framing facts gathered from one request head.
#[derive(Debug, Default, Clone, Copy)]
struct Head {
    content_length: Option<u64>,
    chunked: bool,
    transfer_encoding: bool,
    upgrade: bool,
    connection_upgrade: bool,
    http10: bool,
}

#[derive(Debug, Clone)]
pub struct FramingScanner {
    state: State,
    buf: [u8; LINE_KEEP],
    len: usize,
    /// Full length of the current line (may exceed what `buf` keeps).
    total: usize,
    cr: bool,
    head: Head,
}

impl Default for FramingScanner {
    fn default() -> Self {
        Self::new()
    }
}

impl FramingScanner {
    pub fn new() -> Self {
        FramingScanner {
            state: State::Line(LineKind::Request),
            buf: [0; LINE_KEEP],
            len: 0,
            total: 0,
            cr: false,
            head: Head::default(),
        }
    }

    /// True once the stream is no longer HTTP/1 (h2 preface, upgrade):
    /// the caller can stop feeding.
    pub fn is_passthrough(&self) -> bool {
        self.state == State::Passthrough
    }

    /// Feeds the next bytes of the stream, in order.
    pub fn feed(&mut self, mut bytes: &[u8]) -> Result<(), FramingError> {
        while !bytes.is_empty() {
            match self.state {
                State::Passthrough => return Ok(()),
                State::Failed => return Err(FramingError::BadHeaderLine("stream already failed")),
                State::Body(n) | State::ChunkData(n) => {
                    let take = (bytes.len() as u64).min(n) as usize;
                    bytes = &bytes[take..];
                    let left = n - take as u64;
                    self.state = match (self.state, left) {
                        (State::Body(_), 0) => State::Line(LineKind::Request),
                        (State::Body(_), l) => State::Body(l),
                        (_, 0) => State::ChunkEnd(0),
                        (_, l) => State::ChunkData(l),
                    };
                }
                State::ChunkEnd(i) => {
                    let want = if i == 0 { b'\r' } else { b'\n' };
                    if bytes[0] != want {
                        return self.fail(FramingError::BadChunkEnd);
                    }
                    bytes = &bytes[1..];
                    self.state = if i == 0 {
                        State::ChunkEnd(1)
                    } else {
                        State::Line(LineKind::ChunkSize)
                    };
                }
                State::Line(kind) => {
                    if self.cr {
                        if bytes[0] != b'\n' {
                            return self.fail(FramingError::BareCr);
                        }
                        bytes = &bytes[1..];
                        self.cr = false;
                        let r = self.end_line(kind);
                        self.len = 0;
                        self.total = 0;
                        if let Err(e) = r {
                            return self.fail(e);
                        }
                        continue;
                    }
                    // Skip the run of ordinary bytes in one step (memchr is
                    // vectorized); only the byte that ends it needs a look.
                    let special = if kind == LineKind::Request {
                        bytes
                            .iter()
                            .position(|b| matches!(b, b'\r' | b'\n' | 0 | b'#'))
                    } else {
                        memchr::memchr3(b'\r', b'\n', 0, bytes)
                    };
                    let run = special.unwrap_or(bytes.len());
                    let keep = run.min(LINE_KEEP - self.len);
                    self.buf[self.len..self.len + keep].copy_from_slice(&bytes[..keep]);
                    self.len += keep;
                    self.total += run;
                    bytes = &bytes[run..];
                    if special.is_none() {
                        continue;
                    }
                    let b = bytes[0];
                    bytes = &bytes[1..];
                    match b {
                        b'\r' => self.cr = true,
                        b'\n' => return self.fail(FramingError::BareLf),
                        0 => return self.fail(FramingError::Nul),
                        // Only the target can hold a '#'. The `http` crate drops
                        // a fragment without a word; refuse it rather than judge
                        // a shorter path than the client sent.
                        _ => return self.fail(FramingError::Fragment),
                    }
                }
            }
        }
        Ok(())
    }

    fn fail(&mut self, e: FramingError) -> Result<(), FramingError> {
        self.state = State::Failed;
        Err(e)
    }

    fn end_line(&mut self, kind: LineKind) -> Result<(), FramingError> {
        let line = &self.buf[..self.len];
        let truncated = self.total > self.len;
        match kind {
            LineKind::Request => {
                if self.total == 0 {
                    // RFC 9112 2.2: a server SHOULD ignore at least one empty
                    // line received before the request-line.
                    return Ok(());
                }
                if line.starts_with(b"PRI * HTTP/2.0") {
                    self.state = State::Passthrough;
                    return Ok(());
                }
                self.head = Head {
                    http10: line.ends_with(b"HTTP/1.0"),
                    ..Head::default()
                };
                self.state = State::Line(LineKind::Header);
            }
            LineKind::Header => {
                if self.total == 0 {
                    return self.end_head();
                }
                let (name, value) = split_header(line)?;
                let value = trim_ows(value);
                if name.eq_ignore_ascii_case(b"content-length") {
                    if truncated {
                        return Err(FramingError::InvalidContentLength);
                    }
                    if self.head.content_length.is_some() {
                        return Err(FramingError::MultipleContentLength);
                    }
                    self.head.content_length = Some(parse_decimal(value)?);
                } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
                    if self.head.transfer_encoding
                        || truncated
                        || !value.eq_ignore_ascii_case(b"chunked")
                    {
                        return Err(FramingError::UnsupportedTransferEncoding);
                    }
                    self.head.transfer_encoding = true;
                    self.head.chunked = true;
                } else if name.eq_ignore_ascii_case(b"upgrade") {
                    self.head.upgrade = true;
                } else if name.eq_ignore_ascii_case(b"connection") {
                    self.head.connection_upgrade |= value
                        .split(|c| *c == b',')
                        .any(|t| trim_ows(t).eq_ignore_ascii_case(b"upgrade"));
                }
            }
            LineKind::ChunkSize => {
                let size_part = line.split(|c| *c == b';').next().unwrap_or(&[]);
                let size_part = trim_ows(size_part);
                if size_part.is_empty() || size_part.len() > 16 {
                    return Err(FramingError::BadChunkSize);
                }
                let mut size: u64 = 0;
                for c in size_part {
                    let d = (*c as char)
                        .to_digit(16)
                        .ok_or(FramingError::BadChunkSize)?;
                    size = (size << 4) | u64::from(d);
                }
                self.state = if size == 0 {
                    State::Line(LineKind::Trailer)
                } else {
                    State::ChunkData(size)
                };
            }
            LineKind::Trailer => {
                if self.total == 0 {
                    self.state = State::Line(LineKind::Request);
                } else {
                    split_header(line)?;
                }
            }
        }
        Ok(())
    }

    fn end_head(&mut self) -> Result<(), FramingError> {
        let h = self.head;
        if h.transfer_encoding && h.content_length.is_some() {
            return Err(FramingError::TransferEncodingWithContentLength);
        }
        if h.transfer_encoding && h.http10 {
            return Err(FramingError::UnsupportedTransferEncoding);
        }
        self.state = if h.upgrade && h.connection_upgrade {
            State::Passthrough
        } else if h.chunked {
            State::Line(LineKind::ChunkSize)
        } else {
            match h.content_length {
                Some(n) if n > 0 => State::Body(n),
                _ => State::Line(LineKind::Request),
            }
        };
        Ok(())
    }
}

/// `name: value`, with the name a non-empty token directly before the colon.
fn split_header(line: &[u8]) -> Result<(&[u8], &[u8]), FramingError> {
    if matches!(line.first(), Some(b' ' | b'\t')) {
        return Err(FramingError::ObsFold);
    }
    let colon = line
        .iter()
        .position(|c| *c == b':')
        .ok_or(FramingError::BadHeaderLine("no colon"))?;
    let name = &line[..colon];
    if name.is_empty() {
        return Err(FramingError::BadHeaderLine("empty header name"));
    }
    if !name.iter().all(|c| is_tchar(*c)) {
        return Err(FramingError::BadHeaderLine(
            "header name is not a token (whitespace before the colon?)",
        ));
    }
    Ok((name, &line[colon + 1..]))
}

fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

fn parse_decimal(s: &[u8]) -> Result<u64, FramingError> {
    if s.is_empty() || s.len() > 19 || !s.iter().all(u8::is_ascii_digit) {
        return Err(FramingError::InvalidContentLength);
    }
    Ok(s.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0')))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(stream: &[u8]) -> Result<FramingScanner, FramingError> {
        let mut s = FramingScanner::new();
        s.feed(stream)?;
        Ok(s)
    }

    /// Feeding byte by byte must agree with feeding at once.
    fn scan_bytewise(stream: &[u8]) -> Result<FramingScanner, FramingError> {
        let mut s = FramingScanner::new();
        for b in stream {
            s.feed(std::slice::from_ref(b))?;
        }
        Ok(s)
    }

    #[test]
    fn well_formed_streams_pass() {
        let ok: &[&[u8]] = &[
            b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
            b"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
            b"POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nab\ncdGET / HTTP/1.1\r\nHost: a\r\n\r\n",
            b"POST /u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n4;ext=1\r\na\nb\r\r\n10\r\n0123456789abcdef\r\n0\r\nX-T: 1\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
        ];
        for s in ok {
            scan(s).unwrap_or_else(|e| panic!("{:?}: {e}", String::from_utf8_lossy(s)));
            scan_bytewise(s).unwrap();
        }
    }

    #[test]
    fn hostile_shapes_fail() {
        use FramingError::*;
        let cases: &[(&[u8], FramingError)] = &[
            (b"GET / HTTP/1.1\nHost: a\n\n", BareLf),
            (b"GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n", BareCr),
            (b"GET / HTTP/1.1\r\nHost: a\0\r\n\r\n", Nul),
            (b"GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n", Fragment),
            (b"GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n", ObsFold),
            (b"GET / HTTP/1.1\r\nHost : a\r\n\r\n", BadHeaderLine("header name is not a token (whitespace before the colon?)")),
            (b"GET / HTTP/1.1\r\nno colon\r\n\r\n", BadHeaderLine("no colon")),
            (b"POST / HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n", TransferEncodingWithContentLength),
            (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n", TransferEncodingWithContentLength),
            (b"POST / HTTP/1.1\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\n", MultipleContentLength),
            (b"POST / HTTP/1.1\r\nContent-Length: 4, 4\r\n\r\n", InvalidContentLength),
            (b"POST / HTTP/1.1\r\nContent-Length: +4\r\n\r\n", InvalidContentLength),
            (b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", UnsupportedTransferEncoding),
            (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", UnsupportedTransferEncoding),
            (b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", UnsupportedTransferEncoding),
            (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", BadChunkSize),
            (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n11111111111111111\r\n", BadChunkSize),
            (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n4\nabcd", BareLf),
            (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabcd\r\n", BadChunkEnd),
            (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n trailer\r\n\r\n", ObsFold),
            // The second request on a keep-alive connection is held to the same rules.
            (b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\nHost: a\n\n", BareLf),
        ];
        for (stream, want) in cases {
            assert_eq!(
                scan(stream).err().as_ref(),
                Some(want),
                "{:?}",
                String::from_utf8_lossy(stream)
            );
            assert_eq!(scan_bytewise(stream).err().as_ref(), Some(want));
        }
    }

    #[test]
    fn steps_aside_for_h2_and_upgrades() {
        let s = scan(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\x12\x04").unwrap();
        assert!(s.is_passthrough());
        let mut s = scan(b"GET /chat HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n").unwrap();
        assert!(s.is_passthrough());
        // Frames after the upgrade are not HTTP and are not judged.
        s.feed(b"\x81\x05hello\n\n\0").unwrap();
        // An Upgrade header without Connection: upgrade is plain HTTP.
        assert!(!scan(b"GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n")
            .unwrap()
            .is_passthrough());
    }

    #[test]
    fn body_bytes_are_skipped_not_judged() {
        // A body full of bare LFs and NULs is data, not a head.
        let mut req = b"POST / HTTP/1.1\r\nContent-Length: 1000\r\n\r\n".to_vec();
        req.extend(std::iter::repeat_n(b'\n', 500));
        req.extend(std::iter::repeat_n(0u8, 500));
        req.extend_from_slice(b"GET / HTTP/1.1\r\n\r\n");
        scan(&req).unwrap();
    }
}
