//! Prometheus metrics. Hot-path counters are resolved once at start and
//! held as handles, so a request costs an atomic add, not a label lookup.

use prometheus_client::encoding::{text::encode, EncodeLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use std::sync::{Arc, OnceLock};

use l7_kafka::kafka_protocol::messages::ApiKey;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;

use portcullis_xds::client::SubscriptionStats;
use portcullis_xds::Path;

/// A running xDS subscription's name and counters, for metrics and dumps.
#[derive(Debug)]
pub struct Stream {
    pub path: Path,
    pub stats: Arc<SubscriptionStats>,
}

/// xDS subscription metrics, read from the subscriptions at scrape time.
#[derive(Debug)]
struct XdsCollector(Arc<OnceLock<Vec<Stream>>>);

impl Collector for XdsCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        use std::sync::atomic::Ordering::Relaxed;
        let Some(streams) = self.0.get() else {
            return Ok(());
        };
        type Value = fn(&Stream) -> f64;
        let counters: [(&str, &str, Value); 2] = [
            (
                "xds_updates_accepted",
                "xDS updates applied and ACKed, by type",
                |s| s.stats.accepted.load(Relaxed) as f64,
            ),
            ("xds_updates_rejected", "xDS updates NACKed, by type", |s| {
                s.stats.rejected.load(Relaxed) as f64
            }),
        ];
        for (name, help, value) in counters {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for s in streams {
                let labels = [("type_url", s.path.type_url())];
                ConstCounter::new(value(s) as u64).encode(family.encode_family(&labels)?)?;
            }
        }
        let gauges: [(&str, &str, Value); 4] = [
            (
                "xds_stream_generation",
                "Streams opened so far, by type (a new one per agent restart or reconnect)",
                |s| s.stats.generation.load(Relaxed) as f64,
            ),
            ("xds_connected", "1 while the stream is open", |s| {
                u8::from(s.stats.connected.load(Relaxed)) as f64
            }),
            (
                "xds_version",
                "Version of the last accepted update (numeric versions only)",
                |s| s.stats.snapshot().version.parse().unwrap_or(0.0),
            ),
            (
                "xds_seconds_since_update",
                "Seconds since the last accepted update (-1: none yet)",
                |s| s.stats.since_update().map_or(-1.0, |d| d.as_secs_f64()),
            ),
        ];
        for (name, help, value) in gauges {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for s in streams {
                let labels = [("type_url", s.path.type_url())];
                ConstGauge::new(value(s)).encode(family.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}

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
    /// Set once the subscriptions start.
    pub xds: Arc<OnceLock<Vec<Stream>>>,
    requests_allowed: Counter,
    requests_denied: Counter,
    requests_rejected: Counter,
    pub connections_allowed: Counter,
    pub connections_denied: Counter,
    pub connections_rejected: Counter,
    pub active_connections: Gauge,
    pub connections_closed_by_policy: Counter,
    pub connections_overflow: Counter,
    pub upstream_errors: Counter,
    pub updates_accepted: Counter,
    pub updates_rejected: Counter,
    policy_files_published: Counter,
    policy_files_rejected: Counter,
    pub access_log_dropped: Counter,
    kafka_requests: Family<KafkaLabel, Counter>,
    kafka_latency: Histogram,
    pub kafka_closed: Counter,
    pub kafka_spliced_bytes: Counter,
    dns_queries: Family<DnsLabel, Counter>,
    /// The hot (protocol, verdict) pairs, resolved once.
    dns_hot: [(&'static str, &'static str, Counter); 4],
    dns_latency: Histogram,
    pub dns_response_delay_exceeded: Counter,
    pub dns_mapping_failed: Counter,
    pub fqdn_names: Gauge,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DnsLabel {
    protocol: &'static str,
    verdict: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KafkaLabel {
    api_key: &'static str,
    verdict: &'static str,
}

/// API key names as label values.
fn kafka_key_label(key: ApiKey) -> &'static str {
    l7_kafka::api::api_key_name(key)
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
            "Downstream connections by verdict: allowed, denied (L3/L4), rejected (the listener cannot enforce the port's L7 rules)",
            connections.clone(),
        );
        let active_connections = Gauge::default();
        registry.register(
            "active_connections",
            "Open downstream connections",
            active_connections.clone(),
        );
        let connections_closed_by_policy = Counter::default();
        registry.register(
            "connections_closed_by_policy",
            "Open connections closed because a policy update withdrew their L3/L4 allowance, or left their parser unable to enforce their port's rules",
            connections_closed_by_policy.clone(),
        );
        let connections_overflow = Counter::default();
        registry.register(
            "connections_overflow",
            "Connections reset at accept because maxConnections were open",
            connections_overflow.clone(),
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
        let file_loads = Family::<ResultLabel, Counter>::default();
        registry.register(
            "policy_file_loads",
            "Loads of the standalone policy files (at start and after each change), by result (published, rejected)",
            file_loads.clone(),
        );
        let access_log_dropped = Counter::default();
        registry.register(
            "access_log_dropped",
            "Access-log events dropped because the writer fell behind",
            access_log_dropped.clone(),
        );
        let kafka_requests = Family::<KafkaLabel, Counter>::default();
        registry.register(
            "kafka_requests",
            "Kafka requests by API key and verdict",
            kafka_requests.clone(),
        );
        let kafka_latency = Histogram::new(exponential_buckets(0.0001, 2.0, 16));
        registry.register(
            "kafka_response_seconds",
            "Time from a forwarded Kafka request's turn to its response starting to flow back",
            kafka_latency.clone(),
        );
        let kafka_closed = Counter::default();
        registry.register(
            "kafka_connections_closed",
            "Kafka connections closed for malformed, oversized or unknown frames, or a misbehaving broker",
            kafka_closed.clone(),
        );
        let kafka_spliced_bytes = Counter::default();
        registry.register(
            "kafka_spliced_bytes",
            "Bytes of allowed Produce requests moved to the broker with splice(2), never copied through the proxy",
            kafka_spliced_bytes.clone(),
        );
        let dns_queries = Family::<DnsLabel, Counter>::default();
        registry.register(
            "dns_queries",
            "DNS queries by transport and outcome (allowed, denied, malformed, timeout, error, overflow)",
            dns_queries.clone(),
        );
        let dns_latency = Histogram::new(exponential_buckets(0.00005, 2.0, 18));
        registry.register(
            "dns_upstream_seconds",
            "Time from forwarding a DNS query to its answer",
            dns_latency.clone(),
        );
        let dns_response_delay_exceeded = Counter::default();
        registry.register(
            "dns_response_delay_exceeded",
            "DNS replies sent before the agent took their FQDN mapping (responseMaxDelayMs passed)",
            dns_response_delay_exceeded.clone(),
        );
        let dns_mapping_failed = Counter::default();
        registry.register(
            "dns_mapping_failed",
            "FQDN mappings the agent refused or could not be sent",
            dns_mapping_failed.clone(),
        );
        let fqdn_names = Gauge::default();
        registry.register(
            "fqdn_cache_names",
            "Entries (endpoint, name) in the FQDN cache",
            fqdn_names.clone(),
        );
        let xds = Arc::new(OnceLock::new());
        registry.register_collector(Box::new(XdsCollector(xds.clone())));
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
            connections_rejected: v(&connections, "rejected"),
            active_connections,
            connections_closed_by_policy,
            connections_overflow,
            upstream_errors,
            updates_accepted: r(&updates, "accepted"),
            updates_rejected: r(&updates, "rejected"),
            policy_files_published: r(&file_loads, "published"),
            policy_files_rejected: r(&file_loads, "rejected"),
            access_log_dropped,
            kafka_requests,
            kafka_latency,
            kafka_closed,
            kafka_spliced_bytes,
            dns_hot: [
                ("udp", "allowed"),
                ("udp", "denied"),
                ("tcp", "allowed"),
                ("tcp", "denied"),
            ]
            .map(|(protocol, verdict)| {
                let c = dns_queries
                    .get_or_create(&DnsLabel { protocol, verdict })
                    .clone();
                (protocol, verdict, c)
            }),
            dns_queries,
            dns_latency,
            dns_response_delay_exceeded,
            dns_mapping_failed,
            fqdn_names,
            registry,
            xds,
        }
    }

    pub fn request(&self, v: RequestVerdict) {
        match v {
            RequestVerdict::Allowed => self.requests_allowed.inc(),
            RequestVerdict::Denied => self.requests_denied.inc(),
            RequestVerdict::Rejected => self.requests_rejected.inc(),
        };
    }

    /// One load of the standalone policy files: published, or rejected.
    pub fn policy_file_load(&self, published: bool) {
        if published {
            self.policy_files_published.inc();
        } else {
            self.policy_files_rejected.inc();
        }
    }

    pub fn kafka_request(&self, key: ApiKey, allowed: bool) {
        let verdict = if allowed { "allowed" } else { "denied" };
        self.kafka_requests
            .get_or_create(&KafkaLabel {
                api_key: kafka_key_label(key),
                verdict,
            })
            .inc();
    }

    pub fn kafka_response_latency(&self, d: std::time::Duration) {
        self.kafka_latency.observe(d.as_secs_f64());
    }

    pub fn dns_query(&self, protocol: &'static str, verdict: &'static str) {
        if let Some((_, _, c)) = self
            .dns_hot
            .iter()
            .find(|(p, v, _)| *p == protocol && *v == verdict)
        {
            c.inc();
            return;
        }
        self.dns_queries
            .get_or_create(&DnsLabel { protocol, verdict })
            .inc();
    }

    pub fn dns_upstream_latency(&self, d: std::time::Duration) {
        self.dns_latency.observe(d.as_secs_f64());
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}
