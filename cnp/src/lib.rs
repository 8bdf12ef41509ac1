//! Standalone policy: translates ordinary `CiliumNetworkPolicy` and
//! `CiliumClusterwideNetworkPolicy` YAML, plus an inventory of local
//! endpoints and remote identities, into the NPDS resources a Cilium agent
//! would send — one `NetworkPolicy` per local endpoint and one
//! `NetworkPolicyHosts` per identity with addresses — and into what it
//! would send its DNS proxy: the standalone DNS proxy's `DNSPolicy`
//! messages ([`EndpointDnsRules`]) and the identities of the `toFQDNs` selectors
//! ([`FqdnSelector`]). It sits in front of the npds snapshot compiler: in
//! standalone mode the proxy feeds what this crate produces to the same
//! code path that agent updates take.
//!
//! Semantics follow the agent (`pkg/policy`, `pkg/envoy/xds_server.go`,
//! `envoy_l7_rules_translator.go`, `pkg/k8s/apis/cilium.io/utils`,
//! `pkg/fqdn/service` for the standalone DNS proxy's policy); the
//! module docs say which part of the agent each step mirrors. Where this
//! translator differs on purpose:
//!
//! - Every rule is sent with `precedence` 0 and no pass verdict. Agents
//!   without policy tiers send no precedence; the current agent encodes an
//!   (unreleased) rule priority into it (allow `0xFFFFFF01`, deny
//!   `0xFFFFFFFF`, proxy redirects in between). For policies without
//!   priorities both orderings decide the same way (deny before allow), and
//!   the relative ranks are still used to decide which rules are redundant.
//! - Each rule's `name` is the contributing policies' references
//!   (`<namespace>/<name>`, or `<name>` for a clusterwide policy), joined by
//!   commas, for the access log; the agent leaves it empty.
//! - Named ports: on ingress the selected endpoint's own `namedPorts`; on
//!   egress the named ports of the local endpoints carrying each selected
//!   peer identity (one rule per resolved port, as the agent does).
//!   Configured remote identities have no named ports. A name that resolves
//!   nowhere is an error (the agent silently skips it).
//! - An explicitly empty peer list (`fromEndpoints: []`) is an error: the
//!   agent would read it as "no peer given", which with `toPorts` allows
//!   every peer.
//! - Every HTTP rule is compiled with the proxy's own compiler
//!   (`l7_http::HttpRules::compile`, as npds runs it) when it is parsed;
//!   whatever that refuses (for example a header match that would rewrite a
//!   pseudo-header or `host`, a value that is not a header value, a regex
//!   over the proxy's size limit or with the `x` flag RE2 lacks) is an error
//!   naming the field, so a translation always compiles.
//! - `rules.kafka` entries are sanitized as the agent's `kafka.PortRule`
//!   (`role` or `apiKey`, not both; names case-insensitive; topics at most
//!   249 characters of `[a-zA-Z0-9._-]`) and sent as the agent sends them:
//!   `l7_proto: kafka` plus `kafka_rules` with the role expanded to API
//!   keys and a missing `apiVersion` as -1. Rules of two L7 protocols (HTTP,
//!   Kafka, DNS) on one port are an error (one L7 parser per port).
//! - `rules.dns` (egress allow rules only) and `toFQDNs` entries are
//!   `{matchName}` or `{matchPattern}`, checked as the agent checks them
//!   (`[-a-zA-Z0-9_.]` / `[-a-zA-Z0-9_.*]`, at most 255 characters) and
//!   compiled with the proxy's compiler (`l7_dns::DnsRules`). An entry with
//!   both keys is an error (the agent accepts both in a DNS rule and allows
//!   either). An empty `dns: []` is an error: the agent reads it as no DNS
//!   rules (a plain L3/L4 allow on TCP, an error on UDP or ANY).
//! - A DNS rule needs a single numeric, non-zero port. Its protocol is UDP,
//!   TCP or ANY; `ANY` expands to TCP, UDP and SCTP as everywhere, so the
//!   DNS policy lists SCTP servers (protocol 132) as the agent's does. An
//!   explicit `SCTP` is an error (the agent accepts it, but its DNS proxy
//!   serves only UDP and TCP); a named port is not supported yet (the agent
//!   would send the DNS proxy port 0).
//! - NPDS for a port with DNS rules is what the agent sends Envoy: a plain
//!   allow for the selected peers (`xds_server.go` ignores DNS L7 rules),
//!   and nothing for UDP. The rules go to [`EndpointDnsRules`], the agent's
//!   `DNSPolicy`: the agent sends one per L4 filter and peer selector, with
//!   every identity the selector selects; here those with equal patterns on
//!   one port are merged (the same decisions), and a rule without a peer
//!   selector lists identity 0, "any server", where the agent lists every
//!   identity its wildcard selector selects at the time.
//! - DNS rules merge as in the agent: patterns are unioned, an L3/L4 allow
//!   for the same peer and port adds `*`, and so does the agent's
//!   `ensureWildcard` when no rule selecting the endpoint asks for egress
//!   default deny. (The agent's `ensureWildcard` does the same for HTTP
//!   and Kafka rules; this translator keeps those rules as written.)
//! - Each distinct `toFQDNs` selector (lower-cased, without a trailing dot,
//!   an all-`*` pattern as `*`, a pattern without `*` as the name it is)
//!   gets one local identity, allocated after the CIDR identities in sorted
//!   order; the rule's peers are those identities. The agent instead labels
//!   each learnt address `fqdn:<selector>` and allocates one identity per
//!   label set. An FQDN identity owns no addresses here (the proxy maps
//!   learnt addresses to it) and carries the world label, so rules that
//!   allow the world allow it; CIDR selectors do not select it (the agent
//!   also gives learnt addresses their CIDR labels). `toFQDNs` in
//!   `egressDeny` is an error (the agent's deny rules have no such field).
//! - Anything not implemented is an error naming the field ("not supported
//!   yet"), never silently dropped: `nodeSelector`, `log`, `fromRequires`,
//!   `toRequires`, `fromNodes`/`toNodes`, `fromGroups`/`toGroups`,
//!   `toServices`, `icmps`, `authentication`, `cidrGroupRef`,
//!   `cidrGroupSelector`, `serverNames`, `terminatingTLS`, `originatingTLS`,
//!   `listener`, `rules.l7proto`/`l7`, VRRP and IGMP protocols,
//!   namespace-label selectors and label sources other than `k8s`, `any`
//!   and `reserved`.

#![forbid(unsafe_code)]

mod dns;
mod error;
mod http;
mod identity;
mod inventory;
mod l4;
mod names;
mod parse;
mod ports;
mod rules;
mod selector;
mod spec;
mod wire;
mod yaml;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::net::IpAddr;

use npds::proto::{NetworkPolicy, NetworkPolicyHosts};

pub use dns::{DnsServer, EndpointDnsRules, FqdnSelector};
pub use error::{CnpError, Problem};
pub use identity::{ALLOC_BASE, ALLOC_SPAN, FIRST_CIDR_IDENTITY};
pub use inventory::{Endpoint, Identity, Inventory};
pub use parse::{parse_file, PolicyDoc};

/// The NPDS and NPHDS resources for an inventory and a set of policies.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Translation {
    /// One per local endpoint, by endpoint id.
    pub network_policies: Vec<NetworkPolicy>,
    /// One per identity that owns addresses, by identity.
    pub hosts: Vec<NetworkPolicyHosts>,
    /// Each endpoint's security identity (given or allocated).
    pub endpoint_identities: BTreeMap<u64, u32>,
    /// What the DNS proxy enforces: each endpoint's DNS rules per egress
    /// port, by endpoint id, port and patterns.
    pub dns_rules: Vec<EndpointDnsRules>,
    /// Every egress `toFQDNs` selector and its identity, by selector.
    pub fqdn_selectors: Vec<FqdnSelector>,
}

/// Translate policies into NPDS resources for every endpoint of `inv`.
pub fn translate(inv: &Inventory, docs: &[PolicyDoc]) -> Result<Translation, CnpError> {
    let universe = identity::Universe::build(inv, docs)?;
    let mut endpoints: Vec<&Endpoint> = inv.endpoints.iter().collect();
    endpoints.sort_by_key(|ep| ep.id);

    let mut network_policies = Vec::with_capacity(endpoints.len());
    let mut dns_rules = Vec::new();
    for ep in endpoints {
        let labels = selector::IdLabels::pod(&ep.labels, &ep.namespace);
        let ingress_filters = l4::resolve(&labels, docs, &universe, true);
        let ingress = wire::direction(ingress_filters.as_ref(), ep, inv, &universe, true)?;
        let egress_filters = l4::resolve(&labels, docs, &universe, false);
        let egress = wire::direction(egress_filters.as_ref(), ep, inv, &universe, false)?;
        dns_rules.extend(dns::endpoint_rules(
            ep.id,
            egress_filters.as_ref(),
            &universe,
        ));
        network_policies.push(NetworkPolicy {
            endpoint_ips: endpoint_ips(&ep.ips),
            endpoint_id: ep.id,
            ingress_per_port_policies: ingress,
            egress_per_port_policies: egress,
        });
    }
    let fqdn_selectors = universe
        .fqdn_ids
        .iter()
        .map(|(key, id)| FqdnSelector::new(key, *id))
        .collect();
    tracing::debug!(
        endpoints = network_policies.len(),
        identities = universe.ids.len(),
        policies = docs.len(),
        dns_rules = dns_rules.len(),
        "translated network policies"
    );
    Ok(Translation {
        network_policies,
        hosts: universe.hosts(),
        endpoint_identities: universe.endpoint_ids,
        dns_rules,
        fqdn_selectors,
    })
}

/// IPv4 addresses first, then IPv6, each sorted (the agent sends v4, v6).
fn endpoint_ips(ips: &[IpAddr]) -> Vec<String> {
    let mut ips = ips.to_vec();
    ips.sort_by_key(|ip| (ip.is_ipv6(), *ip));
    ips.dedup();
    ips.iter().map(IpAddr::to_string).collect()
}
