//! A readable view of the snapshot for the admin `/config_dump`.

use serde::Serialize;

use envoy_types::pb::envoy::config::route::v3::{
    header_matcher::HeaderMatchSpecifier, HeaderMatcher,
};
use envoy_types::pb::envoy::r#type::matcher::v3::string_matcher::MatchPattern;

use crate::proto::{
    port_network_policy_rule::Verdict, port_network_policy_rule::L7, PortNetworkPolicy,
};
use crate::PolicySnapshot;

#[derive(Debug, Serialize)]
pub struct SnapshotDump {
    pub version: String,
    pub endpoints: Vec<EndpointDump>,
    /// Rules Portcullis holds but cannot enforce: connections they apply
    /// to are reset, never relayed.
    pub unenforceable: Vec<UnenforceableDump>,
}

/// One rule that fails closed, and why.
#[derive(Debug, Serialize)]
pub struct UnenforceableDump {
    pub endpoint_id: u64,
    pub direction: &'static str,
    pub port: String,
    pub protocol: String,
    /// The rule's name; empty when the resource left it unnamed.
    pub rule: String,
    pub l7_proto: String,
    pub reason: String,
}

#[derive(Debug, Serialize)]
pub struct EndpointDump {
    pub endpoint_id: u64,
    pub endpoint_ips: Vec<String>,
    pub ingress: Vec<PortDump>,
    pub egress: Vec<PortDump>,
}

#[derive(Debug, Serialize)]
pub struct PortDump {
    pub port: String,
    pub protocol: String,
    pub rules: Vec<RuleDump>,
}

#[derive(Debug, Serialize)]
pub struct RuleDump {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    pub precedence: u32,
    pub verdict: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub proxy_id: u32,
    /// Empty: any remote.
    pub remote_policies: Vec<u32>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub server_names: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<Vec<Vec<String>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kafka: Option<Vec<String>>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub l7_proto: String,
    /// Generic `l7_rules` (`key=value, ...` per rule), held but never
    /// enforced: see `unenforceable`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub l7_rules: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<String>,
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

impl PolicySnapshot {
    /// The policy as held, in resource order. Secret values are never shown:
    /// only secret names appear.
    pub fn dump(&self) -> SnapshotDump {
        let mut unenforceable = Vec::new();
        let endpoints = self
            .endpoints()
            .map(|e| {
                let s = e.source();
                for (direction, ports) in [
                    ("ingress", &s.ingress_per_port_policies),
                    ("egress", &s.egress_per_port_policies),
                ] {
                    unenforceable.extend(
                        ports
                            .iter()
                            .flat_map(|p| unenforceable_rules(s.endpoint_id, direction, p)),
                    );
                }
                EndpointDump {
                    endpoint_id: s.endpoint_id,
                    ingress: s.ingress_per_port_policies.iter().map(port_dump).collect(),
                    egress: s.egress_per_port_policies.iter().map(port_dump).collect(),
                    endpoint_ips: s.endpoint_ips,
                }
            })
            .collect();
        SnapshotDump {
            version: self.version().to_string(),
            endpoints,
            unenforceable,
        }
    }
}

/// The generic-L7 rules of one port entry: Portcullis has no parser for
/// them, so every connection to the port is reset (see proxy/src/parser.rs).
fn unenforceable_rules<'a>(
    endpoint_id: u64,
    direction: &'static str,
    p: &'a PortNetworkPolicy,
) -> impl Iterator<Item = UnenforceableDump> + 'a {
    let (port, protocol) = port_label(p);
    p.rules
        .iter()
        .filter(|r| matches!(r.l7, Some(L7::L7Rules(_))))
        .map(move |r| UnenforceableDump {
            endpoint_id,
            direction,
            port: port.clone(),
            protocol: protocol.clone(),
            rule: r.name.clone(),
            l7_proto: r.l7_proto.clone(),
            reason: format!(
                "no parser for L7 protocol {:?}: connections to this port are reset",
                r.l7_proto
            ),
        })
}

/// `80`, `8000-8080` or `*`, and `TCP` / `UDP`.
fn port_label(p: &PortNetworkPolicy) -> (String, String) {
    let port = match (p.port, p.end_port) {
        (0, _) => "*".to_string(),
        (a, b) if b == 0 || a == b => a.to_string(),
        (a, b) => format!("{a}-{b}"),
    };
    let protocol = crate::proto::Protocol::try_from(p.protocol)
        .map(|p| p.as_str_name().to_string())
        .unwrap_or_else(|_| p.protocol.to_string());
    (port, protocol)
}

fn port_dump(p: &PortNetworkPolicy) -> PortDump {
    let (port, protocol) = port_label(p);
    PortDump {
        port,
        protocol,
        rules: p
            .rules
            .iter()
            .map(|r| RuleDump {
                name: r.name.clone(),
                precedence: r.precedence,
                verdict: match r.verdict {
                    None | Some(Verdict::Deny(false)) => "allow".into(),
                    Some(Verdict::Deny(true)) => "deny".into(),
                    Some(Verdict::PassPrecedence(p)) => format!("pass to {p}"),
                },
                proxy_id: r.proxy_id,
                remote_policies: r.remote_policies.clone(),
                server_names: r.server_names.clone(),
                http: match &r.l7 {
                    Some(L7::HttpRules(h)) => Some(
                        h.http_rules
                            .iter()
                            .map(|rule| {
                                let mut v: Vec<String> =
                                    rule.headers.iter().map(describe_matcher).collect();
                                v.extend(rule.header_matches.iter().map(|m| {
                                    let value = if m.value_sds_secret.is_empty() {
                                        format!("{:?}", m.value)
                                    } else {
                                        format!("secret {:?}", m.value_sds_secret)
                                    };
                                    format!(
                                        "headerMatch {} = {value} (on match {}, on mismatch {})",
                                        m.name, m.match_action, m.mismatch_action
                                    )
                                }));
                                v
                            })
                            .collect(),
                    ),
                    _ => None,
                },
                kafka: match &r.l7 {
                    Some(L7::KafkaRules(k)) => Some(
                        k.kafka_rules
                            .iter()
                            .map(|k| {
                                format!(
                                    "api_keys={:?} api_version={} client_id={:?} topic={:?}",
                                    k.api_keys, k.api_version, k.client_id, k.topic
                                )
                            })
                            .collect(),
                    ),
                    _ => None,
                },
                l7_proto: r.l7_proto.clone(),
                l7_rules: match &r.l7 {
                    Some(L7::L7Rules(g)) => Some(
                        g.l7_allow_rules
                            .iter()
                            .map(|rule| ("allow", rule))
                            .chain(g.l7_deny_rules.iter().map(|rule| ("deny", rule)))
                            .map(|(verdict, rule)| describe_generic(verdict, rule))
                            .collect(),
                    ),
                    _ => None,
                },
                tls: match (&r.downstream_tls_context, &r.upstream_tls_context) {
                    (None, None) => None,
                    (d, u) => Some(format!(
                        "terminate: {}, originate: {}",
                        d.as_ref().map_or("-".into(), tls_ref),
                        u.as_ref().map_or("-".into(), tls_ref)
                    )),
                },
            })
            .collect(),
    }
}

/// `allow cmd=READ file=/public/*`, with the metadata matchers counted.
fn describe_generic(verdict: &str, rule: &crate::proto::L7NetworkPolicyRule) -> String {
    let mut s = verdict.to_string();
    if !rule.name.is_empty() {
        s += &format!(" {:?}", rule.name);
    }
    for (k, v) in &rule.rule {
        s += &format!(" {k}={v:?}");
    }
    if !rule.metadata_rule.is_empty() {
        s += &format!(" (+{} metadata matchers)", rule.metadata_rule.len());
    }
    s
}

fn tls_ref(t: &crate::proto::TlsContext) -> String {
    let mut parts = Vec::new();
    if !t.tls_sds_secret.is_empty() {
        parts.push(format!("secret {}", t.tls_sds_secret));
    }
    if !t.validation_context_sds_secret.is_empty() {
        parts.push(format!("ca secret {}", t.validation_context_sds_secret));
    }
    if !t.certificate_chain.is_empty() || !t.private_key.is_empty() || !t.trusted_ca.is_empty() {
        parts.push("inline material [redacted]".into());
    }
    parts.join(", ")
}

/// `:path ~ /v1/.*`, `x-token == "abc"`, `x-debug present`, `not (...)`.
pub(crate) fn describe_matcher(m: &HeaderMatcher) -> String {
    let body = match &m.header_match_specifier {
        None => "present".to_string(),
        #[allow(deprecated)]
        Some(spec) => match spec {
            HeaderMatchSpecifier::ExactMatch(v) => format!("== {v:?}"),
            HeaderMatchSpecifier::SafeRegexMatch(r) => format!("~ {}", r.regex),
            HeaderMatchSpecifier::RangeMatch(r) => format!("in [{}, {})", r.start, r.end),
            HeaderMatchSpecifier::PresentMatch(p) => {
                if *p { "present" } else { "absent" }.to_string()
            }
            HeaderMatchSpecifier::PrefixMatch(v) => format!("starts with {v:?}"),
            HeaderMatchSpecifier::SuffixMatch(v) => format!("ends with {v:?}"),
            HeaderMatchSpecifier::ContainsMatch(v) => format!("contains {v:?}"),
            HeaderMatchSpecifier::StringMatch(s) => match &s.match_pattern {
                Some(MatchPattern::Exact(v)) => format!("== {v:?}"),
                Some(MatchPattern::Prefix(v)) => format!("starts with {v:?}"),
                Some(MatchPattern::Suffix(v)) => format!("ends with {v:?}"),
                Some(MatchPattern::Contains(v)) => format!("contains {v:?}"),
                Some(MatchPattern::SafeRegex(r)) => format!("~ {}", r.regex),
                Some(other) => format!("{other:?}"),
                None => "present".to_string(),
            },
        },
    };
    let s = format!("{} {body}", m.name);
    if m.invert_match {
        format!("not ({s})")
    } else {
        s
    }
}
