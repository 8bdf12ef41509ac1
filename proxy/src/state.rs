//! What the control plane publishes and the data plane reads: the policy
//! snapshot and identity table, swapped whole through one `ArcSwap`.
//!
//! NPDS and NPHDS arrive on separate streams, so each update replaces its
//! half and keeps the other; either way a reader sees one consistent pair.
//! Every swap bumps a `watch` generation that long-lived connections wait
//! on to judge themselves again.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use arc_swap::ArcSwap;
use npds::{IdentityTable, PolicySnapshot};
use sds::SecretStore;
use serde::Serialize;
use tokio::sync::watch;

use crate::access_log::AccessLog;
use crate::metrics::Metrics;

/// One consistent view of policy: endpoints' rules and peers' identities.
#[derive(Debug, Default, Clone)]
pub struct PolicyState {
    pub snapshot: Arc<PolicySnapshot>,
    pub identities: Arc<IdentityTable>,
    /// Addresses learnt from DNS answers → the `toFQDNs` identities they carry.
    pub fqdn: Arc<crate::dns::fqdn::FqdnIdentities>,
}

/// The last update that was refused, for `/config_dump`.
#[derive(Debug, Clone, Serialize)]
pub struct Rejection {
    pub time: String,
    pub source: &'static str,
    pub error: String,
}

pub struct Shared {
    policy: ArcSwap<PolicyState>,
    open_connections: AtomicUsize,
    max_connections: AtomicUsize,
    secrets: ArcSwap<SecretStore>,
    changed: watch::Sender<u64>,
    /// What must have arrived before `/ready` says yes.
    pending: Mutex<BTreeSet<&'static str>>,
    ready: AtomicBool,
    last_rejection: Mutex<Option<Rejection>>,
    http: ArcSwap<crate::http::HttpSettings>,
    pub metrics: Metrics,
    pub access_log: AccessLog,
    pub kafka: crate::kafka::KafkaState,
    pub dns: crate::dns::DnsState,
}

impl Shared {
    /// `needs`: the names of the first updates readiness waits for.
    pub fn new(mut access_log: AccessLog, needs: &[&'static str]) -> Self {
        let metrics = Metrics::new();
        access_log.count_drops_in(metrics.access_log_dropped.clone());
        Shared {
            policy: ArcSwap::from_pointee(PolicyState::default()),
            open_connections: AtomicUsize::new(0),
            max_connections: AtomicUsize::new(usize::MAX),
            secrets: ArcSwap::from_pointee(SecretStore::default()),
            changed: watch::channel(0).0,
            pending: Mutex::new(needs.iter().copied().collect()),
            ready: AtomicBool::new(needs.is_empty()),
            last_rejection: Mutex::new(None),
            http: ArcSwap::from_pointee(crate::http::HttpSettings::default()),
            metrics,
            access_log,
            kafka: Default::default(),
            dns: Default::default(),
        }
    }

    /// The settings HTTP connections start with.
    pub fn http_settings(&self) -> Arc<crate::http::HttpSettings> {
        self.http.load_full()
    }

    pub fn set_http_settings(&self, settings: crate::http::HttpSettings) {
        self.http.store(Arc::new(settings));
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

    /// The current policy. Callers hold the guard for the duration of one
    /// decision (never across an await), so an update never changes a
    /// decision half-way; the guard avoids a reference-count round trip.
    pub fn policy(&self) -> arc_swap::Guard<Arc<PolicyState>> {
        self.policy.load()
    }

    /// The current policy as an owned `Arc`, for building the next one.
    pub fn policy_arc(&self) -> Arc<PolicyState> {
        self.policy.load_full()
    }

    /// The secrets held now (guard: hold for one decision, not across awaits).
    pub fn secrets(&self) -> arc_swap::Guard<Arc<SecretStore>> {
        self.secrets.load()
    }

    /// Replaces every secret at once; rules that name them see the new
    /// material from their next request on.
    pub fn publish_secrets(&self, store: SecretStore) {
        self.secrets.store(Arc::new(store));
        self.metrics.updates_accepted.inc();
    }

    /// Secrets the policy names that are not held: those rules fail closed.
    pub fn missing_secrets(&self) -> Vec<String> {
        let secrets = self.secrets();
        self.policy()
            .snapshot
            .referenced_secrets()
            .into_iter()
            .filter(|n| !secrets.contains(n))
            .collect()
    }

    /// A receiver that sees every policy swap.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    pub fn publish_snapshot(&self, snapshot: Arc<PolicySnapshot>) {
        self.policy.rcu(|cur| PolicyState {
            snapshot: snapshot.clone(),
            ..PolicyState::clone(cur)
        });
        self.swapped();
    }

    pub fn publish_identities(&self, identities: Arc<IdentityTable>) {
        self.policy.rcu(|cur| PolicyState {
            identities: identities.clone(),
            ..PolicyState::clone(cur)
        });
        self.swapped();
    }

    /// New DNS-learnt addresses for policy lookups. Open connections are
    /// not judged again: an address whose TTL ran out keeps the
    /// connections already made to it, as the agent keeps "zombie" IPs
    /// alive while connections use them; new connections see the change.
    pub fn publish_fqdn(&self, fqdn: Arc<crate::dns::fqdn::FqdnIdentities>) {
        self.policy.rcu(|cur| PolicyState {
            fqdn: fqdn.clone(),
            ..PolicyState::clone(cur)
        });
    }

    fn swapped(&self) {
        self.metrics.updates_accepted.inc();
        self.changed.send_modify(|g| *g += 1);
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
