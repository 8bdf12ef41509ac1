//! DNS over UDP: one task per listener socket per worker.
//!
//! The task owns the client socket, one socket connected to the upstream
//! server (the kernel drops datagrams from anyone else), the table of
//! queries waiting for answers (keyed by their fresh ID, at most
//! `dns.maxInFlight`) and their deadlines in arrival order. No task is
//! spawned per query: datagrams are drained in batches as sockets turn
//! readable. Only a reply that must wait for the agent to take its FQDN
//! mapping is handed to a task of its own.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::time::Instant;
use tracing::{debug, warn};

use super::{answer, judge_query, overflow, timed_out, Exchange, Verdict};
use crate::conn::Listener;
use crate::state::Shared;

/// The largest datagram (and so every buffer here).
const MAX_DATAGRAM: usize = 65_535;
/// Datagrams taken from one socket before looking at the others.
const BATCH: usize = 64;

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

    let max_in_flight = shared.dns.config().max_in_flight.max(1);
    let timeout = shared.dns.upstream_timeout();
    let mut waiting: HashMap<u16, Waiting> = HashMap::new();
    let mut deadlines: VecDeque<(Instant, u16, u64)> = VecDeque::new();
    let mut seq = 0u64;
    let mut buf = vec![0u8; MAX_DATAGRAM];
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
                for _ in 0..BATCH {
                    let n = match upstream.try_recv(&mut buf) {
                        Ok(n) => n,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => {
                            // ICMP unreachable and the like: those queries time out.
                            debug!(%server, error = %e, "upstream receive error");
                            shared.metrics.upstream_errors.inc();
                            break;
                        }
                    };
                    if n < 12 {
                        debug!(%server, n, "runt datagram from upstream dropped");
                        continue;
                    }
                    let id = u16::from_be_bytes([buf[0], buf[1]]);
                    let Some(w) = waiting.remove(&id) else {
                        debug!(%server, id, "answer for no waiting query (late or unknown) dropped");
                        continue;
                    };
                    let (reply, mapping) = answer(shared, &w.exchange, buf[..n].to_vec());
                    match mapping {
                        Some(m) => {
                            let (client, shared) = (client.clone(), shared.clone());
                            let to = w.exchange.client;
                            tokio::spawn(async move {
                                m.deliver(&shared).await;
                                send(&client, &reply, to).await;
                            });
                        }
                        None => send(&client, &reply, w.exchange.client).await,
                    }
                }
            }
            r = client.readable() => {
                r?;
                for _ in 0..BATCH {
                    let (n, from) = match client.try_recv_from(&mut buf) {
                        Ok(x) => x,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => {
                            debug!(error = %e, "client receive error");
                            break;
                        }
                    };
                    match judge_query(shared, &listener.name, "udp", from, server, &buf[..n]) {
                        None => {}
                        Some(Verdict::Reply(reply)) => send(&client, &reply, from).await,
                        Some(Verdict::Forward(x)) => {
                            let id = if waiting.len() < max_in_flight {
                                fresh_id(&waiting)
                            } else {
                                None
                            };
                            let Some(id) = id else {
                                let reply = overflow(shared, &x);
                                send(&client, &reply, from).await;
                                continue;
                            };
                            l7_dns::message::set_id(&mut buf[..n], id);
                            if let Err(e) = upstream.send(&buf[..n]).await {
                                let reply = super::upstream_failed(shared, &x, format!("sending to {server}: {e}"));
                                send(&client, &reply, from).await;
                                continue;
                            }
                            seq += 1;
                            deadlines.push_back((Instant::now() + timeout, id, seq));
                            waiting.insert(id, Waiting { exchange: x, seq });
                            prune(&mut deadlines, &waiting, max_in_flight);
                        }
                    }
                }
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
                            send(&client, &reply, w.exchange.client).await;
                        }
                    }
                }
            }
        }
    }
}

/// Keeps the deadline queue bounded: entries of answered queries are
/// dropped from its front, and when answered entries pile up behind a slow
/// one, the queue is compacted (amortised: at most once per `limit` pushes).
fn prune(
    deadlines: &mut VecDeque<(Instant, u16, u64)>,
    waiting: &HashMap<u16, Waiting>,
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
fn fresh_id(waiting: &HashMap<u16, Waiting>) -> Option<u16> {
    (0..16)
        .map(|_| fastrand::u16(..))
        .find(|id| !waiting.contains_key(id))
}

async fn send(socket: &UdpSocket, bytes: &[u8], to: SocketAddr) {
    if let Err(e) = socket.send_to(bytes, to).await {
        debug!(%to, error = %e, "cannot send a DNS reply");
    }
}
