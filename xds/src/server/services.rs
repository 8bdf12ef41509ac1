//! The generated xDS service traits, all five implemented over one
//! [`XdsCache`] as one server sees it: Cilium's NPDS and NPHDS (generated in
//! `cilium-api`) and Envoy's SDS, LDS and CDS (generated in envoy-types).
//! They differ only in names, so one macro writes them.

use std::pin::Pin;
use std::sync::Arc;

use cilium_api::cilium::network_policy_discovery_service_server::NetworkPolicyDiscoveryService;
use cilium_api::cilium::network_policy_hosts_discovery_service_server::NetworkPolicyHostsDiscoveryService;
use envoy_types::pb::envoy::service::cluster::v3::cluster_discovery_service_server::ClusterDiscoveryService;
use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
};
use envoy_types::pb::envoy::service::listener::v3::listener_discovery_service_server::ListenerDiscoveryService;
use envoy_types::pb::envoy::service::secret::v3::secret_discovery_service_server::SecretDiscoveryService;
use tokio::sync::watch;
use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};

use super::XdsCache;
use crate::Path;

/// The response stream of a SotW subscription.
pub(super) type SotwStream =
    Pin<Box<dyn Stream<Item = Result<DiscoveryResponse, Status>> + Send + 'static>>;

/// The response stream of a delta subscription (never produced).
type DeltaStream =
    Pin<Box<dyn Stream<Item = Result<DeltaDiscoveryResponse, Status>> + Send + 'static>>;

/// The cache as one server sees it: its streams end when that server stops.
pub(super) struct Served {
    pub(super) cache: Arc<XdsCache>,
    pub(super) stop: watch::Receiver<bool>,
}

impl Served {
    fn stream(&self, path: Path, request: Request<Streaming<DiscoveryRequest>>) -> SotwStream {
        self.cache
            .open(path, request.into_inner(), Some(self.stop.clone()))
    }
}

/// The agent answers `Fetch*` with "not implemented"; so does the cache.
fn fetch_unimplemented(path: Path) -> Status {
    let (service, method) = (path.service(), path.fetch_method());
    Status::unimplemented(format!(
        "/{service}/{method}: not implemented (the agent serves streams only)"
    ))
}

/// The agent's classic server speaks SotW only; so does the cache.
fn no_delta() -> Status {
    Status::unimplemented("delta xDS is not served; use the SotW stream")
}

macro_rules! sotw {
    ($trait:ident, $path:expr,
     $stream_ty:ident: $stream:ident, $delta_ty:ident: $delta:ident, $fetch:ident) => {
        #[tonic::async_trait]
        impl $trait for Served {
            type $stream_ty = SotwStream;
            type $delta_ty = DeltaStream;

            async fn $stream(
                &self,
                request: Request<Streaming<DiscoveryRequest>>,
            ) -> Result<Response<SotwStream>, Status> {
                Ok(Response::new(self.stream($path, request)))
            }

            async fn $delta(
                &self,
                _request: Request<Streaming<DeltaDiscoveryRequest>>,
            ) -> Result<Response<DeltaStream>, Status> {
                Err(no_delta())
            }

            async fn $fetch(
                &self,
                _request: Request<DiscoveryRequest>,
            ) -> Result<Response<DiscoveryResponse>, Status> {
                Err(fetch_unimplemented($path))
            }
        }
    };
}

sotw!(NetworkPolicyDiscoveryService, Path::NetworkPolicies,
    StreamNetworkPoliciesStream: stream_network_policies,
    DeltaNetworkPoliciesStream: delta_network_policies, fetch_network_policies);
sotw!(NetworkPolicyHostsDiscoveryService, Path::NetworkPolicyHosts,
    StreamNetworkPolicyHostsStream: stream_network_policy_hosts,
    DeltaNetworkPolicyHostsStream: delta_network_policy_hosts, fetch_network_policy_hosts);
sotw!(SecretDiscoveryService, Path::Secrets,
    StreamSecretsStream: stream_secrets, DeltaSecretsStream: delta_secrets, fetch_secrets);
sotw!(ListenerDiscoveryService, Path::Listeners,
    StreamListenersStream: stream_listeners, DeltaListenersStream: delta_listeners, fetch_listeners);
sotw!(ClusterDiscoveryService, Path::Clusters,
    StreamClustersStream: stream_clusters, DeltaClustersStream: delta_clusters, fetch_clusters);
