//! The compiled policy snapshot and cilium-envoy's evaluation order.
//!
//! Lookup is pod IP → direction → protocol → port. Ports are kept as
//! non-overlapping ranges: overlapping `PortNetworkPolicy` entries are split
//! at their boundaries and their rules merged; port-0 (wildcard) rules are
//! appended to every range and stand alone for ports no range covers.
//! Within a port, rules are sorted by descending precedence and, within one
//! precedence, deny before allow before pass.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use l7_http::HttpRules;
use l7_kafka::KafkaRules;

use crate::proto::{
    self, port_network_policy_rule::Verdict as ProtoVerdict, port_network_policy_rule::L7,
    NetworkPolicy, PortNetworkPolicy, PortNetworkPolicyRule, Protocol,
};
use crate::{PolicyError, SniPattern};

mod compile;
#[cfg(test)]
use compile::ENDPOINTS_PER_THREAD;
use compile::{compile_slots, Slot};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    Ingress,
    Egress,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Ingress => "ingress",
            Direction::Egress => "egress",
        }
    }
}

/// What the connection looks like to policy.
#[derive(Debug, Clone, Copy)]
pub struct Remote<'a> {
    /// Source identity on ingress, destination identity on egress.
    pub identity: u32,
    /// More identities the same address carries: the local identities of
    /// the `toFQDNs` selectors whose names resolved to it. A rule selecting
    /// any of them applies, as a rule selecting one label of the agent's
    /// per-address identity would.
    pub fqdn: &'a [u32],
    /// The listener's `proxy_id` (its proxy port); 0 when it has none.
    pub proxy_id: u32,
    /// What the proxy knows of the connection's TLS server name.
    pub sni: Sni<'a>,
}

/// A connection's TLS server name (SNI) as far as the proxy knows it. Rules
/// with `server_names` depend on it, and an unknown name must never open
/// what a known one would keep shut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sni<'a> {
    /// The proxy did not read the ClientHello: the name is unknown. A deny
    /// rule with `server_names` applies (it may name this connection); an
    /// allow or pass rule with `server_names` does not.
    Unread,
    /// The ClientHello was read and carries no server name (or the
    /// connection is not TLS): no rule with `server_names` applies.
    Absent,
    /// The server name the ClientHello carries.
    Name(&'a str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleVerdict {
    Allow,
    Deny,
    /// Continue evaluation at this (lower) precedence tier.
    Pass(u32),
}

/// The L7 part of a rule, compiled.
#[derive(Debug, Clone)]
pub enum L7Rules {
    None,
    Http(Arc<HttpRules>),
    Kafka(Arc<KafkaRules>),
    /// Rules for a parser Portcullis does not have (Cilium's proxylib
    /// parsers, Envoy's mysql and mongo filters): never enforceable here.
    Generic(Arc<GenericRules>),
}

/// `l7_rules` for the parser named by the rule's `l7_proto`.
#[derive(Debug)]
pub struct GenericRules {
    pub l7_proto: String,
    pub rules: proto::L7NetworkPolicyRules,
}

/// The kind of L7 enforcement a port needs. All rules on a port share it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum L7Kind {
    None,
    Http,
    Kafka,
    Generic,
}

impl L7Rules {
    fn kind(&self) -> L7Kind {
        match self {
            L7Rules::None => L7Kind::None,
            L7Rules::Http(_) => L7Kind::Http,
            L7Rules::Kafka(_) => L7Kind::Kafka,
            L7Rules::Generic(_) => L7Kind::Generic,
        }
    }

    /// The L7 protocol as Cilium's `l7_proto` names it: `http` and `kafka`
    /// for the parsers Portcullis has, the rules' own name otherwise.
    pub fn protocol_name(&self) -> &str {
        match self {
            L7Rules::None => "",
            L7Rules::Http(_) => "http",
            L7Rules::Kafka(_) => "kafka",
            L7Rules::Generic(g) => &g.l7_proto,
        }
    }
}

/// One `PortNetworkPolicyRule`, compiled.
#[derive(Debug)]
pub struct Rule {
    /// The rule's name, or `<endpoint>/<direction>/<port entry>/<index>` when unnamed.
    pub name: Arc<str>,
    pub precedence: u32,
    pub verdict: RuleVerdict,
    pub proxy_id: u32,
    /// Sorted; `None` means any remote.
    remotes: Option<Box<[u32]>>,
    server_names: Vec<SniPattern>,
    pub l7: L7Rules,
    pub downstream_tls: Option<proto::TlsContext>,
    pub upstream_tls: Option<proto::TlsContext>,
}

impl Rule {
    fn applies(&self, remote: &Remote<'_>) -> bool {
        (self.proxy_id == 0 || self.proxy_id == remote.proxy_id)
            && self.remotes.as_ref().is_none_or(|r| {
                r.binary_search(&remote.identity).is_ok()
                    || remote.fqdn.iter().any(|id| r.binary_search(id).is_ok())
            })
            && self.applies_to_sni(remote.sni)
    }

    /// Whether the rule's `server_names` (none: any) select `sni`. With the
    /// name unread, only a deny applies: enforcing a deny that might not
    /// name this connection fails closed; honouring an allow that might
    /// not would fail open.
    fn applies_to_sni(&self, sni: Sni<'_>) -> bool {
        if self.server_names.is_empty() {
            return true;
        }
        match sni {
            Sni::Name(name) => self.server_names.iter().any(|p| p.matches(name)),
            Sni::Unread => self.verdict == RuleVerdict::Deny,
            Sni::Absent => false,
        }
    }

    fn has_header_matches(&self) -> bool {
        matches!(&self.l7, L7Rules::Http(h) if h.has_header_matches())
    }

    fn order(&self) -> (std::cmp::Reverse<u32>, u8) {
        let class = match self.verdict {
            RuleVerdict::Deny => 0,
            RuleVerdict::Allow => 1,
            RuleVerdict::Pass(_) => 2,
        };
        (std::cmp::Reverse(self.precedence), class)
    }
}

/// The decision, with the rule that made it (none: nothing matched).
#[derive(Debug, Clone, Copy)]
pub struct Verdict<'a> {
    pub allowed: bool,
    pub rule: Option<&'a Rule>,
}

impl Verdict<'_> {
    pub fn rule_name(&self) -> &str {
        self.rule.map_or("", |r| &r.name)
    }
}

/// The rules in force on one port (range) of one direction.
#[derive(Debug)]
pub struct PortRules {
    rules: Vec<Arc<Rule>>,
    l7: L7Kind,
    header_matches: bool,
}

impl PortRules {
    fn new(mut rules: Vec<Arc<Rule>>) -> Self {
        rules.sort_by_key(|r| r.order());
        let l7 = rules
            .iter()
            .map(|r| r.l7.kind())
            .find(|k| *k != L7Kind::None)
            .unwrap_or(L7Kind::None);
        let header_matches = rules.iter().any(|r| r.has_header_matches());
        PortRules {
            rules,
            l7,
            header_matches,
        }
    }

    /// The L7 protocol the port's rules speak.
    pub fn l7_kind(&self) -> L7Kind {
        self.l7
    }

    /// The first rule (in evaluation order) with L7 rules: the one that
    /// names the port's L7 protocol. `None` when the port has no L7 rules.
    pub fn l7_rule(&self) -> Option<&Rule> {
        self.rules
            .iter()
            .map(|r| &**r)
            .find(|r| r.l7.kind() != L7Kind::None)
    }

    pub fn rules(&self) -> &[Arc<Rule>] {
        &self.rules
    }

    /// Connection-time (L3/L4, SNI) check: may this remote connect at all?
    /// A rule with L7 rules counts as an allow here; requests are judged later.
    pub fn allows_connection(&self, remote: &Remote<'_>) -> Verdict<'_> {
        self.decide(remote, |_| true)
    }

    /// Full evaluation with an L7 judge: `l7` says whether a rule's L7 part
    /// allows the request (and may apply header-match side effects).
    ///
    /// An empty rule list allows. The first applicable deny wins; an allow
    /// wins at once, unless some rule on the port has header matches, in
    /// which case every rule of that precedence still runs for its side
    /// effects. Pass moves evaluation down to its tier.
    pub fn decide(&self, remote: &Remote<'_>, mut l7: impl FnMut(&L7Rules) -> bool) -> Verdict<'_> {
        if self.rules.is_empty() {
            return Verdict {
                allowed: true,
                rule: None,
            };
        }
        let mut ceiling = u32::MAX;
        let mut decided: Option<&Rule> = None;
        for rule in &self.rules {
            if rule.precedence > ceiling {
                continue;
            }
            if let Some(d) = decided {
                if rule.precedence < d.precedence {
                    break;
                }
            }
            if !rule.applies(remote) {
                continue;
            }
            match rule.verdict {
                RuleVerdict::Deny => {
                    return Verdict {
                        allowed: false,
                        rule: Some(rule),
                    };
                }
                RuleVerdict::Pass(tier) => {
                    if decided.is_none() {
                        ceiling = ceiling.min(tier);
                    }
                }
                RuleVerdict::Allow => {
                    let ok = l7(&rule.l7);
                    if ok && decided.is_none() {
                        if !self.header_matches {
                            return Verdict {
                                allowed: true,
                                rule: Some(rule),
                            };
                        }
                        decided = Some(rule);
                    }
                }
            }
        }
        Verdict {
            allowed: decided.is_some(),
            rule: decided,
        }
    }
}

/// Per-protocol port lookup of one direction.
#[derive(Debug, Default)]
struct PortMap {
    /// Non-overlapping, sorted by start.
    ranges: Vec<(u16, u16, Arc<PortRules>)>,
    wildcard: Option<Arc<PortRules>>,
}

impl PortMap {
    fn lookup(&self, port: u16) -> Option<&PortRules> {
        let i = self.ranges.partition_point(|(start, _, _)| *start <= port);
        if i > 0 {
            let (_, end, rules) = &self.ranges[i - 1];
            if port <= *end {
                return Some(rules);
            }
        }
        self.wildcard.as_deref()
    }
}

#[derive(Debug, Default)]
struct DirectionPolicy {
    tcp: PortMap,
    udp: PortMap,
}

/// The compiled policy of one endpoint.
#[derive(Debug)]
pub struct EndpointPolicy {
    pub id: u64,
    pub ips: Vec<IpAddr>,
    ingress: DirectionPolicy,
    egress: DirectionPolicy,
    /// The resource as it arrived: an unchanged resource in the next update
    /// is recognised by its bytes and reuses this compiled form without
    /// being decoded. Kept encoded, it costs a fraction of the decoded tree.
    encoded: Box<[u8]>,
    /// SDS secrets the resource names, sorted.
    secrets: Box<[String]>,
}

impl EndpointPolicy {
    /// The rules on `port` in `direction`; `None` means the port is denied.
    pub fn port(&self, direction: Direction, protocol: Protocol, port: u16) -> Option<&PortRules> {
        let d = match direction {
            Direction::Ingress => &self.ingress,
            Direction::Egress => &self.egress,
        };
        match protocol {
            Protocol::Tcp => d.tcp.lookup(port),
            Protocol::Udp => d.udp.lookup(port),
        }
    }

    /// The resource this was compiled from, decoded again (for dumps).
    pub fn source(&self) -> NetworkPolicy {
        // These bytes decoded once already; the default is unreachable.
        prost::Message::decode(&*self.encoded).unwrap_or_default()
    }
}

/// Every endpoint's compiled policy, immutable once built.
#[derive(Debug, Default)]
pub struct PolicySnapshot {
    version: String,
    by_ip: HashMap<IpAddr, Arc<EndpointPolicy>>,
    /// In resource order, for dumps.
    endpoints: Vec<Arc<EndpointPolicy>>,
}

impl PolicySnapshot {
    /// Compiles a complete set of resources. All or nothing: the first invalid
    /// resource rejects the whole set. Endpoints whose resource is unchanged
    /// from `previous` reuse its compiled form.
    pub fn compile(
        version: impl Into<String>,
        resources: Vec<NetworkPolicy>,
        previous: Option<&PolicySnapshot>,
    ) -> Result<Self, PolicyError> {
        let encoded: Vec<Vec<u8>> = resources
            .iter()
            .map(prost::Message::encode_to_vec)
            .collect();
        Self::compile_encoded(version, &encoded, previous)
    }

    /// [`PolicySnapshot::compile`] from the resources' protobuf encoding, as
    /// the xDS stream delivers them. A resource whose bytes equal those of an
    /// endpoint in `previous` is neither decoded nor compiled again; the rest
    /// are decoded and compiled, spread over the cores when there are many.
    pub fn compile_encoded<B: AsRef<[u8]> + Sync>(
        version: impl Into<String>,
        resources: &[B],
        previous: Option<&PolicySnapshot>,
    ) -> Result<Self, PolicyError> {
        let mut snap = PolicySnapshot {
            version: version.into(),
            ..Default::default()
        };
        let unchanged: HashMap<&[u8], &Arc<EndpointPolicy>> = previous
            .map(|p| p.endpoints.iter().map(|e| (&*e.encoded, e)).collect())
            .unwrap_or_default();
        let mut slots: Vec<Slot> = resources
            .iter()
            .enumerate()
            .map(|(index, bytes)| match unchanged.get(bytes.as_ref()) {
                Some(ep) => Slot::Done(Arc::clone(ep)),
                None => Slot::Todo {
                    index,
                    bytes: bytes.as_ref(),
                },
            })
            .collect();
        compile_slots(&mut slots)?;
        let mut owner: HashMap<IpAddr, u64> = HashMap::new();
        for slot in slots {
            let Slot::Done(ep) = slot else {
                unreachable!("compile_slots leaves every slot done or fails")
            };
            for (i, ip) in ep.ips.iter().enumerate() {
                if let Some(other) = owner.insert(*ip, ep.id) {
                    return Err(PolicyError::policy(
                        &ep.id.to_string(),
                        format!("endpoint_ips[{i}]"),
                        format!("{ip} is also claimed by endpoint {other}"),
                    ));
                }
                snap.by_ip.insert(*ip, ep.clone());
            }
            snap.endpoints.push(ep);
        }
        Ok(snap)
    }

    pub fn version(&self) -> &str {
        &self.version
    }

    /// The policy of the local endpoint with this IP.
    pub fn endpoint(&self, ip: IpAddr) -> Option<&EndpointPolicy> {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        self.by_ip.get(&ip).map(|e| &**e)
    }

    pub fn endpoints(&self) -> impl Iterator<Item = &EndpointPolicy> {
        self.endpoints.iter().map(|e| &**e)
    }

    pub fn len(&self) -> usize {
        self.endpoints.len()
    }

    /// Every SDS secret the policy names: header-match values and TLS
    /// contexts. A rule whose secret is missing fails closed.
    pub fn referenced_secrets(&self) -> std::collections::BTreeSet<String> {
        let mut out = std::collections::BTreeSet::new();
        for ep in &self.endpoints {
            out.extend(ep.secrets.iter().cloned());
        }
        out
    }

    pub fn is_empty(&self) -> bool {
        self.endpoints.is_empty()
    }
}

#[cfg(test)]
mod tests;
