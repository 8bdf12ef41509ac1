//! One downstream connection, top to bottom: original destination → peer
//! identity → endpoint policy → L3/L4 verdict → L7 handler or TCP relay.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use npds::proto::Protocol;
use npds::{Direction, L7Kind, PortRules, Remote};
use tokio::net::TcpStream;
use tracing::{debug, info};

use crate::access_log::{self, ConnectionEvent, Event, Peers};
use crate::config::ListenerProtocol;
use crate::orig_dst::OrigDst;
use crate::state::{PolicyState, Shared};

/// A listener as the data path sees it.
pub struct Listener {
    pub name: Arc<str>,
    pub direction: Direction,
    pub protocol: ListenerProtocol,
    /// Matches a rule's `proxy_id`: the listener's port, as in Cilium.
    pub proxy_id: u32,
    pub orig_dst: Box<dyn OrigDst>,
    /// The configured fixed original destination, if any (DNS listeners
    /// need one).
    pub upstream: Option<SocketAddr>,
}

/// Who is talking to whom on an admitted connection.
pub struct ConnInfo {
    pub peers: Arc<Peers>,
    pub direction: Direction,
    pub proxy_id: u32,
    /// The local endpoint whose policy applies: destination on ingress,
    /// source on egress.
    pub endpoint_ip: IpAddr,
    /// The peer judged by `remote_policies`: source on ingress, destination on egress.
    pub remote_ip: IpAddr,
    pub dst: SocketAddr,
}

/// A refusal, with the rule that made it (if any) and why.
pub struct Refusal {
    pub rule: String,
    pub reason: String,
}

impl ConnInfo {
    /// Finds this connection's port rules in `policy` and the remote identity.
    pub fn port_rules<'p>(
        &self,
        policy: &'p PolicyState,
    ) -> Result<(&'p PortRules, Remote<'p>), Refusal> {
        let ep = policy
            .snapshot
            .endpoint(self.endpoint_ip)
            .ok_or_else(|| Refusal {
                rule: String::new(),
                reason: format!("no policy for endpoint {}", self.endpoint_ip),
            })?;
        let rules = ep
            .port(self.direction, Protocol::Tcp, self.dst.port())
            .ok_or_else(|| Refusal {
                rule: String::new(),
                reason: format!(
                    "port {}/TCP is not allowed {}",
                    self.dst.port(),
                    self.direction.as_str()
                ),
            })?;
        let remote = Remote {
            identity: policy.identities.lookup(self.remote_ip),
            fqdn: policy.fqdn.of(self.remote_ip),
            proxy_id: self.proxy_id,
            sni: npds::Sni::Unread,
        };
        Ok((rules, remote))
    }

    /// The L7 parser the port's rules ask for (none when the port is denied).
    pub fn l7_kind(&self, policy: &PolicyState) -> L7Kind {
        self.port_rules(policy)
            .map_or(L7Kind::None, |(rules, _)| rules.l7_kind())
    }

    /// SO_MARK for connections to the original destination.
    pub fn upstream_mark(&self) -> u32 {
        crate::upstream::cilium_mark(self.direction, self.peers.src_identity)
    }

    /// The L3/L4 verdict under `policy`.
    pub fn admit(&self, policy: &PolicyState) -> Result<(), Refusal> {
        let (rules, remote) = self.port_rules(policy)?;
        let v = rules.allows_connection(&remote);
        if v.allowed {
            Ok(())
        } else {
            Err(Refusal {
                rule: v.rule_name().to_string(),
                reason: format!(
                    "{} identity {} on port {}",
                    if v.rule.is_some() {
                        "a deny rule matches"
                    } else {
                        "no rule allows"
                    },
                    remote.identity,
                    self.dst.port()
                ),
            })
        }
    }
}

pub async fn handle(
    stream: TcpStream,
    peer: SocketAddr,
    listener: Arc<Listener>,
    shared: Arc<Shared>,
) {
    let _ = stream.set_nodelay(true);
    let dst = match listener.orig_dst.orig_dst(&stream) {
        Ok(d) => d,
        Err(e) => {
            info!(%peer, error = %e, "no original destination; resetting");
            reset(stream);
            return;
        }
    };
    let policy = shared.policy();
    let (endpoint_ip, remote_ip) = match listener.direction {
        Direction::Ingress => (dst.ip(), peer.ip()),
        Direction::Egress => (peer.ip(), dst.ip()),
    };
    let conn = ConnInfo {
        peers: Arc::new(Peers {
            direction: listener.direction.as_str(),
            listener: listener.name.clone(),
            src_identity: policy.identities.lookup(peer.ip()),
            src: peer,
            dst_identity: policy.identities.lookup(dst.ip()),
            dst,
            json: Default::default(),
        }),
        direction: listener.direction,
        proxy_id: listener.proxy_id,
        endpoint_ip,
        remote_ip,
        dst,
    };
    if let Err(refusal) = conn.admit(&policy) {
        shared.metrics.connections_denied.inc();
        info!(%peer, %dst, rule = %refusal.rule, reason = %refusal.reason, "connection denied; resetting");
        shared.access_log.log(Event::Connection(ConnectionEvent {
            time: access_log::now(),
            peers: conn.peers.clone(),
            verdict: "denied",
            rule: refusal.rule,
            reason: refusal.reason,
        }));
        reset(stream);
        return;
    }
    // On a TCP listener the port's rules pick the parser, as the agent's
    // `l7_proto` does for cilium.network: Kafka rules mean Kafka parsing.
    let kafka =
        listener.protocol == ListenerProtocol::Tcp && conn.l7_kind(&policy) == L7Kind::Kafka;
    drop(policy);
    shared.metrics.connections_allowed.inc();
    shared.metrics.active_connections.inc();
    let conn = Arc::new(conn);
    let mut changes = shared.subscribe();
    let serve = async {
        match listener.protocol {
            ListenerProtocol::Http => {
                crate::http::serve(stream, conn.clone(), shared.clone()).await
            }
            ListenerProtocol::Tcp if kafka => {
                crate::kafka::serve(stream, conn.clone(), shared.clone()).await
            }
            ListenerProtocol::Tcp => crate::tcp::relay(stream, conn.clone()).await,
            // DNS listeners never reach here: the accept loop hands their
            // connections to the DNS proxy. Closing is the fail-closed answer.
            ListenerProtocol::Dns => drop(stream),
        }
    };
    tokio::pin!(serve);
    // Requests are judged one by one under the policy current at their start;
    // the connection itself is judged again whenever the policy changes, and
    // closed if its L3/L4 allowance is gone. A connection both the old and
    // the new policy allow is never touched.
    loop {
        tokio::select! {
            () = &mut serve => break,
            changed = changes.changed() => {
                if changed.is_err() {
                    (&mut serve).await;
                    break;
                }
                let policy = shared.policy();
                let mut verdict = conn.admit(&policy);
                if verdict.is_ok()
                    && listener.protocol == ListenerProtocol::Tcp
                    && (conn.l7_kind(&policy) == L7Kind::Kafka) != kafka
                {
                    // The parser a connection started with no longer fits
                    // the port's rules (a relay that now needs Kafka
                    // enforcement, say): start over under the new policy.
                    verdict = Err(Refusal {
                        rule: String::new(),
                        reason: "the port's L7 parser changed".into(),
                    });
                }
                drop(policy);
                if let Err(refusal) = verdict {
                    info!(%peer, %dst, rule = %refusal.rule, reason = %refusal.reason, "policy no longer allows this connection; closing");
                    shared.metrics.connections_closed_by_policy.inc();
                    shared.access_log.log(Event::Connection(ConnectionEvent {
                        time: access_log::now(),
                        peers: conn.peers.clone(),
                        verdict: "closed",
                        rule: refusal.rule,
                        reason: refusal.reason,
                    }));
                    break;
                }
            }
        }
    }
    shared.metrics.active_connections.dec();
    debug!(%peer, %dst, "connection closed");
}

/// Closes with RST, as cilium.network does on a deny (AbortReset).
pub fn reset(stream: TcpStream) {
    #[allow(deprecated)] // set_linger(Some(0)) is exactly the abortive close we want.
    let _ = stream.set_linger(Some(Duration::ZERO));
    drop(stream);
}
