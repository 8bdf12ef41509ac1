//! Listening sockets, the worker threads that accept on them, and
//! [`Listeners`], the set of open listeners, made to match what the config
//! file and LDS say.
//!
//! Thread per core: each worker is a single-threaded tokio runtime with its
//! own SO_REUSEPORT socket for every listener, and a connection lives its
//! whole life (downstream, upstream, policy checks) on the worker that
//! accepted it. On a small node the proxy shares cores with the workloads
//! it protects; a work-stealing pool would spend them on wakeups and
//! cross-thread hand-offs instead (measured: see bench/README.md).
//!
//! Closing a listener stops its accept loops; connections already accepted
//! run to their end, as in Envoy's listener drain.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use npds::Direction;
use portcullis_xds::listener::{ListenerKind, ProxyListener};
use serde_json::json;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::config::{ListenerConfig, ListenerProtocol};
use crate::conn::{self, Listener};
use crate::orig_dst::{FixedUpstream, OrigDst, SocketOrigDst};
use crate::state::Shared;

const BACKLOG: i32 = 4096;
/// Commands waiting for one worker; an LDS update makes a handful.
const WORKER_QUEUE: usize = 1024;

/// Where a listener came from: the config file's are fixed for the
/// process's life; LDS owns the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Config,
    Lds,
}

/// Why [`Listeners::reconcile`] changed nothing. The text is what an
/// LDS NACK says.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("listener {name:?} is already defined by the {owner:?} source")]
    OtherSource { name: String, owner: Source },
    #[error("listener {name:?}: {addr} is already served by listener {other:?}")]
    AddressTaken {
        name: String,
        addr: SocketAddr,
        other: String,
    },
    #[error("listener {name:?}: cannot bind {addr}: {source}")]
    Bind {
        name: String,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("a worker is not taking listener changes")]
    WorkerGone,
}

/// What it takes to open one listener, whichever source it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerSpec {
    pub name: String,
    pub addresses: Vec<SocketAddr>,
    pub direction: Direction,
    pub protocol: ListenerProtocol,
    pub proxy_id: u32,
    pub upstream: Option<SocketAddr>,
    pub transparent: bool,
    pub mark: Option<u32>,
}

impl ListenerSpec {
    pub fn from_config(c: &ListenerConfig) -> Self {
        ListenerSpec {
            name: c.name(),
            addresses: vec![SocketAddr::new(c.address, c.port)],
            direction: c.direction.into(),
            protocol: c.protocol,
            proxy_id: u32::from(c.port),
            upstream: c.upstream,
            transparent: c.transparent,
            mark: None,
        }
    }

    /// An agent listener: redirected by TPROXY / `bpf_sk_assign`, so the
    /// socket is transparent and carries cilium-envoy's listening mark.
    pub fn from_lds(l: &ProxyListener) -> Self {
        ListenerSpec {
            name: l.name.clone(),
            addresses: l.addresses.clone(),
            direction: if l.is_ingress {
                Direction::Ingress
            } else {
                Direction::Egress
            },
            // An HTTP connection manager parses HTTP whatever the port's
            // rules; cilium.network + tcp_proxy relays, or runs the parser
            // the rules' `l7_proto` names (Kafka here). Rules either cannot
            // enforce reset the connection (proxy/src/parser.rs).
            protocol: match l.kind {
                ListenerKind::Http { .. } => ListenerProtocol::Http,
                ListenerKind::Tcp { .. } => ListenerProtocol::Tcp,
            },
            proxy_id: l.proxy_id,
            upstream: None,
            transparent: true,
            mark: Some(l.cilium_listen_mark()),
        }
    }
}

/// A bound, non-blocking SO_REUSEPORT socket of `ty` with the listener's
/// transparency and mark: one per worker, so the kernel spreads
/// connections (and, for UDP, clients) over workers.
fn bind_socket(
    addr: SocketAddr,
    spec: &ListenerSpec,
    ty: Type,
    protocol: Protocol,
) -> std::io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), ty, Some(protocol))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    if spec.transparent {
        if addr.is_ipv4() {
            socket.set_ip_transparent_v4(true)?;
        } else {
            socket.set_ip_transparent_v6(true)?;
        }
    }
    if let Some(mark) = spec.mark {
        socket.set_mark(mark)?;
    }
    if ty == Type::DGRAM {
        // Bursts of queries queue in the kernel while a worker is busy.
        let _ = socket.set_recv_buffer_size(4 << 20);
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    Ok(socket)
}

/// The UDP half of a DNS listener.
fn bind_udp(addr: SocketAddr, spec: &ListenerSpec) -> std::io::Result<std::net::UdpSocket> {
    Ok(bind_socket(addr, spec, Type::DGRAM, Protocol::UDP)?.into())
}

fn bind_one(addr: SocketAddr, spec: &ListenerSpec) -> std::io::Result<std::net::TcpListener> {
    let socket = bind_socket(addr, spec, Type::STREAM, Protocol::TCP)?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

enum WorkerCmd {
    Add {
        key: (Arc<str>, u64),
        listener: Arc<Listener>,
        socket: std::net::TcpListener,
        udp: Option<std::net::UdpSocket>,
    },
    Remove {
        key: (Arc<str>, u64),
    },
}

/// One opened listener: its spec and the generation its sockets carry.
struct Opened {
    spec: ListenerSpec,
    source: Source,
    generation: u64,
}

/// The open listeners and the workers that accept on them.
pub struct Listeners {
    workers: Vec<mpsc::Sender<WorkerCmd>>,
    open: Mutex<HashMap<String, Opened>>,
    generations: AtomicU64,
}

impl Listeners {
    /// Starts `workers` worker threads, each waiting for listeners to serve.
    pub fn start(workers: usize, shared: Arc<Shared>) -> anyhow::Result<Arc<Self>> {
        let mut senders = Vec::with_capacity(workers);
        for i in 0..workers {
            let (tx, rx) = mpsc::channel(WORKER_QUEUE);
            let shared = shared.clone();
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("starting a worker runtime")?;
            std::thread::Builder::new()
                .name(format!("worker-{i}"))
                .spawn(move || rt.block_on(worker(rx, shared)))
                .context("spawning a worker thread")?;
            senders.push(tx);
        }
        Ok(Arc::new(Listeners {
            workers: senders,
            open: Mutex::new(HashMap::new()),
            generations: AtomicU64::new(0),
        }))
    }

    /// Makes the listeners of `source` exactly `specs`. All or nothing:
    /// every new socket is bound before anything is closed, and any failure
    /// leaves the listeners as they were.
    pub fn reconcile(
        &self,
        source: Source,
        specs: Vec<ListenerSpec>,
    ) -> Result<(), ReconcileError> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let mut to_open = Vec::new();
        for spec in &specs {
            if let Some(o) = open.get(&spec.name) {
                if o.source != source {
                    return Err(ReconcileError::OtherSource {
                        name: spec.name.clone(),
                        owner: o.source,
                    });
                }
                if o.spec == *spec {
                    continue;
                }
            }
            // SO_REUSEPORT would let a second listener share an address and
            // silently split its traffic: refuse overlaps explicitly.
            for addr in &spec.addresses {
                if let Some(other) = open
                    .values()
                    .filter(|o| o.spec.name != spec.name)
                    .find(|o| o.spec.addresses.contains(addr))
                {
                    return Err(ReconcileError::AddressTaken {
                        name: spec.name.clone(),
                        addr: *addr,
                        other: other.spec.name.clone(),
                    });
                }
            }
            to_open.push(spec.clone());
        }
        // Bind everything first.
        let mut bound = Vec::new();
        for spec in &to_open {
            let mut per_addr = Vec::new();
            for addr in &spec.addresses {
                let sockets = (0..self.workers.len())
                    .map(|_| {
                        let tcp = bind_one(*addr, spec)?;
                        let udp = match spec.protocol {
                            ListenerProtocol::Dns => Some(bind_udp(*addr, spec)?),
                            _ => None,
                        };
                        Ok((tcp, udp))
                    })
                    .collect::<std::io::Result<Vec<_>>>()
                    .map_err(|source| ReconcileError::Bind {
                        name: spec.name.clone(),
                        addr: *addr,
                        source,
                    })?;
                per_addr.push((*addr, sockets));
            }
            bound.push((spec.clone(), per_addr));
        }
        // Then hand the new sockets to the workers and retire what they replace.
        for (spec, per_addr) in bound {
            let generation = self.generations.fetch_add(1, Ordering::Relaxed) + 1;
            let name: Arc<str> = spec.name.as_str().into();
            for (addr, sockets) in per_addr {
                let listener = Arc::new(listener_for(&spec, addr));
                for (tx, (socket, udp)) in self.workers.iter().zip(sockets) {
                    let cmd = WorkerCmd::Add {
                        key: (name.clone(), generation),
                        listener: listener.clone(),
                        socket,
                        udp,
                    };
                    if tx.try_send(cmd).is_err() {
                        return Err(ReconcileError::WorkerGone);
                    }
                }
                info!(name = %spec.name, %addr, direction = spec.direction.as_str(), ?source, "listening");
            }
            if let Some(old) = open.insert(
                spec.name.clone(),
                Opened {
                    spec,
                    source,
                    generation,
                },
            ) {
                self.retire(&old);
            }
        }
        let wanted: std::collections::HashSet<&str> =
            specs.iter().map(|s| s.name.as_str()).collect();
        let gone: Vec<String> = open
            .iter()
            .filter(|(name, o)| o.source == source && !wanted.contains(name.as_str()))
            .map(|(name, _)| name.clone())
            .collect();
        for name in gone {
            if let Some(old) = open.remove(&name) {
                info!(name = %name, "listener closed");
                self.retire(&old);
            }
        }
        Ok(())
    }

    fn retire(&self, old: &Opened) {
        let key: (Arc<str>, u64) = (old.spec.name.as_str().into(), old.generation);
        for tx in &self.workers {
            if tx.try_send(WorkerCmd::Remove { key: key.clone() }).is_err() {
                warn!(name = %old.spec.name, "a worker did not take a listener removal");
            }
        }
    }

    pub fn dump(&self) -> serde_json::Value {
        let open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<_> = open
            .values()
            .map(|o| {
                json!({
                    "name": o.spec.name,
                    "source": format!("{:?}", o.source).to_lowercase(),
                    "addresses": o.spec.addresses.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
                    "direction": o.spec.direction.as_str(),
                    "protocol": o.spec.protocol.as_str(),
                    "proxy_id": o.spec.proxy_id,
                    "upstream": o.spec.upstream.map(|u| u.to_string()),
                    "transparent": o.spec.transparent,
                    "mark": o.spec.mark,
                })
            })
            .collect();
        out.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
        json!(out)
    }
}

fn listener_for(spec: &ListenerSpec, addr: SocketAddr) -> Listener {
    let orig_dst: Box<dyn OrigDst> = match spec.upstream {
        Some(up) => Box::new(FixedUpstream(up)),
        None => Box::new(SocketOrigDst { listen: addr }),
    };
    Listener {
        name: spec.name.as_str().into(),
        direction: spec.direction,
        protocol: spec.protocol,
        proxy_id: spec.proxy_id,
        orig_dst,
        upstream: spec.upstream,
    }
}

/// Opens the config file's listeners at start; a failure there is fatal.
pub fn open_config_listeners(
    listeners: &Listeners,
    configs: &[ListenerConfig],
) -> anyhow::Result<()> {
    let specs = configs.iter().map(ListenerSpec::from_config).collect();
    Ok(listeners.reconcile(Source::Config, specs)?)
}

async fn worker(mut rx: mpsc::Receiver<WorkerCmd>, shared: Arc<Shared>) {
    let mut accepting: HashMap<(Arc<str>, u64), Vec<JoinHandle<()>>> = HashMap::new();
    while let Some(cmd) = rx.recv().await {
        match cmd {
            WorkerCmd::Add {
                key,
                listener,
                socket,
                udp,
            } => {
                if let Some(udp) = udp {
                    let task =
                        tokio::spawn(crate::dns::serve_udp(udp, listener.clone(), shared.clone()));
                    accepting.entry(key.clone()).or_default().push(task);
                }
                match TcpListener::from_std(socket) {
                    Ok(socket) => {
                        let task = tokio::spawn(accept_loop(socket, listener, shared.clone()));
                        accepting.entry(key).or_default().push(task);
                    }
                    Err(e) => warn!(error = %e, "cannot register listener"),
                }
            }
            WorkerCmd::Remove { key } => {
                for task in accepting.remove(&key).unwrap_or_default() {
                    task.abort();
                }
            }
        }
    }
}

async fn accept_loop(socket: TcpListener, listener: Arc<Listener>, shared: Arc<Shared>) {
    loop {
        match socket.accept().await {
            Ok((stream, peer)) => {
                let Some(slot) = shared.connection_slot() else {
                    shared.metrics.connections_overflow.inc();
                    tracing::debug!(%peer, "connection limit reached; resetting");
                    conn::reset(stream);
                    continue;
                };
                let (listener, shared) = (listener.clone(), shared.clone());
                tokio::spawn(async move {
                    if listener.protocol == ListenerProtocol::Dns {
                        crate::dns::handle_tcp(stream, peer, listener, shared).await;
                    } else {
                        crate::accept::handle(stream, peer, listener, shared).await;
                    }
                    drop(slot);
                });
            }
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                warn!(listener = %listener.name, error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
    }
}
