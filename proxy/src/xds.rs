//! The proxy's side of xDS: one subscription per resource type, each with a
//! handler that validates a complete update and swaps it into the data path.

use std::sync::Arc;

use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::listener::v3::Listener as EnvoyListener;
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::Secret;
use envoy_types::pb::google::protobuf::Any;
use npds::proto::NetworkPolicyHosts;
use npds::xds::client::{decode_all, Backoff, Resources, Subscription, SubscriptionStats};
use npds::xds::grpc::Path;
use npds::xds::listener::{accept_clusters, translate_listeners};
use npds::{IdentityTable, PolicySnapshot};
use sds::SecretStore;
use tracing::{debug, info};

use crate::listeners::{ListenerSpec, Listeners, Source};
use crate::metrics::Stream;

use crate::policy::Change;
use crate::state::Shared;

/// Readiness waits for these.
pub const NPDS: &str = "NPDS";
pub const NPHDS: &str = "NPHDS";

/// Applies a checked update or records why it was refused; the error goes
/// back to the subscription, which NACKs with it.
fn settle<T>(
    shared: &Shared,
    source: &'static str,
    result: Result<T, String>,
    apply: impl FnOnce(T),
) -> Result<(), String> {
    match result {
        Ok(value) => {
            apply(value);
            Ok(())
        }
        Err(e) => {
            shared.reject(source, e.clone());
            Err(e)
        }
    }
}

struct Npds {
    shared: Arc<Shared>,
}

impl Resources for Npds {
    fn apply(&self, version: &str, resources: &[Any]) -> Result<(), String> {
        let previous = self.shared.policy_arc();
        let encoded: Vec<&[u8]> = resources.iter().map(|a| a.value.as_slice()).collect();
        let result = PolicySnapshot::compile_encoded(version, &encoded, Some(&previous.snapshot))
            .map_err(|e| e.to_string());
        settle(&self.shared, NPDS, result, |snapshot| {
            info!(
                version,
                endpoints = snapshot.len(),
                "network policy applied"
            );
            self.shared.publish(Change::Snapshot(Arc::new(snapshot)));
            self.shared.arrived(NPDS);
        })
    }
}

struct Nphds {
    shared: Arc<Shared>,
}

impl Resources for Nphds {
    fn apply(&self, version: &str, resources: &[Any]) -> Result<(), String> {
        let result = decode_all::<NetworkPolicyHosts>(resources)
            .and_then(|hosts| IdentityTable::compile(&hosts).map_err(|e| e.to_string()));
        settle(&self.shared, NPHDS, result, |table| {
            info!(
                version,
                identities = table.entries().len(),
                "identities applied"
            );
            self.shared.publish(Change::Identities(Arc::new(table)));
            self.shared.arrived(NPHDS);
        })
    }
}

struct Sds {
    shared: Arc<Shared>,
}

impl Resources for Sds {
    fn apply(&self, version: &str, resources: &[Any]) -> Result<(), String> {
        let result = decode_all::<Secret>(resources)
            .and_then(|secrets| SecretStore::compile(&secrets).map_err(|e| e.to_string()));
        settle(&self.shared, "SDS", result, |store| {
            info!(version, secrets = store.len(), "secrets applied");
            self.shared.publish(Change::Secrets(Arc::new(store)));
        })
    }

    /// A new agent instance: secrets of the old one are not trusted to be
    /// current (cilium-envoy resets its secret cache the same way); rules
    /// that need them fail closed until the new stream delivers.
    fn new_generation(&self, generation: u64) {
        if generation > 1 {
            self.shared.publish(Change::Secrets(Arc::default()));
        }
    }
}

/// Pairs each resource with the name inside it, as the translators want.
fn named<M: prost::Message + Default>(
    resources: &[Any],
    name: impl Fn(&M) -> String,
) -> Result<Vec<(String, Any)>, String> {
    let messages = decode_all::<M>(resources)?;
    Ok(messages
        .iter()
        .map(&name)
        .zip(resources.iter().cloned())
        .collect())
}

/// LDS: the agent's proxy listeners, opened and closed to match.
struct Lds {
    shared: Arc<Shared>,
    manager: Arc<Listeners>,
}

impl Resources for Lds {
    fn apply(&self, version: &str, resources: &[Any]) -> Result<(), String> {
        let result = named::<EnvoyListener>(resources, |l| l.name.clone())
            .and_then(|pairs| translate_listeners(&pairs).map_err(|e| e.to_string()))
            .and_then(|set| {
                for ignored in &set.ignored {
                    debug!(name = %ignored.name, reason = %ignored.reason, "listener ignored");
                }
                let specs = set.listeners.iter().map(ListenerSpec::from_lds).collect();
                self.manager
                    .reconcile(Source::Lds, specs)
                    .map_err(|e| e.to_string())
            });
        settle(&self.shared, "LDS", result, |()| {
            info!(version, listeners = resources.len(), "listeners applied");
        })
    }
}

/// CDS: the agent's original-destination clusters. Portcullis always
/// forwards to the original destination, so clusters are checked and
/// acknowledged; the ones it has no use for are named in the debug log.
struct Cds {
    shared: Arc<Shared>,
}

impl Resources for Cds {
    fn apply(&self, version: &str, resources: &[Any]) -> Result<(), String> {
        let result = named::<Cluster>(resources, |c| c.name.clone())
            .and_then(|pairs| accept_clusters(&pairs).map_err(|e| e.to_string()));
        settle(&self.shared, "CDS", result, |clusters| {
            for c in &clusters {
                debug!(name = %c.name, kind = ?c.kind, "cluster");
            }
            info!(version, clusters = clusters.len(), "clusters accepted");
        })
    }
}

/// Starts the NPDS, NPHDS, SDS, LDS and CDS subscriptions against `target`.
pub fn start(target: &str, shared: &Arc<Shared>, manager: &Arc<Listeners>) -> Vec<Stream> {
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
        (
            Path::Listeners,
            Arc::new(Lds {
                shared: shared.clone(),
                manager: manager.clone(),
            }),
        ),
        (
            Path::Clusters,
            Arc::new(Cds {
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
