//! One SotW stream of the in-process server, following the agent's
//! `processRequestStream` (`pkg/envoy/xds/server.go`) and `WatchResources`
//! (`watcher.go`). The rules are listed in the parent module's docs.

use std::net::IpAddr;
use std::sync::Arc;

use envoy_types::pb::envoy::service::discovery::v3::{DiscoveryRequest, DiscoveryResponse};
use tokio::sync::{mpsc, watch};
use tonic::{Status, Streaming};

use super::{Ack, Nack, Snapshot, TypeState};
use crate::Path;

type Tx = mpsc::Sender<Result<DiscoveryResponse, Status>>;

/// Per-stream state of one subscription.
pub(super) struct StreamState {
    path: Path,
    ty: Arc<TypeState>,
    first: bool,
    /// Version (= nonce) of the last response sent on this stream; 0: none.
    sent: u64,
    /// `Some(v)`: a watch is armed, send once the version exceeds `v`.
    /// `None`: no request to answer (nothing asked yet, or a response is
    /// outstanding and the client has not ACKed or NACKed it).
    watch: Option<u64>,
    /// Resource names of the request that armed the watch; empty = all.
    names: Vec<String>,
}

impl StreamState {
    pub(super) fn new(path: Path, ty: Arc<TypeState>) -> Self {
        StreamState {
            path,
            ty,
            first: true,
            sent: 0,
            watch: None,
            names: Vec::new(),
        }
    }

    /// Takes in one request. `Err` ends the stream with that status, as the
    /// agent ends it with an error.
    fn on_request(&mut self, req: DiscoveryRequest) -> Result<(), Status> {
        if self.first {
            // The agent needs the node only on the first request
            // (`set_node_on_first_message_only`) and parses its IP out.
            let id = req.node.as_ref().map_or("", |n| n.id.as_str());
            if node_ip(id).is_none() {
                return Err(Status::invalid_argument(format!(
                    "invalid node format: {id:?}"
                )));
            }
            self.first = false;
        }
        let version = decimal(&req.version_info).ok_or_else(|| {
            Status::invalid_argument(format!("invalid version info {:?}", req.version_info))
        })?;
        let mut nonce = decimal(&req.response_nonce).ok_or_else(|| {
            Status::invalid_argument(format!(
                "invalid response nonce info {:?}",
                req.response_nonce
            ))
        })?;
        if !req.type_url.is_empty() && req.type_url != self.path.type_url() {
            return Err(Status::invalid_argument(format!(
                "unknown type URL {:?}",
                req.type_url
            )));
        }
        if nonce == 0 && version > 0 {
            // A client that kept its version across a new stream: the server
            // restarted under it. Its version counts as ACKed.
            nonce = version;
        }
        if self.sent != 0 && nonce != 0 && nonce != self.sent {
            tracing::debug!(path = %self.path, nonce, sent = self.sent, "stale nonce ignored");
            return Ok(());
        }
        if version > nonce {
            return Err(Status::invalid_argument(format!(
                "invalid nonce {nonce}: below the version {version} it claims to run"
            )));
        }
        self.names = req.resource_names;
        if nonce == 0 {
            // A plain subscription (first request, or new resource names).
            self.watch = Some(0);
        } else if req.error_detail.is_some() || version < nonce {
            let detail = req.error_detail.unwrap_or_default();
            self.ty.acks.send_modify(|s| {
                s.nacks += 1;
                s.last_nack = Some(Nack {
                    version,
                    nonce,
                    code: detail.code,
                    message: detail.message,
                });
            });
            // Wait for a version above the one sent, so the rejected version
            // is not resent over and over; the agent behaves "as if the sent
            // version was acked".
            self.watch = Some(self.sent);
        } else {
            self.ty.acks.send_modify(|s| {
                s.acks += 1;
                s.last_ack = Some(Ack { version, nonce });
            });
            self.watch = Some(version);
        }
        if let Some(after) = self.watch.filter(|&v| v > 0) {
            if self.ty.snapshot.borrow().version < after {
                // The client has a version this server never sent: bump past
                // it so that the current resources go out now.
                self.ty.ensure_version(after + 1);
            }
        }
        Ok(())
    }

    /// The response due now, if a watch is armed and the cache is past it.
    fn due(&mut self, snaps: &mut watch::Receiver<Arc<Snapshot>>) -> Option<DiscoveryResponse> {
        let after = self.watch?;
        let snap = Arc::clone(&snaps.borrow_and_update());
        if !snap.published || snap.version <= after {
            return None;
        }
        let resources = snap
            .resources
            .iter()
            .filter(|(name, _)| self.names.is_empty() || self.names.contains(name))
            .map(|(_, any)| any.clone())
            .collect();
        self.sent = snap.version;
        self.watch = None;
        Some(DiscoveryResponse {
            version_info: snap.version.to_string(),
            resources,
            type_url: self.path.type_url().to_owned(),
            nonce: snap.version.to_string(),
            ..Default::default()
        })
    }
}

/// Counts a stream open while it lives.
struct OpenGuard(Arc<TypeState>);

impl OpenGuard {
    fn new(ty: Arc<TypeState>) -> Self {
        ty.acks.send_modify(|s| {
            s.streams_opened += 1;
            s.streams_open += 1;
        });
        OpenGuard(ty)
    }
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.acks.send_modify(|s| s.streams_open -= 1);
    }
}

/// Resolves when `stop` turns true or its server is gone; never without one.
async fn stopped(stop: &mut Option<watch::Receiver<bool>>) {
    match stop {
        Some(rx) => {
            let _ = rx.wait_for(|s| *s).await;
        }
        None => std::future::pending().await,
    }
}

/// Runs one stream until the client goes away, breaks the protocol, or the
/// server stops.
pub(super) async fn run(
    mut st: StreamState,
    mut requests: Streaming<DiscoveryRequest>,
    tx: Tx,
    mut stop: Option<watch::Receiver<bool>>,
) {
    let _open = OpenGuard::new(Arc::clone(&st.ty));
    let mut snaps = st.ty.snapshot.subscribe();
    let path = st.path;
    loop {
        if let Some(resp) = st.due(&mut snaps) {
            tracing::debug!(%path, version = %resp.version_info, n = resp.resources.len(), "xDS response");
            tokio::select! {
                sent = tx.send(Ok(resp)) => if sent.is_err() { return },
                _ = stopped(&mut stop) => break,
            }
            continue;
        }
        let armed = st.watch.is_some();
        tokio::select! {
            _ = stopped(&mut stop) => break,
            _ = tx.closed() => return,
            changed = snaps.changed(), if armed => if changed.is_err() { return },
            req = requests.message() => match req {
                Ok(Some(req)) => {
                    if let Err(status) = st.on_request(req) {
                        tracing::debug!(%path, %status, "xDS stream refused");
                        let _ = tx.try_send(Err(status));
                        return;
                    }
                }
                // The client closed its side: the agent ends the stream.
                Ok(None) => return,
                Err(status) => {
                    tracing::debug!(%path, %status, "xDS request stream failed");
                    return;
                }
            },
        }
    }
    // Shutdown: end the stream so tonic's graceful shutdown can finish.
    let _ = tx.try_send(Err(Status::unavailable("xDS server shutting down")));
}

/// A decimal `u64`, the empty string being 0 (the agent's `ParseUint`).
fn decimal(s: &str) -> Option<u64> {
    if s.is_empty() {
        Some(0)
    } else {
        s.parse().ok()
    }
}

/// The IP of an Istio-style node id `type~IP~id~domain` (the agent's
/// `IstioNodeToIP`: exactly four parts, the second an IP address).
fn node_ip(id: &str) -> Option<IpAddr> {
    let parts: Vec<&str> = id.split('~').collect();
    if parts.len() != 4 {
        return None;
    }
    parts[1].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids_as_the_agent_parses_them() {
        assert_eq!(node_ip(crate::NODE_ID), Some("127.0.0.1".parse().unwrap()));
        assert!(node_ip("sidecar~fd00::1~pod.ns~ns.svc.cluster.local").is_some());
        for bad in ["", "host~127.0.0.1~x", "host~nope~x~y", "a~127.0.0.1~b~c~d"] {
            assert_eq!(node_ip(bad), None, "{bad}");
        }
    }

    #[test]
    fn versions_are_decimal() {
        assert_eq!(decimal(""), Some(0));
        assert_eq!(decimal("17"), Some(17));
        assert_eq!(decimal("v1"), None);
        assert_eq!(decimal("-1"), None);
    }
}
