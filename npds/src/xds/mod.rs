//! xDS with the Cilium agent: state-of-the-world subscriptions to NPDS,
//! NPHDS, SDS, LDS and CDS (the client side, [`client`]), and the same
//! services served from an in-process cache ([`server`]), which is how
//! standalone mode and the tests play the agent.

pub mod client;
pub mod grpc;
pub mod listener;
pub mod server;

/// Type URLs of every resource this proxy subscribes to.
pub mod type_url {
    pub const NETWORK_POLICY: &str = crate::proto::NETWORK_POLICY_TYPE_URL;
    pub const NETWORK_POLICY_HOSTS: &str = crate::proto::NETWORK_POLICY_HOSTS_TYPE_URL;
    pub const SECRET: &str = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret";
    pub const LISTENER: &str = "type.googleapis.com/envoy.config.listener.v3.Listener";
    pub const CLUSTER: &str = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
}

/// The node id cilium-envoy's bootstrap uses; the agent's xDS server parses
/// the node IP out of it.
pub const NODE_ID: &str = "host~127.0.0.1~no-id~localdomain";
/// The node cluster of cilium-envoy's bootstrap.
pub const NODE_CLUSTER: &str = "ingress-cluster";
