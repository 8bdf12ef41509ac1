//! One downstream connection, top to bottom: original destination → peer
//! identity → endpoint policy → L3/L4 verdict → the parser the listener and
//! the port's rules call for (proxy/src/parser.rs) → L7 handler or relay.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use npds::proto::Protocol;
use npds::{Direction, PortRules, Remote};
use tokio::net::TcpStream;
use tracing::{debug, info};

use crate::access_log::{self, ConnectionEvent, Event, Peers};
use crate::config::ListenerProtocol;
use crate::orig_dst::OrigDst;
use crate::parser::Parser;
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

    /// The parser a `protocol` listener runs for this connection's port
    /// under `policy`, or why it cannot enforce the port's rules.
    pub fn parser(
        &self,
        policy: &PolicyState,
        protocol: ListenerProtocol,
    ) -> Result<Parser, Refusal> {
        let (rules, _) = self.port_rules(policy)?;
        crate::parser::choose(protocol, rules).map_err(|e| Refusal {
            rule: rules
                .l7_rule()
                .map_or(String::new(), |r| r.name.to_string()),
            reason: format!("port {}: {e}", self.dst.port()),
        })
    }

    /// Writes a connection event (refused, rejected or closed) to the
    /// access log.
    pub fn log_event(&self, shared: &Shared, verdict: &'static str, rule: String, reason: String) {
        shared.access_log.log(Event::Connection(ConnectionEvent {
            time: access_log::now(),
            peers: self.peers.clone(),
            verdict,
            rule,
            reason,
        }));
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
        conn.log_event(&shared, "denied", refusal.rule, refusal.reason);
        reset(stream);
        return;
    }
    // The port's rules pick the parser; a listener that cannot enforce
    // them refuses the connection rather than relay past them.
    let parser = match conn.parser(&policy, listener.protocol) {
        Ok(p) => p,
        Err(refusal) => {
            shared.metrics.connections_rejected.inc();
            info!(%peer, %dst, rule = %refusal.rule, reason = %refusal.reason, "no parser on this listener enforces the port's rules; resetting");
            conn.log_event(&shared, "rejected", refusal.rule, refusal.reason);
            reset(stream);
            return;
        }
    };
    drop(policy);
    shared.metrics.connections_allowed.inc();
    shared.metrics.active_connections.inc();
    let conn = Arc::new(conn);
    let mut changes = shared.subscribe();
    let serve = async {
        match parser {
            Parser::Http => crate::http::serve(stream, conn.clone(), shared.clone()).await,
            Parser::Kafka => crate::kafka::serve(stream, conn.clone(), shared.clone()).await,
            Parser::Relay => crate::tcp::relay(stream, conn.clone()).await,
        }
    };
    tokio::pin!(serve);
    // Requests are judged one by one under the policy current at their start;
    // the connection itself is judged again whenever the policy changes, and
    // closed if its L3/L4 allowance is gone or its parser no longer fits the
    // port's rules. A connection both the old and the new policy allow, with
    // the same parser, is never touched.
    loop {
        tokio::select! {
            () = &mut serve => break,
            changed = changes.changed() => {
                if changed.is_err() {
                    (&mut serve).await;
                    break;
                }
                let policy = shared.policy();
                // The listener must still be able to serve the port, and the
                // parser the connection started with must enforce the port's
                // rules now: a relay whose port gained HTTP rules, or an
                // HTTP session on a port gone Kafka, would judge nothing.
                let verdict = conn.admit(&policy).and_then(|()| {
                    let now = conn.parser(&policy, listener.protocol)?;
                    let (rules, _) = conn.port_rules(&policy)?;
                    if parser.enforces(rules.l7_kind()) {
                        Ok(())
                    } else {
                        Err(Refusal {
                            rule: rules.l7_rule().map_or(String::new(), |r| r.name.to_string()),
                            reason: format!(
                                "the port's rules now need {} parsing; this connection runs {}",
                                now.as_str(),
                                parser.as_str()
                            ),
                        })
                    }
                });
                drop(policy);
                if let Err(refusal) = verdict {
                    info!(%peer, %dst, rule = %refusal.rule, reason = %refusal.reason, "policy no longer allows this connection; closing");
                    shared.metrics.connections_closed_by_policy.inc();
                    conn.log_event(&shared, "closed", refusal.rule, refusal.reason);
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
