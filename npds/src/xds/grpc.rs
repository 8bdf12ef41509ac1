//! Tonic glue for the xDS services Portcullis speaks with the Cilium agent.
//!
//! Envoy's own SotW services (SDS, LDS, CDS) come generated with
//! `envoy-types`; Cilium's `cilium.NetworkPolicyDiscoveryService` (NPDS) and
//! `cilium.NetworkPolicyHostsDiscoveryService` (NPHDS) do not, and there is no
//! `protoc` in the build. They reuse Envoy's `DiscoveryRequest` and
//! `DiscoveryResponse`, so the glue is small and written here by hand in the
//! shape `tonic-build` would give it: the same paths, the same
//! [`tonic_prost::ProstCodec`], the same `GrpcMethod` extension.
//!
//! * Client: [`connect`] / [`connect_lazy`] to `unix:/path` or
//!   `http://host:port`, then [`stream`] one of the five SotW [`Path`]s.
//! * Server: implement [`SotwService`] once, then mount
//!   [`NetworkPolicyDiscoveryServiceServer`],
//!   [`NetworkPolicyHostsDiscoveryServiceServer`] and [`envoy_servers`] on one
//!   `tonic::transport::Server`.
//!
//! Delta xDS is not served (the agent's classic server speaks SotW only); its
//! paths answer `UNIMPLEMENTED`.

use std::convert::Infallible;
use std::fmt;
use std::marker::PhantomData;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use envoy_types::pb::envoy::service::cluster::v3::cluster_discovery_service_server as cds;
use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
};
use envoy_types::pb::envoy::service::listener::v3::listener_discovery_service_server as lds;
use envoy_types::pb::envoy::service::secret::v3::secret_discovery_service_server as sds;
use futures_util::stream::BoxStream;
use futures_util::Stream;
use hyper_util::rt::TokioIo;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::codegen::http::{self, Uri};
use tonic::codegen::{Body, BoxFuture, Context, GrpcMethod, Poll, Service, StdError};
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Response, Status, Streaming};

use super::type_url;

/// gRPC service name of NPDS.
pub const NPDS_SERVICE: &str = "cilium.NetworkPolicyDiscoveryService";
/// gRPC service name of NPHDS.
pub const NPHDS_SERVICE: &str = "cilium.NetworkPolicyHostsDiscoveryService";

/// NPDS SotW stream.
pub const STREAM_NETWORK_POLICIES: &str =
    "/cilium.NetworkPolicyDiscoveryService/StreamNetworkPolicies";
/// NPDS unary fetch (the agent answers an error).
pub const FETCH_NETWORK_POLICIES: &str =
    "/cilium.NetworkPolicyDiscoveryService/FetchNetworkPolicies";
/// Declared for completeness; not served (answers `UNIMPLEMENTED`).
pub const DELTA_NETWORK_POLICIES: &str =
    "/cilium.NetworkPolicyDiscoveryService/DeltaNetworkPolicies";
/// NPHDS SotW stream.
pub const STREAM_NETWORK_POLICY_HOSTS: &str =
    "/cilium.NetworkPolicyHostsDiscoveryService/StreamNetworkPolicyHosts";
/// NPHDS unary fetch (the agent answers an error).
pub const FETCH_NETWORK_POLICY_HOSTS: &str =
    "/cilium.NetworkPolicyHostsDiscoveryService/FetchNetworkPolicyHosts";
/// Declared for completeness; not served (answers `UNIMPLEMENTED`).
pub const DELTA_NETWORK_POLICY_HOSTS: &str =
    "/cilium.NetworkPolicyHostsDiscoveryService/DeltaNetworkPolicyHosts";
/// Envoy's SDS SotW stream.
pub const STREAM_SECRETS: &str = "/envoy.service.secret.v3.SecretDiscoveryService/StreamSecrets";
/// Envoy's LDS SotW stream.
pub const STREAM_LISTENERS: &str =
    "/envoy.service.listener.v3.ListenerDiscoveryService/StreamListeners";
/// Envoy's CDS SotW stream.
pub const STREAM_CLUSTERS: &str =
    "/envoy.service.cluster.v3.ClusterDiscoveryService/StreamClusters";

/// One of the five state-of-the-world subscriptions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Path {
    NetworkPolicies,
    NetworkPolicyHosts,
    Secrets,
    Listeners,
    Clusters,
}

impl Path {
    /// Every path, in [`Path::index`] order.
    pub const ALL: [Path; 5] = [
        Path::NetworkPolicies,
        Path::NetworkPolicyHosts,
        Path::Secrets,
        Path::Listeners,
        Path::Clusters,
    ];

    /// Dense index, for per-type tables.
    pub fn index(self) -> usize {
        self as usize
    }

    /// Type URL of the resources this subscription carries.
    pub fn type_url(self) -> &'static str {
        match self {
            Path::NetworkPolicies => type_url::NETWORK_POLICY,
            Path::NetworkPolicyHosts => type_url::NETWORK_POLICY_HOSTS,
            Path::Secrets => type_url::SECRET,
            Path::Listeners => type_url::LISTENER,
            Path::Clusters => type_url::CLUSTER,
        }
    }

    /// The path whose resources have this type URL.
    pub fn from_type_url(url: &str) -> Option<Path> {
        Path::ALL.into_iter().find(|p| p.type_url() == url)
    }

    /// gRPC service name (without slashes).
    pub fn service(self) -> &'static str {
        match self {
            Path::NetworkPolicies => NPDS_SERVICE,
            Path::NetworkPolicyHosts => NPHDS_SERVICE,
            Path::Secrets => "envoy.service.secret.v3.SecretDiscoveryService",
            Path::Listeners => "envoy.service.listener.v3.ListenerDiscoveryService",
            Path::Clusters => "envoy.service.cluster.v3.ClusterDiscoveryService",
        }
    }

    /// Name of the bidirectional SotW stream method.
    pub fn stream_method(self) -> &'static str {
        match self {
            Path::NetworkPolicies => "StreamNetworkPolicies",
            Path::NetworkPolicyHosts => "StreamNetworkPolicyHosts",
            Path::Secrets => "StreamSecrets",
            Path::Listeners => "StreamListeners",
            Path::Clusters => "StreamClusters",
        }
    }

    /// Full HTTP/2 path of the unary fetch method.
    pub fn fetch_path(self) -> &'static str {
        match self {
            Path::NetworkPolicies => FETCH_NETWORK_POLICIES,
            Path::NetworkPolicyHosts => FETCH_NETWORK_POLICY_HOSTS,
            Path::Secrets => "/envoy.service.secret.v3.SecretDiscoveryService/FetchSecrets",
            Path::Listeners => "/envoy.service.listener.v3.ListenerDiscoveryService/FetchListeners",
            Path::Clusters => "/envoy.service.cluster.v3.ClusterDiscoveryService/FetchClusters",
        }
    }

    /// Full HTTP/2 path of the stream method.
    pub fn stream_path(self) -> &'static str {
        match self {
            Path::NetworkPolicies => STREAM_NETWORK_POLICIES,
            Path::NetworkPolicyHosts => STREAM_NETWORK_POLICY_HOSTS,
            Path::Secrets => STREAM_SECRETS,
            Path::Listeners => STREAM_LISTENERS,
            Path::Clusters => STREAM_CLUSTERS,
        }
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.stream_path())
    }
}

// ---------------------------------------------------------------- client ---

/// Opens the SotW stream `path` on `channel`, sending `requests`.
///
/// All five services share the message types, so one generic streaming call
/// serves them all; only the HTTP/2 path differs.
pub async fn stream(
    channel: Channel,
    path: Path,
    requests: impl Stream<Item = DiscoveryRequest> + Send + 'static,
) -> Result<Streaming<DiscoveryResponse>, Status> {
    let (mut grpc, codec) = ready(channel).await?;
    let mut req = Request::new(requests);
    req.extensions_mut()
        .insert(GrpcMethod::new(path.service(), path.stream_method()));
    let path = PathAndQuery::from_static(path.stream_path());
    Ok(grpc.streaming(req, path, codec).await?.into_inner())
}

/// The unary `Fetch*` of `path`. The agent does not implement it (it
/// answers an error); here for completeness and tests.
pub async fn fetch(
    channel: Channel,
    path: Path,
    request: DiscoveryRequest,
) -> Result<DiscoveryResponse, Status> {
    let (mut grpc, codec) = ready(channel).await?;
    let method = path.fetch_path().rsplit('/').next().unwrap_or_default();
    let mut req = Request::new(request);
    req.extensions_mut()
        .insert(GrpcMethod::new(path.service(), method));
    let path = PathAndQuery::from_static(path.fetch_path());
    Ok(grpc.unary(req, path, codec).await?.into_inner())
}

type ClientCodec = tonic_prost::ProstCodec<DiscoveryRequest, DiscoveryResponse>;

/// A client on `channel` once it is ready to send.
async fn ready(channel: Channel) -> Result<(tonic::client::Grpc<Channel>, ClientCodec), Status> {
    // The agent's responses are not size-capped (NPHDS carries every
    // identity's addresses) and Envoy's gRPC client does not cap them
    // either; tonic's default 4 MiB would cut a large cluster off.
    let mut grpc = tonic::client::Grpc::new(channel).max_decoding_message_size(usize::MAX);
    // A channel that cannot connect reports here; UNAVAILABLE (not the
    // generated code's UNKNOWN) so that reconnect loops can tell it apart.
    grpc.ready()
        .await
        .map_err(|e| Status::unavailable(format!("xDS channel not ready: {e}")))?;
    Ok((grpc, ClientCodec::default()))
}

/// Why an xDS channel could not be set up; names the target.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error(
        "xDS target {target:?}: {reason} (expected unix:/path/to/xds.sock or http://host:port)"
    )]
    BadTarget {
        target: String,
        reason: &'static str,
    },
    #[error("xDS target {target:?}: {source}")]
    Transport {
        target: String,
        #[source]
        source: tonic::transport::Error,
    },
}

/// A parsed target: the endpoint, and the socket path when it is a unix one.
fn endpoint(target: &str) -> Result<(Endpoint, Option<PathBuf>), ConnectError> {
    let bad = |reason| ConnectError::BadTarget {
        target: target.to_owned(),
        reason,
    };
    // gRPC's naming accepts both `unix:/abs` and `unix:///abs`; a bare
    // absolute path is taken as a unix socket too, for config convenience.
    let unix = target
        .strip_prefix("unix://")
        .or_else(|| target.strip_prefix("unix:"))
        .or_else(|| target.starts_with('/').then_some(target));
    if let Some(path) = unix {
        if !path.starts_with('/') {
            return Err(bad("unix socket path must be absolute"));
        }
        // The URI is never dialed (the connector ignores it) but tonic needs
        // one to build requests' :authority.
        let ep = Endpoint::from_static("http://localhost");
        return Ok((ep, Some(PathBuf::from(path))));
    }
    if !target.starts_with("http://") {
        return Err(bad("unsupported scheme"));
    }
    let ep =
        Endpoint::from_shared(target.to_owned()).map_err(|source| ConnectError::Transport {
            target: target.to_owned(),
            source,
        })?;
    // A dead TCP peer would otherwise hold a reconnect loop for the OS's
    // connect timeout (minutes); the agent is local, so seconds is plenty.
    Ok((ep.connect_timeout(Duration::from_secs(5)), None))
}

/// Connects now to `unix:/path` (the agent's
/// `/var/run/cilium/envoy/sockets/xds.sock`) or `http://host:port`.
pub async fn connect(target: &str) -> Result<Channel, ConnectError> {
    let transport = |source| ConnectError::Transport {
        target: target.to_owned(),
        source,
    };
    match endpoint(target)? {
        (ep, Some(path)) => ep
            .connect_with_connector(UnixConnector(Arc::new(path)))
            .await
            .map_err(transport),
        (ep, None) => ep.connect().await.map_err(transport),
    }
}

/// Like [`connect`], but dials on first use and redials after a failure,
/// which is what a reconnect loop wants: one channel for the process.
pub fn connect_lazy(target: &str) -> Result<Channel, ConnectError> {
    Ok(match endpoint(target)? {
        (ep, Some(path)) => ep.connect_with_connector_lazy(UnixConnector(Arc::new(path))),
        (ep, None) => ep.connect_lazy(),
    })
}

/// Dials a unix socket for tonic, whatever URI it is asked for.
#[derive(Clone, Debug)]
struct UnixConnector(Arc<PathBuf>);

impl Service<Uri> for UnixConnector {
    type Response = TokioIo<tokio::net::UnixStream>;
    type Error = std::io::Error;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _uri: Uri) -> Self::Future {
        let path = Arc::clone(&self.0);
        Box::pin(async move {
            let stream = tokio::net::UnixStream::connect(&*path)
                .await
                .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
            Ok(TokioIo::new(stream))
        })
    }
}

// ---------------------------------------------------------------- server ---

/// The response stream of a SotW subscription.
pub type SotwStream = BoxStream<'static, Result<DiscoveryResponse, Status>>;

/// One implementation behind every SotW service this crate serves.
#[tonic::async_trait]
pub trait SotwService: Send + Sync + 'static {
    /// A bidirectional SotW stream on `path`.
    async fn stream(
        &self,
        path: Path,
        requests: Streaming<DiscoveryRequest>,
    ) -> Result<Response<SotwStream>, Status>;

    /// The unary `Fetch*` method of `path` (the REST-style one-shot query).
    async fn fetch(
        &self,
        path: Path,
        req: DiscoveryRequest,
    ) -> Result<Response<DiscoveryResponse>, Status>;
}

/// Routing table of one hand-written Cilium service.
pub trait CiliumService: Send + Sync + 'static {
    const NAME: &'static str;
    const PATH: Path;
    const FETCH: &'static str;
    const DELTA: &'static str;
}

/// Marker for `cilium.NetworkPolicyDiscoveryService`.
#[derive(Debug)]
pub enum Npds {}
/// Marker for `cilium.NetworkPolicyHostsDiscoveryService`.
#[derive(Debug)]
pub enum Nphds {}

impl CiliumService for Npds {
    const NAME: &'static str = NPDS_SERVICE;
    const PATH: Path = Path::NetworkPolicies;
    const FETCH: &'static str = FETCH_NETWORK_POLICIES;
    const DELTA: &'static str = DELTA_NETWORK_POLICIES;
}

impl CiliumService for Nphds {
    const NAME: &'static str = NPHDS_SERVICE;
    const PATH: Path = Path::NetworkPolicyHosts;
    const FETCH: &'static str = FETCH_NETWORK_POLICY_HOSTS;
    const DELTA: &'static str = DELTA_NETWORK_POLICY_HOSTS;
}

/// A tonic service for one Cilium xDS service, delegating to `T`.
pub struct CiliumServer<T, S> {
    inner: Arc<T>,
    max_decoding_message_size: Option<usize>,
    _service: PhantomData<fn() -> S>,
}

/// `cilium.NetworkPolicyDiscoveryService`, as `tonic-build` would name it.
pub type NetworkPolicyDiscoveryServiceServer<T> = CiliumServer<T, Npds>;
/// `cilium.NetworkPolicyHostsDiscoveryService`, as `tonic-build` would name it.
pub type NetworkPolicyHostsDiscoveryServiceServer<T> = CiliumServer<T, Nphds>;

impl<T, S> CiliumServer<T, S> {
    pub fn new(inner: T) -> Self {
        Self::from_arc(Arc::new(inner))
    }

    pub fn from_arc(inner: Arc<T>) -> Self {
        Self {
            inner,
            max_decoding_message_size: None,
            _service: PhantomData,
        }
    }

    /// Limits the size of a decoded request (tonic's default is 4 MiB).
    #[must_use]
    pub fn max_decoding_message_size(mut self, limit: usize) -> Self {
        self.max_decoding_message_size = Some(limit);
        self
    }

    fn grpc(
        &self,
    ) -> tonic::server::Grpc<tonic_prost::ProstCodec<DiscoveryResponse, DiscoveryRequest>> {
        tonic::server::Grpc::new(tonic_prost::ProstCodec::default())
            .apply_max_message_size_config(self.max_decoding_message_size, None)
    }
}

impl<T, S> Clone for CiliumServer<T, S> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
            max_decoding_message_size: self.max_decoding_message_size,
            _service: PhantomData,
        }
    }
}

impl<T, S> fmt::Debug for CiliumServer<T, S>
where
    S: CiliumService,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CiliumServer")
            .field("service", &S::NAME)
            .finish_non_exhaustive()
    }
}

impl<T, S: CiliumService> tonic::server::NamedService for CiliumServer<T, S> {
    const NAME: &'static str = S::NAME;
}

/// The stream method of `path`, as tonic's server machinery wants it.
struct StreamSvc<T>(Arc<T>, Path);

impl<T: SotwService> tonic::server::StreamingService<DiscoveryRequest> for StreamSvc<T> {
    type Response = DiscoveryResponse;
    type ResponseStream = SotwStream;
    type Future = BoxFuture<Response<SotwStream>, Status>;

    fn call(&mut self, request: Request<Streaming<DiscoveryRequest>>) -> Self::Future {
        let (inner, path) = (Arc::clone(&self.0), self.1);
        Box::pin(async move { inner.stream(path, request.into_inner()).await })
    }
}

/// The unary fetch method of `path`.
struct FetchSvc<T>(Arc<T>, Path);

impl<T: SotwService> tonic::server::UnaryService<DiscoveryRequest> for FetchSvc<T> {
    type Response = DiscoveryResponse;
    type Future = BoxFuture<Response<DiscoveryResponse>, Status>;

    fn call(&mut self, request: Request<DiscoveryRequest>) -> Self::Future {
        let (inner, path) = (Arc::clone(&self.0), self.1);
        Box::pin(async move { inner.fetch(path, request.into_inner()).await })
    }
}

impl<T, S, B> Service<http::Request<B>> for CiliumServer<T, S>
where
    T: SotwService,
    S: CiliumService,
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let path = req.uri().path();
        if path == S::PATH.stream_path() {
            let (mut grpc, method) = (self.grpc(), StreamSvc(Arc::clone(&self.inner), S::PATH));
            Box::pin(async move { Ok(grpc.streaming(method, req).await) })
        } else if path == S::FETCH {
            let (mut grpc, method) = (self.grpc(), FetchSvc(Arc::clone(&self.inner), S::PATH));
            Box::pin(async move { Ok(grpc.unary(method, req).await) })
        } else if path == S::DELTA {
            Box::pin(async move { Ok(no_delta().into_http()) })
        } else {
            // Same answer as tonic-build's fallback arm.
            Box::pin(async move { Ok(Status::unimplemented("").into_http()) })
        }
    }
}

/// Envoy's generated SDS/LDS/CDS server traits over any [`SotwService`].
#[derive(Debug)]
pub struct EnvoySotw<T>(pub Arc<T>);

type DeltaStream = BoxStream<'static, Result<DeltaDiscoveryResponse, Status>>;

fn no_delta() -> Status {
    Status::unimplemented("delta xDS is not served; use the SotW stream")
}

/// Implements one generated Envoy xDS trait by delegation; the three differ
/// only in names.
macro_rules! envoy_sotw {
    ($module:ident::$trait:ident, $path:expr,
     $stream_ty:ident: $stream:ident, $delta_ty:ident: $delta:ident, $fetch:ident) => {
        #[tonic::async_trait]
        impl<T: SotwService> $module::$trait for EnvoySotw<T> {
            type $stream_ty = SotwStream;
            type $delta_ty = DeltaStream;

            async fn $stream(
                &self,
                request: Request<Streaming<DiscoveryRequest>>,
            ) -> Result<Response<SotwStream>, Status> {
                self.0.stream($path, request.into_inner()).await
            }

            async fn $delta(
                &self,
                _request: Request<Streaming<DeltaDiscoveryRequest>>,
            ) -> Result<Response<DeltaStream>, Status> {
                Err(no_delta())
            }

            async fn $fetch(
                &self,
                request: Request<DiscoveryRequest>,
            ) -> Result<Response<DiscoveryResponse>, Status> {
                self.0.fetch($path, request.into_inner()).await
            }
        }
    };
}

envoy_sotw!(sds::SecretDiscoveryService, Path::Secrets,
    StreamSecretsStream: stream_secrets, DeltaSecretsStream: delta_secrets, fetch_secrets);
envoy_sotw!(lds::ListenerDiscoveryService, Path::Listeners,
    StreamListenersStream: stream_listeners, DeltaListenersStream: delta_listeners, fetch_listeners);
envoy_sotw!(cds::ClusterDiscoveryService, Path::Clusters,
    StreamClustersStream: stream_clusters, DeltaClustersStream: delta_clusters, fetch_clusters);

/// The generated SDS, LDS and CDS servers, all delegating to `inner`.
#[allow(clippy::type_complexity)]
pub fn envoy_servers<T: SotwService>(
    inner: Arc<T>,
) -> (
    sds::SecretDiscoveryServiceServer<EnvoySotw<T>>,
    lds::ListenerDiscoveryServiceServer<EnvoySotw<T>>,
    cds::ClusterDiscoveryServiceServer<EnvoySotw<T>>,
) {
    (
        sds::SecretDiscoveryServiceServer::new(EnvoySotw(Arc::clone(&inner))),
        lds::ListenerDiscoveryServiceServer::new(EnvoySotw(Arc::clone(&inner))),
        cds::ClusterDiscoveryServiceServer::new(EnvoySotw(inner)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_type_urls_agree() {
        for (i, p) in Path::ALL.into_iter().enumerate() {
            assert_eq!(p.index(), i);
            assert_eq!(Path::from_type_url(p.type_url()), Some(p));
            assert_eq!(
                p.stream_path(),
                format!("/{}/{}", p.service(), p.stream_method())
            );
            assert!(p
                .fetch_path()
                .starts_with(&format!("/{}/Fetch", p.service())));
        }
        assert_eq!(
            Path::NetworkPolicies.type_url(),
            "type.googleapis.com/cilium.NetworkPolicy"
        );
    }

    #[test]
    fn targets() {
        for t in ["unix:/run/x.sock", "unix:///run/x.sock", "/run/x.sock"] {
            let (_, path) = endpoint(t).unwrap();
            assert_eq!(path.unwrap(), PathBuf::from("/run/x.sock"), "{t}");
        }
        assert!(endpoint("http://127.0.0.1:1234").unwrap().1.is_none());
        for t in ["unix:rel.sock", "https://h:1", "h:1", ""] {
            let err = endpoint(t).unwrap_err().to_string();
            assert!(err.contains(&format!("{t:?}")), "{err}");
        }
    }
}
