//! Label selectors as the agent evaluates them against security identities.
//!
//! Label keys carry a source: `k8s:` labels come from pods (our endpoints and
//! configured identities), `reserved:` labels from the reserved identities. A
//! selector key without a source (or with `any:`) matches a label of any
//! source. CIDR identities carry a `cidr:` label that a CIDR requirement
//! matches by containment (the agent's longest-prefix label matching), plus
//! the `reserved:world*` label, so `world` selects them.

use std::collections::BTreeMap;

use ipnet::IpNet;

/// A `toFQDNs` selector, normalised so that selectors matching the same
/// names compare equal: lower-cased, without a trailing dot, an all-`*`
/// pattern as `*`, and a pattern without `*` as the name it matches.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum FqdnKey {
    Name(String),
    Pattern(String),
}

/// The namespace label every pod carries.
pub(crate) const NAMESPACE_LABEL: &str = "io.kubernetes.pod.namespace";
/// The cluster label every pod carries; the `cluster` entity selects on it.
pub(crate) const CLUSTER_LABEL: &str = "io.cilium.k8s.policy.cluster";
/// The cluster name this translator assumes (Cilium's default).
pub(crate) const CLUSTER_NAME: &str = "default";
/// Namespace labels (`io.cilium.k8s.namespace.labels.*`) are not modelled.
pub(crate) const NAMESPACE_LABELS_PREFIX: &str = "io.cilium.k8s.namespace.labels.";

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Source {
    Any,
    K8s,
    Reserved,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Op {
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

/// One requirement of a selector; all requirements must hold.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Req {
    Label {
        source: Source,
        key: String,
        op: Op,
        values: Vec<String>,
    },
    /// The identity's CIDR label lies inside `prefix` (`present`), or not.
    Cidr { prefix: IpNet, present: bool },
    /// `0.0.0.0/0` or `::/0` in a CIDR rule: `reserved:world-ipv4`/`-ipv6`
    /// in dual stack, `reserved:world` otherwise (the agent's `cidr.go`).
    World { v6: bool },
    /// A `toFQDNs` selector: selects the identity allocated for it (the
    /// agent's `fqdn:` label).
    Fqdn(FqdnKey),
}

/// A normalized selector: requirements sorted and deduplicated, so equal
/// selectors compare equal (the agent shares one cached selector between
/// identical selectors). No requirements selects everything.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Selector {
    reqs: Vec<Req>,
}

/// The labels of one security identity.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct IdLabels {
    /// (source, key) → value. Only `K8s` and `Reserved` occur here.
    pub labels: BTreeMap<(Source, String), String>,
    /// The prefix of a CIDR identity.
    pub cidr: Option<IpNet>,
    /// The selector of an FQDN identity.
    pub fqdn: Option<FqdnKey>,
}

impl IdLabels {
    /// Pod labels: the given k8s labels plus namespace and cluster.
    pub fn pod(labels: &BTreeMap<String, String>, namespace: &str) -> Self {
        let mut out = IdLabels::default();
        out.labels.insert(
            (Source::K8s, CLUSTER_LABEL.to_string()),
            CLUSTER_NAME.to_string(),
        );
        for (k, v) in labels {
            out.labels.insert((Source::K8s, k.clone()), v.clone());
        }
        out.labels.insert(
            (Source::K8s, NAMESPACE_LABEL.to_string()),
            namespace.to_string(),
        );
        out
    }

    pub fn reserved(names: &[&str]) -> Self {
        let mut out = IdLabels::default();
        for n in names {
            out.labels
                .insert((Source::Reserved, n.to_string()), String::new());
        }
        out
    }

    fn values<'a>(&'a self, source: Source, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.labels
            .iter()
            .filter(move |((s, k), _)| k == key && (source == Source::Any || source == *s))
            .map(|(_, v)| v.as_str())
    }
}

impl Req {
    pub fn label(source: Source, key: &str, op: Op, values: &[&str]) -> Req {
        let mut values: Vec<String> = values.iter().map(|v| v.to_string()).collect();
        values.sort();
        values.dedup();
        Req::Label {
            source,
            key: key.to_string(),
            op,
            values,
        }
    }

    fn matches(&self, id: &IdLabels, dual_stack: bool) -> bool {
        match self {
            Req::Label {
                source,
                key,
                op,
                values,
            } => {
                let mut found = id.values(*source, key).peekable();
                match op {
                    Op::Exists => found.peek().is_some(),
                    Op::DoesNotExist => found.peek().is_none(),
                    Op::In => found.any(|v| values.iter().any(|w| w == v)),
                    Op::NotIn => !found.any(|v| values.iter().any(|w| w == v)),
                }
            }
            Req::Cidr { prefix, present } => {
                let inside = id.cidr.is_some_and(|c| contains(prefix, &c));
                inside == *present
            }
            Req::World { v6 } => {
                let name = match (dual_stack, v6) {
                    (false, _) => "world",
                    (true, false) => "world-ipv4",
                    (true, true) => "world-ipv6",
                };
                id.values(Source::Reserved, name).next().is_some()
            }
            Req::Fqdn(key) => id.fqdn.as_ref() == Some(key),
        }
    }
}

/// Whether `outer` contains all of `inner` (same family, shorter or equal prefix).
pub(crate) fn contains(outer: &IpNet, inner: &IpNet) -> bool {
    outer.prefix_len() <= inner.prefix_len() && outer.contains(&inner.network())
}

impl Selector {
    pub fn new(mut reqs: Vec<Req>) -> Self {
        reqs.sort();
        reqs.dedup();
        Selector { reqs }
    }

    pub fn wildcard() -> Self {
        Selector::default()
    }

    /// `source:name=""`, the form of reserved labels.
    pub fn reserved(name: &str) -> Self {
        Selector::new(vec![Req::label(Source::Reserved, name, Op::In, &[""])])
    }

    pub fn is_wildcard(&self) -> bool {
        self.reqs.is_empty()
    }

    pub fn matches(&self, id: &IdLabels, dual_stack: bool) -> bool {
        self.reqs.iter().all(|r| r.matches(id, dual_stack))
    }

    pub fn with(mut self, req: Req) -> Self {
        self.reqs.push(req);
        Selector::new(self.reqs)
    }

    /// Whether some label requirement uses `key` with a source that would
    /// match a k8s label (the agent's `HasKey` for `k8s:` and `any:`).
    pub fn has_pod_key(&self, key: &str) -> bool {
        self.label_reqs()
            .any(|(s, k)| k == key && matches!(s, Source::K8s | Source::Any))
    }

    pub fn has_source(&self, source: Source) -> bool {
        self.label_reqs().any(|(s, _)| s == source)
    }

    pub fn has_reserved_key(&self, key: &str) -> bool {
        self.label_reqs()
            .any(|(s, k)| s == Source::Reserved && k == key)
    }

    fn label_reqs(&self) -> impl Iterator<Item = (Source, &str)> {
        self.reqs.iter().filter_map(|r| match r {
            Req::Label { source, key, .. } => Some((*source, key.as_str())),
            Req::Cidr { .. } | Req::World { .. } | Req::Fqdn(_) => None,
        })
    }

    /// The namespaces a `matchLabels`-style namespace requirement names.
    pub fn namespace_values(&self) -> Vec<&str> {
        self.reqs
            .iter()
            .filter_map(|r| match r {
                Req::Label {
                    source: Source::K8s | Source::Any,
                    key,
                    op: Op::In,
                    values,
                } if key == NAMESPACE_LABEL => Some(values.iter().map(String::as_str)),
                _ => None,
            })
            .flatten()
            .collect()
    }
}

/// The policy entities and the selectors each stands for.
pub(crate) fn entity_selectors(entity: &str) -> Option<Vec<Selector>> {
    let reserved = |names: &[&str]| names.iter().map(|n| Selector::reserved(n)).collect();
    Some(match entity {
        "all" => vec![Selector::wildcard()],
        "world" => reserved(&["world", "world-ipv4", "world-ipv6"]),
        "world-ipv4" => reserved(&["world-ipv4"]),
        "world-ipv6" => reserved(&["world-ipv6"]),
        "host" => reserved(&["host"]),
        "init" => reserved(&["init"]),
        "ingress" => reserved(&["ingress"]),
        "remote-node" => reserved(&["remote-node"]),
        "health" => reserved(&["health"]),
        "unmanaged" => reserved(&["unmanaged"]),
        "none" => reserved(&["none"]),
        "kube-apiserver" => reserved(&["kube-apiserver"]),
        "cluster" => {
            let mut v: Vec<Selector> = reserved(&[
                "host",
                "remote-node",
                "init",
                "ingress",
                "health",
                "unmanaged",
                "kube-apiserver",
            ]);
            v.push(Selector::new(vec![Req::label(
                Source::K8s,
                CLUSTER_LABEL,
                Op::In,
                &[CLUSTER_NAME],
            )]));
            v
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(pairs: &[(&str, &str)], ns: &str) -> IdLabels {
        let m = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        IdLabels::pod(&m, ns)
    }

    #[test]
    fn operators_follow_kubernetes_semantics() {
        let id = pod(&[("org", "empire"), ("class", "deathstar")], "default");
        let table: &[(Req, bool)] = &[
            (
                Req::label(Source::Any, "org", Op::In, &["empire", "x"]),
                true,
            ),
            (Req::label(Source::K8s, "org", Op::In, &["alliance"]), false),
            (
                Req::label(Source::Any, "org", Op::NotIn, &["alliance"]),
                true,
            ),
            (Req::label(Source::Any, "missing", Op::NotIn, &["a"]), true),
            (Req::label(Source::Any, "class", Op::Exists, &[]), true),
            (
                Req::label(Source::Any, "class", Op::DoesNotExist, &[]),
                false,
            ),
            (Req::label(Source::Reserved, "org", Op::Exists, &[]), false),
            (
                Req::label(Source::K8s, NAMESPACE_LABEL, Op::In, &["default"]),
                true,
            ),
        ];
        for (req, want) in table {
            assert_eq!(
                Selector::new(vec![req.clone()]).matches(&id, false),
                *want,
                "{req:?}"
            );
        }
        assert!(Selector::wildcard().matches(&id, false));
    }

    #[test]
    fn cidr_requirements_match_by_containment() {
        let mut id = IdLabels::reserved(&["world"]);
        id.cidr = Some("10.1.0.0/16".parse().unwrap());
        let inside = Selector::new(vec![Req::Cidr {
            prefix: "10.0.0.0/8".parse().unwrap(),
            present: true,
        }]);
        assert!(inside.matches(&id, false));
        let except = inside.clone().with(Req::Cidr {
            prefix: "10.1.0.0/16".parse().unwrap(),
            present: false,
        });
        assert!(!except.matches(&id, false));
        assert!(entity_selectors("world").unwrap()[0].matches(&id, false));
        let all_v4 = Selector::new(vec![Req::World { v6: false }]);
        assert!(all_v4.matches(&id, false));
        assert!(!all_v4.matches(&id, true));
        let mut dual = IdLabels::reserved(&["world-ipv4"]);
        dual.cidr = id.cidr;
        assert!(all_v4.matches(&dual, true));
    }

    #[test]
    fn entities_map_to_reserved_labels() {
        let apiserver = IdLabels::reserved(&["kube-apiserver", "remote-node"]);
        assert!(entity_selectors("remote-node").unwrap()[0].matches(&apiserver, false));
        assert!(entity_selectors("unknown").is_none());
        let cluster = entity_selectors("cluster").unwrap();
        assert!(cluster.iter().any(|s| s.matches(&pod(&[], "ns"), false)));
        let world = IdLabels::reserved(&["world"]);
        assert!(!cluster.iter().any(|s| s.matches(&world, false)));
    }
}
