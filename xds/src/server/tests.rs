//! The in-process agent against the real tonic transport, over TCP and a
//! unix socket, driven by the generated clients as the subscription drives
//! them; plus golden bytes of a `DiscoveryResponse` written from the field
//! numbers.

use std::future::Future;
use std::time::Duration;

use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::service::discovery::v3::DiscoveryResponse;
use envoy_types::pb::envoy::service::secret::v3::secret_discovery_service_client::SecretDiscoveryServiceClient;
use envoy_types::pb::google::rpc::Status as RpcStatus;
use prost::Message;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;
use tonic::Code;

use super::*;
use crate::channel as grpc;
use crate::client::{fetch, stream};
use crate::{NODE_CLUSTER, NODE_ID};
use cilium_api::cilium::network_policy_discovery_service_client::NetworkPolicyDiscoveryServiceClient;
use cilium_api::cilium::{
    port_network_policy_rule::Verdict, PortNetworkPolicy, PortNetworkPolicyRule,
};
use cilium_api::type_url::{NETWORK_POLICY, NETWORK_POLICY_HOSTS};
use tonic::Status;

const NP: Path = Path::NetworkPolicies;

async fn within<F: Future>(what: &str, f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(10), f)
        .await
        .unwrap_or_else(|_| panic!("timed out: {what}"))
}

/// A running [`serve`] and the means to stop it.
struct Running {
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), tonic::transport::Error>>,
}

fn start(cache: &Arc<XdsCache>, listener: impl Into<XdsListener>) -> Running {
    let (stop, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(serve(Arc::clone(cache), listener.into(), async {
        let _ = rx.await;
    }));
    Running { stop, task }
}

impl Running {
    async fn stop(self) {
        let _ = self.stop.send(());
        within("server shutdown", self.task).await.unwrap().unwrap();
    }
}

/// A unique, empty directory for a unix socket.
fn socket_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("portcullis-xds-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// One client stream, as Portcullis' client would drive it.
struct Sub {
    path: Path,
    tx: mpsc::Sender<DiscoveryRequest>,
    rx: Streaming<DiscoveryResponse>,
}

impl Sub {
    async fn open(channel: Channel, path: Path) -> Sub {
        let (tx, requests) = mpsc::channel(8);
        let rx = within(
            "stream open",
            stream(channel, path, ReceiverStream::new(requests)),
        )
        .await
        .unwrap();
        Sub { path, tx, rx }
    }

    fn request(&self, version: &str, nonce: &str) -> DiscoveryRequest {
        DiscoveryRequest {
            version_info: version.into(),
            response_nonce: nonce.into(),
            type_url: self.path.type_url().into(),
            ..Default::default()
        }
    }

    /// The first request: node set, wildcard, optionally a surviving version.
    async fn subscribe(&self, version: &str) {
        let node = Node {
            id: NODE_ID.into(),
            cluster: NODE_CLUSTER.into(),
            ..Default::default()
        };
        self.send(DiscoveryRequest {
            node: Some(node),
            ..self.request(version, "")
        })
        .await;
    }

    async fn send(&self, req: DiscoveryRequest) {
        self.tx.send(req).await.expect("request stream closed");
    }

    async fn ack(&self, resp: &DiscoveryResponse) {
        self.send(self.request(&resp.version_info, &resp.nonce))
            .await;
    }

    async fn nack(&self, running: &str, nonce: &str, message: &str) {
        let detail = RpcStatus {
            code: Code::InvalidArgument as i32,
            message: message.into(),
            details: vec![],
        };
        self.send(DiscoveryRequest {
            error_detail: Some(detail),
            ..self.request(running, nonce)
        })
        .await;
    }

    async fn recv(&mut self) -> DiscoveryResponse {
        let msg = within("xDS response", self.rx.message()).await;
        msg.expect("stream failed").expect("stream ended")
    }

    /// The status that ends the stream.
    async fn status(&mut self) -> Status {
        match within("stream end", self.rx.message()).await {
            Err(status) => status,
            Ok(other) => panic!("expected the stream to fail, got {other:?}"),
        }
    }

    /// Asserts nothing arrives for a moment.
    async fn quiet(&mut self) {
        let r = tokio::time::timeout(Duration::from_millis(200), self.rx.message()).await;
        assert!(r.is_err(), "unexpected {r:?}");
    }
}

fn policy(id: u64, ip: &str, port: u32) -> NetworkPolicy {
    NetworkPolicy {
        endpoint_ips: vec![ip.into()],
        endpoint_id: id,
        ingress_per_port_policies: vec![PortNetworkPolicy {
            port,
            ..Default::default()
        }],
        egress_per_port_policies: vec![],
    }
}

fn policies(resp: &DiscoveryResponse) -> Vec<NetworkPolicy> {
    assert_eq!(resp.type_url, NETWORK_POLICY);
    assert_eq!(
        resp.nonce, resp.version_info,
        "the agent's nonce is the version"
    );
    let unpack = |any: &Any| {
        assert_eq!(any.type_url, NETWORK_POLICY);
        NetworkPolicy::decode(any.value.as_slice()).unwrap()
    };
    resp.resources.iter().map(unpack).collect()
}

/// Initial resources, ACK, push, NACK with its message, no resend of the
/// rejected version, stale nonce ignored.
async fn ack_nack_flow(cache: &XdsCache, channel: Channel) {
    let (p1, p2, p3) = (
        policy(1, "10.0.0.1", 80),
        policy(2, "10.0.0.2", 443),
        policy(3, "10.0.0.3", 8080),
    );
    assert_eq!(cache.set_network_policies(vec![p1.clone()]), 1);
    let mut sub = Sub::open(channel, NP).await;
    sub.subscribe("").await;
    let r1 = sub.recv().await;
    assert_eq!(r1.version_info, "1");
    assert_eq!(policies(&r1), vec![p1.clone()]);

    sub.ack(&r1).await;
    assert_eq!(
        within("ack 1", cache.wait_ack(NP, 1)).await,
        Ack {
            version: 1,
            nonce: 1
        }
    );

    assert_eq!(cache.set_network_policies(vec![p1.clone(), p2.clone()]), 2);
    let r2 = sub.recv().await;
    assert_eq!(
        (r2.version_info.as_str(), policies(&r2)),
        ("2", vec![p1.clone(), p2])
    );

    sub.nack("1", &r2.nonce, "port 443: bad regex").await;
    let nack = within("nack 2", cache.wait_nack(NP, 2)).await;
    assert_eq!(
        nack,
        Nack {
            version: 1,
            nonce: 2,
            code: 3,
            message: "port 443: bad regex".into()
        }
    );
    sub.quiet().await; // the rejected version is not resent

    assert_eq!(cache.set_network_policies(vec![p3.clone()]), 3);
    let r3 = sub.recv().await;
    assert_eq!((r3.version_info.as_str(), policies(&r3)), ("3", vec![p3]));
    sub.ack(&r3).await;
    within("ack 3", cache.wait_ack(NP, 3)).await;

    // A NACK of an older nonce is stale: ignored. The duplicate ACK behind
    // it shows it was processed (one stream, in order).
    sub.nack("1", "2", "stale").await;
    sub.ack(&r3).await;
    let state = within("dup ack", cache.wait_for(NP, |s| s.acks == 3)).await;
    assert_eq!(
        (state.nacks, state.last_nack.unwrap().message.as_str()),
        (1, "port 443: bad regex")
    );
    assert_eq!((state.streams_opened, state.streams_open), (1, 1));
}

#[tokio::test]
async fn npds_over_tcp() {
    let cache = Arc::new(XdsCache::new());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = format!("http://{}", listener.local_addr().unwrap());
    let server = start(&cache, listener);
    ack_nack_flow(&cache, grpc::connect(&target).await.unwrap()).await;
    server.stop().await;
}

#[tokio::test]
async fn npds_over_unix_socket() {
    let dir = socket_dir("flow");
    let sock = dir.join("xds.sock");
    let cache = Arc::new(XdsCache::new());
    let server = start(&cache, bind_unix(&sock).unwrap());
    let target = format!("unix:{}", sock.display());
    ack_nack_flow(&cache, grpc::connect(&target).await.unwrap()).await;
    server.stop().await;
    std::fs::remove_dir_all(dir).unwrap();
}

/// Kill the agent, start a new one with fresh state on the same socket: the
/// client's stream fails, and its new stream, carrying the version it runs,
/// gets the new agent's resources at a version above it.
#[tokio::test]
async fn restart_on_the_same_socket() {
    let dir = socket_dir("restart");
    let sock = dir.join("xds.sock");
    let target = format!("unix:{}", sock.display());
    let channel = grpc::connect_lazy(&target).unwrap();

    let old = Arc::new(XdsCache::new());
    for port in [80, 81, 82] {
        old.set_network_policies(vec![policy(1, "10.0.0.1", port)]);
    }
    let server = start(&old, bind_unix(&sock).unwrap());
    let mut sub = Sub::open(channel.clone(), NP).await;
    sub.subscribe("").await;
    let r = sub.recv().await;
    assert_eq!(r.version_info, "3");
    sub.ack(&r).await;
    within("ack 3", old.wait_ack(NP, 3)).await;

    server.stop().await;
    assert_eq!(sub.status().await.code(), Code::Unavailable);
    within(
        "old stream closed",
        old.wait_for(NP, |s| s.streams_open == 0),
    )
    .await;

    let new = Arc::new(XdsCache::new());
    let fresh = policy(9, "10.0.0.9", 9090);
    assert_eq!(new.set_network_policies(vec![fresh.clone()]), 1);
    let server = start(&new, bind_unix(&sock).unwrap());
    let mut sub = Sub::open(channel, NP).await;
    sub.subscribe("3").await;
    let r = sub.recv().await;
    assert_eq!((r.version_info.as_str(), policies(&r)), ("4", vec![fresh]));
    assert_eq!(
        new.acks(NP).last_ack,
        Some(Ack {
            version: 3,
            nonce: 3
        })
    );
    server.stop().await;
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn first_response_waits_for_a_set_unless_like_agent() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = format!("http://{}", listener.local_addr().unwrap());
    let cache = Arc::new(XdsCache::new());
    let server = start(&cache, listener);
    let mut sub = Sub::open(grpc::connect(&target).await.unwrap(), NP).await;
    sub.subscribe("").await;
    sub.quiet().await;
    cache.set_network_policies(vec![]);
    let r = sub.recv().await;
    assert_eq!((r.version_info.as_str(), r.resources.len()), ("1", 0));
    // An unchanged set is no new version.
    assert_eq!(cache.set_network_policies(vec![]), 1);
    server.stop().await;

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = format!("http://{}", listener.local_addr().unwrap());
    let agent = Arc::new(XdsCache::like_agent());
    let server = start(&agent, listener);
    let mut sub = Sub::open(
        grpc::connect(&target).await.unwrap(),
        Path::NetworkPolicyHosts,
    )
    .await;
    sub.subscribe("").await;
    let r = sub.recv().await;
    assert_eq!((r.version_info.as_str(), r.resources.len()), ("1", 0));
    assert_eq!(r.type_url, NETWORK_POLICY_HOSTS);
    server.stop().await;
}

#[tokio::test]
async fn protocol_errors_end_the_stream_as_in_the_agent() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let channel = grpc::connect(&format!("http://{}", listener.local_addr().unwrap()))
        .await
        .unwrap();
    let cache = Arc::new(XdsCache::new());
    let server = start(&cache, listener);

    let mut sub = Sub::open(channel.clone(), NP).await;
    sub.send(sub.request("", "")).await; // no node
    let status = sub.status().await;
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("invalid node format"),
        "{status:?}"
    );

    let mut sub = Sub::open(channel.clone(), NP).await;
    sub.subscribe("v1").await;
    assert!(sub
        .status()
        .await
        .message()
        .contains("invalid version info"));

    let mut sub = Sub::open(channel, NP).await;
    sub.subscribe("").await;
    sub.send(DiscoveryRequest {
        type_url: Path::Clusters.type_url().into(),
        ..sub.request("", "")
    })
    .await;
    assert!(sub.status().await.message().contains("unknown type URL"));
    server.stop().await;
}

#[tokio::test]
async fn resource_names_as_the_agent_names_them_and_filtering() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let channel = grpc::connect(&format!("http://{}", listener.local_addr().unwrap()))
        .await
        .unwrap();
    let cache = Arc::new(XdsCache::new());
    let server = start(&cache, listener);

    let host = |id: u64, cidr: &str| NetworkPolicyHosts {
        policy: id,
        host_addresses: vec![cidr.into()],
    };
    cache.set_hosts(vec![host(7, "10.0.0.7/32"), host(16777217, "10.9.0.0/16")]);
    cache.set_network_policies(vec![policy(42, "10.0.0.42", 80)]);
    let names = |p: Path| {
        cache
            .snapshot(p)
            .resources
            .iter()
            .map(|(n, _)| n.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(Path::NetworkPolicyHosts), ["7", "16777217"]);
    assert_eq!(names(NP), ["42"]);

    let mut sub = Sub::open(channel, Path::NetworkPolicyHosts).await;
    let node = Node {
        id: NODE_ID.into(),
        ..Default::default()
    };
    let named = DiscoveryRequest {
        node: Some(node),
        resource_names: vec!["16777217".into()],
        ..sub.request("", "")
    };
    sub.send(named).await;
    let r = sub.recv().await;
    let got: Vec<_> = r
        .resources
        .iter()
        .map(|a| NetworkPolicyHosts::decode(a.value.as_slice()).unwrap())
        .collect();
    assert_eq!(got, vec![host(16777217, "10.9.0.0/16")]);
    server.stop().await;
}

#[tokio::test]
async fn one_server_serves_all_five_and_refuses_fetch_and_delta() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let channel = grpc::connect(&format!("http://{}", listener.local_addr().unwrap()))
        .await
        .unwrap();
    let cache = Arc::new(XdsCache::new());
    let server = start(&cache, listener);

    cache.set_network_policies(vec![policy(1, "10.0.0.1", 80)]);
    cache.set_hosts(vec![NetworkPolicyHosts {
        policy: 2,
        host_addresses: vec!["0.0.0.0/0".into()],
    }]);
    cache.set_secrets(vec![Secret {
        name: "cilium-secrets/ns-tls".into(),
        ..Default::default()
    }]);
    cache.set_listeners(vec![Listener {
        name: "proxy-10001".into(),
        ..Default::default()
    }]);
    cache.set_clusters(vec![Cluster {
        name: "egress-cluster".into(),
        ..Default::default()
    }]);
    for path in Path::ALL {
        let mut sub = Sub::open(channel.clone(), path).await;
        sub.subscribe("").await;
        let r = sub.recv().await;
        assert_eq!(
            (r.type_url.as_str(), r.resources.len()),
            (path.type_url(), 1),
            "{path}"
        );
        assert_eq!(r.resources[0].type_url, path.type_url());
        sub.ack(&r).await;
        within("ack", cache.wait_ack(path, 1)).await;

        let err = fetch(channel.clone(), path, sub.request("", ""))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Unimplemented, "{path}: {err:?}");
    }
    let mut sds = SecretDiscoveryServiceClient::new(channel.clone());
    let err = sds.delta_secrets(tokio_stream::empty()).await.unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented);

    // Cilium's generated NPDS delta method, likewise.
    let mut npds = NetworkPolicyDiscoveryServiceClient::new(channel);
    let err = npds
        .delta_network_policies(tokio_stream::empty())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented);
    server.stop().await;
}

/// A `DiscoveryResponse` carrying an Any-packed `cilium.NetworkPolicy`,
/// written byte by byte from the field numbers of envoy's `discovery.proto`
/// (1 version_info, 2 resources, 3 canary, 4 type_url, 5 nonce,
/// 6 control_plane), `any.proto` (1 type_url, 2 value) and Cilium's
/// `npds.proto`.
#[test]
fn wire_discovery_response_with_network_policy() {
    const URL: &[u8] = b"type.googleapis.com/cilium.NetworkPolicy";
    assert_eq!(URL.len(), 0x28);
    // PortNetworkPolicyRule: 10 precedence=5, 8 deny=true,
    // 7 remote_policies=[7, 300] (packed), 5 name="r1".
    #[rustfmt::skip]
    let rule: &[u8] = &[0x50, 0x05, 0x40, 0x01, 0x3a, 0x03, 0x07, 0xac, 0x02, 0x2a, 0x02, b'r', b'1'];
    assert_eq!(rule.len(), 0x0d);
    // PortNetworkPolicy: 1 port=80, 3 rules=[rule].
    let port = [&[0x08, 0x50, 0x1a, 0x0d][..], rule].concat();
    assert_eq!(port.len(), 0x11);
    #[rustfmt::skip]
    let policy = [
        &[0x0a, 0x08][..], b"10.1.2.3", // 1 endpoint_ips
        &[0x0a, 0x07], b"fd00::1",      // 1 endpoint_ips
        &[0x10, 0xd2, 0x09],            // 2 endpoint_id = 1234
        &[0x1a, 0x11], &port,           // 3 ingress_per_port_policies
        &[0x2a, 0x06], b"global",       // 5 reserved (old conntrack_map_name): skipped
    ]
    .concat();
    assert_eq!(policy.len(), 0x31);
    let any = [&[0x0a, 0x28][..], URL, &[0x12, 0x31], &policy].concat();
    assert_eq!(any.len(), 0x5d);
    #[rustfmt::skip]
    let response = [
        &[0x0a, 0x01, b'7'][..],        // 1 version_info
        &[0x12, 0x5d], &any,            // 2 resources
        &[0x18, 0x00],                  // 3 canary = false
        &[0x22, 0x28], URL,             // 4 type_url
        &[0x2a, 0x01, b'7'],            // 5 nonce
        &[0x32, 0x0e, 0x0a, 0x0c], b"cilium-agent", // 6 control_plane.identifier
    ]
    .concat();

    let resp = DiscoveryResponse::decode(response.as_slice()).unwrap();
    assert_eq!(
        (resp.version_info.as_str(), resp.nonce.as_str()),
        ("7", "7")
    );
    assert_eq!(resp.type_url, NETWORK_POLICY);
    assert_eq!(resp.control_plane.unwrap().identifier, "cilium-agent");
    assert_eq!(resp.resources.len(), 1);
    assert_eq!(resp.resources[0].type_url.as_bytes(), URL);
    let np = NetworkPolicy::decode(resp.resources[0].value.as_slice()).unwrap();
    assert_eq!(np.endpoint_ips, ["10.1.2.3", "fd00::1"]);
    assert_eq!(np.endpoint_id, 1234);
    assert!(np.egress_per_port_policies.is_empty());
    let [port] = np.ingress_per_port_policies.as_slice() else {
        panic!("{np:?}")
    };
    assert_eq!((port.port, port.end_port, port.protocol), (80, 0, 0));
    let expected = PortNetworkPolicyRule {
        precedence: 5,
        verdict: Some(Verdict::Deny(true)),
        remote_policies: vec![7, 300],
        name: "r1".into(),
        ..Default::default()
    };
    assert_eq!(port.rules, vec![expected]);

    // And what the cache packs is the same Any.
    let cache = XdsCache::new();
    cache.set_network_policies(vec![np.clone()]);
    let (name, packed) = &cache.snapshot(NP).resources[0];
    assert_eq!(name, "1234");
    assert_eq!(
        (
            packed.type_url.as_bytes(),
            NetworkPolicy::decode(packed.value.as_slice()).unwrap()
        ),
        (URL, np)
    );
}
