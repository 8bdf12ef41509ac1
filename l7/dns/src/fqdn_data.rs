//! Tonic glue for Cilium's standalone DNS proxy service,
//! `standalonednsproxy.FQDNData`.
//!
//! The agent serves it; a standalone DNS proxy connects, opens
//! `StreamPolicyState` (the agent streams [`PolicyState`] snapshots, the
//! proxy ACKs each with its `request_id`) and reports what it learns with
//! the unary `UpdateMappingRequest`. There is no `protoc` in the build, so
//! the glue is written here by hand in the shape `tonic-build` would give
//! it: the same paths, the same [`tonic_prost::ProstCodec`], the same
//! `GrpcMethod` extension.
//!
//! * Client: [`stream_policy_state`] and [`update_mapping`] on any
//!   [`Channel`].
//! * Server: implement [`FqdnData`], then mount [`FqdnDataServer`] on a
//!   `tonic::transport::Server`.

use std::convert::Infallible;
use std::fmt;
use std::sync::Arc;

use futures_util::stream::BoxStream;
use futures_util::Stream;
use tonic::codegen::http;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::codegen::{Body, BoxFuture, Context, GrpcMethod, Poll, Service, StdError};
use tonic::transport::Channel;
use tonic::{Request, Response, Status, Streaming};

use crate::proto::{FqdnMapping, PolicyState, PolicyStateResponse, UpdateMappingResponse};

/// gRPC service name.
pub const SERVICE: &str = "standalonednsproxy.FQDNData";
/// The bidirectional policy stream: ACKs up, [`PolicyState`]s down.
pub const STREAM_POLICY_STATE: &str = "/standalonednsproxy.FQDNData/StreamPolicyState";
/// The unary FQDN mapping update.
pub const UPDATE_MAPPING_REQUEST: &str = "/standalonednsproxy.FQDNData/UpdateMappingRequest";

// ---------------------------------------------------------------- client ---

/// Opens `StreamPolicyState` on `channel`, sending `acks` (one
/// [`PolicyStateResponse`] per received [`PolicyState`], echoing its
/// `request_id`).
///
/// A channel that cannot connect gives `UNAVAILABLE`.
pub async fn stream_policy_state(
    channel: Channel,
    acks: impl Stream<Item = PolicyStateResponse> + Send + 'static,
) -> Result<Streaming<PolicyState>, Status> {
    let mut grpc = ready(channel).await?;
    let mut req = Request::new(acks);
    req.extensions_mut()
        .insert(GrpcMethod::new(SERVICE, "StreamPolicyState"));
    let path = PathAndQuery::from_static(STREAM_POLICY_STATE);
    let codec = tonic_prost::ProstCodec::<PolicyStateResponse, PolicyState>::default();
    Ok(grpc.streaming(req, path, codec).await?.into_inner())
}

/// Sends one `UpdateMappingRequest` and returns the agent's answer.
///
/// A channel that cannot connect gives `UNAVAILABLE`.
pub async fn update_mapping(
    channel: Channel,
    m: FqdnMapping,
) -> Result<UpdateMappingResponse, Status> {
    let mut grpc = ready(channel).await?;
    let mut req = Request::new(m);
    req.extensions_mut()
        .insert(GrpcMethod::new(SERVICE, "UpdateMappingRequest"));
    let path = PathAndQuery::from_static(UPDATE_MAPPING_REQUEST);
    let codec = tonic_prost::ProstCodec::<FqdnMapping, UpdateMappingResponse>::default();
    Ok(grpc.unary(req, path, codec).await?.into_inner())
}

/// A client on `channel` once it is ready to send.
async fn ready(channel: Channel) -> Result<tonic::client::Grpc<Channel>, Status> {
    // A PolicyState carries every selected identity's prefixes; tonic's
    // default 4 MiB could cut a large cluster off, and the agent is a
    // trusted local peer.
    let mut grpc = tonic::client::Grpc::new(channel).max_decoding_message_size(usize::MAX);
    // A channel that cannot connect reports here; UNAVAILABLE (not the
    // generated code's UNKNOWN) so that reconnect loops can tell it apart.
    grpc.ready()
        .await
        .map_err(|e| Status::unavailable(format!("FQDNData channel not ready: {e}")))?;
    Ok(grpc)
}

// ---------------------------------------------------------------- server ---

/// The response stream of `StreamPolicyState`.
pub type PolicyStateStream = BoxStream<'static, Result<PolicyState, Status>>;

/// The agent's side of `standalonednsproxy.FQDNData`.
#[tonic::async_trait]
pub trait FqdnData: Send + Sync + 'static {
    /// `StreamPolicyState`: `acks` are the proxy's [`PolicyStateResponse`]s;
    /// the returned stream carries the [`PolicyState`] snapshots.
    async fn stream_policy_state(
        &self,
        acks: Streaming<PolicyStateResponse>,
    ) -> Result<Response<PolicyStateStream>, Status>;

    /// `UpdateMappingRequest`: one FQDN-to-IP mapping from the proxy.
    async fn update_mapping(
        &self,
        req: Request<FqdnMapping>,
    ) -> Result<Response<UpdateMappingResponse>, Status>;
}

/// A tonic service for `standalonednsproxy.FQDNData`, delegating to `T`.
pub struct FqdnDataServer<T> {
    inner: Arc<T>,
    max_decoding_message_size: Option<usize>,
}

impl<T> FqdnDataServer<T> {
    pub fn new(inner: T) -> Self {
        Self::from_arc(Arc::new(inner))
    }

    pub fn from_arc(inner: Arc<T>) -> Self {
        Self {
            inner,
            max_decoding_message_size: None,
        }
    }

    /// Limits the size of a decoded request (tonic's default is 4 MiB).
    #[must_use]
    pub fn max_decoding_message_size(mut self, limit: usize) -> Self {
        self.max_decoding_message_size = Some(limit);
        self
    }

    fn grpc<E, D>(&self) -> tonic::server::Grpc<tonic_prost::ProstCodec<E, D>>
    where
        E: prost::Message + Send + 'static,
        D: prost::Message + Default + Send + 'static,
    {
        tonic::server::Grpc::new(tonic_prost::ProstCodec::default())
            .apply_max_message_size_config(self.max_decoding_message_size, None)
    }
}

impl<T> Clone for FqdnDataServer<T> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
            max_decoding_message_size: self.max_decoding_message_size,
        }
    }
}

impl<T> fmt::Debug for FqdnDataServer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FqdnDataServer")
            .field("service", &SERVICE)
            .finish_non_exhaustive()
    }
}

impl<T> tonic::server::NamedService for FqdnDataServer<T> {
    const NAME: &'static str = SERVICE;
}

/// `StreamPolicyState`, as tonic's server machinery wants it.
struct StreamSvc<T>(Arc<T>);

impl<T: FqdnData> tonic::server::StreamingService<PolicyStateResponse> for StreamSvc<T> {
    type Response = PolicyState;
    type ResponseStream = PolicyStateStream;
    type Future = BoxFuture<Response<PolicyStateStream>, Status>;

    fn call(&mut self, request: Request<Streaming<PolicyStateResponse>>) -> Self::Future {
        let inner = Arc::clone(&self.0);
        Box::pin(async move { inner.stream_policy_state(request.into_inner()).await })
    }
}

/// `UpdateMappingRequest`.
struct UpdateSvc<T>(Arc<T>);

impl<T: FqdnData> tonic::server::UnaryService<FqdnMapping> for UpdateSvc<T> {
    type Response = UpdateMappingResponse;
    type Future = BoxFuture<Response<UpdateMappingResponse>, Status>;

    fn call(&mut self, request: Request<FqdnMapping>) -> Self::Future {
        let inner = Arc::clone(&self.0);
        Box::pin(async move { inner.update_mapping(request).await })
    }
}

impl<T, B> Service<http::Request<B>> for FqdnDataServer<T>
where
    T: FqdnData,
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
        match req.uri().path() {
            STREAM_POLICY_STATE => {
                let mut grpc = self.grpc::<PolicyState, PolicyStateResponse>();
                let method = StreamSvc(Arc::clone(&self.inner));
                Box::pin(async move { Ok(grpc.streaming(method, req).await) })
            }
            UPDATE_MAPPING_REQUEST => {
                let mut grpc = self.grpc::<UpdateMappingResponse, FqdnMapping>();
                let method = UpdateSvc(Arc::clone(&self.inner));
                Box::pin(async move { Ok(grpc.unary(method, req).await) })
            }
            // Same answer as tonic-build's fallback arm.
            _ => Box::pin(async move { Ok(Status::unimplemented("").into_http()) }),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures_util::stream;
    use tokio::sync::mpsc;
    use tonic::transport::server::TcpIncoming;
    use tonic::transport::{Endpoint, Server};
    use tonic::Code;

    use super::*;
    use crate::proto::{
        ip_to_bytes, prefix_to_bytes, DnsPolicy, DnsServer, IdentityToPrefixMapping, ResponseCode,
    };

    fn state(n: u32) -> PolicyState {
        PolicyState {
            egress_l7_dns_policy: vec![DnsPolicy {
                source_endpoint_id: n,
                dns_pattern: vec![format!("*.n{n}.io")],
                dns_servers: vec![DnsServer {
                    dns_server_identity: 1,
                    dns_server_port: 53,
                    dns_server_proto: 17,
                }],
            }],
            request_id: format!("req-{n}"),
            identity_to_prefix_mapping: vec![IdentityToPrefixMapping {
                identity: 2,
                prefix: vec![prefix_to_bytes("10.0.0.0/8".parse().unwrap())],
            }],
            ..Default::default()
        }
    }

    /// A stand-in agent: sends two states, the second only once the first
    /// is ACKed, and ends the stream after the second ACK; reports every
    /// ACK and mapping it sees.
    struct Agent {
        acks: mpsc::UnboundedSender<PolicyStateResponse>,
        mappings: mpsc::UnboundedSender<FqdnMapping>,
    }

    #[tonic::async_trait]
    impl FqdnData for Agent {
        async fn stream_policy_state(
            &self,
            acks: Streaming<PolicyStateResponse>,
        ) -> Result<Response<PolicyStateStream>, Status> {
            let seen = self.acks.clone();
            let out = stream::unfold((acks, 1u32), move |(mut acks, n)| {
                let seen = seen.clone();
                async move {
                    if n > 1 {
                        let ack = acks.message().await.ok()??;
                        seen.send(ack).ok()?;
                    }
                    (n <= 2).then(|| (Ok(state(n)), (acks, n + 1)))
                }
            });
            Ok(Response::new(Box::pin(out)))
        }

        async fn update_mapping(
            &self,
            req: Request<FqdnMapping>,
        ) -> Result<Response<UpdateMappingResponse>, Status> {
            let m = req.into_inner();
            let response = if m.source_ip.is_empty() {
                ResponseCode::ErrorInvalidArgument
            } else {
                ResponseCode::NoError
            };
            self.mappings.send(m).ok();
            Ok(Response::new(UpdateMappingResponse {
                response: response.into(),
            }))
        }
    }

    struct Harness {
        channel: Channel,
        acks: mpsc::UnboundedReceiver<PolicyStateResponse>,
        mappings: mpsc::UnboundedReceiver<FqdnMapping>,
    }

    /// A real tonic server on a loopback TCP port, and a channel to it.
    async fn serve() -> Harness {
        let (acks_tx, acks) = mpsc::unbounded_channel();
        let (mappings_tx, mappings) = mpsc::unbounded_channel();
        let agent = Agent {
            acks: acks_tx,
            mappings: mappings_tx,
        };
        let incoming = TcpIncoming::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = incoming.local_addr().unwrap();
        tokio::spawn(
            Server::builder()
                .add_service(FqdnDataServer::new(agent))
                .serve_with_incoming(incoming),
        );
        let channel = Endpoint::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        Harness {
            channel,
            acks,
            mappings,
        }
    }

    async fn within<F: std::future::Future>(f: F) -> F::Output {
        tokio::time::timeout(Duration::from_secs(10), f)
            .await
            .expect("timed out")
    }

    #[test]
    fn paths() {
        use tonic::server::NamedService;
        assert_eq!(FqdnDataServer::<Agent>::NAME, SERVICE);
        assert_eq!(STREAM_POLICY_STATE, format!("/{SERVICE}/StreamPolicyState"));
        assert_eq!(
            UPDATE_MAPPING_REQUEST,
            format!("/{SERVICE}/UpdateMappingRequest")
        );
    }

    #[tokio::test]
    async fn policy_state_stream_round_trip() {
        within(async {
            let mut h = serve().await;
            let (ack_tx, ack_rx) = mpsc::unbounded_channel();
            let acks = stream::unfold(ack_rx, |mut rx| async move {
                rx.recv().await.map(|ack| (ack, rx))
            });
            let mut states = stream_policy_state(h.channel.clone(), acks).await.unwrap();
            let mut got = Vec::new();
            while let Some(s) = states.message().await.unwrap() {
                ack_tx
                    .send(PolicyStateResponse {
                        response: ResponseCode::NoError.into(),
                        request_id: s.request_id.clone(),
                    })
                    .unwrap();
                got.push(s);
            }
            assert_eq!(got, [state(1), state(2)]);

            for id in ["req-1", "req-2"] {
                let ack = h.acks.recv().await.unwrap();
                assert_eq!(ack.request_id, id);
                assert_eq!(ack.response(), ResponseCode::NoError);
            }
        })
        .await;
    }

    #[tokio::test]
    async fn update_mapping_answers() {
        within(async {
            let mut h = serve().await;
            let m = FqdnMapping {
                fqdn: "a.io.".into(),
                record_ip: vec![ip_to_bytes("1.2.3.4".parse().unwrap())],
                ttl: 60,
                source_identity: 256,
                source_ip: vec![10, 0, 0, 9],
                ..Default::default()
            };
            let r = update_mapping(h.channel.clone(), m.clone()).await.unwrap();
            assert_eq!(r.response(), ResponseCode::NoError);
            assert_eq!(h.mappings.recv().await.unwrap(), m);

            let bad = FqdnMapping {
                source_ip: Vec::new(),
                ..m
            };
            let r = update_mapping(h.channel.clone(), bad).await.unwrap();
            assert_eq!(r.response(), ResponseCode::ErrorInvalidArgument);
        })
        .await;
    }

    #[tokio::test]
    async fn unknown_method_is_unimplemented() {
        within(async {
            let h = serve().await;
            let mut grpc = ready(h.channel).await.unwrap();
            let codec = tonic_prost::ProstCodec::<FqdnMapping, UpdateMappingResponse>::default();
            let path = PathAndQuery::from_static("/standalonednsproxy.FQDNData/Nope");
            let err = grpc
                .unary(Request::new(FqdnMapping::default()), path, codec)
                .await
                .unwrap_err();
            assert_eq!(err.code(), Code::Unimplemented, "{err}");
        })
        .await;
    }

    #[tokio::test]
    async fn unreachable_agent_is_unavailable() {
        within(async {
            // A port nobody listens on any more.
            let addr = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap();
            let channel = Endpoint::from_shared(format!("http://{addr}"))
                .unwrap()
                .connect_lazy();
            let err = update_mapping(channel.clone(), FqdnMapping::default())
                .await
                .unwrap_err();
            assert_eq!(err.code(), Code::Unavailable, "{err}");
            let err = stream_policy_state(channel, stream::empty())
                .await
                .unwrap_err();
            assert_eq!(err.code(), Code::Unavailable, "{err}");
        })
        .await;
    }
}
