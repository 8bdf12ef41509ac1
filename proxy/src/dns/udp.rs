//! DNS over UDP: one task per listener socket per worker.
//!
//! The task owns the client socket, one socket connected to the upstream
//! server (the kernel drops datagrams from anyone else), the table of
//! queries waiting for answers (keyed by their fresh ID, at most
//! `dns.maxInFlight`) and their deadlines in arrival order. No task is
//! spawned per query: datagrams are taken in batches (`recvmmsg`) as the
//! sockets turn readable, and what a batch produces leaves in batches
//! (`sendmmsg`): queries to the server, replies to the clients. Only a
//! reply that must wait for the agent to take its FQDN mapping is handed to
//! a task of its own.

use std::collections::VecDeque;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use rustc_hash::FxHashMap;
use tokio::net::UdpSocket;
use tokio::time::Instant;
use tracing::{debug, warn};

use super::mmsg::{RecvBatch, SendBatch};
use super::{answer, judge_query, overflow, timed_out, Disposition, Exchange};
use crate::conn::Listener;
use crate::state::Shared;

/// The largest datagram, and so every receive buffer.
const MAX_DATAGRAM: usize = 65_535;
/// Datagrams taken from (or sent to) a socket in one system call. Receive
/// buffers are `BATCH * MAX_DATAGRAM` bytes per socket.
const BATCH: usize = 16;

struct Waiting {
    exchange: Box<Exchange>,
    seq: u64,
}

pub async fn serve(socket: std::net::UdpSocket, listener: Arc<Listener>, shared: Arc<Shared>) {
    if let Err(e) = run(socket, &listener, &shared).await {
        warn!(listener = %listener.name, error = %e, "DNS over UDP stopped");
    }
}

async fn run(
    socket: std::net::UdpSocket,
    listener: &Listener,
    shared: &Arc<Shared>,
) -> io::Result<()> {
    let server = listener
        .upstream
        .ok_or_else(|| io::Error::other("a DNS listener needs an upstream server"))?;
    let client = Arc::new(UdpSocket::from_std(socket)?);
    let local: SocketAddr = if server.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let upstream = UdpSocket::bind(local).await?;
    upstream.connect(server).await?;

    let (max_in_flight, timeout) = {
        let config = &shared.policy().limits.dns;
        (config.max_in_flight.max(1), super::upstream_timeout(config))
    };
    // FxHash: the keys are IDs this task chose at random.
    let mut waiting: FxHashMap<u16, Waiting> = FxHashMap::default();
    let mut deadlines: VecDeque<(Instant, u16, u64)> = VecDeque::new();
    let mut seq = 0u64;
    let mut from_clients = RecvBatch::new(BATCH, MAX_DATAGRAM);
    let mut from_server = RecvBatch::new(BATCH, MAX_DATAGRAM);
    let mut to_server = SendBatch::new(BATCH);
    // The IDs of the queries in `to_server`, in push order.
    let mut sent_ids: Vec<u16> = Vec::with_capacity(BATCH);
    let mut to_clients = SendBatch::new(BATCH);
    let far = Duration::from_secs(3600);
    // One timer, moved only when the earliest deadline changes: a timer
    // made per loop turn costs a timer-wheel insertion per datagram.
    let timer = tokio::time::sleep(far);
    tokio::pin!(timer);
    let mut armed: Option<Instant> = None;

    loop {
        let next = deadlines.front().map(|d| d.0);
        if next != armed {
            timer
                .as_mut()
                .reset(next.unwrap_or_else(|| Instant::now() + far));
            armed = next;
        }
        tokio::select! {
            biased;
            r = upstream.readable() => {
                r?;
                let n = match from_server.recv(&upstream) {
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    Err(e) => {
                        // ICMP unreachable and the like: those queries time out.
                        debug!(%server, error = %e, "upstream receive error");
                        shared.metrics.upstream_errors.inc();
                        continue;
                    }
                };
                let now = Instant::now();
                for i in 0..n {
                    let (bytes, _, truncated) = from_server.get(i);
                    if bytes.len() < 12 || truncated {
                        debug!(%server, n = bytes.len(), truncated, "runt or oversized datagram from upstream dropped");
                        continue;
                    }
                    let id = u16::from_be_bytes([bytes[0], bytes[1]]);
                    let Some(w) = waiting.remove(&id) else {
                        debug!(%server, id, "answer for no waiting query (late or unknown) dropped");
                        continue;
                    };
                    let (reply, mapping) = answer(shared, &w.exchange, bytes.to_vec(), now.into_std());
                    match mapping {
                        Some(m) => {
                            let (client, shared) = (client.clone(), shared.clone());
                            let to = w.exchange.client;
                            tokio::spawn(async move {
                                m.deliver(&shared).await;
                                send(&client, &reply, to).await;
                            });
                        }
                        // At most one reply per datagram of the batch.
                        None => to_clients.push(&reply, Some(w.exchange.client)),
                    }
                }
                flush_replies(&mut to_clients, &client).await;
            }
            r = client.readable() => {
                r?;
                let n = match from_clients.recv(&client) {
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    Err(e) => {
                        debug!(error = %e, "client receive error");
                        continue;
                    }
                };
                let now = Instant::now();
                for i in 0..n {
                    let (bytes, from, truncated) = from_clients.get(i);
                    let Some(from) = from else { continue };
                    if truncated {
                        debug!(%from, "query over {MAX_DATAGRAM} bytes dropped");
                        continue;
                    }
                    match judge_query(shared, &listener.name, "udp", from, server, bytes, now.into_std()) {
                        None => {}
                        Some(Disposition::Reply(reply)) => to_clients.push(&reply, Some(from)),
                        Some(Disposition::Forward(x)) => {
                            let id = if waiting.len() < max_in_flight {
                                fresh_id(&waiting)
                            } else {
                                None
                            };
                            let Some(id) = id else {
                                let reply = overflow(shared, &x);
                                to_clients.push(&reply, Some(from));
                                continue;
                            };
                            l7_dns::message::set_id(bytes, id);
                            to_server.push(bytes, None);
                            sent_ids.push(id);
                            seq += 1;
                            deadlines.push_back((now + timeout, id, seq));
                            waiting.insert(id, Waiting { exchange: x, seq });
                            prune(&mut deadlines, &waiting, max_in_flight);
                        }
                    }
                }
                // Queries first: their answers take longest.
                to_server
                    .flush(&upstream, |i, e| {
                        let Some(w) = sent_ids.get(i).and_then(|id| waiting.remove(id)) else {
                            return;
                        };
                        let reply = super::upstream_failed(
                            shared,
                            &w.exchange,
                            format!("sending to {server}: {e}"),
                        );
                        to_clients.push(&reply, Some(w.exchange.client));
                    })
                    .await;
                sent_ids.clear();
                flush_replies(&mut to_clients, &client).await;
            }
            () = &mut timer => {
                // An elapsed timer stays ready: park it until a deadline arms it.
                timer.as_mut().reset(Instant::now() + far);
                armed = None;
                let now = Instant::now();
                while let Some(&(at, id, s)) = deadlines.front() {
                    if at > now {
                        break;
                    }
                    deadlines.pop_front();
                    if waiting.get(&id).is_some_and(|w| w.seq == s) {
                        let w = waiting.remove(&id).expect("just seen");
                        if let Some(reply) = timed_out(shared, &w.exchange) {
                            to_clients.push(&reply, Some(w.exchange.client));
                            if to_clients.is_full() {
                                flush_replies(&mut to_clients, &client).await;
                            }
                        }
                    }
                }
                flush_replies(&mut to_clients, &client).await;
            }
        }
    }
}

async fn flush_replies(batch: &mut SendBatch, client: &UdpSocket) {
    if !batch.is_empty() {
        batch
            .flush(client, |_, e| debug!(error = %e, "cannot send a DNS reply"))
            .await;
    }
}

/// Keeps the deadline queue bounded: entries of answered queries are
/// dropped from its front, and when answered entries pile up behind a slow
/// one, the queue is compacted (amortised: at most once per `limit` pushes).
fn prune(
    deadlines: &mut VecDeque<(Instant, u16, u64)>,
    waiting: &FxHashMap<u16, Waiting>,
    limit: usize,
) {
    let live = |d: &(Instant, u16, u64)| waiting.get(&d.1).is_some_and(|w| w.seq == d.2);
    while deadlines.front().is_some_and(|d| !live(d)) {
        deadlines.pop_front();
    }
    if deadlines.len() > 2 * limit {
        deadlines.retain(live);
    }
}

/// A query ID no waiting query has. Random, so that answers cannot be
/// forged by guessing a counter.
fn fresh_id(waiting: &FxHashMap<u16, Waiting>) -> Option<u16> {
    (0..16)
        .map(|_| fastrand::u16(..))
        .find(|id| !waiting.contains_key(id))
}

async fn send(socket: &UdpSocket, bytes: &[u8], to: SocketAddr) {
    if let Err(e) = socket.send_to(bytes, to).await {
        debug!(%to, error = %e, "cannot send a DNS reply");
    }
}
