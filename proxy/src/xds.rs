//! The proxy's side of xDS: one subscription per resource type, each with a
//! handler that validates a complete update and swaps it into the data path.

use std::sync::Arc;

use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::Secret;
use envoy_types::pb::google::protobuf::Any;
use npds::proto::{NetworkPolicy, NetworkPolicyHosts};
use npds::xds::client::{decode_all, Backoff, Resources, Subscription, SubscriptionStats};
use npds::xds::grpc::Path;
use npds::{IdentityTable, PolicySnapshot};
use sds::SecretStore;
use tracing::info;

use crate::state::Shared;

/// Readiness waits for these.
pub const NPDS: &str = "NPDS";
pub const NPHDS: &str = "NPHDS";

struct Npds {
    shared: Arc<Shared>,
}

impl Resources for Npds {
    fn apply(&self, version: &str, resources: &[Any]) -> Result<(), String> {
        let result = decode_all::<NetworkPolicy>(resources).and_then(|policies| {
            let previous = self.shared.policy_arc();
            PolicySnapshot::compile(version, policies, Some(&previous.snapshot))
                .map_err(|e| e.to_string())
        });
        match result {
            Ok(snapshot) => {
                info!(
                    version,
                    endpoints = snapshot.len(),
                    "network policy applied"
                );
                self.shared.publish_snapshot(Arc::new(snapshot));
                self.shared.arrived(NPDS);
                Ok(())
            }
            Err(e) => {
                self.shared.reject(NPDS, e.clone());
                Err(e)
            }
        }
    }
}

struct Nphds {
    shared: Arc<Shared>,
}

impl Resources for Nphds {
    fn apply(&self, version: &str, resources: &[Any]) -> Result<(), String> {
        let result = decode_all::<NetworkPolicyHosts>(resources)
            .and_then(|hosts| IdentityTable::compile(&hosts).map_err(|e| e.to_string()));
        match result {
            Ok(table) => {
                info!(
                    version,
                    identities = table.entries().len(),
                    "identities applied"
                );
                self.shared.publish_identities(Arc::new(table));
                self.shared.arrived(NPHDS);
                Ok(())
            }
            Err(e) => {
                self.shared.reject(NPHDS, e.clone());
                Err(e)
            }
        }
    }
}

struct Sds {
    shared: Arc<Shared>,
}

impl Resources for Sds {
    fn apply(&self, version: &str, resources: &[Any]) -> Result<(), String> {
        let result = decode_all::<Secret>(resources)
            .and_then(|secrets| SecretStore::compile(&secrets).map_err(|e| e.to_string()));
        match result {
            Ok(store) => {
                info!(version, secrets = store.len(), "secrets applied");
                self.shared.publish_secrets(store);
                Ok(())
            }
            Err(e) => {
                self.shared.reject("SDS", e.clone());
                Err(e)
            }
        }
    }

    /// A new agent instance: secrets of the old one are not trusted to be
    /// current (cilium-envoy resets its secret cache the same way); rules
    /// that need them fail closed until the new stream delivers.
    fn new_generation(&self, generation: u64) {
        if generation > 1 {
            self.shared.publish_secrets(SecretStore::default());
        }
    }
}

/// A running subscription's name and counters, for metrics and dumps.
#[derive(Debug)]
pub struct Stream {
    pub path: Path,
    pub stats: Arc<SubscriptionStats>,
}

/// Starts the NPDS, NPHDS and SDS subscriptions against `target`.
pub fn start(target: &str, shared: &Arc<Shared>) -> Vec<Stream> {
    let subs: Vec<(Path, Arc<dyn Resources>)> = vec![
        (
            Path::NetworkPolicies,
            Arc::new(Npds {
                shared: shared.clone(),
            }),
        ),
        (
            Path::NetworkPolicyHosts,
            Arc::new(Nphds {
                shared: shared.clone(),
            }),
        ),
        (
            Path::Secrets,
            Arc::new(Sds {
                shared: shared.clone(),
            }),
        ),
    ];
    subs.into_iter()
        .map(|(path, handler)| {
            let stats = Arc::new(SubscriptionStats::default());
            tokio::spawn(
                Subscription {
                    target: target.to_string(),
                    path,
                    handler,
                    stats: stats.clone(),
                    backoff: Backoff::default(),
                }
                .run(),
            );
            Stream { path, stats }
        })
        .collect()
}
