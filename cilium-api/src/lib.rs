//! Cilium's wire schema, generated at build time from the `.proto` files in
//! `proto/` (ours, written from the agent's field numbers): the policy
//! messages and services of NPDS and NPHDS, the `cilium.*` filter configs
//! inside the agent's Listeners, the access-log `LogEntry`, and the
//! standalone DNS proxy's `FQDNData` service.
//!
//! This crate sits under everything that speaks to the agent: `npds`
//! compiles the policy messages, `portcullis-xds` carries them over xDS, the
//! proxy's DNS side speaks `FQDNData`. Envoy's own messages
//! (`DiscoveryRequest`, `HeaderMatcher`, ...) are envoy-types', never
//! re-declared.
//!
//! Features: `cilium` (default) is the package `cilium`, and brings in
//! envoy-types; `standalonednsproxy` is always there and needs only prost.
//! `grpc` (default) adds the tonic clients and servers of both; without it
//! the crate is prost messages only.

#![forbid(unsafe_code)]

/// Package `cilium`: NPDS, NPHDS, filter configs, access log.
#[cfg(feature = "cilium")]
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod cilium {
    include!(concat!(env!("OUT_DIR"), "/cilium.rs"));
}

/// Package `standalonednsproxy`: the `FQDNData` service.
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod standalonednsproxy {
    include!(concat!(env!("OUT_DIR"), "/standalonednsproxy.rs"));
}

/// Type URLs of the resources the agent sends, as its `anypb.New` writes
/// them.
pub mod type_url {
    /// An Any-packed [`crate::cilium::NetworkPolicy`].
    pub const NETWORK_POLICY: &str = "type.googleapis.com/cilium.NetworkPolicy";
    /// An Any-packed [`crate::cilium::NetworkPolicyHosts`].
    pub const NETWORK_POLICY_HOSTS: &str = "type.googleapis.com/cilium.NetworkPolicyHosts";
}

#[cfg(all(test, feature = "cilium"))]
mod tests {
    use prost::Name;

    use super::cilium::{NetworkPolicy, NetworkPolicyHosts};
    use super::type_url;

    #[test]
    fn type_urls_are_the_generated_names() {
        assert_eq!(NetworkPolicy::type_url(), type_url::NETWORK_POLICY);
        assert_eq!(
            NetworkPolicyHosts::type_url(),
            type_url::NETWORK_POLICY_HOSTS
        );
    }
}
