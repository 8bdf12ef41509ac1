//! The identity table fed by NPHDS: security identity → addresses, looked
//! up by longest-prefix match on the peer's address. No match is WORLD (2).

use std::net::IpAddr;

use ipnet::IpNet;
use rustc_hash::FxHashMap;

use crate::proto::NetworkPolicyHosts;
use crate::PolicyError;

/// The reserved identity of everything outside the cluster.
pub const WORLD: u32 = 2;

/// Longest-prefix-match table from address to security identity.
///
/// Hand-rolled rather than a trie crate: one hash map per prefix length that
/// is actually present, probed longest first, is a handful of lookups for the
/// few distinct lengths real policies use, and needs no unsafe or extra crate.
#[derive(Debug, Default, Clone)]
pub struct IdentityTable {
    v4: Family<u32>,
    v6: Family<u128>,
    /// Prefixes per identity, as received (for `/config_dump`).
    by_identity: Vec<(u32, Vec<IpNet>)>,
}

#[derive(Debug, Clone)]
struct Family<K> {
    /// (prefix length, masked address → identity), longest length first.
    /// FxHash: the keys are prefixes from policy, hashed on every new
    /// connection (and DNS query), where SipHash cost more than the probe.
    lengths: Vec<(u8, FxHashMap<K, u32>)>,
}

impl<K> Default for Family<K> {
    fn default() -> Self {
        Family {
            lengths: Vec::new(),
        }
    }
}

impl<K: std::hash::Hash + Eq + Copy> Family<K> {
    fn insert(&mut self, len: u8, key: K, id: u32) -> Option<u32> {
        let pos = match self.lengths.iter().position(|(l, _)| *l <= len) {
            Some(p) if self.lengths[p].0 == len => p,
            Some(p) => {
                self.lengths.insert(p, (len, FxHashMap::default()));
                p
            }
            None => {
                self.lengths.push((len, FxHashMap::default()));
                self.lengths.len() - 1
            }
        };
        self.lengths[pos].1.insert(key, id)
    }
}

fn mask4(addr: u32, len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        addr & (u32::MAX << (32 - len))
    }
}

fn mask6(addr: u128, len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        addr & (u128::MAX << (128 - len))
    }
}

impl IdentityTable {
    /// Builds the table from NPHDS resources; rejects malformed addresses and
    /// a prefix claimed by two identities.
    pub fn compile(hosts: &[NetworkPolicyHosts]) -> Result<Self, PolicyError> {
        let mut table = IdentityTable::default();
        for h in hosts {
            let name = h.policy.to_string();
            let id = u32::try_from(h.policy).map_err(|_| {
                PolicyError::hosts(&name, "policy", "identity does not fit in 32 bits")
            })?;
            let mut nets = Vec::with_capacity(h.host_addresses.len());
            for (i, a) in h.host_addresses.iter().enumerate() {
                let field = format!("host_addresses[{i}]");
                let net = parse_prefix(a).map_err(|r| PolicyError::hosts(&name, &field, r))?;
                let previous = match net {
                    IpNet::V4(n) => table.v4.insert(
                        n.prefix_len(),
                        mask4(u32::from(n.addr()), n.prefix_len()),
                        id,
                    ),
                    IpNet::V6(n) => table.v6.insert(
                        n.prefix_len(),
                        mask6(u128::from(n.addr()), n.prefix_len()),
                        id,
                    ),
                };
                if let Some(other) = previous.filter(|o| *o != id) {
                    return Err(PolicyError::hosts(
                        &name,
                        field,
                        format!("prefix {net} is already claimed by identity {other}"),
                    ));
                }
                nets.push(net);
            }
            table.by_identity.push((id, nets));
        }
        table.by_identity.sort_by_key(|(id, _)| *id);
        Ok(table)
    }

    /// The identity of `addr`: longest matching prefix, else [`WORLD`].
    pub fn lookup(&self, addr: IpAddr) -> u32 {
        match addr {
            IpAddr::V4(a) => {
                let a = u32::from(a);
                self.v4
                    .lengths
                    .iter()
                    .find_map(|(len, m)| m.get(&mask4(a, *len)).copied())
            }
            IpAddr::V6(a) => match a.to_ipv4_mapped() {
                Some(v4) => return self.lookup(IpAddr::V4(v4)),
                None => {
                    let a = u128::from(a);
                    self.v6
                        .lengths
                        .iter()
                        .find_map(|(len, m)| m.get(&mask6(a, *len)).copied())
                }
            },
        }
        .unwrap_or(WORLD)
    }

    /// Identities and their prefixes, sorted by identity.
    pub fn entries(&self) -> &[(u32, Vec<IpNet>)] {
        &self.by_identity
    }
}

/// Why a host address was refused.
#[derive(Debug, thiserror::Error)]
pub enum AddressError {
    #[error("{0:?} is not an IP address or CIDR")]
    Syntax(String),
    #[error("{0:?} has host bits set (did you mean {1}?)")]
    HostBits(String, IpNet),
}

/// An address is a bare IP (a host route) or a CIDR whose host bits are zero.
fn parse_prefix(s: &str) -> Result<IpNet, AddressError> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(IpNet::from(ip));
    }
    let net: IpNet = s.parse().map_err(|_| AddressError::Syntax(s.into()))?;
    if net.trunc() != net {
        return Err(AddressError::HostBits(s.into(), net.trunc()));
    }
    Ok(net)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(id: u64, addrs: &[&str]) -> NetworkPolicyHosts {
        NetworkPolicyHosts {
            policy: id,
            host_addresses: addrs.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn longest_prefix_wins_and_default_is_world() {
        let t = IdentityTable::compile(&[
            hosts(16777217, &["10.0.0.0/8"]),
            hosts(16777218, &["10.96.0.0/12"]),
            hosts(1001, &["10.96.1.5", "fd00::5"]),
            hosts(1002, &["fd00::/64"]),
        ])
        .unwrap();
        let cases = [
            ("10.1.2.3", 16777217),
            ("10.96.7.7", 16777218),
            ("10.96.1.5", 1001),
            ("11.0.0.1", WORLD),
            ("fd00::5", 1001),
            ("fd00::6", 1002),
            ("fd01::6", WORLD),
            ("::ffff:10.96.1.5", 1001),
        ];
        for (ip, want) in cases {
            assert_eq!(t.lookup(ip.parse().unwrap()), want, "{ip}");
        }
    }

    #[test]
    fn rejects_bad_and_conflicting_prefixes() {
        let e = IdentityTable::compile(&[hosts(5, &["10.0.0.1/8"])]).unwrap_err();
        assert_eq!(e.to_string(), "NetworkPolicyHosts \"5\": host_addresses[0]: \"10.0.0.1/8\" has host bits set (did you mean 10.0.0.0/8?)");
        let e = IdentityTable::compile(&[hosts(5, &["nope"])]).unwrap_err();
        assert!(e.to_string().contains("not an IP address or CIDR"), "{e}");
        let e = IdentityTable::compile(&[hosts(5, &["1.2.3.4"]), hosts(6, &["1.2.3.4/32"])])
            .unwrap_err();
        assert!(
            e.to_string().contains("already claimed by identity 5"),
            "{e}"
        );
    }
}
