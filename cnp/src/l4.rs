//! Resolving the rules that select one endpoint into per-port filters, the
//! way the agent's `resolvePolicyLocked` / `L4Filter` merging does it:
//!
//! - A direction is under policy when a selecting rule has (allow or deny)
//!   rules in it. If none of those rules asks for default deny
//!   (`enableDefaultDeny`), a wildcard allow-all rule is added, as the agent
//!   does, so deny and L7 rules still apply on top of "allow everything".
//! - One filter per (port or port name, end port, protocol); `ANY` expands to
//!   TCP, UDP and SCTP; a rule without `toPorts` is an L3-only rule on port 0.
//! - Within a filter, one entry per distinct peer selector. Entries for the
//!   same selector merge: deny wins; an L3/L4-only allow merged with HTTP
//!   rules adds the empty (match-all) HTTP rule; HTTP rules are unioned.
//! - DNS rules (egress only) merge like the agent's: union of patterns, and
//!   an L3/L4-only allow for the same selector adds the `*` pattern. When
//!   no selecting rule asks for default deny, the agent's `ensureWildcard`
//!   adds `*` to every DNS rule set too (HTTP and Kafka rules are kept as
//!   they are here; see `lib.rs`).
//! - On ingress, a selector with HTTP rules that also selects the host gets
//!   a companion L3/L4-only entry for `reserved:host` (the agent's
//!   `hostWildcardL7`, with `allow-localhost` at its Kubernetes default).

use std::collections::{BTreeMap, BTreeSet};

use crate::error::DocRef;
use crate::identity::Universe;
use crate::parse::PolicyDoc;
use crate::selector::{IdLabels, Selector};
use crate::spec::{HttpRule, KafkaRule, PeerRule, PortRule, PortSpec, Proto};

/// What the merged rules grant one selector on one port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Grant {
    /// Allowed, all of L7.
    L34,
    Deny,
    /// Allowed when one of these HTTP rules matches.
    Http(Vec<HttpRule>),
    /// Allowed when these Kafka rules allow the request.
    Kafka(Vec<KafkaRule>),
    /// Redirected to the DNS proxy, which allows names matching these raw
    /// `matchName` / `matchPattern` strings.
    Dns(Vec<String>),
    /// Two L7 protocols for one peer on one port: an error when the port's
    /// rules are built (the agent refuses to merge two L7 parsers).
    Conflict,
}

/// The DNS pattern that allows every name (the agent's DNS wildcard rule).
pub(crate) const DNS_WILDCARD: &str = "*";

impl Grant {
    /// Whether the grant redirects to a proxy for L7 enforcement.
    pub fn is_l7(&self) -> bool {
        matches!(
            self,
            Grant::Http(_) | Grant::Kafka(_) | Grant::Dns(_) | Grant::Conflict
        )
    }
}

fn add_dns_wildcard(patterns: &mut Vec<String>) {
    if !patterns.iter().any(|p| p == DNS_WILDCARD) {
        patterns.push(DNS_WILDCARD.to_string());
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    pub grant: Grant,
    /// References of the policies that contributed (`ns/name`).
    pub names: BTreeSet<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct FilterKey {
    pub port: PortSpec,
    pub end_port: u16,
    pub proto: Proto,
}

impl FilterKey {
    pub fn is_wildcard_port(&self) -> bool {
        self.port == PortSpec::Number(0) && matches!(self.proto, Proto::Any | Proto::Tcp)
    }
}

/// Where a filter was first named, for errors found later (named ports).
#[derive(Clone, Debug)]
pub(crate) struct Origin {
    pub doc: DocRef,
    pub path: String,
}

#[derive(Clone, Debug)]
pub(crate) struct Filter {
    pub entries: BTreeMap<Selector, Entry>,
    pub origin: Origin,
}

/// All filters of one endpoint in one direction.
pub(crate) type Filters = BTreeMap<FilterKey, Filter>;

/// The filters for an endpoint and direction, or `None` when no rule puts
/// that direction under policy (everything is allowed).
pub(crate) fn resolve(
    ep: &IdLabels,
    docs: &[PolicyDoc],
    universe: &Universe,
    ingress: bool,
) -> Option<Filters> {
    let mut enforced = false;
    let mut default_deny = false;
    let mut filters = Filters::new();
    for doc in docs {
        let name = doc.rule_ref();
        for rule in &doc.rules {
            if !rule.has(ingress) || !rule.subject.matches(ep, universe.dual_stack) {
                continue;
            }
            enforced = true;
            default_deny |= rule.default_deny(ingress);
            let (allow, deny) = rule.direction(ingress);
            for (list, is_deny) in [(allow, false), (deny, true)] {
                for peer_rule in list {
                    add_rule(
                        &mut filters,
                        peer_rule,
                        is_deny,
                        ingress,
                        &name,
                        doc,
                        universe,
                    );
                }
            }
        }
    }
    if !enforced {
        return None;
    }
    if !default_deny {
        // Only default-allow rules: the agent synthesizes `fromEntities: [all]`.
        let origin = Origin {
            doc: DocRef {
                file: String::new(),
                label: String::new(),
            },
            path: String::new(),
        };
        let key = FilterKey {
            port: PortSpec::Number(0),
            end_port: 0,
            proto: Proto::Any,
        };
        let entry = Entry {
            grant: Grant::L34,
            names: BTreeSet::new(),
        };
        merge_into(&mut filters, key, Selector::wildcard(), entry, &origin);
        // `ensureWildcard`: L7 rules of a default-allow policy must not
        // deny other L7 traffic. Done for DNS (see the module doc).
        for filter in filters.values_mut() {
            for entry in filter.entries.values_mut() {
                if let Grant::Dns(patterns) = &mut entry.grant {
                    add_dns_wildcard(patterns);
                }
            }
        }
    }
    Some(filters)
}

fn add_rule(
    filters: &mut Filters,
    rule: &PeerRule,
    is_deny: bool,
    ingress: bool,
    name: &str,
    doc: &PolicyDoc,
    universe: &Universe,
) {
    let names = BTreeSet::from([name.to_string()]);
    let grant_for = |port_rule: Option<&PortRule>| {
        if is_deny {
            Grant::Deny
        } else {
            match port_rule {
                Some(p) if !p.http.is_empty() => Grant::Http(p.http.clone()),
                Some(p) if !p.kafka.is_empty() => Grant::Kafka(p.kafka.clone()),
                Some(p) if !p.dns.is_empty() => Grant::Dns(p.dns.clone()),
                _ => Grant::L34,
            }
        }
    };
    if rule.to_ports.is_empty() {
        let key = FilterKey {
            port: PortSpec::Number(0),
            end_port: 0,
            proto: Proto::Any,
        };
        let origin = Origin {
            doc: doc.doc_ref.clone(),
            path: rule.path.clone(),
        };
        for sel in &rule.peers {
            let entry = Entry {
                grant: grant_for(None),
                names: names.clone(),
            };
            merge_into(filters, key.clone(), sel.clone(), entry, &origin);
        }
        return;
    }
    let host = Selector::reserved("host");
    for port_rule in &rule.to_ports {
        let grant = grant_for(Some(port_rule));
        for pp in &port_rule.ports {
            let origin = Origin {
                doc: doc.doc_ref.clone(),
                path: pp.path.clone(),
            };
            for proto in pp.protocol.expand() {
                let key = FilterKey {
                    port: pp.port.clone(),
                    end_port: pp.end_port,
                    proto: *proto,
                };
                // The filter this rule contributes, before merging.
                let mut local: BTreeMap<Selector, Entry> = rule
                    .peers
                    .iter()
                    .map(|s| {
                        let e = Entry {
                            grant: grant.clone(),
                            names: names.clone(),
                        };
                        (s.clone(), e)
                    })
                    .collect();
                let redirects_host =
                    grant.is_l7() && rule.peers.iter().any(|s| universe.selects(s, 1));
                if ingress && redirects_host {
                    local.entry(host.clone()).or_insert_with(|| Entry {
                        grant: Grant::L34,
                        names: names.clone(),
                    });
                }
                for (sel, entry) in local {
                    merge_into(filters, key.clone(), sel, entry, &origin);
                }
            }
        }
    }
}

fn merge_into(filters: &mut Filters, key: FilterKey, sel: Selector, new: Entry, origin: &Origin) {
    let filter = filters.entry(key).or_insert_with(|| Filter {
        entries: BTreeMap::new(),
        origin: origin.clone(),
    });
    match filter.entries.get_mut(&sel) {
        None => {
            filter.entries.insert(sel, new);
        }
        Some(old) => merge_entry(old, new),
    }
}

/// The agent's per-selector merge (`mergePortProto`).
pub(crate) fn merge_entry(old: &mut Entry, new: Entry) {
    let wildcard = HttpRule::default();
    match (&mut old.grant, new.grant) {
        (Grant::Deny, _) => {}
        (_, Grant::Deny) => {
            *old = Entry {
                grant: Grant::Deny,
                names: new.names,
            }
        }
        (Grant::L34, Grant::L34) => old.names.extend(new.names),
        (g @ Grant::L34, Grant::Http(mut rules)) => {
            if !rules.contains(&wildcard) {
                rules.push(wildcard);
            }
            *g = Grant::Http(rules);
            old.names.extend(new.names);
        }
        (Grant::Http(rules), Grant::L34) => {
            if !rules.contains(&wildcard) {
                rules.push(wildcard);
            }
            old.names.extend(new.names);
        }
        (Grant::Http(rules), Grant::Http(more)) => {
            for r in more {
                if !rules.contains(&r) {
                    rules.push(r);
                }
            }
            old.names.extend(new.names);
        }
        (g @ Grant::L34, Grant::Kafka(mut rules)) => {
            if !rules.contains(&KafkaRule::wildcard()) {
                rules.push(KafkaRule::wildcard());
            }
            *g = Grant::Kafka(rules);
            old.names.extend(new.names);
        }
        (Grant::Kafka(rules), Grant::L34) => {
            if !rules.contains(&KafkaRule::wildcard()) {
                rules.push(KafkaRule::wildcard());
            }
            old.names.extend(new.names);
        }
        (Grant::Kafka(rules), Grant::Kafka(more)) => {
            for r in more {
                if !rules.contains(&r) {
                    rules.push(r);
                }
            }
            old.names.extend(new.names);
        }
        (g @ Grant::L34, Grant::Dns(mut patterns)) => {
            add_dns_wildcard(&mut patterns);
            *g = Grant::Dns(patterns);
            old.names.extend(new.names);
        }
        (Grant::Dns(patterns), Grant::L34) => {
            add_dns_wildcard(patterns);
            old.names.extend(new.names);
        }
        (Grant::Dns(patterns), Grant::Dns(more)) => {
            for p in more {
                if !patterns.contains(&p) {
                    patterns.push(p);
                }
            }
            old.names.extend(new.names);
        }
        (g @ (Grant::Http(_) | Grant::Kafka(_) | Grant::Dns(_) | Grant::Conflict), _)
        | (g @ Grant::L34, Grant::Conflict) => {
            *g = Grant::Conflict;
            old.names.extend(new.names);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(grant: Grant, name: &str) -> Entry {
        Entry {
            grant,
            names: BTreeSet::from([name.to_string()]),
        }
    }

    fn get(path: &str) -> HttpRule {
        HttpRule {
            path: path.into(),
            ..HttpRule::default()
        }
    }

    #[test]
    fn merging_follows_the_agent() {
        let wildcard = HttpRule::default();
        let table = vec![
            (Grant::L34, Grant::L34, Grant::L34),
            (Grant::L34, Grant::Deny, Grant::Deny),
            (Grant::Deny, Grant::Http(vec![get("/a")]), Grant::Deny),
            (
                Grant::L34,
                Grant::Http(vec![get("/a")]),
                Grant::Http(vec![get("/a"), wildcard.clone()]),
            ),
            (
                Grant::Http(vec![get("/a")]),
                Grant::L34,
                Grant::Http(vec![get("/a"), wildcard.clone()]),
            ),
            (
                Grant::Http(vec![get("/a")]),
                Grant::Http(vec![get("/b"), get("/a")]),
                Grant::Http(vec![get("/a"), get("/b")]),
            ),
        ];
        let dns = |p: &[&str]| Grant::Dns(p.iter().map(|s| s.to_string()).collect());
        let table = table
            .into_iter()
            .chain([
                (dns(&["a.com"]), Grant::L34, dns(&["a.com", "*"])),
                (Grant::L34, dns(&["a.com", "*"]), dns(&["a.com", "*"])),
                (
                    dns(&["a.com"]),
                    dns(&["b.com", "a.com"]),
                    dns(&["a.com", "b.com"]),
                ),
                (dns(&["a.com"]), Grant::Deny, Grant::Deny),
                (
                    dns(&["a.com"]),
                    Grant::Http(vec![get("/a")]),
                    Grant::Conflict,
                ),
                (Grant::Kafka(vec![]), dns(&["a.com"]), Grant::Conflict),
            ])
            .collect::<Vec<_>>();
        for (old, new, want) in table {
            let mut e = entry(old.clone(), "ns/one");
            merge_entry(&mut e, entry(new.clone(), "ns/two"));
            assert_eq!(e.grant, want, "{old:?} + {new:?}");
        }
    }
}
