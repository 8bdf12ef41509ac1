//! An in-process xDS server that plays the Cilium agent: NPDS, NPHDS, SDS,
//! LDS and CDS from one [`XdsCache`], served over TCP or a unix socket by
//! one `tonic` server ([`serve`]).
//!
//! Streams behave as the agent's `pkg/envoy/xds` server does, because the
//! point of this server is to test our client against that behaviour:
//!
//! * Versions are decimal `u64` strings and the **nonce equals the version**
//!   of the response. A request whose `version_info` or `response_nonce` is
//!   not a decimal number ends the stream (`INVALID_ARGUMENT`), as does a
//!   first request without an Istio-style node id (`type~IP~id~domain`), a
//!   foreign `type_url`, or a `version_info` newer than its nonce.
//! * One response is outstanding per stream: after sending version N the
//!   server waits for the client's next request. An ACK (version N, nonce N)
//!   arms a watch for a version above N; a NACK (`error_detail` set, or
//!   `version_info` below the nonce) arms a watch above N too, so the
//!   rejected version is not resent. Every update then goes out whole (SotW).
//! * A request whose nonce is not that of the last response sent on the
//!   stream is stale and ignored.
//! * A new stream whose first request carries `version_info` V but no nonce
//!   is a client that survived a server restart: V counts as ACKed, and if
//!   the cache is behind V its version jumps to V+1 so the client gets the
//!   current resources at once (the agent's `EnsureVersion`).
//! * An empty `resource_names` is a wildcard subscription (what Portcullis
//!   sends); otherwise only the named resources are sent.
//! * `Fetch*` (unary) answers `UNIMPLEMENTED`, as in the agent; delta xDS is
//!   not served.
//!
//! One deliberate difference: [`XdsCache::new`] starts with nothing
//! published and answers nothing until the first [`XdsCache::set`] of a type,
//! which gets version 1. The agent instead starts every type at version 1
//! with no resources and answers the first request at once;
//! [`XdsCache::like_agent`] does that.

use std::future::Future;
use std::path::Path as FsPath;
use std::sync::Arc;

use cilium_api::cilium::network_policy_discovery_service_server::NetworkPolicyDiscoveryServiceServer;
use cilium_api::cilium::network_policy_hosts_discovery_service_server::NetworkPolicyHostsDiscoveryServiceServer;
use cilium_api::cilium::{NetworkPolicy, NetworkPolicyHosts};
use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::listener::v3::Listener;
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::Secret;
use envoy_types::pb::envoy::service::cluster::v3::cluster_discovery_service_server::ClusterDiscoveryServiceServer;
use envoy_types::pb::envoy::service::discovery::v3::DiscoveryRequest;
use envoy_types::pb::envoy::service::listener::v3::listener_discovery_service_server::ListenerDiscoveryServiceServer;
use envoy_types::pb::envoy::service::secret::v3::secret_discovery_service_server::SecretDiscoveryServiceServer;
use envoy_types::pb::google::protobuf::Any;
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream, UnixListenerStream};
use tonic::Streaming;

use crate::Path;
use services::{Served, SotwStream};

/// The published resources of one type.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    /// Current version; also the nonce of responses carrying it.
    pub version: u64,
    /// Whether anything was ever published; nothing is sent before.
    pub published: bool,
    /// `(name, resource)`, in the order given to [`XdsCache::set`].
    pub resources: Vec<(String, Any)>,
}

/// A client's acceptance of a response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ack {
    pub version: u64,
    pub nonce: u64,
}

/// A client's rejection of a response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Nack {
    /// The version the client still runs (its `version_info`).
    pub version: u64,
    /// The rejected response's nonce (= its version).
    pub nonce: u64,
    /// `error_detail.code` (a `google.rpc.Code`).
    pub code: i32,
    /// `error_detail.message`.
    pub message: String,
}

/// What clients said about one type, across all streams.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AckState {
    pub last_ack: Option<Ack>,
    pub last_nack: Option<Nack>,
    pub acks: u64,
    pub nacks: u64,
    /// Streams ever opened for this type (so tests can await a reconnect).
    pub streams_opened: u64,
    /// Streams open now.
    pub streams_open: u64,
}

/// Per-type state, shared with the stream tasks.
#[derive(Debug)]
struct TypeState {
    snapshot: watch::Sender<Arc<Snapshot>>,
    acks: watch::Sender<AckState>,
}

impl TypeState {
    fn new(snapshot: Snapshot) -> Arc<Self> {
        Arc::new(TypeState {
            snapshot: watch::Sender::new(Arc::new(snapshot)),
            acks: watch::Sender::new(AckState::default()),
        })
    }

    /// Raises the version to at least `version` without changing resources,
    /// which makes every stream resend: the agent's `EnsureVersion`.
    fn ensure_version(&self, version: u64) {
        self.snapshot.send_if_modified(|snap| {
            if snap.version >= version {
                return false;
            }
            Arc::make_mut(snap).version = version;
            true
        });
    }
}

/// The resources an in-process xDS server publishes, per [`Path`], and what
/// clients acknowledged. Share it as `Arc<XdsCache>`; it outlives servers,
/// so a test can stop and restart [`serve`] on the same cache.
#[derive(Debug)]
pub struct XdsCache {
    types: [Arc<TypeState>; 5],
}

impl Default for XdsCache {
    fn default() -> Self {
        Self::new()
    }
}

impl XdsCache {
    /// Nothing published: streams get their first response after the first
    /// [`set`](Self::set) of their type, at version 1.
    pub fn new() -> Self {
        XdsCache {
            types: std::array::from_fn(|_| TypeState::new(Snapshot::default())),
        }
    }

    /// As the agent starts: every type at version 1 with no resources, so
    /// the first request of a stream is answered at once (for NPDS an empty
    /// update, i.e. no endpoint has a policy).
    pub fn like_agent() -> Self {
        let empty = Snapshot {
            version: 1,
            published: true,
            resources: Vec::new(),
        };
        XdsCache {
            types: std::array::from_fn(|_| TypeState::new(empty.clone())),
        }
    }

    fn ty(&self, path: Path) -> &Arc<TypeState> {
        &self.types[path.index()]
    }

    /// Publishes the whole resource set of `path` and pushes it to every
    /// stream waiting for it. Returns the version it got. As in the agent's
    /// cache, an unchanged set is not a new version.
    pub fn set(&self, path: Path, resources: Vec<(String, Any)>) -> u64 {
        let mut version = 0;
        self.ty(path).snapshot.send_if_modified(|snap| {
            if snap.published && snap.resources == resources {
                version = snap.version;
                return false;
            }
            version = snap.version + 1;
            *snap = Arc::new(Snapshot {
                version,
                published: true,
                resources,
            });
            true
        });
        version
    }

    /// [`set`](Self::set) with messages Any-packed under `path`'s type URL.
    pub fn set_messages<M: prost::Message>(
        &self,
        path: Path,
        items: impl IntoIterator<Item = (String, M)>,
    ) -> u64 {
        let type_url = path.type_url();
        let resources = items
            .into_iter()
            .map(|(name, m)| {
                (
                    name,
                    Any {
                        type_url: type_url.to_owned(),
                        value: m.encode_to_vec(),
                    },
                )
            })
            .collect();
        self.set(path, resources)
    }

    /// Publishes NPDS resources named as the agent names them: the decimal
    /// endpoint ID (`xds_server.go`, `UpdateNetworkPolicy`:
    /// `strconv.FormatUint(epID, 10)`; one resource per endpoint carrying
    /// both of its IPs, IPv6 first).
    pub fn set_network_policies(&self, policies: Vec<NetworkPolicy>) -> u64 {
        let named = policies.into_iter().map(|p| (p.endpoint_id.to_string(), p));
        self.set_messages(Path::NetworkPolicies, named)
    }

    /// Publishes NPHDS resources named as the agent names them: the decimal
    /// identity (`NPHDSCache.OnIPIdentityCacheChange`: `newID.ID.StringID()`).
    pub fn set_hosts(&self, hosts: Vec<NetworkPolicyHosts>) -> u64 {
        let named = hosts.into_iter().map(|h| (h.policy.to_string(), h));
        self.set_messages(Path::NetworkPolicyHosts, named)
    }

    /// Publishes SDS secrets under their own names.
    pub fn set_secrets(&self, secrets: Vec<Secret>) -> u64 {
        self.set_messages(
            Path::Secrets,
            secrets.into_iter().map(|s| (s.name.clone(), s)),
        )
    }

    /// Publishes LDS listeners under their own names.
    pub fn set_listeners(&self, listeners: Vec<Listener>) -> u64 {
        self.set_messages(
            Path::Listeners,
            listeners.into_iter().map(|l| (l.name.clone(), l)),
        )
    }

    /// Publishes CDS clusters under their own names.
    pub fn set_clusters(&self, clusters: Vec<Cluster>) -> u64 {
        self.set_messages(
            Path::Clusters,
            clusters.into_iter().map(|c| (c.name.clone(), c)),
        )
    }

    /// The current resource set of `path`.
    pub fn snapshot(&self, path: Path) -> Arc<Snapshot> {
        Arc::clone(&self.ty(path).snapshot.borrow())
    }

    /// The current version of `path` (0: nothing published yet).
    pub fn version(&self, path: Path) -> u64 {
        self.ty(path).snapshot.borrow().version
    }

    /// What clients have said about `path` so far.
    pub fn acks(&self, path: Path) -> AckState {
        self.ty(path).acks.borrow().clone()
    }

    /// A watch on [`acks`](Self::acks).
    pub fn watch_acks(&self, path: Path) -> watch::Receiver<AckState> {
        self.ty(path).acks.subscribe()
    }

    /// Waits until `pred` holds for `path`'s [`AckState`]; returns it.
    /// Callers bound it with `tokio::time::timeout`.
    pub async fn wait_for(&self, path: Path, mut pred: impl FnMut(&AckState) -> bool) -> AckState {
        let mut rx = self.watch_acks(path);
        // The sender lives in `self`, so the watch cannot close under us.
        let state = rx.wait_for(|s| pred(s)).await.expect("ack watch closed");
        state.clone()
    }

    /// Waits until the last ACK of `path` is of `version`.
    pub async fn wait_ack(&self, path: Path, version: u64) -> Ack {
        let state = self
            .wait_for(path, |s| {
                s.last_ack.as_ref().is_some_and(|a| a.version == version)
            })
            .await;
        state.last_ack.expect("checked by wait_for")
    }

    /// Waits until the last NACK of `path` rejects the response with `nonce`
    /// (which is the version [`set`](Self::set) returned).
    pub async fn wait_nack(&self, path: Path, nonce: u64) -> Nack {
        let state = self
            .wait_for(path, |s| {
                s.last_nack.as_ref().is_some_and(|n| n.nonce == nonce)
            })
            .await;
        state.last_nack.expect("checked by wait_for")
    }

    /// Starts a stream task; `stop` ends it when it turns true (or closes).
    fn open(
        &self,
        path: Path,
        requests: Streaming<DiscoveryRequest>,
        stop: Option<watch::Receiver<bool>>,
    ) -> SotwStream {
        // Two slots: at most one response is outstanding, plus a final error.
        let (tx, rx) = mpsc::channel(2);
        let ty = Arc::clone(self.ty(path));
        tokio::spawn(stream::run(
            stream::StreamState::new(path, ty),
            requests,
            tx,
            stop,
        ));
        Box::pin(ReceiverStream::new(rx))
    }
}

/// Where [`serve`] accepts connections.
#[derive(Debug)]
pub enum XdsListener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

impl From<TcpListener> for XdsListener {
    fn from(l: TcpListener) -> Self {
        XdsListener::Tcp(l)
    }
}

impl From<UnixListener> for XdsListener {
    fn from(l: UnixListener) -> Self {
        XdsListener::Unix(l)
    }
}

/// Binds a unix socket for [`serve`], first removing a stale socket file
/// left by a previous server, as the agent does on start.
pub fn bind_unix(path: &FsPath) -> std::io::Result<UnixListener> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    UnixListener::bind(path)
}

/// Serves NPDS, NPHDS, SDS, LDS and CDS from `cache` on `listener` until
/// `shutdown` resolves.
///
/// On shutdown the listener closes at once and every open stream ends with
/// `UNAVAILABLE`: tonic's graceful shutdown waits for open streams, and xDS
/// streams never end on their own. A unix socket file stays on disk; bind
/// the next server with [`bind_unix`].
pub async fn serve(
    cache: Arc<XdsCache>,
    listener: impl Into<XdsListener>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    let (stop_tx, stop) = watch::channel(false);
    let signal = async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    };
    let served = Arc::new(Served { cache, stop });
    let router = tonic::transport::Server::builder()
        .add_service(NetworkPolicyDiscoveryServiceServer::from_arc(Arc::clone(
            &served,
        )))
        .add_service(NetworkPolicyHostsDiscoveryServiceServer::from_arc(
            Arc::clone(&served),
        ))
        .add_service(SecretDiscoveryServiceServer::from_arc(Arc::clone(&served)))
        .add_service(ListenerDiscoveryServiceServer::from_arc(Arc::clone(
            &served,
        )))
        .add_service(ClusterDiscoveryServiceServer::from_arc(served));
    match listener.into() {
        XdsListener::Tcp(l) => {
            router
                .serve_with_incoming_shutdown(TcpListenerStream::new(l), signal)
                .await
        }
        XdsListener::Unix(l) => {
            router
                .serve_with_incoming_shutdown(UnixListenerStream::new(l), signal)
                .await
        }
    }
}

mod services;
mod stream;

#[cfg(test)]
mod tests;
