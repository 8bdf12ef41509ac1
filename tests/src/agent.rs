//! xDS: an in-process server that plays the Cilium agent, and the agent's
//! resources for a CNP, to push and to edit in tests and benchmarks.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::wait_for;

/// The Cilium agent's xDS side, played by `portcullis_xds::server::XdsCache` on a
/// unix socket, on a runtime of its own so tests can stop and restart it.
pub struct Agent {
    pub rt: tokio::runtime::Runtime,
    pub cache: std::sync::Arc<portcullis_xds::server::XdsCache>,
    pub socket: PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Agent {
    pub fn start(socket: &Path) -> Agent {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let cache = std::sync::Arc::new(portcullis_xds::server::XdsCache::new());
        let listener = {
            let _guard = rt.enter();
            portcullis_xds::server::bind_unix(socket).expect("bind the agent's socket")
        };
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        rt.spawn(portcullis_xds::server::serve(
            cache.clone(),
            portcullis_xds::server::XdsListener::from(listener),
            async {
                let _ = rx.await;
            },
        ));
        Agent {
            rt,
            cache,
            socket: socket.to_path_buf(),
            stop: Some(tx),
        }
    }

    /// The `--xds` target for Portcullis.
    pub fn target(&self) -> String {
        format!("unix:{}", self.socket.display())
    }

    /// Waits up to 10 s for `fut` on the agent's runtime.
    pub fn wait<T>(&self, what: &str, fut: impl std::future::Future<Output = T>) -> T {
        wait_for(&self.rt, what, Duration::from_secs(10), fut)
    }

    /// Stops serving: open streams end, the socket closes.
    pub fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        self.rt.shutdown_timeout(Duration::from_secs(2));
    }
}

/// The agent's NPDS and NPHDS resources for `policy` (CNP YAML) and
/// `inventory` (YAML of `cnp::Inventory`), as the agent would translate them.
pub fn agent_resources(
    inventory: &str,
    policy: &str,
) -> (
    Vec<npds::proto::NetworkPolicy>,
    Vec<npds::proto::NetworkPolicyHosts>,
) {
    let inv: cnp::Inventory = serde_yaml_ng::from_str(inventory).expect("inventory YAML");
    let docs = cnp::parse_file(Path::new("policy.yaml"), policy).expect("policy YAML");
    let t = cnp::translate(&inv, &docs).expect("translate");
    (t.network_policies, t.hosts)
}

/// The `:path` safe-regex matchers of every HTTP rule in `np`.
pub fn path_regexes(np: &mut npds::proto::NetworkPolicy) -> Vec<&mut String> {
    use envoy_types::pb::envoy::config::route::v3::header_matcher::HeaderMatchSpecifier;
    use envoy_types::pb::envoy::r#type::matcher::v3::string_matcher::MatchPattern;
    let mut out = Vec::new();
    for port in np
        .ingress_per_port_policies
        .iter_mut()
        .chain(np.egress_per_port_policies.iter_mut())
    {
        for rule in &mut port.rules {
            if let Some(npds::proto::port_network_policy_rule::L7::HttpRules(h)) = &mut rule.l7 {
                for r in &mut h.http_rules {
                    for m in r.headers.iter_mut().filter(|m| m.name == ":path") {
                        if let Some(HeaderMatchSpecifier::StringMatch(sm)) =
                            &mut m.header_match_specifier
                        {
                            if let Some(MatchPattern::SafeRegex(re)) = &mut sm.match_pattern {
                                out.push(&mut re.regex);
                            }
                        }
                    }
                }
            }
        }
    }
    out
}
