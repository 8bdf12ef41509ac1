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

use notify::{RecursiveMode, Watcher};
use npds::xds::server::XdsCache;
use npds::{IdentityTable, PolicySnapshot};
use tokio::sync::mpsc;
use tracing::{error, info, warn};

use crate::config::Config;

/// Quiet time after a file event before reloading, so an editor's
/// write-rename-chmod burst is one reload.
const DEBOUNCE: Duration = Duration::from_millis(150);

/// Where refusals go: the proxy's `/config_dump` in process, a log line
/// for `portcullis control-plane`.
pub type RejectSink = Box<dyn Fn(String) + Send + Sync>;

pub struct Standalone {
    config: Config,
    cache: Arc<XdsCache>,
    on_reject: RejectSink,
}

impl Standalone {
    pub fn new(config: Config, cache: Arc<XdsCache>, on_reject: RejectSink) -> Self {
        Standalone {
            config,
            cache,
            on_reject,
        }
    }

    /// Builds the next resources off to the side and checks that they
    /// compile, so a bad file is refused here with its file and field named.
    fn build(&self) -> Result<cnp::Translation, String> {
        let mut docs = Vec::new();
        for file in policy_files(&self.config.policies)? {
            let text =
                std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
            docs.extend(cnp::parse_file(&file, &text).map_err(|e| e.to_string())?);
        }
        let translation =
            cnp::translate(&self.config.inventory(), &docs).map_err(|e| e.to_string())?;
        PolicySnapshot::compile("check", translation.network_policies.clone(), None)
            .map_err(|e| e.to_string())?;
        IdentityTable::compile(&translation.hosts).map_err(|e| e.to_string())?;
        Ok(translation)
    }

    /// Loads once; on failure keeps what is enforcing and records why.
    pub fn reload(&mut self) -> bool {
        match self.build() {
            Ok(t) => {
                // Identities first, as the agent orders them: a policy never
                // names an identity the proxy has not been told about.
                let hosts = self.cache.set_hosts(t.hosts);
                let policies = self.cache.set_network_policies(t.network_policies);
                info!(
                    nphds_version = hosts,
                    npds_version = policies,
                    "policy published"
                );
                true
            }
            Err(e) => {
                error!(error = %e, "policy rejected; the last good policy stays in force");
                (self.on_reject)(e);
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
                    if ev.paths.iter().any(|p| is_policy_path(p, &watched)) {
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
fn policy_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).map_err(|e| format!("{}: {e}", p.display()))?;
        if meta.is_dir() {
            collect_dir(p, &mut out)?;
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

fn collect_dir(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
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
