//! The parsed, validated form of a policy rule: what `parse` produces and
//! `l4` consumes. Peer selectors are already namespaced the way the agent's
//! `ParseToCiliumRule` does it, so nothing downstream needs the policy's
//! namespace again except for naming.

use crate::selector::Selector;

/// L4 protocol of a `toPorts.ports` entry. `Any` (or no protocol) expands to
/// TCP, UDP and SCTP, as in the agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Proto {
    Tcp,
    Udp,
    Sctp,
    /// Only for the port-0 filter of an L3-only rule.
    Any,
}

impl Proto {
    pub fn parse(s: &str) -> Option<Proto> {
        match s.to_ascii_uppercase().as_str() {
            "" | "ANY" => Some(Proto::Any),
            "TCP" => Some(Proto::Tcp),
            "UDP" => Some(Proto::Udp),
            "SCTP" => Some(Proto::Sctp),
            _ => None,
        }
    }

    /// The concrete protocols a port entry stands for.
    pub fn expand(self) -> &'static [Proto] {
        match self {
            Proto::Any => &[Proto::Tcp, Proto::Udp, Proto::Sctp],
            Proto::Tcp => &[Proto::Tcp],
            Proto::Udp => &[Proto::Udp],
            Proto::Sctp => &[Proto::Sctp],
        }
    }

    /// The IANA protocol number (`Any` has none: 0).
    pub fn number(self) -> u8 {
        match self {
            Proto::Tcp => 6,
            Proto::Udp => 17,
            Proto::Sctp => 132,
            Proto::Any => 0,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Proto::Tcp => "TCP",
            Proto::Udp => "UDP",
            Proto::Sctp => "SCTP",
            Proto::Any => "ANY",
        }
    }
}

/// A port given by number or by (lower-cased) name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum PortSpec {
    Number(u16),
    Named(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PortProto {
    /// Path of this entry, e.g. `spec.ingress[0].toPorts[0].ports[1]`.
    pub path: String,
    pub port: PortSpec,
    /// 0 when no range is given.
    pub end_port: u16,
    pub protocol: Proto,
}

/// One `toPorts` entry: ports and, for allow rules, optional L7 rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PortRule {
    pub ports: Vec<PortProto>,
    /// Empty when the entry has no HTTP rules.
    pub http: Vec<HttpRule>,
    /// Empty when the entry has no Kafka rules (at most one of the three
    /// L7 lists is set).
    pub kafka: Vec<KafkaRule>,
    /// `rules.dns`: the raw `matchName` / `matchPattern` strings, validated;
    /// empty when the entry has no DNS rules.
    pub dns: Vec<String>,
}

/// One `rules.kafka` entry in its wire form (`KafkaNetworkPolicyRule`):
/// `role` or `apiKey` already expanded to API keys, no `apiVersion` as -1.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct KafkaRule {
    pub api_version: i32,
    pub api_keys: Vec<i32>,
    pub client_id: String,
    pub topic: String,
}

impl KafkaRule {
    /// The rule that matches every request (the agent's merge wildcard).
    pub fn wildcard() -> Self {
        KafkaRule {
            api_version: -1,
            api_keys: Vec::new(),
            client_id: String::new(),
            topic: String::new(),
        }
    }
}

/// One `rules.http` entry. The empty rule matches every request; the agent
/// uses it as the "wildcard" HTTP rule when merging.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct HttpRule {
    pub path: String,
    pub method: String,
    pub host: String,
    pub headers: Vec<String>,
    pub header_matches: Vec<HeaderMatchSpec>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Mismatch {
    /// No `mismatch`: the request fails.
    Fail,
    Log,
    Add,
    Delete,
    Replace,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct HeaderMatchSpec {
    pub name: String,
    pub value: String,
    pub mismatch: Mismatch,
    /// SDS secret name (`cilium-secrets/<ns>-<name>`) when a secret is named.
    pub sds_secret: Option<String>,
}

/// An ingress/egress (allow or deny) rule after aggregation of its peers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PeerRule {
    /// Path of the rule, e.g. `spec.ingress[0]`.
    pub path: String,
    /// The peer selectors; empty means the rule contributes nothing.
    pub peers: Vec<Selector>,
    pub to_ports: Vec<PortRule>,
}

/// One policy rule (`spec` or an item of `specs`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Rule {
    /// The subject selector, with the policy namespace added for a CNP.
    pub subject: Selector,
    pub ingress: Vec<PeerRule>,
    pub ingress_deny: Vec<PeerRule>,
    pub egress: Vec<PeerRule>,
    pub egress_deny: Vec<PeerRule>,
    /// `enableDefaultDeny`, defaulted per direction as the agent does: true
    /// when the rule has rules in that direction.
    pub default_deny_ingress: bool,
    pub default_deny_egress: bool,
}

impl Rule {
    /// Whether this rule puts a selected endpoint's direction under policy.
    pub fn has(&self, ingress: bool) -> bool {
        if ingress {
            !self.ingress.is_empty() || !self.ingress_deny.is_empty()
        } else {
            !self.egress.is_empty() || !self.egress_deny.is_empty()
        }
    }

    pub fn default_deny(&self, ingress: bool) -> bool {
        if ingress {
            self.default_deny_ingress
        } else {
            self.default_deny_egress
        }
    }

    /// The (allow, deny) rules of a direction.
    pub fn direction(&self, ingress: bool) -> (&[PeerRule], &[PeerRule]) {
        if ingress {
            (&self.ingress, &self.ingress_deny)
        } else {
            (&self.egress, &self.egress_deny)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocols_parse_and_expand() {
        let table = [
            ("tcp", Some(Proto::Tcp)),
            ("UDP", Some(Proto::Udp)),
            ("SCTP", Some(Proto::Sctp)),
            ("", Some(Proto::Any)),
            ("ANY", Some(Proto::Any)),
            ("ICMP", None),
        ];
        for (s, want) in table {
            assert_eq!(Proto::parse(s), want, "{s}");
        }
        assert_eq!(Proto::Any.expand().len(), 3);
        assert_eq!(Proto::Tcp.name(), "TCP");
    }
}
