//! Who a downstream connection is ([`ConnInfo`]: peers, identities, the
//! endpoint whose policy applies) and the verdicts about it: L3/L4
//! admission and the parser its port's rules need. proxy/src/accept.rs
//! runs a connection with them; the L7 handlers read them.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use npds::proto::Protocol;
use npds::{Direction, PortRules, Remote};
use tokio::net::TcpStream;

use crate::access_log::{self, ConnectionEvent, Event, Peers};
use crate::config::ListenerProtocol;
use crate::orig_dst::OrigDst;
use crate::parser::Parser;
use crate::policy::Policy;
use crate::state::Shared;

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
        policy: &'p Policy,
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
    pub fn parser(&self, policy: &Policy, protocol: ListenerProtocol) -> Result<Parser, Refusal> {
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
    pub fn admit(&self, policy: &Policy) -> Result<(), Refusal> {
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

/// Closes with RST, as cilium.network does on a deny (AbortReset).
pub fn reset(stream: TcpStream) {
    #[allow(deprecated)] // set_linger(Some(0)) is exactly the abortive close we want.
    let _ = stream.set_linger(Some(Duration::ZERO));
    drop(stream);
}
