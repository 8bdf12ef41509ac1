//! The generated `standalonednsproxy.FQDNData` client and server against
//! each other over a real loopback connection: the paths the agent serves,
//! the policy stream with its ACKs, mapping updates, and the status codes a
//! reconnect loop sees.

use std::pin::Pin;
use std::time::Duration;

use cilium_api::standalonednsproxy::fqdn_data_client::FqdnDataClient;
use cilium_api::standalonednsproxy::fqdn_data_server::{FqdnData, FqdnDataServer};
use cilium_api::standalonednsproxy::{
    DnsPolicy, DnsServer, FqdnMapping, IdentityToPrefixMapping, PolicyState, PolicyStateResponse,
    ResponseCode, UpdateMappingResponse,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tokio_stream::Stream;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Endpoint, Server};
use tonic::{Code, Request, Response, Status, Streaming};

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
            prefix: vec![vec![10, 0, 0, 0, 8]],
        }],
        ..Default::default()
    }
}

type States = Pin<Box<dyn Stream<Item = Result<PolicyState, Status>> + Send>>;

/// A stand-in agent: sends two states, the second only once the first is
/// ACKed, and ends the stream after the second ACK; reports every ACK and
/// mapping it sees.
struct Agent {
    acks: mpsc::UnboundedSender<PolicyStateResponse>,
    mappings: mpsc::UnboundedSender<FqdnMapping>,
}

#[tonic::async_trait]
impl FqdnData for Agent {
    type StreamPolicyStateStream = States;

    async fn stream_policy_state(
        &self,
        request: Request<Streaming<PolicyStateResponse>>,
    ) -> Result<Response<States>, Status> {
        let (tx, rx) = mpsc::unbounded_channel();
        let seen = self.acks.clone();
        let mut acks = request.into_inner();
        tokio::spawn(async move {
            for n in 1..=2 {
                if tx.send(Ok(state(n))).is_err() {
                    return;
                }
                let Ok(Some(ack)) = acks.message().await else {
                    return;
                };
                let _ = seen.send(ack);
            }
        });
        Ok(Response::new(Box::pin(UnboundedReceiverStream::new(rx))))
    }

    async fn update_mapping_request(
        &self,
        request: Request<FqdnMapping>,
    ) -> Result<Response<UpdateMappingResponse>, Status> {
        let m = request.into_inner();
        let response = if m.source_ip.is_empty() {
            ResponseCode::ErrorInvalidArgument
        } else {
            ResponseCode::NoError
        };
        let _ = self.mappings.send(m);
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
fn paths_are_the_agents() {
    use tonic::server::NamedService;
    assert_eq!(FqdnDataServer::<Agent>::NAME, "standalonednsproxy.FQDNData");
}

#[tokio::test]
async fn policy_state_stream_round_trip() {
    within(async {
        let mut h = serve().await;
        let (ack_tx, ack_rx) = mpsc::unbounded_channel();
        let mut client = FqdnDataClient::new(h.channel.clone());
        let mut states = client
            .stream_policy_state(UnboundedReceiverStream::new(ack_rx))
            .await
            .unwrap()
            .into_inner();
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
        let mut client = FqdnDataClient::new(h.channel.clone());
        let m = FqdnMapping {
            fqdn: "a.io.".into(),
            record_ip: vec![vec![1, 2, 3, 4]],
            ttl: 60,
            source_identity: 256,
            source_ip: vec![10, 0, 0, 9],
            ..Default::default()
        };
        let r = client.update_mapping_request(m.clone()).await.unwrap();
        assert_eq!(r.into_inner().response(), ResponseCode::NoError);
        assert_eq!(h.mappings.recv().await.unwrap(), m);

        let bad = FqdnMapping {
            source_ip: Vec::new(),
            ..m
        };
        let r = client.update_mapping_request(bad).await.unwrap();
        assert_eq!(
            r.into_inner().response(),
            ResponseCode::ErrorInvalidArgument
        );
    })
    .await;
}

#[tokio::test]
async fn unknown_method_is_unimplemented() {
    within(async {
        let h = serve().await;
        let mut grpc = tonic::client::Grpc::new(h.channel);
        grpc.ready().await.unwrap();
        let codec = tonic_prost::ProstCodec::<FqdnMapping, UpdateMappingResponse>::default();
        let path = tonic::codegen::http::uri::PathAndQuery::from_static(
            "/standalonednsproxy.FQDNData/Nope",
        );
        let err = grpc
            .unary(Request::new(FqdnMapping::default()), path, codec)
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Unimplemented, "{err}");
    })
    .await;
}

/// A lazy channel to a dead agent fails each call with UNAVAILABLE, which is
/// what a reconnect loop expects to see.
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
        let mut client = FqdnDataClient::new(channel);
        let err = client
            .update_mapping_request(FqdnMapping::default())
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Unavailable, "{err}");
        let err = client
            .stream_policy_state(tokio_stream::empty())
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Unavailable, "{err}");
    })
    .await;
}
