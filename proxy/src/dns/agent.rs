//! Portcullis as the agent's standalone DNS proxy: DNS policy streamed from
//! the agent's `standalonednsproxy.FQDNData` server (each state compiled
//! whole and ACKed by its request id, or refused with the reason logged
//! while the previous one keeps enforcing), and every answer that teaches
//! addresses sent back with `UpdateMappingRequest` before the client gets
//! it, waiting at most `dns.responseMaxDelayMs`.

use std::sync::Arc;
use std::time::Duration;

use cilium_api::standalonednsproxy::fqdn_data_client::FqdnDataClient;
use hickory_proto::op::Message;
use hickory_proto::rr::RData;
use l7_dns::proto::{
    ip_to_bytes, DnsResponseData, FqdnMapping, MetricsData, PolicyStateResponse, ProcessingStats,
    ResponseCode,
};
use l7_dns::{CompiledDnsPolicy, Harvest};
use portcullis_xds::client::Backoff;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;
use tracing::{info, warn};

use super::Exchange;
use crate::policy::Change;
use crate::state::Shared;

/// What `/ready` waits for when DNS policy comes from the agent.
pub const READY: &str = "dns policy";

/// The generated `FQDNData` client on `channel`. A PolicyState carries every
/// selected identity's prefixes; tonic's default 4 MiB decoding limit could
/// cut a large cluster off, and the agent is a trusted local peer.
fn client(channel: Channel) -> FqdnDataClient<Channel> {
    FqdnDataClient::new(channel).max_decoding_message_size(usize::MAX)
}

/// One `FQDNMapping`, made while the exchange is at hand.
pub struct Mapping(FqdnMapping);

impl Mapping {
    pub(crate) fn new(x: &Exchange, h: &Harvest, msg: &Message) -> Self {
        let ep = x.verdict.parties.endpoint;
        let answer_types = msg
            .answers()
            .iter()
            .map(|r| u32::from(u16::from(r.record_type())))
            .collect();
        let cnames = msg
            .answers()
            .iter()
            .filter_map(|r| match r.data() {
                RData::CNAME(c) => Some(c.0.to_ascii()),
                _ => None,
            })
            .collect();
        let elapsed = x.started.elapsed().as_nanos().min(i64::MAX as u128) as i64;
        Mapping(FqdnMapping {
            fqdn: h.name.clone(),
            record_ip: h.ips.iter().map(|ip| ip_to_bytes(*ip)).collect(),
            ttl: h.ttl,
            source_identity: ep.map_or(0, |e| e.identity),
            source_ip: ip_to_bytes(x.client.ip()),
            response_code: u32::from(u16::from(msg.response_code())),
            metrics_data: Some(MetricsData {
                processing_stats: Some(ProcessingStats {
                    total_time_ns: elapsed,
                    upstream_time_ns: elapsed,
                    ..Default::default()
                }),
                dns_response_data: Some(DnsResponseData {
                    is_response: true,
                    cnames,
                    qtypes: vec![u32::from(u16::from(x.query.qtype))],
                    answer_types,
                }),
                source_port: u32::from(x.client.port()),
                server_addr: x.server.to_string(),
                server_identity: x.verdict.parties.server_identity,
                protocol: x.protocol.to_string(),
                allowed: true,
                error_message: String::new(),
                is_timeout: false,
            }),
        })
    }

    /// Sends the mapping to the agent and waits for its answer, at most
    /// `dns.responseMaxDelayMs`; past it the reply goes out anyway, counted
    /// (`portcullis_dns_response_delay_exceeded_total`), as the agent's own
    /// proxy does after `tofqdns-proxy-response-max-delay`.
    pub async fn deliver(self, shared: &Shared) {
        let Some(channel) = shared.fqdn_data.get() else {
            return;
        };
        let max_delay = Duration::from_millis(shared.policy().limits.dns.response_max_delay_ms);
        let fqdn = self.0.fqdn.clone();
        let mut agent = client(channel.clone());
        match tokio::time::timeout(max_delay, agent.update_mapping_request(self.0)).await {
            Ok(Ok(r)) if r.get_ref().response() == ResponseCode::NoError => {}
            Ok(Ok(r)) => {
                let r = r.into_inner();
                shared.metrics.dns_mapping_failed.inc();
                warn!(%fqdn, response = r.response().as_str_name(), "the agent refused an FQDN mapping");
            }
            Ok(Err(status)) => {
                shared.metrics.dns_mapping_failed.inc();
                warn!(%fqdn, %status, "cannot send an FQDN mapping to the agent");
            }
            Err(_) => {
                shared.metrics.dns_response_delay_exceeded.inc();
                warn!(%fqdn, ?max_delay, "the agent did not take an FQDN mapping in time; replying anyway");
            }
        }
    }
}

/// Connects (lazily) to the agent and follows its policy stream for the
/// process's life, reconnecting with jittered backoff after any error.
pub fn start(target: &str, shared: Arc<Shared>) -> anyhow::Result<()> {
    let channel = portcullis_xds::channel::connect_lazy(target)?;
    let _ = shared.fqdn_data.set(channel.clone());
    let target = target.to_string();
    tokio::spawn(async move {
        let backoff = Backoff::default();
        let mut attempt = 0u32;
        loop {
            match follow(channel.clone(), &shared).await {
                Ok(applied) => {
                    if applied > 0 {
                        attempt = 0;
                    }
                    warn!(%target, "FQDNData stream ended; re-subscribing");
                }
                Err(status) => warn!(%target, %status, "FQDNData stream failed; re-subscribing"),
            }
            let delay = backoff.delay(attempt);
            attempt = attempt.saturating_add(1);
            tokio::time::sleep(delay).await;
        }
    });
    Ok(())
}

/// One subscription: applies and ACKs states until the stream breaks.
/// Returns how many states were applied.
async fn follow(channel: Channel, shared: &Arc<Shared>) -> Result<usize, tonic::Status> {
    let (acks, rx) = mpsc::channel(16);
    let mut states = client(channel)
        .stream_policy_state(ReceiverStream::new(rx))
        .await?
        .into_inner();
    info!("FQDNData stream open");
    let mut applied = 0;
    while let Some(state) = states.message().await? {
        let response = match CompiledDnsPolicy::compile(&state) {
            Ok(p) => {
                let rules = state.egress_l7_dns_policy.len();
                shared.publish(Change::Dns(Arc::new(p)));
                shared.metrics.updates_accepted.inc();
                shared.arrived(READY);
                applied += 1;
                info!(request_id = %state.request_id, rules, "DNS policy applied");
                ResponseCode::NoError
            }
            Err(e) => {
                let e = format!("PolicyState {:?}: {e}", state.request_id);
                warn!(error = %e, "DNS policy refused; the previous one stays in force");
                shared.reject("fqdn-data", e);
                ResponseCode::ErrorInvalidArgument
            }
        };
        let ack = PolicyStateResponse {
            response: response as i32,
            request_id: state.request_id,
        };
        if acks.send(ack).await.is_err() {
            break;
        }
    }
    Ok(applied)
}
