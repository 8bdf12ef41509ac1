//! What the control plane publishes and the data plane reads: the policy
//! snapshot and identity table, swapped whole through one `ArcSwap`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use arc_swap::ArcSwap;
use npds::{IdentityTable, PolicySnapshot};
use serde::Serialize;

use crate::access_log::AccessLog;
use crate::metrics::Metrics;

/// One consistent view of policy: endpoints' rules and peers' identities.
#[derive(Debug, Default)]
pub struct PolicyState {
    pub snapshot: Arc<PolicySnapshot>,
    pub identities: Arc<IdentityTable>,
}

/// The last update that was refused, for `/config_dump`.
#[derive(Debug, Clone, Serialize)]
pub struct Rejection {
    pub time: String,
    pub error: String,
}

pub struct Shared {
    policy: ArcSwap<PolicyState>,
    ready: AtomicBool,
    last_rejection: Mutex<Option<Rejection>>,
    pub metrics: Metrics,
    pub access_log: AccessLog,
}

impl Shared {
    pub fn new(access_log: AccessLog) -> Self {
        Shared {
            policy: ArcSwap::from_pointee(PolicyState::default()),
            ready: AtomicBool::new(false),
            last_rejection: Mutex::new(None),
            metrics: Metrics::new(),
            access_log,
        }
    }

    /// The current policy. Callers hold the guard for the duration of one
    /// decision (never across an await), so an update never changes a
    /// decision half-way; the guard avoids a reference-count round trip.
    pub fn policy(&self) -> arc_swap::Guard<Arc<PolicyState>> {
        self.policy.load()
    }

    pub fn publish(&self, state: PolicyState) {
        self.policy.store(Arc::new(state));
        self.metrics.updates_accepted.inc();
        self.ready.store(true, Ordering::Release);
    }

    pub fn reject(&self, error: String) {
        self.metrics.updates_rejected.inc();
        let rejection = Rejection {
            time: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
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

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }
}
