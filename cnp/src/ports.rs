//! Parsing `toPorts` entries: ports, ranges, protocols and HTTP, Kafka and
//! DNS rules, with the agent's validation (`PortRule.Validate`,
//! `PortProtocol.Validate`, `PortRuleHTTP.Sanitize`) plus a compile check of
//! every HTTP and DNS rule with the proxy's own compilers (see
//! [`crate::http::check_http_rule`] and [`crate::dns`]).

use crate::error::Fault;
use crate::spec::{
    HeaderMatchSpec, HttpRule, KafkaRule, Mismatch, PortProto, PortRule, PortSpec, Proto,
};
use crate::yaml::Node;

/// The namespace Cilium syncs policy secrets into (`--policy-secrets-namespace`).
pub(crate) const SECRETS_NAMESPACE: &str = "cilium-secrets";

pub(crate) fn parse_port_rule(
    node: Node<'_>,
    ingress: bool,
    deny: bool,
    namespace: Option<&str>,
) -> Result<PortRule, Fault> {
    let f = if deny {
        node.fields(&["ports", "rules"], &[])?
    } else {
        node.fields(
            &["ports", "rules"],
            &[
                "serverNames",
                "terminatingTLS",
                "originatingTLS",
                "listener",
            ],
        )?
    };
    let ports_node = f.require("ports")?;
    let mut ports = Vec::new();
    for (p, v) in ports_node.list()? {
        ports.push(parse_port(Node::new(v, &p))?);
    }
    if ports.is_empty() {
        return Err(Fault::invalid(ports_node.path, "empty list allows nothing"));
    }
    if ports.len() > 40 {
        return Err(Fault::invalid(
            ports_node.path,
            "too many ports, the max is 40",
        ));
    }

    let mut http = Vec::new();
    let mut kafka = Vec::new();
    let mut dns = Vec::new();
    if let Some(rules) = f.get("rules") {
        if deny {
            return Err(Fault::invalid(
                rules.path,
                "deny rules cannot carry L7 rules",
            ));
        }
        let r = rules.fields(&["http", "kafka", "dns"], &["l7proto", "l7"])?;
        // One L7 protocol per entry (the agent's `L7Rules.Validate`).
        let kinds: Vec<&str> = ["http", "kafka", "dns"]
            .into_iter()
            .filter(|k| r.get(k).is_some())
            .collect();
        if kinds.len() > 1 {
            return Err(Fault::invalid(
                r.path_of(kinds[1]),
                format!(
                    "multiple L7 protocol rule types ({} and {}) in one toPorts entry",
                    kinds[0], kinds[1]
                ),
            ));
        }
        if let Some(list) = r.get("http") {
            for (p, v) in list.list()? {
                http.push(parse_http(Node::new(v, &p), namespace)?);
            }
        }
        if let Some(list) = r.get("kafka") {
            for (p, v) in list.list()? {
                kafka.push(parse_kafka(Node::new(v, &p))?);
            }
        }
        if let Some(list) = r.get("dns") {
            if ingress {
                return Err(Fault::invalid(
                    list.path,
                    "DNS rules are not allowed on ingress",
                ));
            }
            dns = crate::names::parse_dns_rules(list)?;
            for port in &ports {
                check_dns_port(port)?;
            }
        }
        if !http.is_empty() || !kafka.is_empty() {
            for port in &ports {
                if port.protocol != Proto::Tcp {
                    return Err(Fault::invalid(
                        &port.path,
                        format!(
                            "L7 rules can only apply to TCP (not {})",
                            port.protocol.name()
                        ),
                    ));
                }
                if port.port == PortSpec::Number(0) {
                    return Err(Fault::invalid(
                        &port.path,
                        "L7 rules can not be used when a port is 0",
                    ));
                }
            }
        }
    }
    Ok(PortRule {
        ports,
        http,
        kafka,
        dns,
    })
}

/// A port of an entry with DNS rules: a single non-zero numeric port over
/// UDP, TCP or ANY (`PortProtocol.Validate(hasDNSRules)` and
/// `PortRule.Validate`; explicit SCTP is refused here, see `lib.rs`).
fn check_dns_port(port: &PortProto) -> Result<(), Fault> {
    match port.port {
        PortSpec::Named(_) => {
            return Err(Fault::unsupported_because(
                &port.path,
                "named ports with DNS rules; give the port number",
            ))
        }
        PortSpec::Number(0) => {
            return Err(Fault::invalid(
                &port.path,
                "L7 rules can not be used when a port is 0",
            ))
        }
        PortSpec::Number(p) if port.end_port > p => {
            return Err(Fault::invalid(
                &port.path,
                "DNS rules do not support port ranges",
            ))
        }
        PortSpec::Number(_) => {}
    }
    if port.protocol == Proto::Sctp {
        return Err(Fault::invalid(
            &port.path,
            "DNS rules apply to UDP, TCP or ANY (not SCTP): the DNS proxy serves UDP and TCP",
        ));
    }
    Ok(())
}

/// One `rules.kafka` entry, sanitized as the agent's `kafka.PortRule.Sanitize`
/// does and put in its wire form (`GetAPIKeys`, `GetAPIVersion`).
fn parse_kafka(node: Node<'_>) -> Result<KafkaRule, Fault> {
    let f = node.fields(&["role", "apiKey", "apiVersion", "clientID", "topic"], &[])?;
    let mut rule = KafkaRule::wildcard();
    match (f.get("role"), f.get("apiKey")) {
        (Some(_), Some(k)) => {
            return Err(Fault::invalid(k.path, "role and apiKey cannot both be set"));
        }
        (Some(r), None) => {
            let role = r.str()?;
            let keys = l7_kafka::rules::role_api_keys(role).ok_or_else(|| {
                Fault::invalid(
                    r.path,
                    format!("invalid Kafka role {role:?} (produce or consume)"),
                )
            })?;
            rule.api_keys = keys.iter().map(|k| i32::from(*k)).collect();
        }
        (None, Some(k)) => {
            let name = k.scalar_string()?;
            let key = l7_kafka::api::parse_api_key(&name).ok_or_else(|| {
                Fault::invalid(k.path, format!("unknown Kafka request API key {name:?}"))
            })?;
            rule.api_keys = vec![i32::from(key)];
        }
        (None, None) => {}
    }
    if let Some(v) = f.get("apiVersion") {
        let s = v.scalar_string()?;
        let version: i16 = s
            .trim()
            .parse()
            .ok()
            .filter(|v: &i16| *v >= 0)
            .ok_or_else(|| Fault::invalid(v.path, format!("invalid apiVersion {s:?}")))?;
        rule.api_version = i32::from(version);
    }
    if let Some(c) = f.get("clientID") {
        let s = c.str()?;
        l7_kafka::rules::validate_client_id(s)
            .map_err(|e| Fault::invalid(c.path, e.to_string()))?;
        rule.client_id = s.to_string();
    }
    if let Some(t) = f.get("topic") {
        let s = t.str()?;
        l7_kafka::rules::validate_topic(s).map_err(|e| Fault::invalid(t.path, e.to_string()))?;
        rule.topic = s.to_string();
    }
    Ok(rule)
}

fn parse_port(node: Node<'_>) -> Result<PortProto, Fault> {
    let f = node.fields(&["port", "endPort", "protocol"], &[])?;
    let port_node = f.require("port")?;
    let port = parse_port_spec(&port_node.scalar_string()?)
        .map_err(|m| Fault::invalid(port_node.path, m))?;

    let protocol = match f.get("protocol") {
        None => Proto::Any,
        Some(p) => {
            let s = p.str()?;
            match s.to_ascii_uppercase().as_str() {
                "VRRP" | "IGMP" => return Err(Fault::unsupported_because(p.path, s)),
                _ => Proto::parse(s).ok_or_else(|| {
                    Fault::invalid(
                        p.path,
                        format!("invalid protocol {s:?} (TCP, UDP, SCTP or ANY)"),
                    )
                })?,
            }
        }
    };

    let mut end_port = 0;
    if let Some(e) = f.get("endPort") {
        let v = e.u64()?;
        let v = u16::try_from(v)
            .map_err(|_| Fault::invalid(e.path, format!("port {v} out of range (0-65535)")))?;
        match &port {
            PortSpec::Named(_) => {
                return Err(Fault::invalid(e.path, "endPort requires a numeric port"))
            }
            PortSpec::Number(0) if v != 0 => {
                return Err(Fault::invalid(e.path, "endPort requires a non-zero port"))
            }
            PortSpec::Number(p) if v != 0 && v < *p => {
                return Err(Fault::invalid(
                    e.path,
                    format!("endPort {v} is less than port {p}"),
                ))
            }
            _ => {}
        }
        end_port = v;
    }
    Ok(PortProto {
        path: node.path.to_string(),
        port,
        end_port,
        protocol,
    })
}

/// A port number, or an IANA service name (lower-cased, as the agent does).
pub(crate) fn parse_port_spec(s: &str) -> Result<PortSpec, String> {
    if s.is_empty() {
        return Err("port must be specified".into());
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        if s.len() > 1 && s.starts_with('0') {
            return Err(format!("port {s:?} has a leading zero"));
        }
        return match s.parse::<u32>() {
            Ok(n) if n <= 65535 => Ok(PortSpec::Number(n as u16)),
            _ => Err(format!("port {s} out of range (0-65535)")),
        };
    }
    if is_service_name(s) {
        return Ok(PortSpec::Named(s.to_ascii_lowercase()));
    }
    Err(format!(
        "invalid port {s:?}: neither a number nor a port name"
    ))
}

/// IANA service name: 1-15 of `[a-z0-9-]` with a letter, no `-` at either
/// end and no `--`.
pub(crate) fn is_service_name(s: &str) -> bool {
    let lower = s.to_ascii_lowercase();
    !lower.is_empty()
        && lower.len() <= 15
        && lower
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && lower.bytes().any(|b| b.is_ascii_lowercase())
        && !lower.starts_with('-')
        && !lower.ends_with('-')
        && !lower.contains("--")
}

fn parse_http(node: Node<'_>, namespace: Option<&str>) -> Result<HttpRule, Fault> {
    let f = node.fields(&["path", "method", "host", "headers", "headerMatches"], &[])?;
    let mut rule = HttpRule::default();
    for (key, slot) in [
        ("path", &mut rule.path),
        ("method", &mut rule.method),
        ("host", &mut rule.host),
    ] {
        if let Some(n) = f.get(key) {
            *slot = n.str()?.to_string();
        }
    }
    if let Some(h) = f.get("headers") {
        for (p, v) in h.list()? {
            let s = Node::new(v, &p).str()?;
            if s.trim().is_empty() {
                return Err(Fault::invalid(&p, "empty header"));
            }
            rule.headers.push(s.to_string());
        }
    }
    if let Some(h) = f.get("headerMatches") {
        for (p, v) in h.list()? {
            rule.header_matches
                .push(parse_header_match(Node::new(v, &p), namespace)?);
        }
    }
    crate::http::check_http_rule(&rule, node.path)?;
    Ok(rule)
}

fn parse_header_match(node: Node<'_>, namespace: Option<&str>) -> Result<HeaderMatchSpec, Fault> {
    let f = node.fields(&["name", "value", "mismatch", "secret"], &[])?;
    let name_node = f.require("name")?;
    let name = name_node.str()?;
    if name.is_empty() {
        return Err(Fault::invalid(name_node.path, "header name missing"));
    }
    let mismatch = match f.get("mismatch") {
        None => Mismatch::Fail,
        Some(m) => match m.str()? {
            "LOG" => Mismatch::Log,
            "ADD" => Mismatch::Add,
            "DELETE" => Mismatch::Delete,
            "REPLACE" => Mismatch::Replace,
            other => {
                return Err(Fault::invalid(
                    m.path,
                    format!("invalid header action {other:?} (LOG, ADD, DELETE or REPLACE)"),
                ))
            }
        },
    };
    let value = match f.get("value") {
        Some(v) => v.str()?.to_string(),
        None => String::new(),
    };
    let mut sds_secret = None;
    if let Some(s) = f.get("secret") {
        // With secret sync on, the agent sends an inline `value` and drops the
        // secret when both are given; refuse rather than drop it silently.
        if !value.is_empty() {
            return Err(Fault::unsupported_because(
                s.path,
                "secret together with value; the agent would send the value and ignore the secret",
            ));
        }
        let sf = s.fields(&["name", "namespace"], &[])?;
        let sname_node = sf.require("name")?;
        let sname = sname_node.str()?;
        if sname.is_empty() {
            return Err(Fault::invalid(sname_node.path, "secret name missing"));
        }
        let sns = match (sf.get("namespace"), namespace) {
            (Some(n), _) => n.str()?.to_string(),
            (None, Some(ns)) => ns.to_string(),
            (None, None) => {
                return Err(Fault::invalid(
                    sf.path_of("namespace"),
                    "required in a CiliumClusterwideNetworkPolicy",
                ))
            }
        };
        sds_secret = Some(format!("{SECRETS_NAMESPACE}/{sns}-{sname}"));
    }
    Ok(HeaderMatchSpec {
        name: name.to_string(),
        value,
        mismatch,
        sds_secret,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_specs() {
        let table: &[(&str, Result<PortSpec, &str>)] = &[
            ("80", Ok(PortSpec::Number(80))),
            ("0", Ok(PortSpec::Number(0))),
            ("65535", Ok(PortSpec::Number(65535))),
            ("HTTP", Ok(PortSpec::Named("http".into()))),
            ("http-alt", Ok(PortSpec::Named("http-alt".into()))),
            ("65536", Err("port 65536 out of range (0-65535)")),
            ("080", Err("port \"080\" has a leading zero")),
            (
                "-x",
                Err("invalid port \"-x\": neither a number nor a port name"),
            ),
            ("", Err("port must be specified")),
        ];
        for (s, want) in table {
            assert_eq!(
                parse_port_spec(s),
                want.clone().map_err(str::to_string),
                "{s}"
            );
        }
    }
}
