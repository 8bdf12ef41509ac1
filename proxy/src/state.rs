//! What every connection shares: the published [`Policy`] (see
//! proxy/src/policy.rs), the connection cap, readiness, the last refused
//! update, metrics and the access log.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

use serde::Serialize;
use tokio::sync::watch;

use crate::access_log::AccessLog;
use crate::dns::fqdn::Fqdn;
use crate::metrics::Metrics;
use crate::policy::{Change, Policy, PolicyStore};

/// The last update that was refused, for `/config_dump`.
#[derive(Debug, Clone, Serialize)]
pub struct Rejection {
    pub time: String,
    pub source: &'static str,
    pub error: String,
}

pub struct Shared {
    policy: Arc<PolicyStore>,
    open_connections: AtomicUsize,
    max_connections: AtomicUsize,
    /// What must have arrived before `/ready` says yes.
    pending: Mutex<BTreeSet<&'static str>>,
    ready: AtomicBool,
    last_rejection: Mutex<Option<Rejection>>,
    pub metrics: Metrics,
    pub access_log: AccessLog,
    /// Kafka topic ID → name, learned from responses, per broker identity.
    pub kafka_topic_ids: l7_kafka::topics::TopicIds,
    /// The FQDN cache, filled by allowed DNS answers.
    pub fqdn: Fqdn,
    /// The agent's `FQDNData` server, when it is the DNS policy source:
    /// every new mapping is sent to it before the reply goes out.
    pub fqdn_data: OnceLock<tonic::transport::Channel>,
}

impl Shared {
    /// `needs`: the names of the first updates readiness waits for.
    pub fn new(mut access_log: AccessLog, needs: &[&'static str]) -> Self {
        let metrics = Metrics::new();
        access_log.count_drops_in(metrics.access_log_dropped.clone());
        let policy = Arc::new(PolicyStore::default());
        Shared {
            fqdn: Fqdn::new(policy.clone(), metrics.fqdn_names.clone()),
            fqdn_data: OnceLock::new(),
            policy,
            open_connections: AtomicUsize::new(0),
            max_connections: AtomicUsize::new(usize::MAX),
            pending: Mutex::new(needs.iter().copied().collect()),
            ready: AtomicBool::new(needs.is_empty()),
            last_rejection: Mutex::new(None),
            metrics,
            access_log,
            kafka_topic_ids: Default::default(),
        }
    }

    pub fn set_max_connections(&self, max: usize) {
        self.max_connections.store(max.max(1), Ordering::Relaxed);
    }

    /// A place for one more downstream connection, or `None` at the cap.
    /// The place is given back when the returned guard drops.
    pub fn connection_slot(self: &Arc<Self>) -> Option<ConnectionSlot> {
        let max = self.max_connections.load(Ordering::Relaxed);
        let mut open = self.open_connections.load(Ordering::Relaxed);
        loop {
            if open >= max {
                return None;
            }
            match self.open_connections.compare_exchange_weak(
                open,
                open + 1,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Some(ConnectionSlot(self.clone())),
                Err(now) => open = now,
            }
        }
    }

    /// The current policy. Callers hold the guard for one decision (never
    /// across an await).
    pub fn policy(&self) -> arc_swap::Guard<Arc<Policy>> {
        self.policy.load()
    }

    /// The current policy as an owned `Arc`, for building the next one.
    pub fn policy_arc(&self) -> Arc<Policy> {
        self.policy.load_full()
    }

    /// Publishes one update; every update from a control-plane source
    /// counts as accepted.
    pub fn publish(&self, change: Change) {
        if !matches!(change, Change::Fqdn(_) | Change::Limits(_) | Change::Dns(_)) {
            self.metrics.updates_accepted.inc();
        }
        self.policy.publish(change);
    }

    /// Secrets the policy names that are not held: those rules fail closed.
    pub fn missing_secrets(&self) -> Vec<String> {
        let policy = self.policy();
        policy
            .snapshot
            .referenced_secrets()
            .into_iter()
            .filter(|n| !policy.secrets.contains(n))
            .collect()
    }

    /// A receiver that sees every policy swap that may change a
    /// connection's verdict.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.policy.subscribe()
    }

    /// Records that the first `what` update has been applied.
    pub fn arrived(&self, what: &'static str) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending.remove(what);
        if pending.is_empty() {
            self.ready.store(true, Ordering::Release);
        }
    }

    /// What readiness still waits for.
    pub fn pending(&self) -> Vec<&'static str> {
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .copied()
            .collect()
    }

    pub fn reject(&self, source: &'static str, error: String) {
        self.metrics.updates_rejected.inc();
        let rejection = Rejection {
            time: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
            source,
            error,
        };
        *self
            .last_rejection
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(rejection);
    }

    pub fn last_rejection(&self) -> Option<Rejection> {
        self.last_rejection
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Ready once the first NPDS and NPHDS updates are applied and every
    /// secret they name is held.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire) && self.missing_secrets().is_empty()
    }
}

/// One downstream connection's place under the cap.
pub struct ConnectionSlot(Arc<Shared>);

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.open_connections.fetch_sub(1, Ordering::AcqRel);
    }
}
