//! DNS over TCP (RFC 7766 framing: a 2-byte length, then the message).
//! Each client connection gets its own upstream connection, opened at its
//! first allowed query and reused for the next; queries on one connection
//! are answered in order. A frame cut short, or a connection idle too
//! long, closes the connection with the reason logged.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tracing::debug;

use super::{answer, judge_query, timed_out, upstream_failed, Disposition, Exchange};
use crate::conn::Listener;
use crate::state::Shared;

/// A client connection with no query in this long is closed.
const IDLE: Duration = Duration::from_secs(10);
/// Once a frame has started, the rest of it must arrive within this.
const FRAME: Duration = Duration::from_secs(5);

pub async fn handle(
    mut stream: TcpStream,
    peer: SocketAddr,
    listener: Arc<Listener>,
    shared: Arc<Shared>,
) {
    let _ = stream.set_nodelay(true);
    let Some(server) = listener.upstream else {
        debug!(listener = %listener.name, "a DNS listener needs an upstream server");
        return;
    };
    let mut upstream: Option<TcpStream> = None;
    loop {
        let frame = match read_frame(&mut stream, IDLE).await {
            Ok(Some(f)) => f,
            Ok(None) => return,
            Err(e) => {
                shared.metrics.dns_query("tcp", "malformed");
                debug!(%peer, error = %e, "DNS over TCP connection closed");
                return;
            }
        };
        let reply = match judge_query(
            &shared,
            &listener.name,
            "tcp",
            peer,
            server,
            &frame,
            Instant::now(),
        ) {
            None => continue,
            Some(Disposition::Reply(r)) => Some(r),
            Some(Disposition::Forward(x)) => {
                forward(&shared, &x, frame, server, &mut upstream).await
            }
        };
        if let Some(reply) = reply {
            if let Err(e) = write_frame(&mut stream, &reply).await {
                debug!(%peer, error = %e, "cannot write a DNS reply");
                return;
            }
        }
    }
}

/// Asks the server; `None` when the client is to get no reply.
async fn forward(
    shared: &Arc<Shared>,
    x: &Exchange,
    mut query: Vec<u8>,
    server: SocketAddr,
    upstream: &mut Option<TcpStream>,
) -> Option<Vec<u8>> {
    let id = fastrand::u16(..);
    l7_dns::message::set_id(&mut query, id);
    let timeout = super::upstream_timeout(&shared.policy().limits.dns);
    let exchange = async {
        if upstream.is_none() {
            let s = TcpStream::connect(server).await?;
            let _ = s.set_nodelay(true);
            *upstream = Some(s);
        }
        let up = upstream.as_mut().expect("just connected");
        write_frame(up, &query).await?;
        loop {
            let answer = read_frame(up, timeout).await?.ok_or_else(|| {
                io::Error::new(io::ErrorKind::UnexpectedEof, "server closed the connection")
            })?;
            if answer.len() >= 2 && u16::from_be_bytes([answer[0], answer[1]]) == id {
                return Ok::<_, io::Error>(answer);
            }
            debug!(%server, "answer with a stale ID skipped");
        }
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(Ok(bytes)) => {
            let (reply, mapping) = answer(shared, x, bytes, Instant::now());
            if let Some(m) = mapping {
                m.deliver(shared).await;
            }
            Some(reply)
        }
        Ok(Err(e)) => {
            *upstream = None;
            Some(upstream_failed(shared, x, format!("{server}: {e}")))
        }
        Err(_) => {
            *upstream = None;
            timed_out(shared, x)
        }
    }
}

/// One length-prefixed message; `None` at a clean end of stream.
async fn read_frame(s: &mut TcpStream, idle: Duration) -> io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 2];
    let first = match tokio::time::timeout(idle, s.read(&mut len)).await {
        Ok(r) => r?,
        Err(_) => return Err(io::Error::new(io::ErrorKind::TimedOut, "idle")),
    };
    match first {
        0 => return Ok(None),
        1 => {
            tokio::time::timeout(FRAME, s.read_exact(&mut len[1..]))
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "length cut short"))??;
        }
        _ => {}
    }
    let n = usize::from(u16::from_be_bytes(len));
    if n < 12 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{n}-byte frame is shorter than a DNS header"),
        ));
    }
    // The length is at most 65535: the buffer is bounded by the framing.
    let mut buf = vec![0u8; n];
    tokio::time::timeout(FRAME, s.read_exact(&mut buf))
        .await
        .map_err(|_| {
            io::Error::new(io::ErrorKind::TimedOut, format!("{n}-byte frame cut short"))
        })??;
    Ok(Some(buf))
}

async fn write_frame(s: &mut TcpStream, msg: &[u8]) -> io::Result<()> {
    let len = u16::try_from(msg.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "message over 65535 bytes"))?;
    let mut out = Vec::with_capacity(2 + msg.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(msg);
    s.write_all(&out).await
}
