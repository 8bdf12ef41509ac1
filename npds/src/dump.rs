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
        SnapshotDump {
            version: self.version().to_string(),
            endpoints: self
                .endpoints()
                .map(|e| {
                    let s = e.source();
                    EndpointDump {
                        endpoint_id: s.endpoint_id,
                        endpoint_ips: s.endpoint_ips,
                        ingress: s.ingress_per_port_policies.iter().map(port_dump).collect(),
                        egress: s.egress_per_port_policies.iter().map(port_dump).collect(),
                    }
                })
                .collect(),
        }
    }
}

fn port_dump(p: &PortNetworkPolicy) -> PortDump {
    let port = match (p.port, p.end_port) {
        (0, _) => "*".to_string(),
        (a, b) if b == 0 || a == b => a.to_string(),
        (a, b) => format!("{a}-{b}"),
    };
    let protocol = crate::proto::Protocol::try_from(p.protocol)
        .map(|p| p.as_str_name().to_string())
        .unwrap_or_else(|_| p.protocol.to_string());
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
