//! Compiling `NetworkPolicy` resources into [`EndpointPolicy`] values:
//! decoding, validating every rule (a bad one names its resource, port and
//! field), merging overlapping port ranges, and spreading many endpoints
//! over the cores.

use super::*;
use crate::Reason;

/// Every SDS secret `np` names: header-match values and TLS contexts.
fn referenced_secrets(np: &NetworkPolicy) -> Box<[String]> {
    let mut out = std::collections::BTreeSet::new();
    for port in np
        .ingress_per_port_policies
        .iter()
        .chain(&np.egress_per_port_policies)
    {
        for rule in &port.rules {
            if let Some(L7::HttpRules(h)) = &rule.l7 {
                for m in h.http_rules.iter().flat_map(|r| &r.header_matches) {
                    if !m.value_sds_secret.is_empty() {
                        out.insert(m.value_sds_secret.clone());
                    }
                }
            }
            for tls in rule
                .downstream_tls_context
                .iter()
                .chain(&rule.upstream_tls_context)
            {
                for name in [&tls.tls_sds_secret, &tls.validation_context_sds_secret] {
                    if !name.is_empty() {
                        out.insert(name.clone());
                    }
                }
            }
        }
    }
    out.into_iter().collect()
}

/// One resource on its way into a snapshot.
pub(super) enum Slot<'a> {
    Todo { index: usize, bytes: &'a [u8] },
    Done(Arc<EndpointPolicy>),
}

/// Fewest endpoints worth a thread of their own.
pub(super) const ENDPOINTS_PER_THREAD: usize = 32;

/// Compiles every `Todo` slot in place. A large update (a full resync of a
/// node) is spread over the cores in contiguous chunks; the control plane
/// runs on its own thread, so this takes no worker from traffic for longer
/// than the compile itself. The error reported is that of the first invalid
/// resource in order, as a sequential compile would report it.
pub(super) fn compile_slots(slots: &mut [Slot<'_>]) -> Result<(), PolicyError> {
    fn run(chunk: &mut [Slot<'_>]) -> Result<(), PolicyError> {
        for slot in chunk {
            if let Slot::Todo { index, bytes } = *slot {
                let np: NetworkPolicy = prost::Message::decode(bytes).map_err(|e| {
                    PolicyError::policy(
                        &format!("resources[{index}]"),
                        "value",
                        format!("does not decode: {e}"),
                    )
                })?;
                let ep = compile_endpoint(&np.endpoint_id.to_string(), np, bytes)?;
                *slot = Slot::Done(Arc::new(ep));
            }
        }
        Ok(())
    }
    let todo = slots
        .iter()
        .filter(|s| matches!(s, Slot::Todo { .. }))
        .count();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = cores.min(todo / ENDPOINTS_PER_THREAD).min(8);
    if threads <= 1 {
        return run(slots);
    }
    let chunk = slots.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let workers: Vec<_> = slots
            .chunks_mut(chunk)
            .map(|c| scope.spawn(move || run(c)))
            .collect();
        // Joined in order: the first error is the earliest resource's.
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect::<Result<Vec<()>, _>>()
            .map(drop)
    })
}

fn compile_endpoint(
    name: &str,
    np: NetworkPolicy,
    encoded: &[u8],
) -> Result<EndpointPolicy, PolicyError> {
    if np.endpoint_ips.is_empty() || np.endpoint_ips.len() > 2 {
        return Err(PolicyError::policy(
            name,
            "endpoint_ips",
            format!("must hold 1 or 2 addresses, has {}", np.endpoint_ips.len()),
        ));
    }
    let mut ips = Vec::with_capacity(np.endpoint_ips.len());
    for (i, s) in np.endpoint_ips.iter().enumerate() {
        let ip: IpAddr = s.parse().map_err(|_| {
            PolicyError::policy(
                name,
                format!("endpoint_ips[{i}]"),
                format!("{s:?} is not an IP address"),
            )
        })?;
        ips.push(ip);
    }
    let ingress = compile_direction(
        name,
        "ingress_per_port_policies",
        &np.ingress_per_port_policies,
    )?;
    let egress = compile_direction(
        name,
        "egress_per_port_policies",
        &np.egress_per_port_policies,
    )?;
    Ok(EndpointPolicy {
        id: np.endpoint_id,
        ips,
        ingress,
        egress,
        secrets: referenced_secrets(&np),
        encoded: encoded.into(),
    })
}

/// A validated port entry: its range (`None` = wildcard) and compiled rules.
struct Entry {
    range: Option<(u16, u16)>,
    protocol: Protocol,
    rules: Vec<Arc<Rule>>,
}

fn compile_direction(
    name: &str,
    field: &str,
    ports: &[PortNetworkPolicy],
) -> Result<DirectionPolicy, PolicyError> {
    let mut entries = Vec::with_capacity(ports.len());
    for (i, p) in ports.iter().enumerate() {
        let at = format!("{field}[{i}]");
        entries.push(compile_entry(name, &at, p)?);
    }
    Ok(DirectionPolicy {
        tcp: build_port_map(name, field, &entries, Protocol::Tcp)?,
        udp: build_port_map(name, field, &entries, Protocol::Udp)?,
    })
}

fn compile_entry(name: &str, at: &str, p: &PortNetworkPolicy) -> Result<Entry, PolicyError> {
    let err = |f: &str, r: String| PolicyError::policy(name, format!("{at}.{f}"), r);
    if p.port > 65535 {
        return Err(err("port", format!("{} is above 65535", p.port)));
    }
    if p.end_port > 65535 {
        return Err(err("end_port", format!("{} is above 65535", p.end_port)));
    }
    if p.end_port != 0 && p.end_port < p.port {
        return Err(err(
            "end_port",
            format!("{} is below port {}", p.end_port, p.port),
        ));
    }
    if p.port == 0 && p.end_port != 0 {
        return Err(err(
            "end_port",
            "a range cannot start at the wildcard port 0".into(),
        ));
    }
    let protocol = Protocol::try_from(p.protocol)
        .map_err(|_| err("protocol", format!("unknown protocol {}", p.protocol)))?;
    let range = (p.port != 0).then(|| (p.port as u16, p.end_port.max(p.port) as u16));
    let port_label = match range {
        None => "*".to_string(),
        Some((a, b)) if a == b => a.to_string(),
        Some((a, b)) => format!("{a}-{b}"),
    };
    let mut rules = Vec::with_capacity(p.rules.len());
    let mut kind = L7Kind::None;
    for (j, r) in p.rules.iter().enumerate() {
        let rat = format!("{at}.rules[{j}]");
        let rule = compile_rule(name, &rat, r, &port_label, j)?;
        let k = rule.l7.kind();
        if k != L7Kind::None {
            if kind != L7Kind::None && kind != k {
                return Err(PolicyError::policy(
                    name,
                    rat,
                    format!("{k:?} rules on a port whose other rules are {kind:?}: one L7 type per port"),
                ));
            }
            kind = k;
        }
        rules.push(Arc::new(rule));
    }
    if rules.is_empty() {
        // An empty rule list allows everything on the port. As one
        // unconstrained allow it merges with other entries' rules (and their
        // denies and precedences) without a special case.
        rules.push(Arc::new(Rule {
            name: format!("{name}/{}/{port_label}/allow-all", direction_of(at)).into(),
            precedence: 0,
            verdict: RuleVerdict::Allow,
            proxy_id: 0,
            remotes: None,
            server_names: Vec::new(),
            l7: L7Rules::None,
            downstream_tls: None,
            upstream_tls: None,
        }));
    }
    Ok(Entry {
        range,
        protocol,
        rules,
    })
}

fn compile_rule(
    name: &str,
    at: &str,
    r: &PortNetworkPolicyRule,
    port_label: &str,
    index: usize,
) -> Result<Rule, PolicyError> {
    let err = |f: &str, reason: Reason| PolicyError::policy(name, format!("{at}.{f}"), reason);
    if r.proxy_id > 65535 {
        return Err(err(
            "proxy_id",
            format!("{} is above 65535", r.proxy_id).into(),
        ));
    }
    let verdict = match r.verdict {
        None => RuleVerdict::Allow,
        Some(ProtoVerdict::Deny(true)) => RuleVerdict::Deny,
        Some(ProtoVerdict::Deny(false)) => RuleVerdict::Allow,
        Some(ProtoVerdict::PassPrecedence(p)) => {
            if p >= r.precedence {
                return Err(err(
                    "pass_precedence",
                    format!("{p} must be below the rule's precedence {}", r.precedence).into(),
                ));
            }
            RuleVerdict::Pass(p)
        }
    };
    let mut server_names = Vec::with_capacity(r.server_names.len());
    for (k, s) in r.server_names.iter().enumerate() {
        server_names
            .push(SniPattern::new(s).map_err(|e| err(&format!("server_names[{k}]"), e.into()))?);
    }
    let l7 = match &r.l7 {
        None => L7Rules::None,
        Some(L7::HttpRules(h)) => {
            let specs: Vec<_> = h
                .http_rules
                .iter()
                .map(crate::convert::http_rule_spec)
                .collect();
            let compiled = HttpRules::compile(&specs).map_err(|e| err("http_rules", e.into()))?;
            L7Rules::Http(Arc::new(compiled))
        }
        Some(L7::KafkaRules(k)) => {
            let specs: Vec<_> = k
                .kafka_rules
                .iter()
                .map(crate::convert::kafka_rule_spec)
                .collect();
            let compiled = KafkaRules::compile(&specs).map_err(|e| err("kafka_rules", e.into()))?;
            L7Rules::Kafka(Arc::new(compiled))
        }
        Some(L7::L7Rules(g)) => L7Rules::Generic(Arc::new(GenericRules {
            l7_proto: r.l7_proto.clone(),
            rules: g.clone(),
        })),
    };
    if verdict != RuleVerdict::Allow && !matches!(l7, L7Rules::None) {
        return Err(err(
            "l7",
            "deny and pass rules cannot carry L7 rules".into(),
        ));
    }
    let mut remotes = r.remote_policies.clone();
    remotes.sort_unstable();
    remotes.dedup();
    let rule_name: Arc<str> = if r.name.is_empty() {
        format!(
            "{name}/{at_dir}/{port_label}/{index}",
            at_dir = direction_of(at)
        )
        .into()
    } else {
        r.name.as_str().into()
    };
    Ok(Rule {
        name: rule_name,
        precedence: r.precedence,
        verdict,
        proxy_id: r.proxy_id,
        remotes: (!remotes.is_empty()).then(|| remotes.into_boxed_slice()),
        server_names,
        l7,
        downstream_tls: r.downstream_tls_context.clone(),
        upstream_tls: r.upstream_tls_context.clone(),
    })
}

fn direction_of(at: &str) -> &'static str {
    if at.starts_with("ingress") {
        "ingress"
    } else {
        "egress"
    }
}

/// Splits overlapping ranges of one protocol at their boundaries, merges
/// their rules, appends wildcard rules, and checks one L7 type per port.
fn build_port_map(
    name: &str,
    field: &str,
    entries: &[Entry],
    protocol: Protocol,
) -> Result<PortMap, PolicyError> {
    let entries: Vec<&Entry> = entries.iter().filter(|e| e.protocol == protocol).collect();
    let wildcard_rules: Vec<Arc<Rule>> = entries
        .iter()
        .filter(|e| e.range.is_none())
        .flat_map(|e| e.rules.iter().cloned())
        .collect();
    let has_wildcard = entries.iter().any(|e| e.range.is_none());
    let mut bounds: Vec<u32> = Vec::new();
    for (a, b) in entries.iter().filter_map(|e| e.range) {
        bounds.push(a as u32);
        bounds.push(b as u32 + 1);
    }
    bounds.sort_unstable();
    bounds.dedup();
    let mut map = PortMap::default();
    let check = |rules: Vec<Arc<Rule>>, label: String| -> Result<Arc<PortRules>, PolicyError> {
        let pr = PortRules::new(rules);
        let mut kinds = pr
            .rules
            .iter()
            .map(|r| r.l7.kind())
            .filter(|k| *k != L7Kind::None);
        if let Some(first) = kinds.next() {
            if let Some(other) = kinds.find(|k| *k != first) {
                return Err(PolicyError::policy(
                    name,
                    format!("{field} (port {label})"),
                    format!("{first:?} and {other:?} rules on the same port: one L7 type per port"),
                ));
            }
        }
        Ok(Arc::new(pr))
    };
    for w in bounds.windows(2) {
        let (lo, hi) = (w[0] as u16, (w[1] - 1) as u16);
        let mut rules: Vec<Arc<Rule>> = entries
            .iter()
            .filter(|e| e.range.is_some_and(|(a, b)| a <= lo && hi <= b))
            .flat_map(|e| e.rules.iter().cloned())
            .collect();
        let covered = entries
            .iter()
            .any(|e| e.range.is_some_and(|(a, b)| a <= lo && hi <= b));
        if !covered {
            continue;
        }
        rules.extend(wildcard_rules.iter().cloned());
        let label = if lo == hi {
            lo.to_string()
        } else {
            format!("{lo}-{hi}")
        };
        map.ranges.push((lo, hi, check(rules, label)?));
    }
    if has_wildcard {
        map.wildcard = Some(check(wildcard_rules, "*".into())?);
    }
    Ok(map)
}
