//! The embedded control plane: CiliumNetworkPolicy YAML on disk, translated
//! into the NPDS and NPHDS resources the agent would send, and served over
//! xDS from an in-process cache, so that the proxy takes its policy down the
//! same client path whether an agent or this file is the source.
//!
//! Policy paths are watched; an edit applies live, and a broken file leaves
//! the last good policy enforcing (the error is logged and reported).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::event::{AccessKind, AccessMode};
use notify::{EventKind, RecursiveMode, Watcher};
use npds::{IdentityTable, PolicySnapshot};
use portcullis_xds::server::XdsCache;
use tokio::sync::mpsc;
use tracing::{error, info, warn};

use l7_dns::proto::{
    ip_to_bytes, prefix_to_bytes, DnsPolicy as ProtoDnsPolicy, DnsServer, EndpointInfo,
    IdentityToEndpointMapping, IdentityToPrefixMapping, PolicyState,
};
use l7_dns::{CompiledDnsPolicy, DnsSelector, Selectors};

use crate::config::Config;
use crate::dns::policy::ServerIdentities;

/// Quiet time after a file event before reloading, so an editor's
/// write-rename-chmod burst is one reload.
const DEBOUNCE: Duration = Duration::from_millis(150);

/// What became of each load of the policy files (at start and after each
/// change): `Err` carries why it was refused. In process, counted and the
/// refusal kept for `/config_dump`; `portcullis control-plane` has only
/// its log line.
pub type LoadSink = Box<dyn Fn(Result<(), &LoadError>) + Send + Sync>;

/// Why the policy files were refused; the last good policy stays.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Policy(#[from] cnp::CnpError),
    #[error(transparent)]
    Compile(#[from] npds::PolicyError),
    /// The translation cannot be put into the agent's DNS policy message.
    #[error("{0}")]
    DnsState(String),
    #[error("DNS policy: {0}")]
    Dns(#[from] l7_dns::DnsPolicyError),
    #[error("toFQDNs: {0}")]
    Selectors(#[from] l7_dns::PatternError),
}

/// Where the DNS half of a translation goes: the in-process DNS proxy.
pub type DnsSink = Box<dyn Fn(DnsUpdate) + Send + Sync>;

/// The DNS rules and `toFQDNs` selectors of the policy files, in the form
/// the agent's `FQDNData` stream carries them, already compiled.
pub struct DnsUpdate {
    pub policy: CompiledDnsPolicy<ServerIdentities>,
    pub selectors: Selectors,
}

pub struct Standalone {
    config: Config,
    cache: Arc<XdsCache>,
    on_load: LoadSink,
    on_dns: Option<DnsSink>,
}

impl Standalone {
    pub fn new(
        config: Config,
        cache: Arc<XdsCache>,
        on_load: LoadSink,
        on_dns: Option<DnsSink>,
    ) -> Self {
        Standalone {
            config,
            cache,
            on_load,
            on_dns,
        }
    }

    /// Builds the next resources off to the side and checks that they
    /// compile, so a bad file is refused here with its file and field named.
    fn build(&self) -> Result<(cnp::Translation, DnsUpdate), LoadError> {
        let mut docs = Vec::new();
        for file in policy_files(&self.config.policies)? {
            let text = std::fs::read_to_string(&file).map_err(|source| LoadError::Read {
                path: file.clone(),
                source,
            })?;
            docs.extend(cnp::parse_file(&file, &text)?);
        }
        let translation = cnp::translate(&self.config.inventory(), &docs)?;
        PolicySnapshot::compile("check", translation.network_policies.clone(), None)?;
        IdentityTable::compile(&translation.hosts)?;
        let state = policy_state(&self.config, &translation).map_err(LoadError::DnsState)?;
        let policy = CompiledDnsPolicy::compile(&state)?;
        let selectors: Vec<(DnsSelector, u32)> = translation
            .fqdn_selectors
            .iter()
            .map(|s| {
                let sel = if s.match_name.is_empty() {
                    DnsSelector::MatchPattern(s.match_pattern.clone())
                } else {
                    DnsSelector::MatchName(s.match_name.clone())
                };
                (sel, s.identity)
            })
            .collect();
        let selectors = Selectors::compile(&selectors)?;
        Ok((translation, DnsUpdate { policy, selectors }))
    }

    /// Loads once; on failure keeps what is enforcing and records why.
    pub fn reload(&mut self) -> bool {
        match self.build() {
            Ok((t, dns)) => {
                // DNS first: a name the new rules allow resolves before
                // connections to its addresses are judged by them.
                if let Some(on_dns) = &self.on_dns {
                    on_dns(dns);
                }
                // Identities first, as the agent orders them: a policy never
                // names an identity the proxy has not been told about.
                let hosts = self.cache.set_hosts(t.hosts);
                let policies = self.cache.set_network_policies(t.network_policies);
                info!(
                    nphds_version = hosts,
                    npds_version = policies,
                    "policy published"
                );
                (self.on_load)(Ok(()));
                true
            }
            Err(e) => {
                error!(error = %e, "policy rejected; the last good policy stays in force");
                (self.on_load)(Err(&e));
                false
            }
        }
    }

    /// Initial load, then reload on every change under the policy paths.
    pub async fn run(mut self) {
        self.reload();
        let (tx, mut rx) = mpsc::channel::<()>(1);
        let watched: Vec<PathBuf> = self.config.policies.clone();
        let mut watcher =
            match notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
                if let Ok(ev) = res {
                    // Events were lost (the kernel queue overflowed): look again.
                    let lost = ev.need_rescan();
                    if lost
                        || (may_change_content(&ev.kind)
                            && ev.paths.iter().any(|p| is_policy_path(p, &watched)))
                    {
                        // Full means a reload is already pending: coalesce.
                        let _ = tx.try_send(());
                    }
                }
            }) {
                Ok(w) => w,
                Err(e) => {
                    warn!(error = %e, "cannot watch policy files; live reload is off");
                    return;
                }
            };
        for p in &self.config.policies {
            let (target, mode) = if p.is_dir() {
                (p.clone(), RecursiveMode::Recursive)
            } else {
                // Watch the directory: editors replace files by rename.
                (
                    p.parent().unwrap_or(Path::new(".")).to_path_buf(),
                    RecursiveMode::NonRecursive,
                )
            };
            if let Err(e) = watcher.watch(&target, mode) {
                warn!(path = %target.display(), error = %e, "cannot watch policy path");
            }
        }
        while rx.recv().await.is_some() {
            tokio::time::sleep(DEBOUNCE).await;
            while rx.try_recv().is_ok() {}
            self.reload();
        }
    }
}

/// The `standalonednsproxy.PolicyState` the agent would stream for this
/// translation: DNS rules per endpoint, endpoints' addresses by identity,
/// and every identity's prefixes (for the server identity lookup).
fn policy_state(config: &Config, t: &cnp::Translation) -> Result<PolicyState, String> {
    let mut egress = Vec::with_capacity(t.dns_rules.len());
    for p in &t.dns_rules {
        let source_endpoint_id = u32::try_from(p.endpoint_id).map_err(|_| {
            format!(
                "endpoint {}: DNS policy carries endpoint ids as 32-bit numbers",
                p.endpoint_id
            )
        })?;
        egress.push(ProtoDnsPolicy {
            source_endpoint_id,
            dns_pattern: p.patterns.clone(),
            dns_servers: p
                .servers
                .iter()
                .map(|s| DnsServer {
                    dns_server_identity: s.identity,
                    dns_server_port: u32::from(s.port),
                    dns_server_proto: u32::from(s.proto),
                })
                .collect(),
        });
    }
    let mut by_identity: std::collections::BTreeMap<u32, Vec<EndpointInfo>> = Default::default();
    for ep in &config.endpoints {
        let Some(identity) = t.endpoint_identities.get(&ep.id) else {
            continue;
        };
        by_identity
            .entry(*identity)
            .or_default()
            .push(EndpointInfo {
                id: ep.id,
                ip: ep.ips.iter().map(|ip| ip_to_bytes(*ip)).collect(),
            });
    }
    let mut prefixes = Vec::with_capacity(t.hosts.len());
    for h in &t.hosts {
        let mut prefix = Vec::with_capacity(h.host_addresses.len());
        for a in &h.host_addresses {
            let net: ipnet::IpNet = a
                .parse()
                .or_else(|_| a.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| format!("identity {}: {a:?} is not an address", h.policy))?;
            prefix.push(prefix_to_bytes(net));
        }
        prefixes.push(IdentityToPrefixMapping {
            identity: u32::try_from(h.policy).unwrap_or(u32::MAX),
            prefix,
        });
    }
    Ok(PolicyState {
        egress_l7_dns_policy: egress,
        request_id: String::new(),
        identity_to_endpoint_mapping: by_identity
            .into_iter()
            .map(|(identity, endpoint_info)| IdentityToEndpointMapping {
                identity,
                endpoint_info,
            })
            .collect(),
        identity_to_prefix_mapping: prefixes,
    })
}

/// Whether an event of this kind can mean that a policy file changed. Not
/// opening or reading one: inotify reports every open (notify asks for
/// IN_OPEN), and each reload opens every policy file and directory, so
/// counting opens made every reload schedule the next, forever. A writer
/// closing its file still counts: its last write may have come after the
/// reload its first one caused.
fn may_change_content(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        EventKind::Any
        | EventKind::Create(_)
        | EventKind::Modify(_)
        | EventKind::Remove(_)
        | EventKind::Other => true,
    }
}

fn is_policy_path(p: &Path, roots: &[PathBuf]) -> bool {
    roots
        .iter()
        .any(|r| p == r || (p.starts_with(r) && is_yaml(p)))
}

fn is_yaml(p: &Path) -> bool {
    matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
}

/// Files named by the config: a file as is; a directory's `*.yaml`/`*.yml`,
/// recursively, in name order so that results are stable.
fn policy_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, LoadError> {
    let mut out = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).map_err(|source| LoadError::Read {
            path: p.clone(),
            source,
        })?;
        if meta.is_dir() {
            collect_dir(p, &mut out)?;
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

fn collect_dir(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), LoadError> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|source| LoadError::Read {
            path: dir.to_path_buf(),
            source,
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for e in entries {
        if e.is_dir() {
            collect_dir(&e, out)?;
        } else if is_yaml(&e) {
            out.push(e);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{CreateKind, DataChange, MetadataKind, ModifyKind, RemoveKind};

    #[test]
    fn opening_or_reading_a_policy_file_is_no_change() {
        let cases = [
            (EventKind::Access(AccessKind::Open(AccessMode::Any)), false),
            (EventKind::Access(AccessKind::Read), false),
            (
                EventKind::Access(AccessKind::Close(AccessMode::Read)),
                false,
            ),
            (
                EventKind::Access(AccessKind::Close(AccessMode::Write)),
                true,
            ),
            (EventKind::Modify(ModifyKind::Data(DataChange::Any)), true),
            (
                EventKind::Modify(ModifyKind::Metadata(MetadataKind::Any)),
                true,
            ),
            (EventKind::Create(CreateKind::File), true),
            (EventKind::Remove(RemoveKind::File), true),
            (EventKind::Other, true),
        ];
        for (kind, change) in cases {
            assert_eq!(may_change_content(&kind), change, "{kind:?}");
        }
    }
}
