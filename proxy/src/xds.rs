//! The proxy's side of xDS: one subscription per resource type, each with a
//! handler that validates a complete update and swaps it into the data path.

use std::sync::Arc;

use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::listener::v3::Listener as EnvoyListener;
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::Secret;
use envoy_types::pb::google::protobuf::Any;
use npds::proto::NetworkPolicyHosts;
use npds::{IdentityTable, PolicyError, PolicySnapshot};
use portcullis_xds::client::{
    decode_all, Backoff, DecodeError, Resources, Subscription, SubscriptionStats,
};
use portcullis_xds::listener::{accept_clusters, translate_listeners, ListenerError};
use portcullis_xds::Path;
use sds::{SecretError, SecretStore};
use tracing::{debug, info};

use crate::listeners::{ListenerSpec, Listeners, ReconcileError, Source};
use crate::metrics::Stream;

use crate::policy::Change;
use crate::state::Shared;

/// Readiness waits for these.
pub const NPDS: &str = "NPDS";
pub const NPHDS: &str = "NPHDS";

/// Why an update of any type was refused. The text is the NACK's
/// `error_detail.message` and the `/config_dump` rejection.
#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error(transparent)]
    Secrets(#[from] SecretError),
    #[error(transparent)]
    Listeners(#[from] ListenerError),
    #[error(transparent)]
    Reconcile(#[from] ReconcileError),
}

/// Applies a checked update or records why it was refused; the error goes
/// back to the subscription, which NACKs with it.
fn settle<T>(
    shared: &Shared,
    source: &'static str,
    result: Result<T, UpdateError>,
    apply: impl FnOnce(T),
) -> Result<(), UpdateError> {
    match result {
        Ok(value) => {
            apply(value);
            Ok(())
        }
        Err(e) => {
            shared.reject(source, e.to_string());
            Err(e)
        }
    }
}

struct Npds {
    shared: Arc<Shared>,
}

impl Resources for Npds {
    type Error = UpdateError;

    fn apply(&self, version: &str, resources: &[Any]) -> Result<(), UpdateError> {
        let previous = self.shared.policy_arc();
        let encoded: Vec<&[u8]> = resources.iter().map(|a| a.value.as_slice()).collect();
        let result = PolicySnapshot::compile_encoded(version, &encoded, Some(&previous.snapshot))
            .map_err(UpdateError::from);
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
    type Error = UpdateError;

    fn apply(&self, version: &str, resources: &[Any]) -> Result<(), UpdateError> {
        let result = decode_all::<NetworkPolicyHosts>(resources)
            .map_err(UpdateError::from)
            .and_then(|hosts| Ok(IdentityTable::compile(&hosts)?));
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
    type Error = UpdateError;

    fn apply(&self, version: &str, resources: &[Any]) -> Result<(), UpdateError> {
        let result = decode_all::<Secret>(resources)
            .map_err(UpdateError::from)
            .and_then(|secrets| Ok(SecretStore::compile(&secrets)?));
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
) -> Result<Vec<(String, Any)>, UpdateError> {
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
    type Error = UpdateError;

    fn apply(&self, version: &str, resources: &[Any]) -> Result<(), UpdateError> {
        let result = named::<EnvoyListener>(resources, |l| l.name.clone())
            .and_then(|pairs| Ok(translate_listeners(&pairs)?))
            .and_then(|set| {
                for ignored in &set.ignored {
                    debug!(name = %ignored.name, reason = %ignored.reason, "listener ignored");
                }
                let specs = set.listeners.iter().map(ListenerSpec::from_lds).collect();
                Ok(self.manager.reconcile(Source::Lds, specs)?)
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
    type Error = UpdateError;

    fn apply(&self, version: &str, resources: &[Any]) -> Result<(), UpdateError> {
        let result = named::<Cluster>(resources, |c| c.name.clone())
            .and_then(|pairs| Ok(accept_clusters(&pairs)?));
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
    let shared = || shared.clone();
    vec![
        subscribe(target, Path::NetworkPolicies, Npds { shared: shared() }),
        subscribe(target, Path::NetworkPolicyHosts, Nphds { shared: shared() }),
        subscribe(target, Path::Secrets, Sds { shared: shared() }),
        subscribe(
            target,
            Path::Listeners,
            Lds {
                shared: shared(),
                manager: manager.clone(),
            },
        ),
        subscribe(target, Path::Clusters, Cds { shared: shared() }),
    ]
}

/// Spawns one subscription of `path` handled by `handler`.
fn subscribe<H: Resources>(target: &str, path: Path, handler: H) -> Stream {
    let stats = Arc::new(SubscriptionStats::default());
    tokio::spawn(
        Subscription {
            target: target.to_string(),
            path,
            handler: Arc::new(handler),
            stats: stats.clone(),
            backoff: Backoff::default(),
        }
        .run(),
    );
    Stream { path, stats }
}
