//! DNS policy as the standalone DNS proxy protocol carries it
//! (`standalonednsproxy.PolicyState`), compiled for lookups: source address
//! → endpoint, server address → identity, and per endpoint the allowed
//! (server identity, port, protocol) entries with their name patterns.
//!
//! The same compiled form serves both sources: the agent's `FQDNData`
//! stream, and in standalone mode the `rules.dns` of the policy files,
//! which the control plane turns into the same `PolicyState` message.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;
use l7_dns::proto::{ip_from_bytes, prefix_from_bytes, PolicyState};
use l7_dns::{DnsRules, DnsSelector};
use npds::proto::NetworkPolicyHosts;
use npds::IdentityTable;
use rustc_hash::FxHashMap;
use serde_json::json;

/// IANA protocol numbers as `DNSServer.dns_server_proto` carries them.
pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;
pub const PROTO_SCTP: u8 = 132;

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

pub fn proto_name(p: u8) -> &'static str {
    match p {
        PROTO_TCP => "TCP",
        PROTO_UDP => "UDP",
        PROTO_SCTP => "SCTP",
        0 => "ANY",
        _ => "other",
    }
}

/// A local endpoint as DNS policy knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndpointRef {
    pub id: u64,
    pub identity: u32,
}

#[derive(Debug, Default)]
pub struct DnsPolicy {
    /// The `request_id` of the state this was compiled from.
    pub request_id: String,
    // FxHash for both: keys come from policy, and are looked up per query.
    endpoints: FxHashMap<IpAddr, EndpointRef>,
    servers: IdentityTable,
    rules: FxHashMap<u64, Vec<ServerRule>>,
}

/// The decision on one query.
#[derive(Debug, Clone)]
pub struct Judgement {
    pub endpoint: Option<EndpointRef>,
    pub server_identity: u32,
    pub allowed: bool,
    /// The rule entry that allowed it; empty for a denial.
    pub rule: Arc<str>,
    pub reason: &'static str,
}

impl DnsPolicy {
    /// Validates a whole state: every pattern, address and prefix. Any
    /// error refuses the state and names the part at fault.
    pub fn compile(state: &PolicyState) -> Result<DnsPolicy, String> {
        let mut endpoints = FxHashMap::default();
        let mut hosts: BTreeMap<u32, Vec<String>> = BTreeMap::new();
        for (i, m) in state.identity_to_endpoint_mapping.iter().enumerate() {
            for (j, ep) in m.endpoint_info.iter().enumerate() {
                for (k, raw) in ep.ip.iter().enumerate() {
                    let at =
                        || format!("identity_to_endpoint_mapping[{i}].endpoint_info[{j}].ip[{k}]");
                    let ip = ip_from_bytes(raw).ok_or_else(|| {
                        format!(
                            "{}: {} bytes is not an IPv4 or IPv6 address",
                            at(),
                            raw.len()
                        )
                    })?;
                    let r = EndpointRef {
                        id: ep.id,
                        identity: m.identity,
                    };
                    if let Some(other) = endpoints.insert(ip, r).filter(|o| *o != r) {
                        return Err(format!(
                            "{}: {ip} is already endpoint {} (identity {})",
                            at(),
                            other.id,
                            other.identity
                        ));
                    }
                    hosts
                        .entry(m.identity)
                        .or_default()
                        .push(IpNet::from(ip).to_string());
                }
            }
        }
        for (i, m) in state.identity_to_prefix_mapping.iter().enumerate() {
            for (k, raw) in m.prefix.iter().enumerate() {
                let net = prefix_from_bytes(raw).ok_or_else(|| {
                    format!(
                        "identity_to_prefix_mapping[{i}].prefix[{k}]: {} bytes is not an address or prefix",
                        raw.len()
                    )
                })?;
                hosts.entry(m.identity).or_default().push(net.to_string());
            }
        }
        let hosts: Vec<NetworkPolicyHosts> = hosts
            .into_iter()
            .map(|(id, mut addrs)| {
                addrs.sort();
                addrs.dedup();
                NetworkPolicyHosts {
                    policy: u64::from(id),
                    host_addresses: addrs,
                }
            })
            .collect();
        let servers = IdentityTable::compile(&hosts).map_err(|e| e.to_string())?;

        let mut rules: FxHashMap<u64, Vec<ServerRule>> = FxHashMap::default();
        for (i, p) in state.egress_l7_dns_policy.iter().enumerate() {
            let selectors: Vec<DnsSelector> = p
                .dns_pattern
                .iter()
                .map(|s| DnsSelector::MatchPattern(s.clone()))
                .collect();
            let compiled = DnsRules::compile(&selectors)
                .map_err(|e| format!("egress_l7_dns_policy[{i}].dns_pattern: {e}"))?;
            for (j, s) in p.dns_servers.iter().enumerate() {
                let at = format!("egress_l7_dns_policy[{i}].dns_servers[{j}]");
                let port = u16::try_from(s.dns_server_port)
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or_else(|| {
                        format!("{at}.dns_server_port: {} is not a port", s.dns_server_port)
                    })?;
                // SCTP (132) entries come with `protocol: ANY`; they are kept
                // and simply never match, as only UDP and TCP are served.
                let proto = u8::try_from(s.dns_server_proto).map_err(|_| {
                    format!(
                        "{at}.dns_server_proto: {} is not an IP protocol number",
                        s.dns_server_proto
                    )
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
        Ok(DnsPolicy {
            request_id: state.request_id.clone(),
            endpoints,
            servers,
            rules,
        })
    }

    /// May the endpoint at `src` ask the server at `dst` over `proto` for
    /// `name` (lowercased, trailing dot)? The agent's `CheckAllowed`: an
    /// unknown source is refused; an unknown server is WORLD.
    pub fn judge(&self, src: IpAddr, dst: SocketAddr, proto: u8, name: &str) -> Judgement {
        let (endpoint, server_identity) = self.parties(src, dst);
        let Some(endpoint) = endpoint else {
            return Judgement {
                endpoint: None,
                server_identity,
                allowed: false,
                rule: Arc::from(""),
                reason: "the source is not a local endpoint",
            };
        };
        let mut covered = false;
        for r in self.rules.get(&endpoint.id).into_iter().flatten() {
            if r.covers(server_identity, dst.port(), proto) {
                covered = true;
                if r.rules.allows(name) {
                    return Judgement {
                        endpoint: Some(endpoint),
                        server_identity,
                        allowed: true,
                        rule: r.name.clone(),
                        reason: "",
                    };
                }
            }
        }
        Judgement {
            endpoint: Some(endpoint),
            server_identity,
            allowed: false,
            rule: Arc::from(""),
            reason: if covered {
                "no DNS rule matches the name"
            } else {
                "no DNS rule covers this server"
            },
        }
    }

    /// The local endpoint at `src` (if it is one) and the identity of the
    /// server at `dst`: a local endpoint's, else the address's (WORLD when
    /// unknown).
    pub fn parties(&self, src: IpAddr, dst: SocketAddr) -> (Option<EndpointRef>, u32) {
        let server_identity = match self.endpoints.get(&dst.ip()) {
            Some(ep) => ep.identity,
            None => self.servers.lookup(dst.ip()),
        };
        (self.endpoints.get(&src).copied(), server_identity)
    }

    pub fn dump(&self) -> serde_json::Value {
        let mut eps: Vec<_> = self.rules.iter().collect();
        eps.sort_by_key(|(id, _)| **id);
        let rules: Vec<_> = eps
            .into_iter()
            .flat_map(|(ep, rules)| {
                rules.iter().map(move |r| {
                    json!({
                        "endpoint": ep,
                        "server_identity": r.identity,
                        "port": r.port,
                        "protocol": proto_name(r.proto),
                        "patterns": r.patterns,
                    })
                })
            })
            .collect();
        json!({ "request_id": self.request_id, "rules": rules })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use l7_dns::proto::{
        DnsPolicy as ProtoPolicy, DnsServer, EndpointInfo, IdentityToEndpointMapping,
        IdentityToPrefixMapping,
    };
    use npds::WORLD;

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
        let p = DnsPolicy::compile(&state()).unwrap();
        let src: IpAddr = "10.0.0.7".parse().unwrap();
        let dns: SocketAddr = "10.96.0.10:53".parse().unwrap();
        let j = p.judge(src, dns, PROTO_UDP, "api.github.com.");
        assert!(j.allowed, "{j:?}");
        assert_eq!(j.endpoint.unwrap().identity, 5000);
        assert_eq!(j.server_identity, 100);
        assert!(p.judge(src, dns, PROTO_UDP, "x.example.org.").allowed);
        let j = p.judge(src, dns, PROTO_UDP, "support.github.com.");
        assert_eq!(
            (j.allowed, j.reason),
            (false, "no DNS rule matches the name")
        );
        // TCP is not listed, another server is WORLD, another source unknown.
        assert!(!p.judge(src, dns, PROTO_TCP, "api.github.com.").allowed);
        let j = p.judge(
            src,
            "8.8.8.8:53".parse().unwrap(),
            PROTO_UDP,
            "api.github.com.",
        );
        assert_eq!((j.allowed, j.server_identity), (false, WORLD));
        let j = p.judge(
            "10.0.0.8".parse().unwrap(),
            dns,
            PROTO_UDP,
            "api.github.com.",
        );
        assert_eq!(
            (j.allowed, j.reason),
            (false, "the source is not a local endpoint")
        );
    }

    #[test]
    fn a_bad_state_is_refused_with_its_place() {
        let mut s = state();
        s.egress_l7_dns_policy[0]
            .dns_pattern
            .push("bad/name".into());
        let e = DnsPolicy::compile(&s).unwrap_err();
        assert!(e.starts_with("egress_l7_dns_policy[0].dns_pattern:"), "{e}");
        let mut s = state();
        s.identity_to_endpoint_mapping[0].endpoint_info[0].ip[0] = vec![1, 2, 3];
        let e = DnsPolicy::compile(&s).unwrap_err();
        assert!(e.contains("endpoint_info[0].ip[0]: 3 bytes"), "{e}");
        let mut s = state();
        s.egress_l7_dns_policy[0].dns_servers[0].dns_server_port = 70000;
        assert!(DnsPolicy::compile(&s)
            .unwrap_err()
            .contains("dns_server_port"));
    }
}
