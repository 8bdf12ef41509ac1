//! xDS with the Cilium agent, and nothing else: state-of-the-world
//! subscriptions to NPDS, NPHDS, SDS, LDS and CDS ([`client`]), the same
//! services served from an in-process cache ([`server`]; how standalone mode
//! and the tests play the agent), and the translation of the agent's
//! Listeners and Clusters into what the proxy opens ([`listener`]).
//!
//! It sits between the agent's socket and the proxy's handlers: resources
//! come in as `Any`s, a [`client::Resources`] handler (in the proxy) checks
//! and applies a whole update, and the subscription ACKs or NACKs with the
//! handler's typed error. The gRPC services are generated (`cilium-api` for
//! Cilium's, envoy-types for Envoy's); this crate only configures and
//! implements them. It knows nothing of policy semantics (that is `npds`).

#![forbid(unsafe_code)]

pub mod channel;
pub mod client;
pub mod listener;
mod path;
pub mod server;

pub use path::Path;

/// Type URLs of every resource this proxy subscribes to.
pub mod type_url {
    pub const NETWORK_POLICY: &str = cilium_api::type_url::NETWORK_POLICY;
    pub const NETWORK_POLICY_HOSTS: &str = cilium_api::type_url::NETWORK_POLICY_HOSTS;
    pub const SECRET: &str = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret";
    pub const LISTENER: &str = "type.googleapis.com/envoy.config.listener.v3.Listener";
    pub const CLUSTER: &str = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
}

/// The node id cilium-envoy's bootstrap uses; the agent's xDS server parses
/// the node IP out of it.
pub const NODE_ID: &str = "host~127.0.0.1~no-id~localdomain";
/// The node cluster of cilium-envoy's bootstrap.
pub const NODE_CLUSTER: &str = "ingress-cluster";
