//! The identity universe the selectors are evaluated against: the reserved
//! identities, the configured remote identities, the local endpoints'
//! identities, one local-scope CIDR identity per prefix named in policy and,
//! after those, one local-scope identity per `toFQDNs` selector.
//!
//! An FQDN identity owns no addresses here: the proxy gives it the
//! addresses the DNS proxy learns for the selector's names. It carries the
//! world label (both `world-ipv4` and `world-ipv6` in dual stack, as the
//! learnt addresses may be of either family), so rules that allow the
//! world allow it too, as in the agent, where learnt addresses get
//! `fqdn:` labels next to `reserved:world`.
//!
//! Endpoint identities not given in the inventory are allocated from the
//! endpoint's namespace and labels: endpoints with equal labels share an
//! identity (as with the agent's label-based allocation), and a configured
//! identity with the same namespace and labels is reused. New numbers come
//! from a stable hash into `10000..60000`, probing upward past numbers in
//! use, so adding an endpoint does not renumber the others.

use std::collections::{BTreeMap, BTreeSet};

use ipnet::IpNet;
use npds::proto::NetworkPolicyHosts;

use crate::error::{index, join, CnpError, Fault};
use crate::inventory::{check_id, check_labels, check_named_ports, Inventory};
use crate::parse::PolicyDoc;
use crate::selector::FqdnKey;
use crate::selector::{IdLabels, Selector};

/// First local-scope (CIDR) identity: the agent's `MinLocalIdentity`, 1<<24 | 1.
pub const FIRST_CIDR_IDENTITY: u32 = (1 << 24) | 1;
/// Range for allocated endpoint identities: `ALLOC_BASE .. ALLOC_BASE + ALLOC_SPAN`.
pub const ALLOC_BASE: u32 = 10_000;
pub const ALLOC_SPAN: u32 = 50_000;

/// Reserved identities and their labels (`pkg/identity/numericidentity.go`).
const RESERVED: &[(u32, &[&str])] = &[
    (1, &["host"]),
    (2, &["world"]),
    (3, &["unmanaged"]),
    (4, &["health"]),
    (5, &["init"]),
    (6, &["remote-node"]),
    (7, &["kube-apiserver", "remote-node"]),
    (8, &["ingress"]),
    (9, &["world-ipv4"]),
    (10, &["world-ipv6"]),
];

pub(crate) struct IdentityInfo {
    pub labels: IdLabels,
    /// Addresses this identity owns in NPHDS.
    pub addrs: BTreeSet<IpNet>,
}

pub(crate) struct Universe {
    pub ids: BTreeMap<u32, IdentityInfo>,
    /// The identity of each `toFQDNs` selector.
    pub fqdn_ids: BTreeMap<FqdnKey, u32>,
    pub endpoint_ids: BTreeMap<u64, u32>,
    /// Both IPv4 and IPv6 endpoint addresses exist.
    pub dual_stack: bool,
}

/// Namespace and labels: what a label-based identity is keyed by.
type LabelKey = (String, BTreeMap<String, String>);

impl Universe {
    pub fn build(inv: &Inventory, docs: &[PolicyDoc]) -> Result<Universe, CnpError> {
        build(inv, docs).map_err(Fault::in_inventory)
    }

    /// The identities a selector selects, ascending.
    pub fn select(&self, sel: &Selector) -> Vec<u32> {
        self.ids
            .iter()
            .filter(|(_, info)| sel.matches(&info.labels, self.dual_stack))
            .map(|(id, _)| *id)
            .collect()
    }

    pub fn selects(&self, sel: &Selector, id: u32) -> bool {
        self.ids
            .get(&id)
            .is_some_and(|info| sel.matches(&info.labels, self.dual_stack))
    }

    /// NPHDS resources: every identity that owns addresses.
    pub fn hosts(&self) -> Vec<NetworkPolicyHosts> {
        self.ids
            .iter()
            .filter(|(_, info)| !info.addrs.is_empty())
            .map(|(id, info)| NetworkPolicyHosts {
                policy: u64::from(*id),
                host_addresses: info.addrs.iter().map(IpNet::to_string).collect(),
            })
            .collect()
    }
}

/// FNV-1a: a stable hash (std's hasher is randomly seeded).
fn fnv1a(bytes: impl IntoIterator<Item = u8>) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in bytes {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

fn label_hash(key: &LabelKey) -> u32 {
    let mut bytes = key.0.as_bytes().to_vec();
    for (k, v) in &key.1 {
        bytes.push(0);
        bytes.extend_from_slice(k.as_bytes());
        bytes.push(b'=');
        bytes.extend_from_slice(v.as_bytes());
    }
    fnv1a(bytes)
}

fn build(inv: &Inventory, docs: &[PolicyDoc]) -> Result<Universe, Fault> {
    let mut ids: BTreeMap<u32, IdentityInfo> = BTreeMap::new();
    for (id, names) in RESERVED {
        ids.insert(
            *id,
            IdentityInfo {
                labels: IdLabels::reserved(names),
                addrs: BTreeSet::new(),
            },
        );
    }
    let mut claims = Claims::default();
    let mut owner: BTreeMap<IpNet, (u32, String)> = BTreeMap::new();

    let mut configured = BTreeSet::new();
    for (i, ident) in inv.identities.iter().enumerate() {
        let path = index("identities", i);
        check_id(ident.id, &join(&path, "id"))?;
        check_labels(&ident.labels, &ident.namespace, &path)?;
        if !configured.insert(ident.id) {
            return Err(Fault::invalid(
                join(&path, "id"),
                format!("duplicate identity {}", ident.id),
            ));
        }
        claims.claim(
            ident.id,
            (ident.namespace.clone(), ident.labels.clone()),
            &path,
        )?;
        let info = ids.entry(ident.id).or_insert_with(|| IdentityInfo {
            labels: IdLabels::pod(&ident.labels, &ident.namespace),
            addrs: BTreeSet::new(),
        });
        for (j, net) in ident.cidrs.iter().enumerate() {
            let net = net.trunc();
            own(&mut owner, net, ident.id, &index(&join(&path, "cidrs"), j))?;
            info.addrs.insert(net);
        }
    }

    let mut seen_eps = BTreeSet::new();
    for (i, ep) in inv.endpoints.iter().enumerate() {
        let path = index("endpoints", i);
        if !seen_eps.insert(ep.id) {
            return Err(Fault::invalid(
                join(&path, "id"),
                format!("duplicate endpoint id {}", ep.id),
            ));
        }
        if ep.ips.is_empty() {
            return Err(Fault::invalid(
                join(&path, "ips"),
                "at least one address is required",
            ));
        }
        check_labels(&ep.labels, &ep.namespace, &path)?;
        check_named_ports(ep, &path)?;
        if let Some(id) = ep.identity {
            check_id(id, &join(&path, "identity"))?;
            claims.claim(id, (ep.namespace.clone(), ep.labels.clone()), &path)?;
        }
    }

    // Allocate identities for label sets that have none, in a stable order.
    let mut used: BTreeSet<u32> = claims.keys.keys().copied().collect();
    let mut by_labels = claims.by_labels;
    let wanted: BTreeSet<LabelKey> = inv
        .endpoints
        .iter()
        .filter(|ep| ep.identity.is_none())
        .map(|ep| (ep.namespace.clone(), ep.labels.clone()))
        .filter(|k| !by_labels.contains_key(k))
        .collect();
    for key in wanted {
        if used.len() as u32 >= ALLOC_SPAN {
            return Err(Fault::invalid("endpoints", "identity range exhausted"));
        }
        let mut n = label_hash(&key) % ALLOC_SPAN;
        while used.contains(&(ALLOC_BASE + n)) {
            n = (n + 1) % ALLOC_SPAN;
        }
        used.insert(ALLOC_BASE + n);
        by_labels.insert(key, ALLOC_BASE + n);
    }

    let mut endpoint_ids = BTreeMap::new();
    let (mut v4, mut v6) = (false, false);
    for (i, ep) in inv.endpoints.iter().enumerate() {
        let key = (ep.namespace.clone(), ep.labels.clone());
        let id = ep.identity.unwrap_or_else(|| by_labels[&key]);
        endpoint_ids.insert(ep.id, id);
        let info = ids.entry(id).or_insert_with(|| IdentityInfo {
            labels: IdLabels::pod(&ep.labels, &ep.namespace),
            addrs: BTreeSet::new(),
        });
        for (j, ip) in ep.ips.iter().enumerate() {
            v4 |= ip.is_ipv4();
            v6 |= ip.is_ipv6();
            let net = IpNet::from(*ip);
            own(
                &mut owner,
                net,
                id,
                &index(&join(&index("endpoints", i), "ips"), j),
            )?;
            info.addrs.insert(net);
        }
    }
    let dual_stack = v4 && v6;

    // One CIDR identity per policy prefix not already owned by an endpoint
    // or configured identity (those addresses resolve to their owner).
    let prefixes: BTreeSet<IpNet> = docs.iter().flat_map(|d| d.cidrs.iter().copied()).collect();
    let mut next = FIRST_CIDR_IDENTITY;
    for net in prefixes {
        if owner.contains_key(&net) {
            continue;
        }
        let world = match (dual_stack, net) {
            (false, _) => "world",
            (true, IpNet::V4(_)) => "world-ipv4",
            (true, IpNet::V6(_)) => "world-ipv6",
        };
        let mut labels = IdLabels::reserved(&[world]);
        labels.cidr = Some(net);
        ids.insert(
            next,
            IdentityInfo {
                labels,
                addrs: BTreeSet::from([net]),
            },
        );
        next += 1;
    }
    // One identity per `toFQDNs` selector, in sorted order.
    let fqdns: BTreeSet<FqdnKey> = docs.iter().flat_map(|d| d.fqdns.iter().cloned()).collect();
    let mut fqdn_ids = BTreeMap::new();
    for key in fqdns {
        let world: &[&str] = if dual_stack {
            &["world-ipv4", "world-ipv6"]
        } else {
            &["world"]
        };
        let mut labels = IdLabels::reserved(world);
        labels.fqdn = Some(key.clone());
        ids.insert(
            next,
            IdentityInfo {
                labels,
                addrs: BTreeSet::new(),
            },
        );
        fqdn_ids.insert(key, next);
        next += 1;
    }
    if dual_stack {
        // The agent maps the v4 and v6 default routes to the world identities.
        for (id, net) in [(9, "0.0.0.0/0"), (10, "::/0")] {
            let net: IpNet = net.parse().expect("literal prefix");
            ids.get_mut(&id).expect("reserved").addrs.insert(net);
        }
    }
    Ok(Universe {
        ids,
        fqdn_ids,
        endpoint_ids,
        dual_stack,
    })
}

/// Identities given explicitly, and the label set each stands for.
#[derive(Default)]
struct Claims {
    /// (namespace, labels) → the lowest identity given for them.
    by_labels: BTreeMap<LabelKey, u32>,
    /// identity → its label set and where it was first given.
    keys: BTreeMap<u32, (LabelKey, String)>,
}

impl Claims {
    fn claim(&mut self, id: u32, key: LabelKey, path: &str) -> Result<(), Fault> {
        match self.keys.get(&id) {
            Some((other, other_path)) if *other != key => {
                return Err(Fault::invalid(
                    path,
                    format!(
                    "identity {id} is also given to {other_path}, with another namespace or labels"
                ),
                ))
            }
            Some(_) => {}
            None => {
                self.keys.insert(id, (key.clone(), path.to_string()));
            }
        }
        let e = self.by_labels.entry(key).or_insert(id);
        *e = (*e).min(id);
        Ok(())
    }
}

fn own(
    owner: &mut BTreeMap<IpNet, (u32, String)>,
    net: IpNet,
    id: u32,
    path: &str,
) -> Result<(), Fault> {
    match owner.get(&net) {
        Some((other, other_path)) if *other != id => Err(Fault::invalid(
            path,
            format!("{net} is also the address of {other_path} (identity {other})"),
        )),
        Some(_) => Ok(()),
        None => {
            owner.insert(net, (id, path.to_string()));
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_is_stable() {
        assert_eq!(fnv1a(*b""), 0x811c_9dc5);
        assert_eq!(fnv1a(*b"a"), 0xe40c_292c);
    }
}
