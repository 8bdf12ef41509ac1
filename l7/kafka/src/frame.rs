//! Kafka framing: a big-endian `i32` size, then that many bytes.
//!
//! A frame is read into a buffer that grows only as its bytes arrive, so a
//! peer that announces a large frame and sends nothing costs nothing.

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

/// Reads whole frames, buffered: one read brings in as much as the socket
/// has (up to [`MAX_READ`] at a time), so a stream of large requests costs
/// few system calls, and bytes past the current frame wait for the next.
pub struct FrameReader<R> {
    inner: R,
    max: usize,
    buf: BytesMut,
}

/// The most a single read asks for: the buffer grows by at most this much
/// before the bytes are there, whatever length a peer announces.
pub const MAX_READ: usize = 1024 * 1024;

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub fn new(inner: R, max: usize) -> Self {
        FrameReader {
            inner,
            max,
            buf: BytesMut::new(),
        }
    }

    /// The next whole frame with its 4-byte length prefix, or `None` at a
    /// clean end of stream (between frames).
    pub async fn read_frame(&mut self) -> Result<Option<Bytes>, FrameError> {
        let Some(size) = self.fill_head(usize::MAX).await? else {
            return Ok(None);
        };
        Ok(Some(self.buf.split_to(size).freeze()))
    }

    /// Reads until the next frame's length prefix and at least its first
    /// `head` bytes (all of it, if it is shorter) are buffered, and returns
    /// the frame's size, prefix included; `None` at a clean end of stream.
    /// [`buffered`](Self::buffered) then shows what has arrived of it.
    ///
    /// Until a frame's length is known, a read asks for at most [`CHUNK`]
    /// bytes, so that the body of a large frame is still in the socket when
    /// the caller decides whether to move it on without reading it
    /// ([`take_buffered`](Self::take_buffered)).
    pub async fn fill_head(&mut self, head: usize) -> Result<Option<usize>, FrameError> {
        loop {
            let (want, limit) = match self.frame_size()? {
                Some(size) => {
                    let want = size.min(head.max(4));
                    if self.buf.len() >= want {
                        return Ok(Some(size));
                    }
                    // At least one chunk, so small frames arrive many to a read.
                    (want, (want - self.buf.len()).clamp(CHUNK, MAX_READ))
                }
                None => (4, CHUNK),
            };
            debug_assert!(self.buf.len() < want);
            self.buf.reserve(limit);
            let n = (&mut self.inner)
                .take(limit as u64)
                .read_buf(&mut self.buf)
                .await?;
            if n == 0 {
                return match self.buf.len() {
                    0 => Ok(None),
                    1..=3 => Err(FrameError::TruncatedLength),
                    got => Err(FrameError::Truncated {
                        got: got - 4,
                        len: self.announced() as usize,
                    }),
                };
            }
        }
    }

    /// The current frame's size, prefix included, once its prefix is
    /// buffered; an error for a negative or over-limit length.
    fn frame_size(&self) -> Result<Option<usize>, FrameError> {
        if self.buf.len() < 4 {
            return Ok(None);
        }
        let len = self.announced();
        if len < 0 {
            return Err(FrameError::Negative(len));
        }
        let len = len as usize;
        if len > self.max {
            return Err(FrameError::TooLarge { len, max: self.max });
        }
        Ok(Some(4 + len))
    }

    /// The bytes buffered from the start of the current frame on (after
    /// [`fill_head`](Self::fill_head); they may run past its end).
    pub fn buffered(&self) -> &[u8] {
        &self.buf
    }

    /// Takes every buffered byte, for a caller that moves the rest of the
    /// current frame itself, straight from the stream. Only right when the
    /// buffer holds no more than the current frame.
    pub fn take_buffered(&mut self) -> Bytes {
        self.buf.split().freeze()
    }

    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    fn announced(&self) -> i32 {
        i32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]])
    }
}

/// Kafka's own default for `socket.request.max.bytes`.
pub const DEFAULT_MAX_FRAME: usize = 100 * 1024 * 1024;

/// How much is read from the socket at a time into a growing frame, and
/// the most read before a frame's length is known.
pub const CHUNK: usize = 64 * 1024;

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
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Reads frames one piece at a time, never past the end of the current
/// frame: the length prefix, then either the whole body
/// ([`read_body`](Self::read_body)) or, through [`get_mut`](Self::get_mut),
/// a stream of exactly that many bytes. For responses, which are streamed
/// through rather than held (wrap the socket in a `BufReader`).
pub struct StreamFrames<R> {
    inner: R,
    max: usize,
    buf: BytesMut,
}

impl<R: AsyncRead + Unpin> StreamFrames<R> {
    pub fn new(inner: R, max: usize) -> Self {
        StreamFrames {
            inner,
            max,
            buf: BytesMut::with_capacity(CHUNK),
        }
    }

    /// The frame's length prefix, or `None` at a clean end of stream.
    pub async fn read_len(&mut self) -> Result<Option<usize>, FrameError> {
        let mut prefix = [0u8; 4];
        let mut got = 0;
        while got < 4 {
            let n = self.inner.read(&mut prefix[got..]).await?;
            if n == 0 {
                return if got == 0 {
                    Ok(None)
                } else {
                    Err(FrameError::TruncatedLength)
                };
            }
            got += n;
        }
        let len = i32::from_be_bytes(prefix);
        if len < 0 {
            return Err(FrameError::Negative(len));
        }
        let len = len as usize;
        if len > self.max {
            return Err(FrameError::TooLarge { len, max: self.max });
        }
        Ok(Some(len))
    }

    /// The next whole frame with its 4-byte length prefix, or `None` at a
    /// clean end of stream.
    pub async fn read_frame(&mut self) -> Result<Option<Bytes>, FrameError> {
        let Some(len) = self.read_len().await? else {
            return Ok(None);
        };
        self.read_body(len).await.map(Some)
    }

    /// The `len` bytes after a length prefix, returned with the prefix.
    pub async fn read_body(&mut self, len: usize) -> Result<Bytes, FrameError> {
        self.buf.clear();
        self.buf.extend_from_slice(&(len as i32).to_be_bytes());
        let total = len + 4;
        while self.buf.len() < total {
            // Grow by what may arrive next, never by the announced length.
            let want = (total - self.buf.len()).min(CHUNK);
            self.buf.reserve(want);
            let n = (&mut self.inner)
                .take(want as u64)
                .read_buf(&mut self.buf)
                .await?;
            if n == 0 {
                return Err(FrameError::Truncated {
                    got: self.buf.len() - 4,
                    len,
                });
            }
        }
        Ok(self.buf.split().freeze())
    }

    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_and_errors() {
        let mut data = Vec::new();
        data.extend_from_slice(&3i32.to_be_bytes());
        data.extend_from_slice(b"abc");
        data.extend_from_slice(&0i32.to_be_bytes());
        let mut r = FrameReader::new(&data[..], 10);
        assert_eq!(
            &r.read_frame().await.unwrap().unwrap()[..],
            b"\0\0\0\x03abc"
        );
        assert_eq!(&r.read_frame().await.unwrap().unwrap()[..], b"\0\0\0\0");
        assert!(r.read_frame().await.unwrap().is_none());

        let neg = (-1i32).to_be_bytes();
        let e = FrameReader::new(&neg[..], 10)
            .read_frame()
            .await
            .unwrap_err();
        assert!(matches!(e, FrameError::Negative(-1)), "{e}");

        let big = 11i32.to_be_bytes();
        let e = FrameReader::new(&big[..], 10)
            .read_frame()
            .await
            .unwrap_err();
        assert!(
            matches!(e, FrameError::TooLarge { len: 11, max: 10 }),
            "{e}"
        );

        let mut short = 5i32.to_be_bytes().to_vec();
        short.extend_from_slice(b"ab");
        let e = FrameReader::new(&short[..], 10)
            .read_frame()
            .await
            .unwrap_err();
        assert!(matches!(e, FrameError::Truncated { got: 2, len: 5 }), "{e}");

        let e = FrameReader::new(&[0u8, 0][..], 10)
            .read_frame()
            .await
            .unwrap_err();
        assert!(matches!(e, FrameError::TruncatedLength), "{e}");
    }

    #[tokio::test]
    async fn announced_length_is_not_allocated_up_front() {
        // 50 MB announced, 10 bytes sent: the buffer stays small.
        let mut data = (50_000_000i32).to_be_bytes().to_vec();
        data.extend_from_slice(&[0; 10]);
        let mut r = StreamFrames::new(&data[..], DEFAULT_MAX_FRAME);
        assert!(r.read_frame().await.is_err());
        assert!(r.buf.capacity() <= 2 * CHUNK, "{}", r.buf.capacity());
        let mut r = FrameReader::new(&data[..], DEFAULT_MAX_FRAME);
        assert!(r.read_frame().await.is_err());
        assert!(r.buf.capacity() <= 2 * MAX_READ, "{}", r.buf.capacity());
    }

    #[tokio::test]
    async fn a_large_frame_body_stays_in_the_stream_after_its_head() {
        let mut data = Vec::new();
        data.extend_from_slice(&(300_000i32).to_be_bytes());
        data.extend((0..300_000u32).map(|i| i as u8));
        data.extend_from_slice(&1i32.to_be_bytes());
        data.push(b'z');
        let mut r = FrameReader::new(&data[..], DEFAULT_MAX_FRAME);
        assert_eq!(r.fill_head(100).await.unwrap(), Some(300_004));
        let head = r.take_buffered();
        assert!(head.len() >= 100 && head.len() <= CHUNK, "{}", head.len());
        assert_eq!(head[..], data[..head.len()]);
        // The rest of the frame is read by someone else, straight from the
        // stream; then frames go on as before.
        let mut rest = vec![0; 300_004 - head.len()];
        r.get_mut().read_exact(&mut rest).await.unwrap();
        assert_eq!(rest[..], data[head.len()..300_004]);
        assert_eq!(&r.read_frame().await.unwrap().unwrap()[..], b"\0\0\0\x01z");
        assert!(r.read_frame().await.unwrap().is_none());

        // A small frame is buffered whole, with what follows it.
        let mut r = FrameReader::new(&data[300_004..], DEFAULT_MAX_FRAME);
        assert_eq!(r.fill_head(100).await.unwrap(), Some(5));
        assert_eq!(r.buffered(), &data[300_004..]);
    }

    #[tokio::test]
    async fn buffered_reader_splits_frames_across_and_within_reads() {
        let sizes = [0usize, 5, 70_000, 3, 2_000_000];
        let mut data = Vec::new();
        for (i, len) in sizes.into_iter().enumerate() {
            data.extend_from_slice(&(len as i32).to_be_bytes());
            data.extend(std::iter::repeat_n(i as u8, len));
        }
        // Delivered in awkward pieces.
        let (mut tx, rx) = tokio::io::duplex(7);
        let writer = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            tx.write_all(&data).await.unwrap();
        });
        let mut r = FrameReader::new(rx, DEFAULT_MAX_FRAME);
        for (i, len) in sizes.into_iter().enumerate() {
            let f = r.read_frame().await.unwrap().unwrap();
            assert_eq!(f.len(), len + 4);
            assert!(f[4..].iter().all(|b| *b == i as u8));
        }
        writer.await.unwrap();
        assert!(r.read_frame().await.unwrap().is_none());
    }
}
