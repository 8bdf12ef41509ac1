//! The FQDN cache: what allowed answers taught, per endpoint, and the local
//! identities of the `toFQDNs` selectors those names match (the agent's
//! `DNSCache` + `NameManager`, `pkg/fqdn`).
//!
//! - An entry is (endpoint, name) → addresses, each with its own expiry
//!   (the answer's chain TTL, floored by `min_ttl`). A name keeps at most
//!   `max_ips_per_hostname` addresses; beyond it the one expiring first goes.
//! - At most `max_names` entries exist over all endpoints; beyond it the
//!   entry expiring first goes, so a flood of unique names cannot grow
//!   memory (each answer adds one name and a bounded number of addresses).
//! - Every address of a name that a selector matches carries that
//!   selector's identity while it lives; [`FqdnCache::identities`] is that
//!   map, recomputed incrementally (reference counts per address and
//!   identity) so that an answer costs O(addresses × matching selectors).
//!
//! Time is passed in as unix seconds, so the cache can be persisted and
//! restored across restarts and tested without sleeping.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::Arc;

use regex::RegexSet;
use serde::{Deserialize, Serialize};

use crate::pattern::{selector_regex, DnsSelector, PatternError};

/// Cache bounds (the agent's `--tofqdns-*` flags, plus a total cap).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `--tofqdns-endpoint-max-ip-per-hostname` (agent default 1000).
    pub max_ips_per_hostname: usize,
    /// Entries (endpoint, name) over all endpoints.
    pub max_names: usize,
    /// `--tofqdns-min-ttl`: TTLs below it are raised to it.
    pub min_ttl: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_ips_per_hostname: 1000,
            max_names: 65_536,
            min_ttl: 0,
        }
    }
}

/// `toFQDNs` selectors and their identities, matched in one pass.
#[derive(Debug, Clone, Default)]
pub struct Selectors {
    set: Option<RegexSet>,
    ids: Vec<u32>,
    listed: Vec<(DnsSelector, u32)>,
}

impl Selectors {
    pub fn compile(selectors: &[(DnsSelector, u32)]) -> Result<Selectors, PatternError> {
        let mut res = Vec::with_capacity(selectors.len());
        for (sel, _) in selectors {
            res.push(match selector_regex(sel)? {
                Some(re) => format!("^(?:{re})$"),
                None => "^.*$".to_string(),
            });
        }
        let set = if res.is_empty() {
            None
        } else {
            Some(
                RegexSet::new(&res)
                    .expect("selector regexes are escaped or built from a fixed class"),
            )
        };
        Ok(Selectors {
            set,
            ids: selectors.iter().map(|(_, id)| *id).collect(),
            listed: selectors.to_vec(),
        })
    }

    /// The identities of the selectors matching `name` (lowercased, with
    /// the trailing dot), sorted, without duplicates.
    pub fn identities_of(&self, name: &str) -> Vec<u32> {
        let Some(set) = &self.set else {
            return Vec::new();
        };
        let mut ids: Vec<u32> = set.matches(name).iter().map(|i| self.ids[i]).collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    pub fn listed(&self) -> &[(DnsSelector, u32)] {
        &self.listed
    }
}

/// One address of a cached name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedIp {
    pub ip: IpAddr,
    /// Unix seconds.
    pub expires: u64,
}

/// One cache entry as dumped and persisted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub endpoint: u64,
    pub name: String,
    pub ips: Vec<CachedIp>,
}

type Key = (u64, Arc<str>);

#[derive(Debug, Default)]
pub struct FqdnCache {
    limits: Limits,
    selectors: Selectors,
    entries: HashMap<Key, Vec<CachedIp>>,
    /// (first expiry of the entry, key): eviction and expiry order.
    by_expiry: BTreeSet<(u64, Key)>,
    /// Address → identity → how many live (entry, address) pairs give it.
    refs: HashMap<IpAddr, BTreeMap<u32, u32>>,
}

/// What one change did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    /// Addresses added to the cache (new for their entry).
    pub added: usize,
    /// Addresses that left (expired or evicted).
    pub removed: usize,
    /// Whether the address → identity map changed.
    pub identities_changed: bool,
}

impl Change {
    fn absorb(&mut self, o: Change) {
        self.added += o.added;
        self.removed += o.removed;
        self.identities_changed |= o.identities_changed;
    }
}

fn first_expiry(ips: &[CachedIp]) -> u64 {
    ips.iter().map(|c| c.expires).min().unwrap_or(0)
}

impl FqdnCache {
    pub fn new(limits: Limits) -> Self {
        FqdnCache {
            limits: Limits {
                max_ips_per_hostname: limits.max_ips_per_hostname.max(1),
                max_names: limits.max_names.max(1),
                ..limits
            },
            ..Default::default()
        }
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Replaces the selectors and recomputes every address's identities.
    pub fn set_selectors(&mut self, selectors: Selectors) -> bool {
        self.selectors = selectors;
        let mut refs: HashMap<IpAddr, BTreeMap<u32, u32>> = HashMap::new();
        for ((_, name), ips) in &self.entries {
            for id in self.selectors.identities_of(name) {
                for c in ips {
                    *refs.entry(c.ip).or_default().entry(id).or_default() += 1;
                }
            }
        }
        let changed = !same_identities(&refs, &self.refs);
        self.refs = refs;
        changed
    }

    pub fn selectors(&self) -> &Selectors {
        &self.selectors
    }

    /// Records that `endpoint` resolved `name` to `ips` with `ttl` at `now`.
    pub fn insert(
        &mut self,
        endpoint: u64,
        name: &str,
        ips: &[IpAddr],
        ttl: u32,
        now: u64,
    ) -> Change {
        let expires = now + u64::from(ttl.max(self.limits.min_ttl));
        self.insert_until(endpoint, name, ips, expires)
    }

    /// Like [`insert`](Self::insert), with an absolute expiry.
    fn insert_until(&mut self, endpoint: u64, name: &str, ips: &[IpAddr], expires: u64) -> Change {
        let mut change = Change::default();
        if ips.is_empty() {
            return change;
        }
        let key: Key = (endpoint, Arc::from(name));
        let (list, before) = match self.entries.get_mut(&key) {
            Some(list) => {
                let before = first_expiry(list);
                (list, Some(before))
            }
            None => (self.entries.entry(key.clone()).or_default(), None),
        };
        // The selectors are matched only when an address comes or goes: a
        // repeated answer just moves expiries.
        let selectors = &self.selectors;
        let mut ids: Option<Vec<u32>> = None;
        for ip in ips {
            match list.iter_mut().find(|c| c.ip == *ip) {
                Some(c) => c.expires = c.expires.max(expires),
                None => {
                    list.push(CachedIp { ip: *ip, expires });
                    change.added += 1;
                    let ids = ids.get_or_insert_with(|| selectors.identities_of(name));
                    change.identities_changed |= add_refs(&mut self.refs, *ip, ids);
                }
            }
        }
        while list.len() > self.limits.max_ips_per_hostname {
            let (i, _) = list
                .iter()
                .enumerate()
                .min_by_key(|(_, c)| c.expires)
                .expect("list is longer than a positive limit");
            let gone = list.swap_remove(i);
            change.removed += 1;
            let ids = ids.get_or_insert_with(|| selectors.identities_of(name));
            change.identities_changed |= drop_refs(&mut self.refs, gone.ip, ids);
        }
        // The expiry index moves only when the entry's first expiry does:
        // the same answer again within its second leaves it in place.
        let after = first_expiry(list);
        if before != Some(after) {
            if let Some(before) = before {
                self.by_expiry.remove(&(before, key.clone()));
            }
            self.by_expiry.insert((after, key));
        }
        while self.entries.len() > self.limits.max_names {
            let Some((_, victim)) = self.by_expiry.first().cloned() else {
                break;
            };
            change.absorb(self.remove_entry(&victim));
        }
        change
    }

    fn remove_entry(&mut self, key: &Key) -> Change {
        let mut change = Change::default();
        if let Some(list) = self.entries.remove(key) {
            self.by_expiry.remove(&(first_expiry(&list), key.clone()));
            let ids = self.selectors.identities_of(&key.1);
            for c in list {
                change.removed += 1;
                change.identities_changed |= drop_refs(&mut self.refs, c.ip, &ids);
            }
        }
        change
    }

    /// Drops every address whose TTL has passed at `now`.
    pub fn expire(&mut self, now: u64) -> Change {
        let mut change = Change::default();
        while let Some((first, key)) = self.by_expiry.first().cloned() {
            if first > now {
                break;
            }
            self.by_expiry.remove(&(first, key.clone()));
            let Some(mut list) = self.entries.remove(&key) else {
                continue;
            };
            let ids = self.selectors.identities_of(&key.1);
            list.retain(|c| {
                if c.expires <= now {
                    change.removed += 1;
                    change.identities_changed |= drop_refs(&mut self.refs, c.ip, &ids);
                    false
                } else {
                    true
                }
            });
            if !list.is_empty() {
                self.by_expiry.insert((first_expiry(&list), key.clone()));
                self.entries.insert(key, list);
            }
        }
        change
    }

    /// Address → identities of the selectors its names match, for policy.
    pub fn identities(&self) -> HashMap<IpAddr, Box<[u32]>> {
        self.refs
            .iter()
            .map(|(ip, ids)| (*ip, ids.keys().copied().collect()))
            .collect()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every entry, sorted by endpoint and name.
    pub fn entries(&self) -> Vec<Entry> {
        let mut out: Vec<Entry> = self
            .entries
            .iter()
            .map(|((endpoint, name), ips)| {
                let mut ips = ips.clone();
                ips.sort_by_key(|c| c.ip);
                Entry {
                    endpoint: *endpoint,
                    name: name.to_string(),
                    ips,
                }
            })
            .collect();
        out.sort_by(|a, b| (a.endpoint, &a.name).cmp(&(b.endpoint, &b.name)));
        out
    }

    /// Restores persisted entries, skipping what has expired by `now`.
    pub fn restore(&mut self, entries: Vec<Entry>, now: u64) -> Change {
        let mut change = Change::default();
        for e in entries {
            for c in e.ips.into_iter().filter(|c| c.expires > now) {
                change.absorb(self.insert_until(e.endpoint, &e.name, &[c.ip], c.expires));
            }
        }
        change
    }
}

fn add_refs(refs: &mut HashMap<IpAddr, BTreeMap<u32, u32>>, ip: IpAddr, ids: &[u32]) -> bool {
    let mut changed = false;
    if ids.is_empty() {
        return false;
    }
    let per_ip = refs.entry(ip).or_default();
    for id in ids {
        let n = per_ip.entry(*id).or_default();
        changed |= *n == 0;
        *n += 1;
    }
    changed
}

fn drop_refs(refs: &mut HashMap<IpAddr, BTreeMap<u32, u32>>, ip: IpAddr, ids: &[u32]) -> bool {
    let mut changed = false;
    if let Some(per_ip) = refs.get_mut(&ip) {
        for id in ids {
            if let Some(n) = per_ip.get_mut(id) {
                *n -= 1;
                if *n == 0 {
                    per_ip.remove(id);
                    changed = true;
                }
            }
        }
        if per_ip.is_empty() {
            refs.remove(&ip);
        }
    }
    changed
}

fn same_identities(
    a: &HashMap<IpAddr, BTreeMap<u32, u32>>,
    b: &HashMap<IpAddr, BTreeMap<u32, u32>>,
) -> bool {
    a.len() == b.len()
        && a.iter()
            .all(|(ip, ids)| b.get(ip).is_some_and(|o| ids.keys().eq(o.keys())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn github() -> Selectors {
        Selectors::compile(&[
            (DnsSelector::MatchName("api.github.com".into()), 16_777_217),
            (DnsSelector::MatchPattern("*.github.com".into()), 16_777_218),
        ])
        .unwrap()
    }

    #[test]
    fn answers_map_addresses_to_the_identities_of_matching_selectors() {
        let mut c = FqdnCache::new(Limits::default());
        c.set_selectors(github());
        let ch = c.insert(1, "api.github.com.", &[ip("10.0.0.1")], 30, 100);
        assert_eq!(ch.added, 1);
        assert!(ch.identities_changed);
        let ch = c.insert(1, "support.github.com.", &[ip("10.0.0.2")], 30, 100);
        assert!(ch.identities_changed);
        // A name no selector matches is cached but gives no identity.
        let ch = c.insert(1, "example.com.", &[ip("10.0.0.3")], 30, 100);
        assert!(!ch.identities_changed);
        let ids = c.identities();
        assert_eq!(&*ids[&ip("10.0.0.1")], &[16_777_217, 16_777_218]);
        assert_eq!(&*ids[&ip("10.0.0.2")], &[16_777_218]);
        assert!(!ids.contains_key(&ip("10.0.0.3")));
        // The same answer again changes nothing.
        let ch = c.insert(1, "api.github.com.", &[ip("10.0.0.1")], 30, 110);
        assert_eq!(ch, Change::default());
    }

    #[test]
    fn ttl_expiry_takes_addresses_and_identities_away() {
        let mut c = FqdnCache::new(Limits::default());
        c.set_selectors(github());
        c.insert(1, "api.github.com.", &[ip("10.0.0.1")], 5, 100);
        // Another endpoint resolving the same name keeps the address alive.
        c.insert(2, "api.github.com.", &[ip("10.0.0.1")], 50, 100);
        assert!(!c.expire(104).identities_changed);
        let ch = c.expire(105);
        assert_eq!(ch.removed, 1);
        assert!(!ch.identities_changed);
        assert!(c.identities().contains_key(&ip("10.0.0.1")));
        let ch = c.expire(150);
        assert!(ch.identities_changed);
        assert!(c.identities().is_empty());
        assert!(c.is_empty());
    }

    #[test]
    fn min_ttl_floors_short_answers() {
        let mut c = FqdnCache::new(Limits {
            min_ttl: 60,
            ..Limits::default()
        });
        c.insert(1, "a.example.", &[ip("10.0.0.1")], 0, 100);
        assert_eq!(c.entries()[0].ips[0].expires, 160);
    }

    #[test]
    fn per_name_and_total_bounds_evict_what_expires_first() {
        let mut c = FqdnCache::new(Limits {
            max_ips_per_hostname: 2,
            max_names: 3,
            min_ttl: 0,
        });
        c.set_selectors(github());
        c.insert(1, "api.github.com.", &[ip("10.0.0.1")], 10, 100);
        c.insert(1, "api.github.com.", &[ip("10.0.0.2")], 20, 100);
        let ch = c.insert(1, "api.github.com.", &[ip("10.0.0.3")], 30, 100);
        assert_eq!((ch.added, ch.removed), (1, 1));
        let ips: Vec<IpAddr> = c.entries()[0].ips.iter().map(|c| c.ip).collect();
        assert_eq!(ips, vec![ip("10.0.0.2"), ip("10.0.0.3")]);
        assert!(!c.identities().contains_key(&ip("10.0.0.1")));

        // A flood of unique names stays at max_names.
        for i in 0..1000u32 {
            c.insert(
                7,
                &format!("n{i}.flood.example."),
                &[IpAddr::from(i.to_be_bytes())],
                1000 + i,
                100,
            );
            assert!(c.len() <= 3);
        }
        assert_eq!(c.len(), 3);
        assert!(c.entries().iter().all(|e| e.endpoint == 7));
        assert!(c.identities().is_empty());
        assert_eq!(c.by_expiry.len(), 3);
    }

    #[test]
    fn selectors_replaced_later_recompute_identities() {
        let mut c = FqdnCache::new(Limits::default());
        c.insert(1, "api.github.com.", &[ip("10.0.0.1")], 30, 100);
        assert!(c.identities().is_empty());
        assert!(c.set_selectors(github()));
        assert_eq!(c.identities()[&ip("10.0.0.1")].len(), 2);
        assert!(!c.set_selectors(github()));
        assert!(c.set_selectors(Selectors::default()));
        assert!(c.identities().is_empty());
    }

    #[test]
    fn persisted_entries_restore_with_their_expiry() {
        let mut c = FqdnCache::new(Limits::default());
        c.set_selectors(github());
        c.insert(
            1,
            "api.github.com.",
            &[ip("10.0.0.1"), ip("10.0.0.9")],
            30,
            100,
        );
        c.insert(1, "old.github.com.", &[ip("10.0.0.2")], 1, 100);
        let saved = serde_json::to_string(&c.entries()).unwrap();

        let mut d = FqdnCache::new(Limits {
            min_ttl: 3600,
            ..Limits::default()
        });
        d.set_selectors(github());
        let ch = d.restore(serde_json::from_str(&saved).unwrap(), 110);
        assert_eq!(ch.added, 2);
        let e = d.entries();
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].name, "api.github.com.");
        assert!(e[0].ips.iter().all(|c| c.expires == 130));
        assert!(d.identities().contains_key(&ip("10.0.0.9")));
    }
}
