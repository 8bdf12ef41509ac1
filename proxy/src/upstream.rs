//! Upstream connections of one downstream connection.
//!
//! A redirected connection has exactly one original destination, so each
//! downstream connection keeps its own upstream connection (HTTP/1.1) or
//! multiplexed session (HTTP/2) and reuses it for every request; there is no
//! shared pool to lock on the hot path.

use std::net::SocketAddr;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};

use crate::request_body::{BodyError, RequestBody};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::Mutex;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a connection taken from the idle pool may take to become ready.
const POOLED_READY: Duration = Duration::from_millis(100);

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("connect to {addr}: {source}")]
    Connect {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("connect to {addr}: timed out after {CONNECT_TIMEOUT:?}")]
    ConnectTimeout { addr: SocketAddr },
    #[error("handshake with {addr}: {source}")]
    Handshake {
        addr: SocketAddr,
        source: hyper::Error,
    },
    #[error("request to {addr}: {source}")]
    Request {
        addr: SocketAddr,
        source: hyper::Error,
    },
}

impl UpstreamError {
    /// True when the downstream's own request body broke the exchange.
    pub fn is_downstream_fault(&self) -> bool {
        matches!(self, UpstreamError::Request { source, .. } if source.is_user())
    }

    /// True when the downstream's request body missed its deadline.
    pub fn is_request_timeout(&self) -> bool {
        let UpstreamError::Request { source, .. } = self else {
            return false;
        };
        std::error::Error::source(source)
            .and_then(|e| e.downcast_ref::<BodyError>())
            .is_some_and(|e| matches!(e, BodyError::Timeout(_)))
    }
}

/// Cilium's upstream socket mark: `base | (id & 0xFFFF) << 16 | (id >> 16) & 0xFF`,
/// base 0x0A00 on ingress and 0x0B00 on egress, `id` the source identity.
/// Redirect rules match it to let the proxy's own connections through.
pub fn cilium_mark(direction: npds::Direction, source_identity: u32) -> u32 {
    let base = match direction {
        npds::Direction::Ingress => 0x0A00,
        npds::Direction::Egress => 0x0B00,
    };
    base | (source_identity & 0xFFFF) << 16 | ((source_identity >> 16) & 0xFF)
}

/// Connects to `addr` with `mark` set on the socket. Setting a mark needs
/// CAP_NET_ADMIN; without it the connection goes unmarked (fine when there
/// is no redirection to escape, as with a fixed `upstream`).
pub async fn connect(addr: SocketAddr, mark: u32) -> Result<TcpStream, UpstreamError> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(|source| UpstreamError::Connect { addr, source })?;
    if let Err(e) = socket2::SockRef::from(&socket).set_mark(mark) {
        tracing::trace!(error = %e, "upstream SO_MARK not set");
    }
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, socket.connect(addr))
        .await
        .map_err(|_| UpstreamError::ConnectTimeout { addr })?
        .map_err(|source| UpstreamError::Connect { addr, source })?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

pub struct Upstream {
    addr: SocketAddr,
    mark: u32,
    h1: Mutex<Option<http1::SendRequest<RequestBody>>>,
    h2: Mutex<Option<http2::SendRequest<RequestBody>>>,
}

impl Upstream {
    pub fn new(addr: SocketAddr, mark: u32) -> Self {
        Upstream {
            addr,
            mark,
            h1: Mutex::new(None),
            h2: Mutex::new(None),
        }
    }

    async fn connect(&self) -> Result<TokioIo<TcpStream>, UpstreamError> {
        Ok(TokioIo::new(connect(self.addr, self.mark).await?))
    }

    /// Sends over the HTTP/1.1 connection, opening (or re-opening) it as
    /// needed. A request that the old connection never sent is retried once
    /// on a fresh one: that covers an upstream that closed an idle
    /// keep-alive connection, without ever sending a request twice.
    pub async fn send_h1(
        &self,
        req: Request<RequestBody>,
    ) -> Result<Response<Incoming>, UpstreamError> {
        let addr = self.addr;
        let mut req = req;
        for attempt in 0..2 {
            let mut guard = self.h1.lock().await;
            let usable = match guard.as_mut() {
                Some(s) => !s.is_closed() && s.ready().await.is_ok(),
                None => false,
            };
            if !usable {
                // The cold path is boxed: kept inline, its connect, timer and
                // handshake state would make every request's future several
                // times larger, and that future is moved whole whenever hyper
                // or tokio moves it.
                *guard = Some(Box::pin(self.open_h1(guard.is_none())).await?);
            }
            let Some(sender) = guard.as_mut() else {
                unreachable!("set above")
            };
            let fut = sender.try_send_request(req);
            drop(guard);
            match fut.await {
                Ok(resp) => return Ok(resp),
                Err(mut e) => match e.take_message() {
                    Some(unsent) if attempt == 0 => {
                        req = unsent;
                        continue;
                    }
                    _ => {
                        return Err(UpstreamError::Request {
                            addr,
                            source: e.into_error(),
                        })
                    }
                },
            }
        }
        unreachable!("the loop returns on its second attempt")
    }

    /// A ready HTTP/1.1 connection: this worker's idle one when it has one
    /// (`from_pool`) that becomes ready in time, else a new one.
    async fn open_h1(
        &self,
        from_pool: bool,
    ) -> Result<http1::SendRequest<RequestBody>, UpstreamError> {
        if let Some(mut pooled) = from_pool
            .then(|| idle::take(self.addr, self.mark))
            .flatten()
        {
            // A pooled connection may still be finishing its last
            // exchange; give it a moment, else open a fresh one.
            match tokio::time::timeout(POOLED_READY, pooled.ready()).await {
                Ok(Ok(())) => return Ok(pooled),
                Ok(Err(e)) => tracing::debug!(error = %e, "pooled upstream connection failed"),
                Err(_) => tracing::debug!("pooled upstream connection not ready in time"),
            }
        }
        let addr = self.addr;
        let io = self.connect().await?;
        let (sender, conn) = http1::Builder::new()
            .handshake(io)
            .await
            .map_err(|source| UpstreamError::Handshake { addr, source })?;
        tokio::spawn(async move {
            if let Err(e) = conn.with_upgrades().await {
                tracing::debug!(error = %e, "upstream connection ended");
            }
        });
        Ok(sender)
    }

    /// A new HTTP/2 session to the destination (boxed by its caller, as
    /// `open_h1` is).
    async fn open_h2(&self) -> Result<http2::SendRequest<RequestBody>, UpstreamError> {
        let addr = self.addr;
        let io = self.connect().await?;
        let (sender, conn) = http2::Builder::new(TokioExecutor::new())
            .handshake(io)
            .await
            .map_err(|source| UpstreamError::Handshake { addr, source })?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "upstream h2 session ended");
            }
        });
        Ok(sender)
    }

    /// Sends over the HTTP/2 session, opening it as needed.
    pub async fn send_h2(
        &self,
        req: Request<RequestBody>,
    ) -> Result<Response<Incoming>, UpstreamError> {
        let addr = self.addr;
        let mut sender = {
            let mut guard = self.h2.lock().await;
            match guard.as_ref() {
                Some(s) if !s.is_closed() => s.clone(),
                _ => {
                    let sender = Box::pin(self.open_h2()).await?;
                    *guard = Some(sender.clone());
                    sender
                }
            }
        };
        sender
            .ready()
            .await
            .map_err(|source| UpstreamError::Request { addr, source })?;
        sender
            .send_request(req)
            .await
            .map_err(|source| UpstreamError::Request { addr, source })
    }
}

impl Upstream {
    /// Forgets the HTTP/1.1 connection: it switched protocols without
    /// leave, and nothing more may go over it (nor back to the pool).
    pub async fn discard_h1(&self) {
        self.h1.lock().await.take();
    }
}

impl Drop for Upstream {
    /// An idle HTTP/1.1 connection outlives the downstream connection that
    /// opened it: it goes back to this worker's pool for the next one.
    fn drop(&mut self) {
        if let Some(sender) = self.h1.get_mut().take() {
            idle::put(self.addr, self.mark, sender);
        }
    }
}

/// Idle HTTP/1.1 upstream connections of this worker thread, by original
/// destination and socket mark (a connection marked with one identity never
/// carries another's traffic). Workers are single-threaded runtimes, so a
/// thread-local needs no lock; both ends are bounded.
mod idle {
    use std::cell::RefCell;
    use std::collections::HashMap;
    use std::net::SocketAddr;
    use std::time::{Duration, Instant};

    use hyper::client::conn::http1::SendRequest;

    use crate::request_body::RequestBody;

    const PER_DESTINATION: usize = 64;
    const TOTAL: usize = 1024;
    const MAX_IDLE: Duration = Duration::from_secs(60);

    type Key = (SocketAddr, u32);

    #[derive(Default)]
    struct Pool {
        by_key: HashMap<Key, Vec<(SendRequest<RequestBody>, Instant)>>,
        total: usize,
    }

    thread_local! {
        static POOL: RefCell<Pool> = RefCell::new(Pool::default());
    }

    pub(super) fn take(addr: SocketAddr, mark: u32) -> Option<SendRequest<RequestBody>> {
        POOL.with_borrow_mut(|pool| {
            let list = pool.by_key.get_mut(&(addr, mark))?;
            let mut found = None;
            while let Some((sender, since)) = list.pop() {
                pool.total -= 1;
                if !sender.is_closed() && since.elapsed() < MAX_IDLE {
                    found = Some(sender);
                    break;
                }
            }
            if list.is_empty() {
                pool.by_key.remove(&(addr, mark));
            }
            found
        })
    }

    pub(super) fn put(addr: SocketAddr, mark: u32, sender: SendRequest<RequestBody>) {
        // Readiness is checked when the connection is taken: at this point
        // its last response may have ended a moment ago.
        if sender.is_closed() {
            return;
        }
        POOL.with_borrow_mut(|pool| {
            if pool.total >= TOTAL {
                return;
            }
            let list = pool.by_key.entry((addr, mark)).or_default();
            if list.len() < PER_DESTINATION {
                list.push((sender, Instant::now()));
                pool.total += 1;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::cilium_mark;
    use npds::Direction;

    #[test]
    fn marks_follow_cilium() {
        assert_eq!(cilium_mark(Direction::Ingress, 0), 0x0A00);
        assert_eq!(cilium_mark(Direction::Egress, 2), 0x0002_0B00);
        // Identity 16777217 (1<<24 | 1): low 16 bits up top, bits 16..24 in the low byte.
        assert_eq!(cilium_mark(Direction::Egress, 0x0100_0001), 0x0001_0B00);
        assert_eq!(cilium_mark(Direction::Ingress, 0x0012_3456), 0x3456_0A12);
    }
}
