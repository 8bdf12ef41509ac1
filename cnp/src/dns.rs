//! DNS policy: `toPorts.rules.dns` and egress `toFQDNs`.
//!
//! - Each entry is `{matchName}` or `{matchPattern}`, parsed and checked in
//!   names.rs.
//! - A port with DNS rules is redirected to the DNS proxy. Envoy gets a
//!   plain L3/L4 allow for it (the agent's `xds_server.go` ignores DNS L7
//!   rules); the rules themselves go to the DNS proxy as the agent's
//!   standalone-DNS-proxy `DNSPolicy` messages ([`EndpointDnsRules`]): one per
//!   L4 filter and peer selector in the agent (`pkg/fqdn/service`), here
//!   grouped per endpoint, port and pattern set (equivalent: a query is
//!   allowed when one policy lists its server and one of its patterns
//!   matches).
//! - A `toFQDNs` selector stands for the addresses the DNS proxy learns for
//!   its names; each distinct selector gets one local identity
//!   ([`FqdnSelector`]) with no addresses at translation time.

use std::collections::{BTreeMap, BTreeSet};

use crate::identity::Universe;
use crate::l4::{Filters, Grant};
use crate::selector::FqdnKey;
use crate::spec::PortSpec;

/// One endpoint's DNS rules on one egress port: the agent's
/// `standalonednsproxy.DNSPolicy`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointDnsRules {
    pub endpoint_id: u64,
    /// Raw `matchName` / `matchPattern` strings, as the agent sends them
    /// (sorted, without duplicates). `*` allows every name; the agent adds
    /// it where an L3/L4 allow for the same peer and port, or a policy
    /// without default deny, opens the port to every name.
    pub patterns: Vec<String>,
    /// The DNS servers the patterns apply to, sorted.
    pub servers: Vec<DnsServer>,
}

/// A DNS server that [`EndpointDnsRules`] apply to: the agent's `DNSServer`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct DnsServer {
    /// The server's security identity. 0 stands for any server: a DNS rule
    /// without a peer selector (`toPorts` alone) applies to every peer. The
    /// agent lists every identity its wildcard selector selects at that
    /// moment, and sends no identity (0) when a filter has no selector at
    /// all; 0 covers identities that appear later too.
    pub identity: u32,
    pub port: u16,
    /// IANA protocol number: 6 TCP, 17 UDP (and 132 SCTP: `ANY` expands to
    /// TCP, UDP and SCTP for DNS rules as for any other, as in the agent).
    pub proto: u8,
}

/// An egress `toFQDNs` selector and the local identity it was given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FqdnSelector {
    /// Exactly one of `match_name` and `match_pattern` is non-empty. Both
    /// are normalised: lower-cased, without a trailing dot, an all-`*`
    /// pattern as `*`, and a pattern without `*` given as the name it is.
    pub match_name: String,
    pub match_pattern: String,
    /// A local (CIDR-scope) identity, after the CIDR identities.
    pub identity: u32,
}

impl FqdnSelector {
    pub(crate) fn new(key: &FqdnKey, identity: u32) -> Self {
        let (match_name, match_pattern) = match key {
            FqdnKey::Name(n) => (n.clone(), String::new()),
            FqdnKey::Pattern(p) => (String::new(), p.clone()),
        };
        FqdnSelector {
            match_name,
            match_pattern,
            identity,
        }
    }
}

/// The DNS policies of one endpoint's egress filters.
pub(crate) fn endpoint_rules(
    endpoint_id: u64,
    filters: Option<&Filters>,
    universe: &Universe,
) -> Vec<EndpointDnsRules> {
    let Some(filters) = filters else {
        return Vec::new();
    };
    let mut groups: BTreeMap<(u16, Vec<String>), BTreeSet<DnsServer>> = BTreeMap::new();
    for (key, filter) in filters {
        // DNS rules only ever have a numeric, non-zero port (see `ports`).
        let PortSpec::Number(port) = key.port else {
            continue;
        };
        for (sel, entry) in &filter.entries {
            let Grant::Dns(patterns) = &entry.grant else {
                continue;
            };
            let ids = if sel.is_wildcard() {
                vec![0]
            } else {
                universe.select(sel)
            };
            if ids.is_empty() {
                continue;
            }
            let mut patterns = patterns.clone();
            patterns.sort();
            patterns.dedup();
            let servers = groups.entry((port, patterns)).or_default();
            servers.extend(ids.into_iter().map(|identity| DnsServer {
                identity,
                port,
                proto: key.proto.number(),
            }));
        }
    }
    groups
        .into_iter()
        .map(|((_, patterns), servers)| EndpointDnsRules {
            endpoint_id,
            patterns,
            servers: servers.into_iter().collect(),
        })
        .collect()
}
