//! The one value the control side publishes and the data path reads:
//! [`Policy`], everything a decision may consult, built whole and swapped
//! through one `ArcSwap` with one generation.
//!
//! Each source replaces its own part and keeps the rest: NPDS the snapshot,
//! NPHDS the identities, SDS the secrets, the agent's `FQDNData` stream or
//! the standalone control plane the DNS policy, the FQDN cache the addresses it learnt, and the config file the
//! protocol limits. A reader holding a `Policy` sees one consistent set,
//! never half of an update. Every swap but the FQDN cache's wakes the
//! long-lived connections, which judge themselves again.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use npds::{IdentityTable, PolicySnapshot};
use sds::SecretStore;
use tokio::sync::watch;

use crate::config::{DnsConfig, HttpConfig, KafkaConfig};
use crate::dns::policy::ServerIdentities;

/// Everything a decision may consult, at one generation.
#[derive(Debug, Default, Clone)]
pub struct Policy {
    /// Bumped by every swap.
    pub generation: u64,
    pub snapshot: Arc<PolicySnapshot>,
    pub identities: Arc<IdentityTable>,
    /// Addresses learnt from DNS answers → the `toFQDNs` identities they carry.
    pub fqdn: Arc<FqdnIdentities>,
    pub secrets: Arc<SecretStore>,
    /// DNS policy: from the agent's `FQDNData` stream, or standalone from
    /// the policy files' `rules.dns`.
    pub dns: Arc<DnsPolicy>,
    pub limits: Arc<Limits>,
}

/// DNS policy as the proxy holds it: server addresses get their
/// identities from npds's identity table, as connections do.
pub type DnsPolicy = l7_dns::CompiledDnsPolicy<ServerIdentities>;

/// The part of [`Policy`] one update replaces.
pub enum Change {
    Snapshot(Arc<PolicySnapshot>),
    Identities(Arc<IdentityTable>),
    Secrets(Arc<SecretStore>),
    Dns(Arc<DnsPolicy>),
    /// New DNS-learnt addresses. Open connections are not judged again: an
    /// address whose TTL ran out keeps the connections already made to it,
    /// as the agent keeps "zombie" IPs alive while connections use them;
    /// new connections see the change.
    Fqdn(Arc<FqdnIdentities>),
    Limits(Arc<Limits>),
}

/// Protocol limits, from the config file.
#[derive(Debug, Default)]
pub struct Limits {
    pub http: HttpSettings,
    pub kafka: KafkaLimits,
    pub dns: DnsConfig,
}

/// How large and how deep a Kafka connection may get.
#[derive(Debug)]
pub struct KafkaLimits {
    /// Largest request or buffered response accepted, in bytes.
    pub max_frame: usize,
    /// Requests a connection may have waiting for their responses.
    pub max_in_flight: usize,
    /// Smallest Produce frame spliced rather than copied (0: never).
    pub splice_min: usize,
}

impl Default for KafkaLimits {
    fn default() -> Self {
        KafkaLimits::from(&KafkaConfig::default())
    }
}

impl From<&KafkaConfig> for KafkaLimits {
    fn from(c: &KafkaConfig) -> Self {
        KafkaLimits {
            max_frame: c.max_frame_bytes.max(64),
            max_in_flight: c.max_in_flight.max(1),
            splice_min: c.splice_min_bytes,
        }
    }
}

/// How HTTP connections are timed and which upgrades they may make.
#[derive(Debug)]
pub struct HttpSettings {
    /// From accept (or the end of the previous exchange) to a whole head.
    pub header_timeout: Duration,
    /// From a request's head to the end of its body; `None`: no limit.
    pub request_timeout: Option<Duration>,
    /// `Upgrade` protocols relayed, lowercase.
    pub upgrades: Box<[Box<str>]>,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings::from(&HttpConfig::default())
    }
}

impl From<&HttpConfig> for HttpSettings {
    fn from(c: &HttpConfig) -> Self {
        HttpSettings {
            header_timeout: Duration::from_millis(c.header_timeout_ms.max(1)),
            request_timeout: (c.request_timeout_ms > 0)
                .then(|| Duration::from_millis(c.request_timeout_ms)),
            upgrades: c
                .upgrades
                .iter()
                .map(|u| u.to_ascii_lowercase().into())
                .collect(),
        }
    }
}

impl HttpSettings {
    pub fn allows_upgrade(&self, protocol: &str) -> bool {
        // A protocol may carry a version (`websocket/13`); the name decides.
        let name = protocol.split('/').next().unwrap_or("");
        self.upgrades
            .iter()
            .any(|u| u.eq_ignore_ascii_case(protocol) || u.eq_ignore_ascii_case(name))
    }
}

/// Addresses → the `toFQDNs` identities they carry now (sorted).
#[derive(Debug, Default)]
pub struct FqdnIdentities(HashMap<IpAddr, Box<[u32]>>);

impl FqdnIdentities {
    pub fn new(map: HashMap<IpAddr, Box<[u32]>>) -> Self {
        FqdnIdentities(map)
    }

    pub fn of(&self, ip: IpAddr) -> &[u32] {
        if self.0.is_empty() {
            return &[];
        }
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.0.get(&ip).map_or(&[], |ids| ids)
    }
}

/// Where [`Policy`] is published.
pub struct PolicyStore {
    current: ArcSwap<Policy>,
    /// The generation connections last had to be judged again at.
    changed: watch::Sender<u64>,
}

impl Default for PolicyStore {
    fn default() -> Self {
        PolicyStore {
            current: ArcSwap::from_pointee(Policy::default()),
            changed: watch::channel(0).0,
        }
    }
}

impl PolicyStore {
    /// The current policy. Callers hold the guard for one decision (never
    /// across an await), so an update never changes a decision half-way;
    /// the guard avoids a reference-count round trip.
    pub fn load(&self) -> arc_swap::Guard<Arc<Policy>> {
        self.current.load()
    }

    /// The current policy as an owned `Arc`.
    pub fn load_full(&self) -> Arc<Policy> {
        self.current.load_full()
    }

    /// Swaps in the policy with `change` applied, at the next generation.
    pub fn publish(&self, change: Change) {
        let rejudge = !matches!(change, Change::Fqdn(_));
        let next = self.current.rcu(|cur| {
            let mut p = Policy::clone(cur);
            p.generation += 1;
            match &change {
                Change::Snapshot(s) => p.snapshot = s.clone(),
                Change::Identities(i) => p.identities = i.clone(),
                Change::Secrets(s) => p.secrets = s.clone(),
                Change::Dns(d) => p.dns = d.clone(),
                Change::Fqdn(f) => p.fqdn = f.clone(),
                Change::Limits(l) => p.limits = l.clone(),
            }
            p
        });
        if rejudge {
            // `rcu` returns the policy it replaced: ours is one later.
            self.changed.send_replace(next.generation + 1);
        }
    }

    /// A receiver that sees every swap that may change a connection's verdict.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }
}
