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
        loop {
            let need = if self.buf.len() >= 4 {
                let len = self.announced();
                if len < 0 {
                    return Err(FrameError::Negative(len));
                }
                let len = len as usize;
                if len > self.max {
                    return Err(FrameError::TooLarge { len, max: self.max });
                }
                if self.buf.len() >= 4 + len {
                    return Ok(Some(self.buf.split_to(4 + len).freeze()));
                }
                4 + len - self.buf.len()
            } else {
                4 - self.buf.len()
            };
            // At least one chunk, so small frames arrive many to a read.
            self.buf.reserve(need.clamp(CHUNK, MAX_READ));
            let n = self.inner.read_buf(&mut self.buf).await?;
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

    fn announced(&self) -> i32 {
        i32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]])
    }
}

/// Kafka's own default for `socket.request.max.bytes`.
pub const DEFAULT_MAX_FRAME: usize = 100 * 1024 * 1024;

/// How much is read from the socket at a time into a growing frame.
const CHUNK: usize = 64 * 1024;

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
