//! A downstream request body as it is sent upstream: hyper's `Incoming`,
//! cut with an error when it has not ended by its deadline, so a client
//! that trickles a body a byte at a time cannot hold a connection (and an
//! upstream connection) forever.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use pin_project::pin_project;
use tokio::time::{Instant, Sleep};

#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error(transparent)]
    Downstream(#[from] hyper::Error),
    #[error("request body not complete {0:?} after its head")]
    Timeout(Duration),
}

#[pin_project]
pub struct RequestBody {
    #[pin]
    inner: Incoming,
    /// When the head arrived, and how long the body may take after it.
    started: Instant,
    limit: Option<Duration>,
    /// Made on the first poll that has to wait: a body that is already
    /// complete (most requests) never arms a timer. Boxed because hyper's
    /// HTTP/2 client wants an `Unpin` body.
    deadline: Option<Pin<Box<Sleep>>>,
}

impl RequestBody {
    pub fn new(inner: Incoming, limit: Option<Duration>) -> Self {
        RequestBody {
            inner,
            started: Instant::now(),
            limit,
            deadline: None,
        }
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.project();
        if let Poll::Ready(frame) = this.inner.poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(BodyError::from)));
        }
        let Some(limit) = *this.limit else {
            return Poll::Pending;
        };
        let started = *this.started;
        let deadline = this
            .deadline
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(started + limit)));
        match deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(BodyError::Timeout(limit)))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
