//! Listening sockets and the worker threads that accept on them.
//!
//! Thread per core: each worker is a single-threaded tokio runtime with its
//! own SO_REUSEPORT socket for every listener, and a connection lives its
//! whole life (downstream, upstream, policy checks) on the worker that
//! accepted it. On a small node the proxy shares cores with the workloads
//! it protects; a work-stealing pool would spend them on wakeups and
//! cross-thread hand-offs instead (measured: see bench/README.md).

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpListener;
use tracing::{info, warn};

use crate::config::ListenerConfig;
use crate::conn::{self, Listener};
use crate::orig_dst::{FixedUpstream, OrigDst, SocketOrigDst};
use crate::state::Shared;

const BACKLOG: i32 = 4096;

/// A listener's shared description and one bound socket per worker.
pub struct Bound {
    pub listener: Arc<Listener>,
    pub sockets: Vec<std::net::TcpListener>,
}

fn bind_one(addr: SocketAddr, transparent: bool) -> std::io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    if transparent {
        if addr.is_ipv4() {
            socket.set_ip_transparent_v4(true)?;
        } else {
            socket.set_ip_transparent_v6(true)?;
        }
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

/// Binds every configured listener once per worker. Errors name the listener.
pub fn bind_all(configs: &[ListenerConfig], workers: usize) -> anyhow::Result<Vec<Bound>> {
    let mut out = Vec::with_capacity(configs.len());
    for lc in configs {
        let addr = SocketAddr::new(lc.address, lc.port);
        let sockets = (0..workers)
            .map(|_| bind_one(addr, lc.transparent))
            .collect::<std::io::Result<Vec<_>>>()
            .with_context(|| format!("listener {}: binding {addr}", lc.name()))?;
        let orig_dst: Box<dyn OrigDst> = match lc.upstream {
            Some(up) => Box::new(FixedUpstream(up)),
            None => Box::new(SocketOrigDst { listen: addr }),
        };
        let listener = Arc::new(Listener {
            name: lc.name().into(),
            direction: lc.direction.into(),
            protocol: lc.protocol,
            proxy_id: u32::from(lc.port),
            orig_dst,
        });
        info!(name = %listener.name, %addr, direction = listener.direction.as_str(), workers, "listening");
        out.push(Bound { listener, sockets });
    }
    Ok(out)
}

/// Starts `workers` threads, worker `i` accepting on socket `i` of every listener.
pub fn spawn_workers(bound: Vec<Bound>, workers: usize, shared: Arc<Shared>) -> anyhow::Result<()> {
    let mut per_worker: Vec<Vec<(Arc<Listener>, std::net::TcpListener)>> =
        (0..workers).map(|_| Vec::new()).collect();
    for b in bound {
        for (i, s) in b.sockets.into_iter().enumerate() {
            per_worker[i].push((b.listener.clone(), s));
        }
    }
    for (i, sockets) in per_worker.into_iter().enumerate() {
        let shared = shared.clone();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting a worker runtime")?;
        std::thread::Builder::new()
            .name(format!("worker-{i}"))
            .spawn(move || {
                rt.block_on(async move {
                    for (listener, socket) in sockets {
                        match TcpListener::from_std(socket) {
                            Ok(socket) => {
                                tokio::spawn(accept_loop(socket, listener, shared.clone()));
                            }
                            Err(e) => warn!(error = %e, "cannot register listener"),
                        }
                    }
                    std::future::pending::<()>().await
                })
            })
            .context("spawning a worker thread")?;
    }
    Ok(())
}

async fn accept_loop(socket: TcpListener, listener: Arc<Listener>, shared: Arc<Shared>) {
    loop {
        match socket.accept().await {
            Ok((stream, peer)) => {
                tokio::spawn(conn::handle(stream, peer, listener.clone(), shared.clone()));
            }
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                warn!(listener = %listener.name, error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
    }
}
