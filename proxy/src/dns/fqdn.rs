//! The FQDN cache in the running proxy: filled by allowed answers, read by
//! policy lookups through [`FqdnIdentities`], expired every second, saved to
//! `dns.cacheFile` and restored at start.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use l7_dns::cache::{Change, Entry};
use l7_dns::{CacheLimits, FqdnCache, Harvest, Selectors};
use serde_json::json;
use tracing::{info, warn};

use prometheus_client::metrics::gauge::Gauge;

use crate::policy::{Change as PolicyChange, FqdnIdentities, PolicyStore};

/// How often expired addresses are dropped and the cache saved when changed.
const TICK: Duration = Duration::from_secs(1);

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

pub struct Fqdn {
    cache: Mutex<FqdnCache>,
    file: OnceLock<PathBuf>,
    dirty: AtomicBool,
    /// Where the identities of learnt addresses are published.
    policy: Arc<PolicyStore>,
    /// `portcullis_fqdn_names`.
    names: Gauge,
}

impl Fqdn {
    pub fn new(policy: Arc<PolicyStore>, names: Gauge) -> Self {
        Fqdn {
            cache: Mutex::default(),
            file: OnceLock::new(),
            dirty: AtomicBool::new(false),
            policy,
            names,
        }
    }

    /// Hands the identities `cache` gives its addresses to policy lookups.
    fn publish(&self, cache: &FqdnCache) {
        let ids = FqdnIdentities::new(cache.identities());
        self.policy.publish(PolicyChange::Fqdn(Arc::new(ids)));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FqdnCache> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sets the bounds (`dns:` in the config) and the cache file, and restores what the file holds
    /// (entries whose TTL has passed are skipped).
    pub fn configure(&self, limits: CacheLimits, file: Option<&Path>) {
        let mut cache = self.lock();
        let selectors = cache.selectors().clone();
        *cache = FqdnCache::new(limits);
        cache.set_selectors(selectors);
        let Some(file) = file else { return };
        let _ = self.file.set(file.to_path_buf());
        match std::fs::read(file) {
            Ok(bytes) => match serde_json::from_slice::<Vec<Entry>>(&bytes) {
                Ok(entries) => {
                    let change = cache.restore(entries, unix_now());
                    info!(file = %file.display(), addresses = change.added, names = cache.len(), "FQDN cache restored");
                    self.publish(&cache);
                }
                Err(e) => {
                    warn!(file = %file.display(), error = %e, "FQDN cache file is not readable; starting empty")
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                warn!(file = %file.display(), error = %e, "cannot read the FQDN cache file; starting empty")
            }
        }
    }

    /// The `toFQDNs` selectors policy names, with their identities.
    pub fn set_selectors(&self, selectors: Selectors) {
        let mut cache = self.lock();
        if cache.set_selectors(selectors) {
            self.publish(&cache);
        }
    }

    /// Records an allowed answer. When it changes which identities an
    /// address carries, policy sees the change before this returns, so the
    /// reply can go to the client right after.
    pub fn learn(&self, endpoint: u64, h: &Harvest) {
        let mut cache = self.lock();
        let change = cache.insert(endpoint, &h.name, &h.ips, h.ttl, unix_now());
        self.settle(&cache, change);
    }

    /// After a change: policy gets the new identities (if they moved), the
    /// cache is marked for saving (if it changed) and the gauge follows.
    fn settle(&self, cache: &FqdnCache, change: Change) {
        if change.identities_changed {
            self.publish(cache);
        }
        if change.added > 0 || change.removed > 0 {
            self.dirty.store(true, Ordering::Relaxed);
        }
        self.names.set(cache.len() as i64);
    }

    pub fn entries(&self) -> Vec<Entry> {
        self.lock().entries()
    }

    pub fn dump(&self) -> serde_json::Value {
        let cache = self.lock();
        let selectors: Vec<_> = cache
            .selectors()
            .listed()
            .iter()
            .map(|(sel, id)| match sel {
                l7_dns::DnsSelector::MatchName(n) => json!({"matchName": n, "identity": id}),
                l7_dns::DnsSelector::MatchPattern(p) => json!({"matchPattern": p, "identity": id}),
            })
            .collect();
        json!({
            "limits": {
                "max_ips_per_hostname": cache.limits().max_ips_per_hostname,
                "max_names": cache.limits().max_names,
                "min_ttl": cache.limits().min_ttl,
            },
            "selectors": selectors,
            "entries": cache.entries(),
        })
    }

    fn tick(&self) {
        {
            let mut cache = self.lock();
            let change = cache.expire(unix_now());
            self.settle(&cache, change);
        }
        if self.dirty.swap(false, Ordering::Relaxed) {
            if let Err(e) = self.save() {
                warn!(error = %e, "cannot save the FQDN cache");
            }
        }
    }

    /// Writes the cache to its file (a temporary file renamed over it, so a
    /// crash mid-write leaves the previous copy).
    pub fn save(&self) -> std::io::Result<()> {
        let Some(file) = self.file.get() else {
            return Ok(());
        };
        let entries = self.entries();
        let bytes = serde_json::to_vec(&entries).map_err(std::io::Error::other)?;
        let tmp = file.with_extension("tmp");
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(&tmp, file)
    }

    /// Expiry and saving, every second, for the process's life.
    pub async fn maintain(&self) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.tick();
        }
    }
}
