//! The downstream socket as hyper reads it: every inbound byte first passes
//! the strict HTTP/1 framing scanner (`l7_http::FramingScanner`).
//!
//! On the first ambiguous byte the stream answers `400`/`501` itself, with
//! `Connection: close`, and ends the read side with an error, so hyper never
//! parses (and the proxy never forwards) the ambiguous request.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use l7_http::FramingScanner;
use pin_project::pin_project;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::conn::ConnInfo;
use crate::metrics::RequestVerdict;
use crate::state::Shared;

#[pin_project]
pub struct Scanned {
    #[pin]
    inner: TcpStream,
    scanner: Option<Box<FramingScanner>>,
    conn: Arc<ConnInfo>,
    shared: Arc<Shared>,
}

impl Scanned {
    pub fn new(inner: TcpStream, conn: Arc<ConnInfo>, shared: Arc<Shared>) -> Self {
        Scanned {
            inner,
            scanner: Some(Box::default()),
            conn,
            shared,
        }
    }
}

impl AsyncRead for Scanned {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let mut this = self.project();
        let before = buf.filled().len();
        ready!(this.inner.as_mut().poll_read(cx, buf))?;
        let Some(scanner) = this.scanner.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        match scanner.feed(&buf.filled()[before..]) {
            Ok(()) => {
                if scanner.is_passthrough() {
                    *this.scanner = None;
                }
                Poll::Ready(Ok(()))
            }
            Err(e) => {
                buf.set_filled(before);
                let resp = l7_http::error_response_h1(e.status(), &e.to_string());
                // A short reply into an idle socket's send buffer: a
                // non-blocking write is enough, and if it cannot go the
                // connection is closed regardless.
                let _ = this.inner.try_write(&resp);
                this.shared.metrics.request(RequestVerdict::Rejected);
                tracing::info!(reason = %e, "malformed HTTP/1 framing; closing");
                this.conn
                    .log_event(this.shared, "rejected", String::new(), e.to_string());
                Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, e)))
            }
        }
    }
}

impl AsyncWrite for Scanned {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.project().inner.poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.project().inner.poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_shutdown(cx)
    }
}
