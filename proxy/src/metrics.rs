//! Prometheus metrics. Hot-path counters are resolved once at start and
//! held as handles, so a request costs an atomic add, not a label lookup.

use prometheus_client::encoding::{text::encode, EncodeLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VerdictLabel {
    verdict: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

/// Request verdicts as counted.
#[derive(Debug, Clone, Copy)]
pub enum RequestVerdict {
    Allowed,
    Denied,
    /// Malformed or hostile request shape, answered 4xx before policy.
    Rejected,
}

pub struct Metrics {
    registry: Registry,
    requests_allowed: Counter,
    requests_denied: Counter,
    requests_rejected: Counter,
    pub connections_allowed: Counter,
    pub connections_denied: Counter,
    pub active_connections: Gauge,
    pub upstream_errors: Counter,
    pub updates_accepted: Counter,
    pub updates_rejected: Counter,
    pub access_log_dropped: Counter,
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("portcullis");
        let requests = Family::<VerdictLabel, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by verdict",
            requests.clone(),
        );
        let connections = Family::<VerdictLabel, Counter>::default();
        registry.register(
            "connections",
            "Downstream connections by L3/L4 verdict",
            connections.clone(),
        );
        let active_connections = Gauge::default();
        registry.register(
            "active_connections",
            "Open downstream connections",
            active_connections.clone(),
        );
        let upstream_errors = Counter::default();
        registry.register(
            "upstream_errors",
            "Upstream connect or protocol errors",
            upstream_errors.clone(),
        );
        let updates = Family::<ResultLabel, Counter>::default();
        registry.register(
            "policy_updates",
            "Policy updates by result",
            updates.clone(),
        );
        let access_log_dropped = Counter::default();
        registry.register(
            "access_log_dropped",
            "Access-log events dropped because the writer fell behind",
            access_log_dropped.clone(),
        );
        let v = |f: &Family<VerdictLabel, Counter>, verdict| {
            f.get_or_create(&VerdictLabel { verdict }).clone()
        };
        let r = |f: &Family<ResultLabel, Counter>, result| {
            f.get_or_create(&ResultLabel { result }).clone()
        };
        Metrics {
            requests_allowed: v(&requests, "allowed"),
            requests_denied: v(&requests, "denied"),
            requests_rejected: v(&requests, "rejected"),
            connections_allowed: v(&connections, "allowed"),
            connections_denied: v(&connections, "denied"),
            active_connections,
            upstream_errors,
            updates_accepted: r(&updates, "accepted"),
            updates_rejected: r(&updates, "rejected"),
            access_log_dropped,
            registry,
        }
    }

    pub fn request(&self, v: RequestVerdict) {
        match v {
            RequestVerdict::Allowed => self.requests_allowed.inc(),
            RequestVerdict::Denied => self.requests_denied.inc(),
            RequestVerdict::Rejected => self.requests_rejected.inc(),
        };
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}
