//! Standalone policy: translates ordinary `CiliumNetworkPolicy` and
//! `CiliumClusterwideNetworkPolicy` YAML, plus an inventory of local
//! endpoints and remote identities, into the NPDS resources a Cilium agent
//! would send — one `NetworkPolicy` per local endpoint and one
//! `NetworkPolicyHosts` per identity with addresses. It sits in front of the
//! npds snapshot compiler: in standalone mode the proxy feeds what this crate
//! produces to the same code path that agent updates take.
//!
//! Semantics follow the agent (`pkg/policy`, `pkg/envoy/xds_server.go`,
//! `envoy_l7_rules_translator.go`, `pkg/k8s/apis/cilium.io/utils`); the
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
//!   keys and a missing `apiVersion` as -1. HTTP and Kafka rules on one
//!   port are an error (one L7 parser per port).
//! - Anything not implemented is an error naming the field ("not supported
//!   yet"), never silently dropped: `nodeSelector`, `log`, `fromRequires`,
//!   `toRequires`, `fromNodes`/`toNodes`, `fromGroups`/`toGroups`,
//!   `toServices`, `toFQDNs`, `icmps`, `authentication`, `cidrGroupRef`,
//!   `cidrGroupSelector`, `serverNames`, `terminatingTLS`, `originatingTLS`,
//!   `listener`, `rules.dns`, `rules.l7proto`/`l7`, VRRP and
//!   IGMP protocols, namespace-label selectors and label sources other than
//!   `k8s`, `any` and `reserved`.

#![forbid(unsafe_code)]

mod error;
mod http;
mod identity;
mod inventory;
mod l4;
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
}

/// Translate policies into NPDS resources for every endpoint of `inv`.
pub fn translate(inv: &Inventory, docs: &[PolicyDoc]) -> Result<Translation, CnpError> {
    let universe = identity::Universe::build(inv, docs)?;
    let mut endpoints: Vec<&Endpoint> = inv.endpoints.iter().collect();
    endpoints.sort_by_key(|ep| ep.id);

    let mut network_policies = Vec::with_capacity(endpoints.len());
    for ep in endpoints {
        let labels = selector::IdLabels::pod(&ep.labels, &ep.namespace);
        let per_port = |ingress: bool| {
            let filters = l4::resolve(&labels, docs, &universe, ingress);
            wire::direction(filters.as_ref(), ep, inv, &universe, ingress)
        };
        let ingress = per_port(true)?;
        let egress = per_port(false)?;
        network_policies.push(NetworkPolicy {
            endpoint_ips: endpoint_ips(&ep.ips),
            endpoint_id: ep.id,
            ingress_per_port_policies: ingress,
            egress_per_port_policies: egress,
        });
    }
    tracing::debug!(
        endpoints = network_policies.len(),
        identities = universe.ids.len(),
        policies = docs.len(),
        "translated network policies"
    );
    Ok(Translation {
        network_policies,
        hosts: universe.hosts(),
        endpoint_identities: universe.endpoint_ids,
    })
}

/// IPv4 addresses first, then IPv6, each sorted (the agent sends v4, v6).
fn endpoint_ips(ips: &[IpAddr]) -> Vec<String> {
    let mut ips = ips.to_vec();
    ips.sort_by_key(|ip| (ip.is_ipv6(), *ip));
    ips.dedup();
    ips.iter().map(IpAddr::to_string).collect()
}
