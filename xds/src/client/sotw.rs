//! One SotW stream (or fetch) of any of the five [`Path`]s, through the
//! generated clients: Cilium's NPDS and NPHDS from `cilium-api`, Envoy's
//! SDS, LDS and CDS from envoy-types. They share the message types, so one
//! call serves them all.

use cilium_api::cilium::network_policy_discovery_service_client::NetworkPolicyDiscoveryServiceClient as NpdsClient;
use cilium_api::cilium::network_policy_hosts_discovery_service_client::NetworkPolicyHostsDiscoveryServiceClient as NphdsClient;
use envoy_types::pb::envoy::service::cluster::v3::cluster_discovery_service_client::ClusterDiscoveryServiceClient as CdsClient;
use envoy_types::pb::envoy::service::discovery::v3::{DiscoveryRequest, DiscoveryResponse};
use envoy_types::pb::envoy::service::listener::v3::listener_discovery_service_client::ListenerDiscoveryServiceClient as LdsClient;
use envoy_types::pb::envoy::service::secret::v3::secret_discovery_service_client::SecretDiscoveryServiceClient as SdsClient;
use tokio_stream::Stream;
use tonic::transport::Channel;
use tonic::{Status, Streaming};

use crate::Path;

/// The agent's responses are not size-capped (NPHDS carries every
/// identity's addresses) and Envoy's gRPC client does not cap them either;
/// tonic's default 4 MiB would cut a large cluster off.
const MAX_DECODING: usize = usize::MAX;

/// Runs `$call` on the generated client of `$path`, configured alike.
macro_rules! on_client {
    ($path:expr, $channel:expr, |$c:ident| $npds:ident, $nphds:ident, $sds:ident, $lds:ident, $cds:ident, $arg:expr) => {
        match $path {
            Path::NetworkPolicies => {
                let mut $c = NpdsClient::new($channel).max_decoding_message_size(MAX_DECODING);
                $c.$npds($arg).await
            }
            Path::NetworkPolicyHosts => {
                let mut $c = NphdsClient::new($channel).max_decoding_message_size(MAX_DECODING);
                $c.$nphds($arg).await
            }
            Path::Secrets => {
                let mut $c = SdsClient::new($channel).max_decoding_message_size(MAX_DECODING);
                $c.$sds($arg).await
            }
            Path::Listeners => {
                let mut $c = LdsClient::new($channel).max_decoding_message_size(MAX_DECODING);
                $c.$lds($arg).await
            }
            Path::Clusters => {
                let mut $c = CdsClient::new($channel).max_decoding_message_size(MAX_DECODING);
                $c.$cds($arg).await
            }
        }
    };
}

/// Opens the SotW stream `path` on `channel`, sending `requests`. A channel
/// that cannot connect gives `UNAVAILABLE`.
pub async fn stream(
    channel: Channel,
    path: Path,
    requests: impl Stream<Item = DiscoveryRequest> + Send + 'static,
) -> Result<Streaming<DiscoveryResponse>, Status> {
    let response = on_client!(
        path,
        channel,
        |c| stream_network_policies,
        stream_network_policy_hosts,
        stream_secrets,
        stream_listeners,
        stream_clusters,
        requests
    )?;
    Ok(response.into_inner())
}

/// The unary `Fetch*` of `path`. The agent does not implement it (it
/// answers an error); here for completeness and tests.
pub async fn fetch(
    channel: Channel,
    path: Path,
    request: DiscoveryRequest,
) -> Result<DiscoveryResponse, Status> {
    let response = on_client!(
        path,
        channel,
        |c| fetch_network_policies,
        fetch_network_policy_hosts,
        fetch_secrets,
        fetch_listeners,
        fetch_clusters,
        request
    )?;
    Ok(response.into_inner())
}
