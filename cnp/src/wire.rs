//! Turning one endpoint's filters into `PortNetworkPolicy` messages the way
//! the agent's `getDirectionNetworkPolicy` does:
//!
//! - Only TCP (and ANY) filters are sent; UDP/SCTP rules never reach the
//!   proxy, though they still put the direction under policy.
//! - Port 0 (L3-only rules): a wildcard selector gives one rule without
//!   remotes; the other selectors' identities are merged into one deny and
//!   one allow rule, dropped when a wildcard rule of equal or higher rank
//!   already covers them. A lone allow-all rule becomes an empty rule list.
//! - Specific ports: one rule per selector (remotes = its identities),
//!   skipped when the port-0 wildcard outranks it; a wildcard deny or
//!   L3/L4 allow on the port prunes the rules it makes redundant.
//! - A port with DNS rules (a DNS proxy redirect) is sent as a plain allow
//!   for the selected peers: the agent's `getPortNetworkPolicyRule` ignores
//!   DNS L7 rules. UDP, the usual DNS transport, is not sent at all.
//!
//! Rank stands in for the agent's precedence: deny, then proxy redirects
//! (HTTP, Kafka, DNS), then plain allow. Every rule is sent with
//! `precedence` 0 and no pass verdict, as for policies without tiers; see
//! `lib.rs`.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use envoy_types::pb::envoy::config::core::v3::socket_address::Protocol;
use npds::proto::{port_network_policy_rule as pnpr, PortNetworkPolicy, PortNetworkPolicyRule};

use crate::error::{CnpError, Fault};
use crate::http::{cmp_http_rules, http_rules};
use crate::identity::Universe;
use crate::inventory::{Endpoint, Inventory};
use crate::l4::{merge_entry, Entry, Filter, Filters, Grant};
use crate::selector::Selector;
use crate::spec::KafkaRule;
use crate::spec::{PortSpec, Proto};

const DENY: u8 = 3;
const REDIRECT: u8 = 2;
const ALLOW: u8 = 1;

fn rank(g: &Grant) -> u8 {
    match g {
        Grant::Deny => DENY,
        Grant::Http(_) | Grant::Kafka(_) | Grant::Dns(_) | Grant::Conflict => REDIRECT,
        Grant::L34 => ALLOW,
    }
}

/// Rules with side effects (header matches) and deny rules can not stop
/// evaluation at the first allow.
fn can_short_circuit(g: &Grant) -> bool {
    match g {
        Grant::Deny => false,
        Grant::Http(rules) => rules.iter().all(|r| r.header_matches.is_empty()),
        Grant::Kafka(_) | Grant::Dns(_) | Grant::Conflict | Grant::L34 => true,
    }
}

/// A rule before it becomes a message.
struct Out {
    rank: u8,
    msg: PortNetworkPolicyRule,
}

fn make_rule(grant: &Grant, remotes: Vec<u32>, names: &BTreeSet<String>) -> Out {
    let mut msg = PortNetworkPolicyRule {
        remote_policies: remotes,
        name: names.iter().cloned().collect::<Vec<_>>().join(","),
        ..Default::default()
    };
    match grant {
        Grant::Deny => msg.verdict = Some(pnpr::Verdict::Deny(true)),
        Grant::Http(rules) => msg.l7 = Some(pnpr::L7::HttpRules(http_rules(rules))),
        Grant::Kafka(rules) => {
            // As the agent sends it: the proxylib parser name plus the rules.
            msg.l7_proto = "kafka".into();
            msg.l7 = Some(pnpr::L7::KafkaRules(kafka_rules(rules)));
        }
        // DNS rules go to the DNS proxy, not to Envoy: the agent sends the
        // port as a plain allow for the selected peers.
        // A conflict is refused before rules are made (see `direction`).
        Grant::Dns(_) | Grant::Conflict | Grant::L34 => {}
    }
    Out {
        rank: rank(grant),
        msg,
    }
}

/// Kafka rules on the wire, sorted and without duplicates.
fn kafka_rules(rules: &[KafkaRule]) -> npds::proto::KafkaNetworkPolicyRules {
    let mut rules = rules.to_vec();
    rules.sort();
    rules.dedup();
    npds::proto::KafkaNetworkPolicyRules {
        kafka_rules: rules
            .into_iter()
            .map(|r| npds::proto::KafkaNetworkPolicyRule {
                api_version: r.api_version,
                api_keys: r.api_keys,
                client_id: r.client_id,
                topic: r.topic,
            })
            .collect(),
    }
}

/// An allow rule for every remote with no L7: the same as no rules at all.
fn is_allow_all(r: &PortNetworkPolicyRule) -> bool {
    r.verdict.is_none() && r.remote_policies.is_empty() && r.l7.is_none()
}

/// The policy of a direction that no rule selects: allow everything.
pub(crate) fn allow_all() -> Vec<PortNetworkPolicy> {
    vec![PortNetworkPolicy {
        port: 0,
        end_port: 0,
        protocol: Protocol::Tcp as i32,
        rules: Vec::new(),
    }]
}

pub(crate) fn direction(
    filters: Option<&Filters>,
    ep: &Endpoint,
    inv: &Inventory,
    universe: &Universe,
    ingress: bool,
) -> Result<Vec<PortNetworkPolicy>, CnpError> {
    let Some(filters) = filters else {
        return Ok(allow_all());
    };
    let mut out = Vec::new();

    // Port 0: the L3-only rules (ANY) and explicit `port: 0` TCP rules.
    let mut wildcard_port: BTreeMap<Selector, Entry> = BTreeMap::new();
    for (_, filter) in filters.iter().filter(|(k, _)| k.is_wildcard_port()) {
        for (sel, e) in &filter.entries {
            match wildcard_port.get_mut(sel) {
                Some(old) => merge_entry(old, e.clone()),
                None => {
                    wildcard_port.insert(sel.clone(), e.clone());
                }
            }
        }
    }
    let (mut rules, wildcard_rank) = wildcard_port_rules(&wildcard_port, universe);
    if !rules.is_empty() {
        if rules.len() == 1 && is_allow_all(&rules[0].msg) {
            rules.clear();
        }
        out.push(port_policy(0, 0, rules));
    }

    let mut ports: BTreeMap<(u16, u16), PortState> = BTreeMap::new();
    // The L7 parser of each port: one per port, as in the agent.
    let mut parsers: BTreeMap<(u16, u16), &'static str> = BTreeMap::new();
    let mut one_parser = |port: (u16, u16), grant: &Grant, filter: &Filter| {
        let kind = match grant {
            Grant::Http(_) => "HTTP",
            Grant::Kafka(_) => "Kafka",
            Grant::Dns(_) => "DNS",
            Grant::Conflict => {
                return Err(unresolved(
                    filter,
                    format!(
                    "rules of two L7 protocols (HTTP, Kafka, DNS) for the same peers on port {}: one L7 parser per port",
                    port.0
                ),
                ))
            }
            Grant::L34 | Grant::Deny => return Ok(()),
        };
        match parsers.insert(port, kind) {
            Some(other) if other != kind => Err(unresolved(
                filter,
                format!(
                    "{other} and {kind} rules on port {}: one L7 parser per port",
                    port.0
                ),
            )),
            _ => Ok(()),
        }
    };
    for (key, filter) in filters {
        if key.proto != Proto::Tcp || key.is_wildcard_port() {
            continue;
        }
        for (sel, e) in &filter.entries {
            let r = rank(&e.grant);
            if r < wildcard_rank || (wildcard_rank == DENY && r == DENY) {
                continue;
            }
            match &key.port {
                PortSpec::Number(p) => {
                    one_parser((*p, key.end_port), &e.grant, filter)?;
                    add_selector_rule(&mut ports, (*p, key.end_port), sel, e, universe);
                }
                PortSpec::Named(name) if ingress => {
                    let port = ep.named_port(name).ok_or_else(|| {
                        let m = format!("named port {name:?} is not defined on endpoint {}", ep.id);
                        unresolved(filter, m)
                    })?;
                    one_parser((port, key.end_port), &e.grant, filter)?;
                    add_selector_rule(&mut ports, (port, key.end_port), sel, e, universe);
                }
                PortSpec::Named(name) => {
                    let peers = if sel.is_wildcard() {
                        universe.ids.keys().copied().collect()
                    } else {
                        universe.select(sel)
                    };
                    if peers.is_empty() {
                        continue;
                    }
                    let by_port = egress_named_ports(inv, universe, &peers, name);
                    if by_port.is_empty() {
                        let m = format!(
                            "named port {name:?} is not defined on any peer endpoint selected for endpoint {}",
                            ep.id
                        );
                        return Err(unresolved(filter, m));
                    }
                    for (port, ids) in by_port {
                        one_parser((port, 0), &e.grant, filter)?;
                        let state = ports.entry((port, 0)).or_default();
                        state.push(make_rule(&e.grant, ids, &e.names), &e.grant, false);
                    }
                }
            }
        }
    }
    for ((port, end_port), state) in ports {
        if let Some(rules) = state.finish() {
            out.push(port_policy(port, end_port, rules));
        }
    }
    out.sort_by(|a, b| {
        a.protocol
            .cmp(&b.protocol)
            .then(a.port.cmp(&b.port))
            .then_with(|| cmp_rule_lists(&a.rules, &b.rules))
            .then(a.end_port.cmp(&b.end_port))
    });
    Ok(out)
}

fn port_policy(port: u16, end_port: u16, rules: Vec<Out>) -> PortNetworkPolicy {
    PortNetworkPolicy {
        port: u32::from(port),
        end_port: u32::from(end_port),
        protocol: Protocol::Tcp as i32,
        rules: rules.into_iter().map(|o| o.msg).collect(),
    }
}

/// The rules of the port-0 filter and the rank of its wildcard rule (0 if none).
fn wildcard_port_rules(entries: &BTreeMap<Selector, Entry>, universe: &Universe) -> (Vec<Out>, u8) {
    let mut wildcard: Option<Out> = None;
    let mut wildcard_rank = 0;
    let mut deny_ids = BTreeSet::new();
    let mut deny_names = BTreeSet::new();
    let mut allow_ids = BTreeSet::new();
    let mut allow_names = BTreeSet::new();
    for (sel, e) in entries {
        if sel.is_wildcard() {
            wildcard_rank = rank(&e.grant);
            wildcard = Some(make_rule(&e.grant, Vec::new(), &e.names));
            continue;
        }
        let ids = universe.select(sel);
        if ids.is_empty() {
            continue;
        }
        if e.grant == Grant::Deny {
            deny_ids.extend(ids);
            deny_names.extend(e.names.iter().cloned());
        } else {
            allow_ids.extend(ids);
            allow_names.extend(e.names.iter().cloned());
        }
    }
    let mut rules: Vec<Out> = wildcard.into_iter().collect();
    if !deny_ids.is_empty() && DENY > wildcard_rank {
        let ids = deny_ids.into_iter().collect();
        rules.push(make_rule(&Grant::Deny, ids, &deny_names));
    }
    if !allow_ids.is_empty() && ALLOW > wildcard_rank {
        let ids = allow_ids.into_iter().collect();
        rules.push(make_rule(&Grant::L34, ids, &allow_names));
    }
    sort_rules(&mut rules);
    (rules, wildcard_rank)
}

/// The rules collected for one (port, end port).
#[derive(Default)]
struct PortState {
    rules: Vec<Out>,
    /// Ranks at which some rule can not short-circuit.
    cant_short_circuit: BTreeSet<u8>,
    allow_all: Option<usize>,
    deny_all: Option<usize>,
}

impl PortState {
    fn push(&mut self, out: Out, grant: &Grant, wildcard_selector: bool) {
        if !can_short_circuit(grant) {
            self.cant_short_circuit.insert(out.rank);
        }
        if wildcard_selector {
            match grant {
                Grant::Deny => self.deny_all = Some(self.rules.len()),
                // A DNS rule for every peer is an allow-all rule for Envoy.
                Grant::L34 | Grant::Dns(_) => self.allow_all = Some(self.rules.len()),
                Grant::Http(_) | Grant::Kafka(_) | Grant::Conflict => {}
            }
        }
        self.rules.push(out);
    }

    /// Prunes what a wildcard deny or allow-all on the port makes redundant
    /// and sorts. `None` when no rule is left (no entry for the port);
    /// an empty list when only an allow-all rule is (the agent sends none).
    fn finish(self) -> Option<Vec<Out>> {
        let deny_all = self.deny_all.map(|i| (i, self.rules[i].rank));
        let allow_all = self.allow_all.map(|i| (i, self.rules[i].rank));
        let cant = &self.cant_short_circuit;
        let mut kept: Vec<Out> = self
            .rules
            .into_iter()
            .enumerate()
            .filter(|(i, r)| {
                let under_deny = deny_all.is_some_and(|(j, dr)| *i != j && r.rank <= dr);
                let under_allow = allow_all.is_some_and(|(j, ar)| {
                    *i != j && (r.rank < ar || (!cant.contains(&r.rank) && r.rank == ar))
                });
                !under_deny && !under_allow
            })
            .map(|(_, r)| r)
            .collect();
        if kept.is_empty() {
            return None;
        }
        if kept.len() == 1 && is_allow_all(&kept[0].msg) {
            return Some(Vec::new());
        }
        sort_rules(&mut kept);
        Some(kept)
    }
}

fn add_selector_rule(
    ports: &mut BTreeMap<(u16, u16), PortState>,
    key: (u16, u16),
    sel: &Selector,
    e: &Entry,
    universe: &Universe,
) {
    let remotes = if sel.is_wildcard() {
        Vec::new()
    } else {
        let ids = universe.select(sel);
        if ids.is_empty() {
            return;
        }
        ids
    };
    let state = ports.entry(key).or_default();
    state.push(
        make_rule(&e.grant, remotes, &e.names),
        &e.grant,
        sel.is_wildcard(),
    );
}

fn unresolved(filter: &Filter, message: String) -> CnpError {
    Fault::invalid(&filter.origin.path, message).in_doc(&filter.origin.doc)
}

/// Egress to a named port: the port is the peer's. Resolved through the
/// local endpoints that carry each selected identity (configured remote
/// identities have no named ports); identities without the name are left
/// out, as the agent does. Returns port → identities.
fn egress_named_ports(
    inv: &Inventory,
    universe: &Universe,
    peers: &[u32],
    name: &str,
) -> BTreeMap<u16, Vec<u32>> {
    let mut by_port: BTreeMap<u16, BTreeSet<u32>> = BTreeMap::new();
    for ep in &inv.endpoints {
        let Some(id) = universe.endpoint_ids.get(&ep.id) else {
            continue;
        };
        if !peers.contains(id) {
            continue;
        }
        if let Some(port) = ep.named_port(name) {
            by_port.entry(port).or_default().insert(*id);
        }
    }
    by_port
        .into_iter()
        .map(|(p, ids)| (p, ids.into_iter().collect()))
        .collect()
}

/// The agent's rule order (`PortNetworkPolicyRuleCmp`): higher precedence
/// (here: rank) first, L3/L4-only before HTTP, HTTP rules by their headers,
/// then by remote identities; name and full content break remaining ties.
fn sort_rules(rules: &mut [Out]) {
    rules.sort_by(|a, b| b.rank.cmp(&a.rank).then_with(|| cmp_rule(&a.msg, &b.msg)));
}

fn cmp_rule(a: &PortNetworkPolicyRule, b: &PortNetworkPolicyRule) -> Ordering {
    let http = |r: &PortNetworkPolicyRule| match &r.l7 {
        Some(pnpr::L7::HttpRules(h)) => Some(h.http_rules.clone()),
        _ => None,
    };
    let (ha, hb) = (http(a), http(b));
    let by_http = match (&ha, &hb) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(x), Some(y)) => cmp_http_rules(x, y),
    };
    let kafka = |r: &PortNetworkPolicyRule| match &r.l7 {
        Some(pnpr::L7::KafkaRules(k)) => k
            .kafka_rules
            .iter()
            .map(|k| {
                (
                    k.api_version,
                    k.api_keys.clone(),
                    k.client_id.clone(),
                    k.topic.clone(),
                )
            })
            .collect(),
        _ => Vec::new(),
    };
    by_http
        .then_with(|| kafka(a).cmp(&kafka(b)))
        .then(a.remote_policies.len().cmp(&b.remote_policies.len()))
        .then_with(|| a.remote_policies.cmp(&b.remote_policies))
        .then_with(|| b.verdict.is_some().cmp(&a.verdict.is_some()))
        .then_with(|| a.name.cmp(&b.name))
}

fn cmp_rule_lists(a: &[PortNetworkPolicyRule], b: &[PortNetworkPolicyRule]) -> Ordering {
    a.len().cmp(&b.len()).then_with(|| {
        a.iter()
            .zip(b)
            .map(|(x, y)| cmp_rule(x, y))
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
    })
}
