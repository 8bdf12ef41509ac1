//! The DNS decide core: a `standalonednsproxy.PolicyState` compiled into
//! lookup tables (source address → endpoint, server address → identity,
//! per endpoint the allowed (server identity, port, protocol) entries with
//! their name patterns), and one query judged against them as the agent's
//! `CheckAllowed` judges it (shared spec §4).
//!
//! Pure: no sockets, no runtime, no proxy state. The one table it does not
//! own is the longest-prefix match of server addresses that are no local
//! endpoint: whoever compiles a policy supplies it through
//! [`PrefixIdentities`] (the proxy: npds's identity table), so this crate
//! stays a leaf that npds, cnp and the proxy may all depend on.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;
use rustc_hash::FxHashMap;
use serde::Serialize;

use crate::pattern::{DnsRules, DnsSelector, PatternError};
use crate::proto::{ip_from_bytes, prefix_from_bytes, PolicyState};

/// IANA protocol numbers as `DNSServer.dns_server_proto` carries them.
pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;
pub const PROTO_SCTP: u8 = 132;

pub fn proto_name(p: u8) -> &'static str {
    match p {
        PROTO_TCP => "TCP",
        PROTO_UDP => "UDP",
        PROTO_SCTP => "SCTP",
        0 => "ANY",
        _ => "other",
    }
}

/// The identities of server addresses that are no local endpoint, by
/// longest prefix, as the agent's ipcache gives them (unknown: WORLD).
/// Built from a state's prefixes by identity, local endpoints' addresses
/// included as host prefixes.
pub trait PrefixIdentities: Sized {
    type Error: std::error::Error + Send + Sync + 'static;

    /// `by_identity`: sorted by identity, each identity's prefixes sorted
    /// and without duplicates.
    fn compile(by_identity: &[(u32, Vec<IpNet>)]) -> Result<Self, Self::Error>;

    fn lookup(&self, ip: IpAddr) -> u32;
}

/// Why a `PolicyState` was refused: the first part at fault, named by its
/// place in the message.
#[derive(Debug, thiserror::Error)]
pub enum DnsPolicyError {
    #[error("identity_to_endpoint_mapping[{mapping}].endpoint_info[{endpoint}].ip[{ip}]: {len} bytes is not an IPv4 or IPv6 address")]
    EndpointAddress {
        mapping: usize,
        endpoint: usize,
        ip: usize,
        len: usize,
    },
    #[error("identity_to_endpoint_mapping[{mapping}].endpoint_info[{endpoint}].ip[{ip}]: {addr} is already endpoint {} (identity {})", .other.id, .other.identity)]
    EndpointAddressTaken {
        mapping: usize,
        endpoint: usize,
        ip: usize,
        addr: IpAddr,
        other: EndpointRef,
    },
    #[error("identity_to_prefix_mapping[{mapping}].prefix[{prefix}]: {len} bytes is not an address or prefix")]
    Prefix {
        mapping: usize,
        prefix: usize,
        len: usize,
    },
    /// The prefixes are well formed, but the table of server identities
    /// refused them (a prefix claimed by two identities, host bits set).
    #[error(transparent)]
    PrefixTable(Box<dyn std::error::Error + Send + Sync>),
    #[error("egress_l7_dns_policy[{policy}].dns_pattern: {source}")]
    Pattern { policy: usize, source: PatternError },
    #[error("egress_l7_dns_policy[{policy}].dns_servers[{server}].dns_server_port: {port} is not a port")]
    Port {
        policy: usize,
        server: usize,
        port: u32,
    },
    #[error("egress_l7_dns_policy[{policy}].dns_servers[{server}].dns_server_proto: {proto} is not an IP protocol number")]
    Protocol {
        policy: usize,
        server: usize,
        proto: u32,
    },
}

/// A local endpoint as DNS policy knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndpointRef {
    pub id: u64,
    pub identity: u32,
}

/// Who a query is between, as policy sees them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parties {
    /// The local endpoint that asked; `None`: the source is none.
    pub endpoint: Option<EndpointRef>,
    /// The server's identity: a local endpoint's, else by prefix.
    pub server_identity: u32,
}

/// Why a query was denied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenyReason {
    /// The agent answers REFUSED to a source it has no endpoint for.
    UnknownSource,
    /// No entry of the endpoint lists this server, port and protocol.
    ServerNotCovered,
    /// Entries list the server, but none of their patterns matches.
    NameNotMatched,
}

impl DenyReason {
    /// As access-log events give it.
    pub fn as_str(self) -> &'static str {
        match self {
            DenyReason::UnknownSource => "the source is not a local endpoint",
            DenyReason::ServerNotCovered => "no DNS rule covers this server",
            DenyReason::NameNotMatched => "no DNS rule matches the name",
        }
    }
}

/// The decision on one query, with what an access-log event says of it.
#[derive(Debug, Clone)]
pub struct DnsVerdict {
    pub parties: Parties,
    pub decision: Decision,
}

#[derive(Debug, Clone)]
pub enum Decision {
    /// Allowed by the entry of this name (as access-log events give it).
    Allowed {
        rule: Arc<str>,
    },
    Denied(DenyReason),
}

impl DnsVerdict {
    pub fn allowed(&self) -> bool {
        matches!(self.decision, Decision::Allowed { .. })
    }

    /// The entry that allowed the query; `None` for a denial.
    pub fn rule(&self) -> Option<&Arc<str>> {
        match &self.decision {
            Decision::Allowed { rule } => Some(rule),
            Decision::Denied(_) => None,
        }
    }

    /// Why the query was denied; empty when it was allowed.
    pub fn reason(&self) -> &'static str {
        match self.decision {
            Decision::Allowed { .. } => "",
            Decision::Denied(r) => r.as_str(),
        }
    }
}

#[derive(Debug)]
struct ServerRule {
    /// 0: any server.
    identity: u32,
    port: u16,
    /// 0: any protocol.
    proto: u8,
    patterns: Vec<String>,
    rules: DnsRules,
    /// How access-log events name this entry, made once at compile time
    /// rather than per query.
    name: Arc<str>,
}

impl ServerRule {
    fn covers(&self, server: u32, port: u16, proto: u8) -> bool {
        (self.identity == 0 || self.identity == server)
            && self.port == port
            && (self.proto == 0 || self.proto == proto)
    }
}

fn rule_name(endpoint: u64, identity: u32, port: u16, proto: u8) -> Arc<str> {
    let server = if identity == 0 {
        "any".to_string()
    } else {
        identity.to_string()
    };
    format!(
        "endpoint {endpoint} to {server}:{port}/{}",
        proto_name(proto)
    )
    .into()
}

/// A whole `PolicyState`, validated and compiled for per-query lookups.
/// `P`: the server-identity table (see [`PrefixIdentities`]).
#[derive(Debug, Default)]
pub struct CompiledDnsPolicy<P> {
    /// The `request_id` of the state this was compiled from.
    pub request_id: String,
    // FxHash for both: keys come from policy, and are looked up per query.
    endpoints: FxHashMap<IpAddr, EndpointRef>,
    servers: P,
    rules: FxHashMap<u64, Vec<ServerRule>>,
}

impl<P: PrefixIdentities> CompiledDnsPolicy<P> {
    /// Validates a whole state: every pattern, address and prefix. Any
    /// error refuses the state and names the part at fault.
    pub fn compile(state: &PolicyState) -> Result<Self, DnsPolicyError> {
        let mut endpoints = FxHashMap::default();
        let mut prefixes: BTreeMap<u32, Vec<IpNet>> = BTreeMap::new();
        for (i, m) in state.identity_to_endpoint_mapping.iter().enumerate() {
            for (j, ep) in m.endpoint_info.iter().enumerate() {
                for (k, raw) in ep.ip.iter().enumerate() {
                    let ip = ip_from_bytes(raw).ok_or(DnsPolicyError::EndpointAddress {
                        mapping: i,
                        endpoint: j,
                        ip: k,
                        len: raw.len(),
                    })?;
                    let r = EndpointRef {
                        id: ep.id,
                        identity: m.identity,
                    };
                    if let Some(other) = endpoints.insert(ip, r).filter(|o| *o != r) {
                        return Err(DnsPolicyError::EndpointAddressTaken {
                            mapping: i,
                            endpoint: j,
                            ip: k,
                            addr: ip,
                            other,
                        });
                    }
                    prefixes
                        .entry(m.identity)
                        .or_default()
                        .push(IpNet::from(ip));
                }
            }
        }
        for (i, m) in state.identity_to_prefix_mapping.iter().enumerate() {
            for (k, raw) in m.prefix.iter().enumerate() {
                let net = prefix_from_bytes(raw).ok_or(DnsPolicyError::Prefix {
                    mapping: i,
                    prefix: k,
                    len: raw.len(),
                })?;
                prefixes.entry(m.identity).or_default().push(net);
            }
        }
        let prefixes: Vec<(u32, Vec<IpNet>)> = prefixes
            .into_iter()
            .map(|(id, mut nets)| {
                nets.sort();
                nets.dedup();
                (id, nets)
            })
            .collect();
        let servers =
            P::compile(&prefixes).map_err(|e| DnsPolicyError::PrefixTable(Box::new(e)))?;

        let mut rules: FxHashMap<u64, Vec<ServerRule>> = FxHashMap::default();
        for (i, p) in state.egress_l7_dns_policy.iter().enumerate() {
            let selectors: Vec<DnsSelector> = p
                .dns_pattern
                .iter()
                .map(|s| DnsSelector::MatchPattern(s.clone()))
                .collect();
            let compiled = DnsRules::compile(&selectors)
                .map_err(|source| DnsPolicyError::Pattern { policy: i, source })?;
            for (j, s) in p.dns_servers.iter().enumerate() {
                let port = u16::try_from(s.dns_server_port)
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or(DnsPolicyError::Port {
                        policy: i,
                        server: j,
                        port: s.dns_server_port,
                    })?;
                // SCTP (132) entries come with `protocol: ANY`; they are kept
                // and simply never match, as only UDP and TCP are served.
                let proto =
                    u8::try_from(s.dns_server_proto).map_err(|_| DnsPolicyError::Protocol {
                        policy: i,
                        server: j,
                        proto: s.dns_server_proto,
                    })?;
                let endpoint = u64::from(p.source_endpoint_id);
                rules.entry(endpoint).or_default().push(ServerRule {
                    identity: s.dns_server_identity,
                    port,
                    proto,
                    patterns: p.dns_pattern.clone(),
                    rules: compiled.clone(),
                    name: rule_name(endpoint, s.dns_server_identity, port, proto),
                });
            }
        }
        Ok(CompiledDnsPolicy {
            request_id: state.request_id.clone(),
            endpoints,
            servers,
            rules,
        })
    }

    /// May the endpoint at `src` ask the server at `dst` over `proto` for
    /// `name` (lowercased, trailing dot)? The agent's `CheckAllowed`: an
    /// unknown source is refused; an unknown server is WORLD.
    pub fn judge(&self, src: IpAddr, dst: SocketAddr, proto: u8, name: &str) -> DnsVerdict {
        let parties = self.parties(src, dst);
        DnsVerdict {
            parties,
            decision: self.decide(parties, dst.port(), proto, name),
        }
    }

    /// The decision for a query between `parties`, to the server's `port`
    /// over `proto`, for `name` (lowercased, trailing dot).
    pub fn decide(&self, parties: Parties, port: u16, proto: u8, name: &str) -> Decision {
        let Some(endpoint) = parties.endpoint else {
            return Decision::Denied(DenyReason::UnknownSource);
        };
        let mut covered = false;
        for r in self.rules.get(&endpoint.id).into_iter().flatten() {
            if r.covers(parties.server_identity, port, proto) {
                covered = true;
                if r.rules.allows(name) {
                    return Decision::Allowed {
                        rule: r.name.clone(),
                    };
                }
            }
        }
        Decision::Denied(if covered {
            DenyReason::NameNotMatched
        } else {
            DenyReason::ServerNotCovered
        })
    }

    /// The local endpoint at `src` (if it is one) and the identity of the
    /// server at `dst`: a local endpoint's, else the address's (WORLD when
    /// unknown).
    pub fn parties(&self, src: IpAddr, dst: SocketAddr) -> Parties {
        let server_identity = match self.endpoints.get(&dst.ip()) {
            Some(ep) => ep.identity,
            None => self.servers.lookup(dst.ip()),
        };
        Parties {
            endpoint: self.endpoints.get(&src).copied(),
            server_identity,
        }
    }
}

impl<P> CompiledDnsPolicy<P> {
    /// The rules as `/config_dump` shows them.
    pub fn dump(&self) -> PolicyDump<'_> {
        let mut eps: Vec<_> = self.rules.iter().collect();
        eps.sort_by_key(|(id, _)| **id);
        let rules = eps
            .into_iter()
            .flat_map(|(ep, rules)| {
                rules.iter().map(move |r| RuleDump {
                    endpoint: *ep,
                    server_identity: r.identity,
                    port: r.port,
                    protocol: proto_name(r.proto),
                    patterns: &r.patterns,
                })
            })
            .collect();
        PolicyDump {
            request_id: &self.request_id,
            rules,
        }
    }
}

/// A [`CompiledDnsPolicy`] as `/config_dump` shows it.
#[derive(Debug, Serialize)]
pub struct PolicyDump<'a> {
    request_id: &'a str,
    rules: Vec<RuleDump<'a>>,
}

#[derive(Debug, Serialize)]
struct RuleDump<'a> {
    endpoint: u64,
    server_identity: u32,
    port: u16,
    protocol: &'static str,
    patterns: &'a [String],
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{
        DnsPolicy as ProtoPolicy, DnsServer, EndpointInfo, IdentityToEndpointMapping,
        IdentityToPrefixMapping,
    };

    const WORLD: u32 = 2;

    /// Longest prefix by a scan: enough for a handful of prefixes.
    #[derive(Debug, Default)]
    struct Prefixes(Vec<(IpNet, u32)>);

    #[derive(Debug, thiserror::Error)]
    #[error("prefix {0} is claimed twice")]
    struct Claimed(IpNet);

    impl PrefixIdentities for Prefixes {
        type Error = Claimed;

        fn compile(by_identity: &[(u32, Vec<IpNet>)]) -> Result<Self, Claimed> {
            let mut all: Vec<(IpNet, u32)> = Vec::new();
            for (id, nets) in by_identity {
                for net in nets {
                    if all.iter().any(|(n, other)| n == net && other != id) {
                        return Err(Claimed(*net));
                    }
                    all.push((*net, *id));
                }
            }
            Ok(Prefixes(all))
        }

        fn lookup(&self, ip: IpAddr) -> u32 {
            self.0
                .iter()
                .filter(|(n, _)| n.contains(&ip))
                .max_by_key(|(n, _)| n.prefix_len())
                .map_or(WORLD, |(_, id)| *id)
        }
    }

    type Policy = CompiledDnsPolicy<Prefixes>;

    fn state() -> PolicyState {
        PolicyState {
            request_id: "r1".into(),
            egress_l7_dns_policy: vec![ProtoPolicy {
                source_endpoint_id: 7,
                dns_pattern: vec!["api.github.com".into(), "*.example.org".into()],
                dns_servers: vec![DnsServer {
                    dns_server_identity: 100,
                    dns_server_port: 53,
                    dns_server_proto: 17,
                }],
            }],
            identity_to_endpoint_mapping: vec![IdentityToEndpointMapping {
                identity: 5000,
                endpoint_info: vec![EndpointInfo {
                    id: 7,
                    ip: vec![vec![10, 0, 0, 7]],
                }],
            }],
            identity_to_prefix_mapping: vec![IdentityToPrefixMapping {
                identity: 100,
                prefix: vec![vec![10, 96, 0, 10, 32]],
            }],
        }
    }

    #[test]
    fn judges_like_check_allowed() {
        let p = Policy::compile(&state()).unwrap();
        let src: IpAddr = "10.0.0.7".parse().unwrap();
        let dns: SocketAddr = "10.96.0.10:53".parse().unwrap();
        let j = p.judge(src, dns, PROTO_UDP, "api.github.com.");
        assert!(j.allowed(), "{j:?}");
        assert_eq!(j.parties.endpoint.unwrap().identity, 5000);
        assert_eq!(j.parties.server_identity, 100);
        assert!(p.judge(src, dns, PROTO_UDP, "x.example.org.").allowed());
        let j = p.judge(src, dns, PROTO_UDP, "support.github.com.");
        assert_eq!(
            (j.allowed(), j.reason()),
            (false, "no DNS rule matches the name")
        );
        // TCP is not listed, another server is WORLD, another source unknown.
        assert!(!p.judge(src, dns, PROTO_TCP, "api.github.com.").allowed());
        let j = p.judge(
            src,
            "8.8.8.8:53".parse().unwrap(),
            PROTO_UDP,
            "api.github.com.",
        );
        assert_eq!((j.allowed(), j.parties.server_identity), (false, WORLD));
        let j = p.judge(
            "10.0.0.8".parse().unwrap(),
            dns,
            PROTO_UDP,
            "api.github.com.",
        );
        assert_eq!(
            (j.allowed(), j.reason()),
            (false, "the source is not a local endpoint")
        );
    }

    #[test]
    fn a_bad_state_is_refused_with_its_place() {
        let mut s = state();
        s.egress_l7_dns_policy[0]
            .dns_pattern
            .push("bad/name".into());
        let e = Policy::compile(&s).unwrap_err().to_string();
        assert!(e.starts_with("egress_l7_dns_policy[0].dns_pattern:"), "{e}");
        let mut s = state();
        s.identity_to_endpoint_mapping[0].endpoint_info[0].ip[0] = vec![1, 2, 3];
        let e = Policy::compile(&s).unwrap_err().to_string();
        assert!(e.contains("endpoint_info[0].ip[0]: 3 bytes"), "{e}");
        let mut s = state();
        s.egress_l7_dns_policy[0].dns_servers[0].dns_server_port = 70000;
        assert!(Policy::compile(&s)
            .unwrap_err()
            .to_string()
            .contains("dns_server_port"));
    }

    /// The texts as logs, NACK reasons and `/config_dump` show them.
    #[test]
    fn errors_name_the_part_at_fault() {
        type Edit = fn(&mut PolicyState);
        let edit = |f: Edit| {
            let mut s = state();
            f(&mut s);
            Policy::compile(&s).unwrap_err().to_string()
        };
        let table: [(Edit, &str); 7] = [
            (
                |s| s.identity_to_endpoint_mapping[0].endpoint_info[0].ip[0] = vec![1; 5],
                "identity_to_endpoint_mapping[0].endpoint_info[0].ip[0]: 5 bytes is not an IPv4 or IPv6 address",
            ),
            (
                |s| {
                    s.identity_to_endpoint_mapping.push(IdentityToEndpointMapping {
                        identity: 5001,
                        endpoint_info: vec![EndpointInfo {
                            id: 8,
                            ip: vec![vec![10, 0, 0, 7]],
                        }],
                    })
                },
                "identity_to_endpoint_mapping[1].endpoint_info[0].ip[0]: 10.0.0.7 is already endpoint 7 (identity 5000)",
            ),
            (
                |s| s.identity_to_prefix_mapping[0].prefix[0] = vec![1; 3],
                "identity_to_prefix_mapping[0].prefix[0]: 3 bytes is not an address or prefix",
            ),
            (
                |s| s.identity_to_prefix_mapping[0].prefix.push(vec![10, 0, 0, 7]),
                "prefix 10.0.0.7/32 is claimed twice",
            ),
            (
                |s| s.egress_l7_dns_policy[0].dns_pattern.push("a+b".into()),
                "egress_l7_dns_policy[0].dns_pattern: \"a+b\" has characters outside [-a-zA-Z0-9_.*] (matchPattern) or [-a-zA-Z0-9_.] (matchName)",
            ),
            (
                |s| s.egress_l7_dns_policy[0].dns_servers[0].dns_server_port = 0,
                "egress_l7_dns_policy[0].dns_servers[0].dns_server_port: 0 is not a port",
            ),
            (
                |s| s.egress_l7_dns_policy[0].dns_servers[0].dns_server_proto = 256,
                "egress_l7_dns_policy[0].dns_servers[0].dns_server_proto: 256 is not an IP protocol number",
            ),
        ];
        for (f, want) in table {
            assert_eq!(edit(f), want);
        }
    }

    #[test]
    fn a_server_that_is_a_local_endpoint_has_its_identity() {
        let mut s = state();
        s.identity_to_endpoint_mapping[0]
            .endpoint_info
            .push(EndpointInfo {
                id: 9,
                ip: vec![vec![10, 0, 0, 9]],
            });
        let p = Policy::compile(&s).unwrap();
        let parties = p.parties("10.0.0.9".parse().unwrap(), "10.0.0.7:53".parse().unwrap());
        assert_eq!(parties.server_identity, 5000);
        assert_eq!(parties.endpoint.map(|e| e.id), Some(9));
    }

    #[test]
    fn dump_lists_rules_by_endpoint() {
        let p = Policy::compile(&state()).unwrap();
        let v = serde_json::to_value(p.dump()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "request_id": "r1",
                "rules": [{
                    "endpoint": 7,
                    "server_identity": 100,
                    "port": 53,
                    "protocol": "UDP",
                    "patterns": ["api.github.com", "*.example.org"],
                }],
            })
        );
    }
}
