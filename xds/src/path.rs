//! The five state-of-the-world subscriptions, by service and type URL. The
//! services themselves are generated: Cilium's NPDS and NPHDS in
//! `cilium-api`, Envoy's SDS, LDS and CDS in envoy-types.

use std::fmt;

use crate::type_url;

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
            Path::NetworkPolicies => "cilium.NetworkPolicyDiscoveryService",
            Path::NetworkPolicyHosts => "cilium.NetworkPolicyHostsDiscoveryService",
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

    /// Name of the unary fetch method.
    pub fn fetch_method(self) -> &'static str {
        match self {
            Path::NetworkPolicies => "FetchNetworkPolicies",
            Path::NetworkPolicyHosts => "FetchNetworkPolicyHosts",
            Path::Secrets => "FetchSecrets",
            Path::Listeners => "FetchListeners",
            Path::Clusters => "FetchClusters",
        }
    }
}

/// The HTTP/2 path of the stream method, e.g.
/// `/cilium.NetworkPolicyDiscoveryService/StreamNetworkPolicies`.
impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "/{}/{}", self.service(), self.stream_method())
    }
}

#[cfg(test)]
mod tests {
    use cilium_api::cilium::network_policy_discovery_service_server::NetworkPolicyDiscoveryServiceServer as Npds;
    use cilium_api::cilium::network_policy_hosts_discovery_service_server::NetworkPolicyHostsDiscoveryServiceServer as Nphds;
    use envoy_types::pb::envoy::service::cluster::v3::cluster_discovery_service_server::ClusterDiscoveryServiceServer as Cds;
    use envoy_types::pb::envoy::service::listener::v3::listener_discovery_service_server::ListenerDiscoveryServiceServer as Lds;
    use envoy_types::pb::envoy::service::secret::v3::secret_discovery_service_server::SecretDiscoveryServiceServer as Sds;
    use tonic::server::NamedService;

    use super::*;

    #[test]
    fn paths_and_type_urls_agree() {
        for (i, p) in Path::ALL.into_iter().enumerate() {
            assert_eq!(p.index(), i);
            assert_eq!(Path::from_type_url(p.type_url()), Some(p));
        }
        assert_eq!(
            Path::NetworkPolicies.type_url(),
            "type.googleapis.com/cilium.NetworkPolicy"
        );
        assert_eq!(
            Path::NetworkPolicies.to_string(),
            "/cilium.NetworkPolicyDiscoveryService/StreamNetworkPolicies"
        );
    }

    #[test]
    fn services_are_the_generated_ones() {
        assert_eq!(Path::NetworkPolicies.service(), Npds::<()>::NAME);
        assert_eq!(Path::NetworkPolicyHosts.service(), Nphds::<()>::NAME);
        assert_eq!(Path::Secrets.service(), Sds::<()>::NAME);
        assert_eq!(Path::Listeners.service(), Lds::<()>::NAME);
        assert_eq!(Path::Clusters.service(), Cds::<()>::NAME);
    }
}
