//! Moving bytes from one TCP socket to another without reading them:
//! `splice(2)` through a pipe, so the data goes as page references and is
//! never copied into or out of this process.
//!
//! Written here because tokio has no splice and the crates that add it
//! (tokio-splice, tokio-splice2) copy a whole stream to its end, like
//! `copy_bidirectional`; a Kafka connection needs exactly the N bytes left
//! of one frame moved, and the stream parsed again after them.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use tokio::io::Interest;
use tokio::net::TcpStream;

/// What a pipe is asked to hold: fewer, larger splices. The kernel may
/// give less (`fs.pipe-max-size`, per-user pipe limits); whatever it gives
/// works.
const PIPE_SIZE: libc::c_int = 1 << 20;

/// A non-blocking pipe used as the splice buffer of one connection. It is
/// empty between calls to [`Pipe::relay`].
pub struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
    /// Bytes asked of one splice into the pipe.
    size: usize,
}

impl Pipe {
    pub fn new() -> io::Result<Pipe> {
        let mut fds: [RawFd; 2] = [-1; 2];
        // SAFETY: `fds` is a valid array of two file descriptors to fill.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: pipe2 succeeded, so both are open descriptors we now own.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        // SAFETY: fcntl on a descriptor we own; failure leaves the default.
        let size = unsafe {
            libc::fcntl(write.as_raw_fd(), libc::F_SETPIPE_SZ, PIPE_SIZE);
            libc::fcntl(write.as_raw_fd(), libc::F_GETPIPE_SZ)
        };
        Ok(Pipe {
            read,
            write,
            size: usize::try_from(size).unwrap_or(0).max(4096),
        })
    }

    /// Writes `head` to `to`, then moves exactly the next `len` bytes of
    /// `from` after it, in pipe-sized steps. `from` ending first is an
    /// `UnexpectedEof` error. On any error the pipe may hold bytes: drop it
    /// with the connection.
    ///
    /// `head` goes out only with the first pipeful, corked (`MSG_MORE`)
    /// into the same segments, so the receiver wakes once for both rather
    /// than once for a lone head.
    pub async fn relay(
        &self,
        head: &[u8],
        from: &TcpStream,
        to: &TcpStream,
        len: usize,
    ) -> io::Result<()> {
        let result = self.relay_waking_on_lowat(head, from, to, len).await;
        set_rcvlowat(from, 1)?;
        result
    }

    async fn relay_waking_on_lowat(
        &self,
        mut head: &[u8],
        from: &TcpStream,
        to: &TcpStream,
        mut len: usize,
    ) -> io::Result<()> {
        let mut lowat = 1;
        while len > 0 {
            let want = len.min(self.size);
            // Woken once a pipeful (or the rest of the frame) has arrived,
            // not for every segment: the kernel caps this at half the
            // receive buffer, so it never waits for more than can come.
            if want != lowat {
                set_rcvlowat(from, want)?;
                lowat = want;
            }
            let got = from
                .async_io(Interest::READABLE, || {
                    splice(from.as_raw_fd(), self.write.as_raw_fd(), want)
                })
                .await?;
            if got == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("stream ended {len} bytes before the end of the frame"),
                ));
            }
            len -= got;
            while !head.is_empty() {
                let n = to
                    .async_io(Interest::WRITABLE, || send_more(to.as_raw_fd(), head))
                    .await?;
                head = &head[n..];
            }
            let mut left = got;
            while left > 0 {
                left -= to
                    .async_io(Interest::WRITABLE, || {
                        splice(self.read.as_raw_fd(), to.as_raw_fd(), left)
                    })
                    .await?;
            }
        }
        Ok(())
    }
}

fn set_rcvlowat(socket: &TcpStream, bytes: usize) -> io::Result<()> {
    let value = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    // SAFETY: setsockopt with a pointer to a c_int that outlives the call.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVLOWAT,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `send(2)` with `MSG_MORE`: queued, not pushed, until more follows.
fn send_more(to: RawFd, bytes: &[u8]) -> io::Result<usize> {
    // SAFETY: `bytes` is valid for reads of its length during the call.
    let n = unsafe {
        libc::send(
            to,
            bytes.as_ptr().cast(),
            bytes.len(),
            libc::MSG_MORE | libc::MSG_NOSIGNAL,
        )
    };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

fn splice(from: RawFd, to: RawFd, len: usize) -> io::Result<usize> {
    // SAFETY: plain system call on open descriptors; no user memory passed.
    let n = unsafe {
        libc::splice(
            from,
            std::ptr::null_mut(),
            to,
            std::ptr::null_mut(),
            len,
            libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK,
        )
    };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    async fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let a = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        let (b, _) = l.accept().await.unwrap();
        (a, b)
    }

    #[tokio::test]
    async fn relays_exactly_len_bytes_and_leaves_the_rest() {
        // client → (src_out, src_in) → relay → (dst_out, dst_in) → reader
        let (mut client, src) = pair().await;
        let (dst, mut reader) = pair().await;
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let sent = data.clone();
        let writer = tokio::spawn(async move {
            // In uneven pieces, slower than the relay can take them.
            for chunk in sent.chunks(77_777) {
                client.write_all(chunk).await.unwrap();
                tokio::task::yield_now().await;
            }
            client
        });
        let reading = tokio::spawn(async move {
            let mut got = vec![0; 5 + 2_500_000];
            reader.read_exact(&mut got).await.unwrap();
            got
        });
        let pipe = Pipe::new().unwrap();
        pipe.relay(b"head:", &src, &dst, 2_500_000).await.unwrap();
        let got = reading.await.unwrap();
        assert_eq!(&got[..5], b"head:");
        assert_eq!(got[5..], data[..2_500_000]);
        // The bytes after `len` are still in the source socket.
        let _client = writer.await.unwrap();
        let mut src = src;
        let mut rest = vec![0; 500_000];
        src.read_exact(&mut rest).await.unwrap();
        assert_eq!(rest[..], data[2_500_000..]);
    }

    #[tokio::test]
    async fn a_source_that_ends_early_is_an_error() {
        let (mut client, src) = pair().await;
        let (dst, _reader) = pair().await;
        client.write_all(&[1; 1000]).await.unwrap();
        drop(client);
        let e = Pipe::new()
            .unwrap()
            .relay(b"", &src, &dst, 5000)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof, "{e}");
    }
}
