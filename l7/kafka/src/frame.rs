//! Kafka framing: a big-endian `i32` size, then that many bytes.
//!
//! [`Decoder`] finds frames in a buffer its caller fills from a socket, and
//! says how much to read next. Reads are bounded whatever length a peer
//! announces, so a buffer grows only as bytes arrive: a peer that announces
//! a large frame and sends nothing costs nothing.
//!
//! A frame is yielded whole, or — when the caller asks for only its first
//! bytes — as a [`Frame::Head`] once those are buffered, the rest still in
//! the socket: the caller may then move the rest on without buffering it
//! (large Produce record batches, large Fetch responses).

use bytes::{Bytes, BytesMut};

/// The most a single read asks for: the buffer grows by at most this much
/// before the bytes are there, whatever length a peer announces.
pub const MAX_READ: usize = 1024 * 1024;

/// How much is read at a time into a growing frame, and the most read
/// before a frame's length is known.
pub const CHUNK: usize = 64 * 1024;

/// Kafka's own default for `socket.request.max.bytes`.
pub const DEFAULT_MAX_FRAME: usize = 100 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("negative frame length {0}")]
    Negative(i32),
    #[error("frame of {len} bytes is over the {max}-byte limit")]
    TooLarge { len: usize, max: usize },
    #[error("connection closed {got} bytes into a {len}-byte frame")]
    Truncated { got: usize, len: usize },
    #[error("connection closed inside a frame's length prefix")]
    TruncatedLength,
    /// From the caller's reads; the decoder itself does no I/O.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// The next frame, as far as it is buffered.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// All of it, length prefix included, split off the buffer.
    Whole(Bytes),
    /// Its first bytes (as many as asked for, at least) are at the start of
    /// the buffer, not all of it; `size` is the whole frame's, prefix
    /// included. Every buffered byte belongs to this frame.
    Head { size: usize },
}

/// What the buffer holds.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    Ready(Frame),
    /// Read at most this many more bytes into the buffer, then decode again.
    Need(usize),
}

/// Frames of at most `max` bytes (after the prefix).
#[derive(Debug, Clone, Copy)]
pub struct Decoder {
    max: usize,
}

impl Decoder {
    pub fn new(max: usize) -> Self {
        Decoder { max }
    }

    /// The next frame in `buf`: whole once all of it is buffered, else its
    /// head once `head` bytes of it are (prefix included; at least the
    /// prefix); otherwise how much to read. `head = usize::MAX` waits for
    /// whole frames.
    ///
    /// Until a frame's length is known a read asks for at most [`CHUNK`]
    /// bytes, so that the body of a large frame is still in the socket when
    /// its head is decided on. After, a chunk while what is wanted fits in
    /// one (small frames arrive many to a read), else what is still wanted,
    /// up to [`MAX_READ`]: not past a large frame's end, so that a buffer
    /// holding most of one is not grown, and copied, for bytes after it.
    pub fn decode(&self, buf: &mut BytesMut, head: usize) -> Result<Decoded, FrameError> {
        let Some(size) = self.frame_size(buf)? else {
            return Ok(Decoded::Need(CHUNK));
        };
        if buf.len() >= size {
            return Ok(Decoded::Ready(Frame::Whole(buf.split_to(size).freeze())));
        }
        let want = size.min(head.max(4));
        if buf.len() >= want {
            return Ok(Decoded::Ready(Frame::Head { size }));
        }
        if want <= CHUNK {
            return Ok(Decoded::Need(CHUNK));
        }
        Ok(Decoded::Need((want - buf.len()).min(MAX_READ)))
    }

    /// The size, prefix included, of the frame `buf` starts with, once its
    /// prefix is there; an error for a negative or over-limit length.
    pub fn frame_size(&self, buf: &[u8]) -> Result<Option<usize>, FrameError> {
        let Some(len) = announced(buf) else {
            return Ok(None);
        };
        let len = usize::try_from(len).map_err(|_| FrameError::Negative(len))?;
        if len > self.max {
            return Err(FrameError::TooLarge { len, max: self.max });
        }
        Ok(Some(4 + len))
    }

    /// The stream ended with `buf` left over: fine between frames, an error
    /// inside one.
    pub fn end(&self, buf: &[u8]) -> Result<(), FrameError> {
        match announced(buf) {
            _ if buf.is_empty() => Ok(()),
            None => Err(FrameError::TruncatedLength),
            Some(len) => Err(FrameError::Truncated {
                got: buf.len() - 4,
                len: len as usize,
            }),
        }
    }
}

/// The length prefix at the start of `buf`, once it is there.
fn announced(buf: &[u8]) -> Option<i32> {
    Some(i32::from_be_bytes(buf.get(..4)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `data` fed `piece` bytes at a time (or as much as the decoder
    /// asks for, if less), as a reader would: the frames, and how the
    /// stream ended.
    fn decode_all(data: &[u8], max: usize, piece: usize) -> (Vec<Bytes>, Result<(), FrameError>) {
        let d = Decoder::new(max);
        let (mut buf, mut at, mut frames) = (BytesMut::new(), 0, vec![]);
        loop {
            match d.decode(&mut buf, usize::MAX) {
                Err(e) => return (frames, Err(e)),
                Ok(Decoded::Ready(Frame::Whole(f))) => frames.push(f),
                Ok(Decoded::Ready(Frame::Head { .. })) => unreachable!("whole frames asked for"),
                Ok(Decoded::Need(n)) => {
                    let n = n.min(piece).min(data.len() - at);
                    if n == 0 {
                        return (frames, d.end(&buf));
                    }
                    buf.extend_from_slice(&data[at..at + n]);
                    at += n;
                }
            }
        }
    }

    #[test]
    fn frames_and_errors() {
        let mut data = Vec::new();
        data.extend_from_slice(&3i32.to_be_bytes());
        data.extend_from_slice(b"abc");
        data.extend_from_slice(&0i32.to_be_bytes());
        let (frames, end) = decode_all(&data, 10, usize::MAX);
        assert_eq!(frames, [&b"\0\0\0\x03abc"[..], b"\0\0\0\0"]);
        assert!(end.is_ok());

        let (_, e) = decode_all(&(-1i32).to_be_bytes(), 10, usize::MAX);
        assert!(matches!(e, Err(FrameError::Negative(-1))), "{e:?}");

        let (_, e) = decode_all(&11i32.to_be_bytes(), 10, usize::MAX);
        assert!(
            matches!(e, Err(FrameError::TooLarge { len: 11, max: 10 })),
            "{e:?}"
        );

        let mut short = 5i32.to_be_bytes().to_vec();
        short.extend_from_slice(b"ab");
        let (_, e) = decode_all(&short, 10, usize::MAX);
        assert!(
            matches!(e, Err(FrameError::Truncated { got: 2, len: 5 })),
            "{e:?}"
        );

        let (_, e) = decode_all(&[0u8, 0], 10, usize::MAX);
        assert!(matches!(e, Err(FrameError::TruncatedLength)), "{e:?}");
    }

    #[test]
    fn announced_length_is_not_allocated_up_front() {
        // 50 MB announced, 10 bytes sent: no read asks for more than
        // MAX_READ, and before the length is known no more than CHUNK.
        let d = Decoder::new(DEFAULT_MAX_FRAME);
        let mut buf = BytesMut::new();
        assert_eq!(
            d.decode(&mut buf, usize::MAX).unwrap(),
            Decoded::Need(CHUNK)
        );
        buf.extend_from_slice(&(50_000_000i32).to_be_bytes());
        buf.extend_from_slice(&[0; 10]);
        assert_eq!(
            d.decode(&mut buf, usize::MAX).unwrap(),
            Decoded::Need(MAX_READ)
        );
        assert_eq!(d.decode(&mut buf, 100).unwrap(), Decoded::Need(CHUNK));
        assert!(buf.capacity() <= 2 * CHUNK, "{}", buf.capacity());
    }

    #[test]
    fn a_large_frame_body_stays_in_the_stream_after_its_head() {
        let mut data = Vec::new();
        data.extend_from_slice(&(300_000i32).to_be_bytes());
        data.extend((0..300_000u32).map(|i| i as u8));
        let d = Decoder::new(DEFAULT_MAX_FRAME);
        let mut buf = BytesMut::new();
        // The first read brings in at most a chunk, which holds the head.
        let Decoded::Need(n) = d.decode(&mut buf, 100).unwrap() else {
            panic!()
        };
        assert_eq!(n, CHUNK);
        buf.extend_from_slice(&data[..n]);
        assert_eq!(
            d.decode(&mut buf, 100).unwrap(),
            Decoded::Ready(Frame::Head { size: 300_004 })
        );
        assert_eq!(buf[..], data[..CHUNK]);

        // A small frame is split off whole, and what follows it stays.
        let mut buf = BytesMut::from(&b"\0\0\0\x01z\0\0"[..]);
        assert_eq!(
            d.decode(&mut buf, 100).unwrap(),
            Decoded::Ready(Frame::Whole(Bytes::from_static(b"\0\0\0\x01z")))
        );
        assert_eq!(buf[..], b"\0\0"[..]);
    }

    #[test]
    fn frames_split_across_and_within_reads() {
        let sizes = [0usize, 5, 70_000, 3, 2_000_000];
        let mut data = Vec::new();
        for (i, len) in sizes.into_iter().enumerate() {
            data.extend_from_slice(&(len as i32).to_be_bytes());
            data.extend(std::iter::repeat_n(i as u8, len));
        }
        for piece in [7, 4096, usize::MAX] {
            let (frames, end) = decode_all(&data, DEFAULT_MAX_FRAME, piece);
            assert!(end.is_ok(), "{end:?}");
            assert_eq!(frames.len(), sizes.len());
            for (i, (f, len)) in frames.iter().zip(sizes).enumerate() {
                assert_eq!(f.len(), len + 4);
                assert!(f[4..].iter().all(|b| *b == i as u8));
            }
        }
    }
}
