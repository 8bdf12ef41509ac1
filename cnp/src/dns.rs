//! DNS policy: `toPorts.rules.dns` and egress `toFQDNs`.
//!
//! - Each entry is `{matchName}` or `{matchPattern}`, checked as the agent's
//!   `FQDNSelector` / `PortRuleDNS` sanitizers check it (`[-a-zA-Z0-9_.]`
//!   for names, `[-a-zA-Z0-9_.*]` for patterns, at most 255 characters) and
//!   then compiled with the proxy's own compiler (`l7_dns::DnsRules`), so a
//!   translation always compiles in the proxy.
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

use l7_dns::{DnsRules, DnsSelector};

use crate::error::Fault;
use crate::identity::Universe;
use crate::l4::{Filters, Grant};
use crate::spec::{FqdnKey, PortSpec};
use crate::yaml::Node;

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

/// The longest name or pattern the agent accepts (a DNS name's limit).
const MAX_LEN: usize = 255;

/// One `{matchName}` / `{matchPattern}` entry.
fn parse_selector(node: Node<'_>) -> Result<DnsSelector, Fault> {
    let f = node.fields(&["matchName", "matchPattern"], &[])?;
    let (value, pattern) = match (f.get("matchName"), f.get("matchPattern")) {
        (Some(_), Some(p)) => {
            return Err(Fault::invalid(
                p.path,
                "matchName and matchPattern cannot both be set; use one entry for each",
            ))
        }
        (Some(n), None) => (n, false),
        (None, Some(p)) => (p, true),
        (None, None) => {
            return Err(Fault::invalid(
                node.path,
                "one of matchName or matchPattern is required",
            ))
        }
    };
    let s = value.str()?;
    check(s, pattern).map_err(|m| Fault::invalid(value.path, m))?;
    let sel = if pattern {
        DnsSelector::MatchPattern(s.to_string())
    } else {
        DnsSelector::MatchName(s.to_string())
    };
    // The proxy's compiler has the last word.
    DnsRules::compile(std::slice::from_ref(&sel))
        .map_err(|e| Fault::invalid(value.path, e.to_string()))?;
    Ok(sel)
}

/// The agent's character and length rules, on the string as written.
fn check(s: &str, pattern: bool) -> Result<(), String> {
    if s.is_empty() {
        return Err("empty name".into());
    }
    if s.len() > MAX_LEN {
        return Err(format!(
            "{} characters long; at most {MAX_LEN} are allowed",
            s.len()
        ));
    }
    let allowed = |c: char| {
        c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') || (pattern && c == '*')
    };
    if let Some(c) = s.chars().find(|c| !allowed(*c)) {
        let (field, set) = if pattern {
            ("matchPattern", "[-a-zA-Z0-9_.*]")
        } else {
            ("matchName", "[-a-zA-Z0-9_.]")
        };
        return Err(format!(
            "invalid character {c:?} in {field} {s:?}: only {set} are allowed"
        ));
    }
    Ok(())
}

fn raw(sel: &DnsSelector) -> &str {
    match sel {
        DnsSelector::MatchName(s) | DnsSelector::MatchPattern(s) => s,
    }
}

/// `toPorts[].rules.dns`: the raw strings, in the order written.
pub(crate) fn parse_dns_rules(list: Node<'_>) -> Result<Vec<String>, Fault> {
    let items = list.list()?;
    if items.is_empty() {
        // The agent counts an empty list as L7 rules but not as DNS rules:
        // a plain L3/L4 allow on TCP and an error on UDP. Ask for intent.
        return Err(Fault::invalid(
            list.path,
            "empty list; omit `dns`, or use [{matchPattern: \"*\"}] to allow every name",
        ));
    }
    let mut sels = Vec::with_capacity(items.len());
    for (p, v) in items {
        sels.push(parse_selector(Node::new(v, &p))?);
    }
    DnsRules::compile(&sels).map_err(|e| Fault::invalid(list.path, e.to_string()))?;
    Ok(sels.iter().map(|s| raw(s).to_string()).collect())
}

/// One `toFQDNs` entry, normalised (see [`FqdnKey`]).
pub(crate) fn parse_fqdn(node: Node<'_>) -> Result<FqdnKey, Fault> {
    Ok(normalise(&parse_selector(node)?))
}

fn normalise(sel: &DnsSelector) -> FqdnKey {
    let pattern = matches!(sel, DnsSelector::MatchPattern(_));
    let mut s = raw(sel).to_ascii_lowercase();
    if s.len() > 1 && s.ends_with('.') {
        s.pop();
    }
    if !pattern || !s.contains('*') {
        return FqdnKey::Name(s);
    }
    if s.bytes().all(|b| b == b'*') {
        return FqdnKey::Pattern("*".into());
    }
    FqdnKey::Pattern(s)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn key(yaml: &str) -> Result<FqdnKey, Fault> {
        let v: serde_yaml_ng::Value = serde_yaml_ng::from_str(yaml).unwrap();
        parse_fqdn(Node::new(&v, "s"))
    }

    #[test]
    fn fqdn_selectors_normalise() {
        let name = |s: &str| Ok(FqdnKey::Name(s.into()));
        let pat = |s: &str| Ok(FqdnKey::Pattern(s.into()));
        let table = [
            ("{matchName: API.GitHub.com.}", name("api.github.com")),
            ("{matchName: api.github.com}", name("api.github.com")),
            ("{matchPattern: api.github.com}", name("api.github.com")),
            ("{matchPattern: '*.GitHub.com.'}", pat("*.github.com")),
            ("{matchPattern: '*.'}", pat("*")),
            ("{matchPattern: '**'}", pat("*")),
            ("{matchPattern: '**.github.com'}", pat("**.github.com")),
        ];
        for (yaml, want) in table {
            assert_eq!(key(yaml), want, "{yaml}");
        }
    }

    #[test]
    fn selectors_are_checked() {
        let table = [
            ("{matchName: '*.github.com'}", "s.matchName", "'*'"),
            ("{matchName: 'a b'}", "s.matchName", "' '"),
            ("{matchPattern: 'a+.com'}", "s.matchPattern", "'+'"),
            ("{matchName: ''}", "s.matchName", "empty"),
            ("{matchName: a, matchPattern: b}", "s.matchPattern", "both"),
            ("{}", "s", "one of matchName or matchPattern"),
            ("{matchNmae: a}", "s.matchNmae", "unknown field"),
        ];
        for (yaml, path, why) in table {
            let f = key(yaml).unwrap_err();
            let msg = f.problem.to_string();
            assert_eq!(f.path, path, "{yaml}: {msg}");
            assert!(msg.contains(why), "{yaml}: {msg}");
        }
        let long = format!("{{matchName: {}}}", "a".repeat(256));
        assert!(key(&long)
            .unwrap_err()
            .problem
            .to_string()
            .contains("at most 255"));
        let max = format!("{{matchName: {}}}", "a".repeat(255));
        assert!(key(&max).is_ok());
    }
}
