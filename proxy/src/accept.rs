//! One downstream connection, top to bottom: original destination → peer
//! identity → endpoint policy → L3/L4 verdict → the parser the listener and
//! the port's rules call for (proxy/src/parser.rs) → L7 handler or relay,
//! judged again whenever policy changes.

use std::net::SocketAddr;
use std::sync::Arc;

use npds::Direction;
use tokio::net::TcpStream;
use tracing::{debug, info, info_span, Instrument};

use crate::access_log::Peers;
use crate::conn::{reset, ConnInfo, Listener, Refusal};
use crate::parser::Parser;
use crate::policy::Policy;
use crate::state::Shared;

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
            info!(listener = %listener.name, %peer, error = %e, "no original destination; resetting");
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
    // Every log line of the connection, L7 handlers' included, carries these.
    let span = info_span!(
        "conn",
        listener = %listener.name,
        src = %peer,
        %dst,
        src_id = conn.peers.src_identity,
        dst_id = conn.peers.dst_identity,
    );
    // Identities, admission and parser come from the same policy.
    let parser = span.in_scope(|| judge(&conn, &policy, &listener, &shared));
    drop(policy);
    let Some(parser) = parser else {
        reset(stream);
        return;
    };
    serve(stream, conn, parser, listener, shared)
        .instrument(span)
        .await;
}

/// The L3/L4 verdict and the parser the port's rules need; `None` (logged
/// and counted) when the connection is to be reset.
fn judge(conn: &ConnInfo, policy: &Policy, listener: &Listener, shared: &Shared) -> Option<Parser> {
    if let Err(refusal) = conn.admit(policy) {
        shared.metrics.connections_denied.inc();
        info!(rule = %refusal.rule, reason = %refusal.reason, "connection denied; resetting");
        conn.log_event(shared, "denied", refusal.rule, refusal.reason);
        return None;
    }
    // The port's rules pick the parser; a listener that cannot enforce
    // them refuses the connection rather than relay past them.
    match conn.parser(policy, listener.protocol) {
        Ok(p) => Some(p),
        Err(refusal) => {
            shared.metrics.connections_rejected.inc();
            info!(rule = %refusal.rule, reason = %refusal.reason, "no parser on this listener enforces the port's rules; resetting");
            conn.log_event(shared, "rejected", refusal.rule, refusal.reason);
            None
        }
    }
}

/// Runs an admitted connection, inside its span, judging it again
/// whenever policy changes.
async fn serve(
    stream: TcpStream,
    conn: ConnInfo,
    parser: Parser,
    listener: Arc<Listener>,
    shared: Arc<Shared>,
) {
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
                    info!(rule = %refusal.rule, reason = %refusal.reason, "policy no longer allows this connection; closing");
                    shared.metrics.connections_closed_by_policy.inc();
                    conn.log_event(&shared, "closed", refusal.rule, refusal.reason);
                    break;
                }
            }
        }
    }
    shared.metrics.active_connections.dec();
    debug!("connection closed");
}
