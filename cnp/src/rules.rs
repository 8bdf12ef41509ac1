//! Parsing and validating one policy rule (`spec` / `specs[i]`) into
//! [`spec::Rule`](crate::spec::Rule): selectors namespaced as the agent's
//! `ParseToCiliumRule` does, CIDRs normalized, `toFQDNs` selectors
//! normalized (see [`crate::dns`]), ports and L7 rules checked the way
//! `rule_validation.go` and `http.go` check them.

use std::collections::BTreeSet;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::error::{join, Fault};
use crate::ports::parse_port_rule;
use crate::selector::FqdnKey;
use crate::selector::{
    entity_selectors, Op, Req, Selector, Source, NAMESPACE_LABEL, NAMESPACE_LABELS_PREFIX,
};
use crate::spec::{PeerRule, Rule};
use crate::yaml::Node;

/// What a rule needs to know about the document it is in.
pub(crate) struct RuleCtx<'a> {
    /// The policy namespace; `None` for a clusterwide policy.
    pub namespace: Option<&'a str>,
    /// Every CIDR (and `except` CIDR) seen, for CIDR identity allocation.
    pub cidrs: &'a mut BTreeSet<IpNet>,
    /// Every `toFQDNs` selector seen, for FQDN identity allocation.
    pub fqdns: &'a mut BTreeSet<FqdnKey>,
}

/// Which of the four rule lists a peer rule comes from.
#[derive(Clone, Copy)]
struct Kind {
    ingress: bool,
    deny: bool,
}

pub(crate) fn parse_rule(node: Node<'_>, ctx: &mut RuleCtx<'_>) -> Result<Rule, Fault> {
    let f = node.fields(
        &[
            "endpointSelector",
            "ingress",
            "ingressDeny",
            "egress",
            "egressDeny",
            "labels",
            "description",
            "enableDefaultDeny",
        ],
        &["nodeSelector", "log"],
    )?;
    let raw_subject = parse_label_selector(f.require("endpointSelector")?)?;
    let subject = subject_selector(raw_subject, ctx.namespace, &f.path_of("endpointSelector"))?;
    let matches_init = subject.has_reserved_key("init");
    if let Some(labels) = f.get("labels") {
        for (p, v) in labels.list()? {
            let l = Node::new(v, &p).fields(&["key", "value", "source"], &[])?;
            l.require("key")?.str()?;
            for key in ["value", "source"] {
                if let Some(n) = l.get(key) {
                    n.str()?;
                }
            }
        }
    }
    if let Some(d) = f.get("description") {
        d.str()?;
    }

    let mut lists = Vec::with_capacity(4);
    for (key, ingress, deny) in [
        ("ingress", true, false),
        ("ingressDeny", true, true),
        ("egress", false, false),
        ("egressDeny", false, true),
    ] {
        let mut out = Vec::new();
        if let Some(n) = f.get(key) {
            for (p, v) in n.list()? {
                let kind = Kind { ingress, deny };
                out.push(parse_peer_rule(Node::new(v, &p), kind, matches_init, ctx)?);
            }
        }
        lists.push(out);
    }
    let [ingress, ingress_deny, egress, egress_deny]: [Vec<PeerRule>; 4] =
        lists.try_into().expect("four lists");
    if ingress.is_empty() && ingress_deny.is_empty() && egress.is_empty() && egress_deny.is_empty()
    {
        return Err(Fault::invalid(
            f.path(),
            "rule must have at least one of ingress, ingressDeny, egress, egressDeny",
        ));
    }

    let mut default_deny_ingress = !ingress.is_empty() || !ingress_deny.is_empty();
    let mut default_deny_egress = !egress.is_empty() || !egress_deny.is_empty();
    if let Some(d) = f.get("enableDefaultDeny") {
        let d = d.fields(&["ingress", "egress"], &[])?;
        if let Some(b) = d.get("ingress") {
            default_deny_ingress = b.bool()?;
        }
        if let Some(b) = d.get("egress") {
            default_deny_egress = b.bool()?;
        }
    }
    Ok(Rule {
        subject,
        ingress,
        ingress_deny,
        egress,
        egress_deny,
        default_deny_ingress,
        default_deny_egress,
    })
}

fn parse_peer_rule(
    node: Node<'_>,
    kind: Kind,
    matches_init: bool,
    ctx: &mut RuleCtx<'_>,
) -> Result<PeerRule, Fault> {
    let (eps, cidr, cidr_set, entities) = if kind.ingress {
        ("fromEndpoints", "fromCIDR", "fromCIDRSet", "fromEntities")
    } else {
        ("toEndpoints", "toCIDR", "toCIDRSet", "toEntities")
    };
    // `toFQDNs` exists on egress allow rules only; the agent's deny rules
    // have no such field. It is read here to say so.
    let fqdns = if kind.ingress { None } else { Some("toFQDNs") };
    let known: Vec<&str> = [eps, cidr, cidr_set, entities, "toPorts"]
        .into_iter()
        .chain(fqdns)
        .collect();
    let unsupported: &[&str] = match (kind.ingress, kind.deny) {
        (true, false) => &[
            "fromRequires",
            "fromNodes",
            "fromGroups",
            "icmps",
            "authentication",
        ],
        (true, true) => &["fromRequires", "fromNodes", "fromGroups", "icmps"],
        (false, false) => &[
            "toRequires",
            "toServices",
            "toGroups",
            "toNodes",
            "icmps",
            "authentication",
        ],
        (false, true) => &["toRequires", "toServices", "toGroups", "toNodes", "icmps"],
    };
    let f = node.fields(&known, unsupported)?;
    if kind.deny {
        if let Some(n) = f.get("toFQDNs") {
            return Err(Fault::invalid(
                n.path,
                "not allowed in egressDeny (the agent's deny rules have no toFQDNs)",
            ));
        }
    }

    // The agent rejects rules that combine two kinds of L3 peers.
    let present: Vec<&str> = [eps, cidr, cidr_set, entities]
        .into_iter()
        .chain(fqdns)
        .filter(|k| f.get(k).is_some())
        .collect();
    if present.len() > 1 {
        return Err(Fault::invalid(
            node.path,
            format!(
                "combining {} and {} is not supported",
                present[0], present[1]
            ),
        ));
    }

    let mut peers = Vec::new();
    if let Some(n) = f.get(eps) {
        for (p, v) in non_empty(n)? {
            let raw = parse_label_selector(Node::new(v, &p))?;
            peers.push(peer_selector(raw, ctx.namespace, matches_init));
        }
    }
    if let Some(n) = f.get(entities) {
        for (p, v) in non_empty(n)? {
            let name = Node::new(v, &p).str()?;
            let sels = entity_selectors(name)
                .ok_or_else(|| Fault::invalid(&p, format!("unknown entity {name:?}")))?;
            peers.extend(sels);
        }
    }
    if let Some(n) = f.get(cidr) {
        for (p, v) in non_empty(n)? {
            let net =
                parse_cidr(Node::new(v, &p).str()?, true).map_err(|m| Fault::invalid(&p, m))?;
            peers.extend(cidr_slice_selectors(net, ctx.cidrs));
        }
    }
    if let Some(n) = f.get(cidr_set) {
        for (p, v) in non_empty(n)? {
            peers.push(parse_cidr_rule(Node::new(v, &p), ctx.cidrs)?);
        }
    }
    if let Some(n) = fqdns.and_then(|k| f.get(k)) {
        for (p, v) in non_empty(n)? {
            let key = crate::names::parse_fqdn(Node::new(v, &p))?;
            ctx.fqdns.insert(key.clone());
            peers.push(Selector::new(vec![Req::Fqdn(key)]));
        }
    }

    let mut to_ports = Vec::new();
    if let Some(n) = f.get("toPorts") {
        for (p, v) in non_empty(n)? {
            let port_rule = Node::new(v, &p);
            to_ports.push(parse_port_rule(
                port_rule,
                kind.ingress,
                kind.deny,
                ctx.namespace,
            )?);
        }
    }
    // No peer field at all but ports: the rule applies to every peer.
    if present.is_empty() && !to_ports.is_empty() {
        peers.push(Selector::wildcard());
    }
    Ok(PeerRule {
        path: node.path.to_string(),
        peers,
        to_ports,
    })
}

/// A list that must not be empty: the agent treats an empty peer list like
/// an absent one, which with `toPorts` would allow every peer.
fn non_empty<'a>(n: Node<'a>) -> Result<Vec<(String, &'a serde_yaml_ng::Value)>, Fault> {
    let items = n.list()?;
    if items.is_empty() {
        let hint = if n.path.ends_with("Endpoints") {
            "empty list; omit the field, or use [{}] to select all"
        } else {
            "empty list; omit the field"
        };
        return Err(Fault::invalid(n.path, hint));
    }
    Ok(items)
}

/// `matchLabels` / `matchExpressions` as written, keys parsed for a source.
pub(crate) fn parse_label_selector(node: Node<'_>) -> Result<Selector, Fault> {
    let f = node.fields(&["matchLabels", "matchExpressions"], &[])?;
    let mut reqs = Vec::new();
    if let Some(m) = f.get("matchLabels") {
        for (k, v) in m.string_map()? {
            let (source, key) = parse_key(&k).map_err(|fault| fault.at(&join(m.path, &k)))?;
            reqs.push(Req::label(source, &key, Op::In, &[v.as_str()]));
        }
    }
    if let Some(list) = f.get("matchExpressions") {
        for (p, v) in list.list()? {
            let e = Node::new(v, &p).fields(&["key", "operator", "values"], &[])?;
            let key_node = e.require("key")?;
            let (source, key) = parse_key(key_node.str()?).map_err(|f| f.at(key_node.path))?;
            let op_node = e.require("operator")?;
            let op = match op_node.str()? {
                "In" => Op::In,
                "NotIn" => Op::NotIn,
                "Exists" => Op::Exists,
                "DoesNotExist" => Op::DoesNotExist,
                other => {
                    return Err(Fault::invalid(
                        op_node.path,
                        format!("unknown operator {other:?} (In, NotIn, Exists, DoesNotExist)"),
                    ))
                }
            };
            let values = match e.get("values") {
                Some(v) => v.strings()?,
                None => Vec::new(),
            };
            let needs_values = matches!(op, Op::In | Op::NotIn);
            if needs_values == values.is_empty() {
                let msg = if needs_values {
                    "values must be non-empty for In and NotIn"
                } else {
                    "values must be empty for Exists and DoesNotExist"
                };
                return Err(Fault::invalid(e.path_of("values"), msg));
            }
            let refs: Vec<&str> = values.iter().map(String::as_str).collect();
            reqs.push(Req::label(source, &key, op, &refs));
        }
    }
    Ok(Selector::new(reqs))
}

/// A fault whose path is filled in by the caller.
struct KeyFault(crate::error::Problem);

impl KeyFault {
    fn at(self, path: &str) -> Fault {
        Fault::new(path, self.0)
    }
}

/// `k8s:app`, `any:app`, `reserved:host` or plain `app` (any source).
fn parse_key(raw: &str) -> Result<(Source, String), KeyFault> {
    use crate::error::Problem;
    let (source, key) = match raw.split_once(':') {
        None => (Source::Any, raw),
        Some(("k8s", k)) => (Source::K8s, k),
        Some(("any", k)) => (Source::Any, k),
        Some(("reserved", k)) => (Source::Reserved, k),
        Some((src, _)) => {
            return Err(KeyFault(Problem::UnsupportedBecause(format!(
                "label source {src:?}; use k8s, any or reserved"
            ))))
        }
    };
    if key.is_empty() {
        return Err(KeyFault(Problem::Invalid("empty label key".into())));
    }
    if key.starts_with(NAMESPACE_LABELS_PREFIX) {
        return Err(KeyFault(Problem::UnsupportedBecause(
            "namespace labels are not part of the inventory".into(),
        )));
    }
    Ok((source, key.to_string()))
}

/// The subject selector: a CNP only ever selects its own namespace.
fn subject_selector(sel: Selector, ns: Option<&str>, path: &str) -> Result<Selector, Fault> {
    let Some(ns) = ns else { return Ok(sel) };
    if let Some(other) = sel.namespace_values().into_iter().find(|v| *v != ns) {
        return Err(Fault::invalid(
            path,
            format!("selects namespace {other:?}, but the policy is in namespace {ns:?}"),
        ));
    }
    Ok(sel.with(Req::label(Source::K8s, NAMESPACE_LABEL, Op::In, &[ns])))
}

/// A peer selector, restricted as the agent's `getEndpointSelector` does:
/// reserved selectors are left alone; without a namespace key a CNP peer is
/// limited to the policy's namespace and a CCNP peer to pods (any namespace).
fn peer_selector(sel: Selector, ns: Option<&str>, matches_init: bool) -> Selector {
    if sel.has_source(Source::Reserved) || sel.has_pod_key(NAMESPACE_LABEL) {
        return sel;
    }
    match ns {
        Some(ns) => sel.with(Req::label(Source::K8s, NAMESPACE_LABEL, Op::In, &[ns])),
        None if matches_init => sel,
        None => sel.with(Req::label(Source::K8s, NAMESPACE_LABEL, Op::Exists, &[])),
    }
}

/// Parses a CIDR; `bare_ip_ok` accepts a plain address as a host prefix
/// (true in `fromCIDR`/`toCIDR`, false in a CIDR set's `cidr`).
pub(crate) fn parse_cidr(s: &str, bare_ip_ok: bool) -> Result<IpNet, String> {
    if let Ok(net) = s.parse::<IpNet>() {
        return Ok(net.trunc());
    }
    if bare_ip_ok {
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(IpNet::from(ip));
        }
    }
    Err(format!("invalid CIDR {s:?}"))
}

fn is_all(net: &IpNet) -> bool {
    net.prefix_len() == 0
}

/// `fromCIDR`/`toCIDR` entry: a `cidr:` selector, plus the world selector
/// for a `/0` (the agent's `CIDRSlice.GetAsEndpointSelectors`).
fn cidr_slice_selectors(net: IpNet, cidrs: &mut BTreeSet<IpNet>) -> Vec<Selector> {
    let mut out = vec![Selector::new(vec![Req::Cidr {
        prefix: net,
        present: true,
    }])];
    if is_all(&net) {
        out.push(Selector::new(vec![Req::World {
            v6: matches!(net, IpNet::V6(_)),
        }]));
    } else {
        cidrs.insert(net);
    }
    out
}

/// `fromCIDRSet`/`toCIDRSet` entry: the CIDR (or world, for a `/0`) minus
/// each `except` prefix, which LPM on the peer address carves out.
fn parse_cidr_rule(node: Node<'_>, cidrs: &mut BTreeSet<IpNet>) -> Result<Selector, Fault> {
    let f = node.fields(&["cidr", "except"], &["cidrGroupRef", "cidrGroupSelector"])?;
    let c = f.require("cidr")?;
    let net = parse_cidr(c.str()?, false).map_err(|m| Fault::invalid(c.path, m))?;
    let mut reqs = vec![if is_all(&net) {
        Req::World {
            v6: matches!(net, IpNet::V6(_)),
        }
    } else {
        cidrs.insert(net);
        Req::Cidr {
            prefix: net,
            present: true,
        }
    }];
    if let Some(except) = f.get("except") {
        for (p, v) in except.list()? {
            let e =
                parse_cidr(Node::new(v, &p).str()?, false).map_err(|m| Fault::invalid(&p, m))?;
            if !crate::selector::contains(&net, &e) {
                return Err(Fault::invalid(
                    &p,
                    format!("{e} is not contained in cidr {net}"),
                ));
            }
            if !is_all(&e) {
                cidrs.insert(e);
            }
            reqs.push(Req::Cidr {
                prefix: e,
                present: false,
            });
        }
    }
    Ok(Selector::new(reqs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel(yaml: &str) -> Selector {
        let v: serde_yaml_ng::Value = serde_yaml_ng::from_str(yaml).unwrap();
        parse_label_selector(Node::new(&v, "s")).unwrap()
    }

    #[test]
    fn peers_are_namespaced_like_the_agent() {
        let ns_req = |op, vals: &[&str]| Req::label(Source::K8s, NAMESPACE_LABEL, op, vals);
        let plain = sel("{matchLabels: {org: empire}}");
        let cnp = peer_selector(plain.clone(), Some("a"), false);
        assert_eq!(cnp, plain.clone().with(ns_req(Op::In, &["a"])));
        let ccnp = peer_selector(plain.clone(), None, false);
        assert_eq!(ccnp, plain.clone().with(ns_req(Op::Exists, &[])));
        assert_eq!(peer_selector(plain.clone(), None, true), plain);
        let explicit = sel("{matchLabels: {k8s:io.kubernetes.pod.namespace: b}}");
        assert_eq!(peer_selector(explicit.clone(), Some("a"), false), explicit);
        let reserved = sel("{matchLabels: {reserved:host: ''}}");
        assert_eq!(peer_selector(reserved.clone(), Some("a"), false), reserved);
    }

    #[test]
    fn subject_rejects_a_foreign_namespace() {
        let s = sel("{matchLabels: {io.kubernetes.pod.namespace: b}}");
        let err = subject_selector(s, Some("a"), "spec.endpointSelector").unwrap_err();
        assert!(matches!(err.problem, crate::error::Problem::Invalid(_)));
    }

    #[test]
    fn cidrs_normalize() {
        assert_eq!(
            parse_cidr("10.1.2.3/8", false).unwrap().to_string(),
            "10.0.0.0/8"
        );
        assert_eq!(
            parse_cidr("10.1.2.3", true).unwrap().to_string(),
            "10.1.2.3/32"
        );
        assert!(parse_cidr("10.1.2.3", false).is_err());
        assert!(parse_cidr("10.0.0.0/33", true).is_err());
    }
}
