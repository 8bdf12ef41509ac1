//! State-of-the-world xDS subscriptions, run the way Envoy runs them against
//! the Cilium agent.
//!
//! One stream per resource type. The first request carries the node (as
//! with `set_node_on_first_message_only`), an empty version and no nonce.
//! Each response is all or nothing: every resource is checked and the whole
//! set handed to [`Resources::apply`], which builds the next state off to
//! the side and swaps it in; then the response's version and nonce are
//! ACKed. Any problem NACKs the nonce with the last accepted version and an
//! `error_detail` that names it, and what was in force stays in force.
//!
//! A broken stream is reopened with capped, jittered exponential backoff;
//! the last good state keeps enforcing meanwhile. Every new stream is a new
//! generation: handlers reset whatever is tied to the old one.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::service::discovery::v3::{DiscoveryRequest, DiscoveryResponse};
use envoy_types::pb::google::protobuf::Any;
use envoy_types::pb::google::rpc::Status as RpcStatus;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tracing::{debug, info, warn};

use crate::channel::{self, ConnectError};
use crate::Path;

mod sotw;

pub use sotw::{fetch, stream};

/// Applies one complete set of resources of one type.
pub trait Resources: Send + Sync + 'static {
    /// Why an update was refused; its `Display` is the NACK's
    /// `error_detail.message`, so it should name the resource and the
    /// problem.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Validates all of `resources` and swaps them in whole; an error NACKs
    /// and changes nothing.
    fn apply(&self, version: &str, resources: &[Any]) -> Result<(), Self::Error>;

    /// A new stream began; state tied to the old agent instance starts over.
    fn new_generation(&self, _generation: u64) {}
}

/// What a subscription has done, for metrics and `/config_dump`.
#[derive(Debug, Default)]
pub struct SubscriptionStats {
    pub accepted: AtomicU64,
    pub rejected: AtomicU64,
    pub generation: AtomicU64,
    pub connected: AtomicBool,
    inner: Mutex<StatsInner>,
}

#[derive(Debug, Default, Clone)]
pub struct StatsSnapshot {
    pub version: String,
    pub last_update: Option<SystemTime>,
    pub last_rejection: Option<String>,
}

#[derive(Debug, Default)]
struct StatsInner {
    snapshot: StatsSnapshot,
    updated_at: Option<Instant>,
}

impl SubscriptionStats {
    pub fn snapshot(&self) -> StatsSnapshot {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .snapshot
            .clone()
    }

    /// Time since the last accepted update.
    pub fn since_update(&self) -> Option<Duration> {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .updated_at
            .map(|t| t.elapsed())
    }

    fn accepted(&self, version: &str) {
        self.accepted.fetch_add(1, Ordering::Relaxed);
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.snapshot.version = version.to_string();
        inner.snapshot.last_update = Some(SystemTime::now());
        inner.updated_at = Some(Instant::now());
    }

    fn rejected(&self, reason: &str) {
        self.rejected.fetch_add(1, Ordering::Relaxed);
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .snapshot
            .last_rejection = Some(reason.to_string());
    }
}

/// Reconnect backoff: full jitter over a capped exponential.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_millis(250),
            cap: Duration::from_secs(15),
        }
    }
}

impl Backoff {
    /// The delay before attempt `n` (0-based): uniform in `[0, min(cap, base·2ⁿ)]`.
    pub fn delay(&self, attempt: u32) -> Duration {
        let ceiling = self
            .base
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.cap);
        ceiling.mul_f64(fastrand::f64())
    }
}

/// The node Portcullis presents: cilium-envoy's own.
pub fn node() -> Node {
    Node {
        id: super::NODE_ID.to_string(),
        cluster: super::NODE_CLUSTER.to_string(),
        ..Default::default()
    }
}

/// One subscription: a stream of `path` from `target`, its updates handed
/// to `handler`.
pub struct Subscription<H> {
    pub target: String,
    pub path: Path,
    pub handler: Arc<H>,
    pub stats: Arc<SubscriptionStats>,
    pub backoff: Backoff,
}

/// Why an update was NACKed: the envelope, or the handler's own reason.
/// `Display` is the NACK's `error_detail.message`.
#[derive(Debug, thiserror::Error)]
pub enum Rejection<E> {
    #[error("unexpected type URL {got:?} on the {expected} stream")]
    TypeUrl { got: String, expected: &'static str },
    #[error("resources[{index}] has type URL {got:?}, expected {expected}")]
    ResourceTypeUrl {
        index: usize,
        got: String,
        expected: &'static str,
    },
    #[error(transparent)]
    Handler(E),
}

/// A resource that does not decode as the subscription's message type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("resources[{index}] ({type_url}) does not decode: {source}")]
pub struct DecodeError {
    pub index: usize,
    pub type_url: String,
    #[source]
    pub source: prost::DecodeError,
}

#[derive(Debug, thiserror::Error)]
enum StreamEnd {
    #[error("connect: {0}")]
    Connect(#[from] ConnectError),
    #[error("stream: {0}")]
    Status(#[from] tonic::Status),
    #[error("the agent closed the stream")]
    Closed,
}

impl<H: Resources> Subscription<H> {
    /// Runs forever: connect, stream, and on any failure back off and retry.
    pub async fn run(self) {
        let mut attempt = 0u32;
        loop {
            let generation = self.stats.generation.fetch_add(1, Ordering::Relaxed) + 1;
            let started = Instant::now();
            let mut got_response = false;
            let end = self.stream_once(generation, &mut got_response).await;
            self.stats.connected.store(false, Ordering::Relaxed);
            if got_response || started.elapsed() > Duration::from_secs(30) {
                attempt = 0;
            }
            let delay = self.backoff.delay(attempt);
            attempt = attempt.saturating_add(1);
            warn!(
                type_url = self.path.type_url(),
                target = %self.target,
                error = %end,
                retry_in_ms = delay.as_millis() as u64,
                "xDS stream ended; the last good state stays in force"
            );
            tokio::time::sleep(delay).await;
        }
    }

    async fn stream_once(&self, generation: u64, got_response: &mut bool) -> StreamEnd {
        let channel = match channel::connect(&self.target).await {
            Ok(c) => c,
            Err(e) => return StreamEnd::Connect(e),
        };
        let type_url = self.path.type_url();
        let (tx, rx) = mpsc::channel::<DiscoveryRequest>(4);
        let first = DiscoveryRequest {
            node: Some(node()),
            type_url: type_url.to_string(),
            ..Default::default()
        };
        if tx.send(first).await.is_err() {
            return StreamEnd::Closed;
        }
        let mut responses = match stream(channel, self.path, ReceiverStream::new(rx)).await {
            Ok(r) => r,
            Err(status) => return StreamEnd::Status(status),
        };
        self.stats.connected.store(true, Ordering::Relaxed);
        self.handler.new_generation(generation);
        info!(type_url, target = %self.target, generation, "xDS stream open");
        let mut accepted_version = String::new();
        loop {
            let resp = match responses.message().await {
                Ok(Some(r)) => r,
                Ok(None) => return StreamEnd::Closed,
                Err(status) => return StreamEnd::Status(status),
            };
            *got_response = true;
            let reply = match self.judge(&resp) {
                Ok(()) => {
                    accepted_version = resp.version_info.clone();
                    self.stats.accepted(&resp.version_info);
                    debug!(type_url, version = %resp.version_info, resources = resp.resources.len(), "ACK");
                    DiscoveryRequest {
                        version_info: resp.version_info.clone(),
                        response_nonce: resp.nonce.clone(),
                        type_url: type_url.to_string(),
                        ..Default::default()
                    }
                }
                Err(rejection) => {
                    let reason = rejection.to_string();
                    self.stats.rejected(&reason);
                    warn!(type_url, version = %resp.version_info, %reason, "NACK; the previous state stays in force");
                    DiscoveryRequest {
                        version_info: accepted_version.clone(),
                        response_nonce: resp.nonce.clone(),
                        type_url: type_url.to_string(),
                        error_detail: Some(RpcStatus {
                            // google.rpc.Code.INVALID_ARGUMENT, as Envoy sends.
                            code: 3,
                            message: reason,
                            details: Vec::new(),
                        }),
                        ..Default::default()
                    }
                }
            };
            if tx.send(reply).await.is_err() {
                return StreamEnd::Closed;
            }
        }
    }

    /// Checks the envelope, then lets the handler apply all or nothing.
    fn judge(&self, resp: &DiscoveryResponse) -> Result<(), Rejection<H::Error>> {
        let expected = self.path.type_url();
        if resp.type_url != expected {
            return Err(Rejection::TypeUrl {
                got: resp.type_url.clone(),
                expected,
            });
        }
        if let Some((index, any)) = resp
            .resources
            .iter()
            .enumerate()
            .find(|(_, a)| a.type_url != expected)
        {
            return Err(Rejection::ResourceTypeUrl {
                index,
                got: any.type_url.clone(),
                expected,
            });
        }
        self.handler
            .apply(&resp.version_info, &resp.resources)
            .map_err(Rejection::Handler)
    }
}

/// Decodes every resource as `M`, naming the one that does not decode.
pub fn decode_all<M: prost::Message + Default>(resources: &[Any]) -> Result<Vec<M>, DecodeError> {
    resources
        .iter()
        .enumerate()
        .map(|(index, any)| {
            M::decode(any.value.as_slice()).map_err(|source| DecodeError {
                index,
                type_url: any.type_url.clone(),
                source,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_capped_and_jittered() {
        let b = Backoff {
            base: Duration::from_millis(100),
            cap: Duration::from_secs(2),
        };
        for attempt in 0..40 {
            let d = b.delay(attempt);
            let ceiling = Duration::from_millis(100)
                .saturating_mul(1 << attempt.min(16))
                .min(Duration::from_secs(2));
            assert!(d <= ceiling, "attempt {attempt}: {d:?} > {ceiling:?}");
        }
        // Jitter: not every delay at a given attempt is the same.
        let distinct: std::collections::HashSet<_> =
            (0..20).map(|_| b.delay(5).as_micros()).collect();
        assert!(distinct.len() > 1);
    }

    #[test]
    fn nack_reasons_read_as_before() {
        let url = "type.googleapis.com/cilium.NetworkPolicy";
        let r: Rejection<DecodeError> = Rejection::TypeUrl {
            got: "x".into(),
            expected: url,
        };
        assert_eq!(
            r.to_string(),
            format!("unexpected type URL \"x\" on the {url} stream")
        );
        let r: Rejection<DecodeError> = Rejection::ResourceTypeUrl {
            index: 2,
            got: "y".into(),
            expected: url,
        };
        assert_eq!(
            r.to_string(),
            format!("resources[2] has type URL \"y\", expected {url}")
        );
        let bad = Any {
            type_url: url.into(),
            value: vec![0x0a, 0x05],
        };
        let e =
            decode_all::<cilium_api::cilium::NetworkPolicy>(&[Any::default(), bad]).unwrap_err();
        assert_eq!(e.index, 1);
        let text = Rejection::Handler(e).to_string();
        assert!(
            text.starts_with(&format!("resources[1] ({url}) does not decode: ")),
            "{text}"
        );
    }

    #[test]
    fn node_is_cilium_envoys() {
        assert_eq!(node().id, "host~127.0.0.1~no-id~localdomain");
    }
}
