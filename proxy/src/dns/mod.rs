//! The DNS proxy (shared spec §4, Cilium's `pkg/fqdn/dnsproxy`): queries
//! over UDP and TCP, judged on their one question by the DNS policy of
//! the source endpoint (any other question count is answered FORMERR);
//! allowed ones forwarded to the original server with a fresh ID over the
//! client's transport, answers relayed byte for byte (ID restored) after
//! their addresses reach the FQDN cache and policy.
//!
//! The decisions are not made here: `l7_dns` compiles DNS policy and
//! judges each query into a `DnsVerdict` ([`l7_dns::policy`]), parses
//! queries, makes local replies and harvests answers. This module owns
//! what has I/O or proxy state: sockets, the agent link, the FQDN cache in
//! the running proxy, and one access-log event per query, built from the
//! verdict. The DNS policy in force is part of the published
//! [`Policy`](crate::policy::Policy), as are the DNS limits.
//!
//! - [`policy`]: the identity table that gives server addresses their
//!   identities inside [`l7_dns::CompiledDnsPolicy`].
//! - [`fqdn`]: the FQDN cache and the `toFQDNs` identities it feeds.
//! - [`agent`]: the standalone DNS proxy protocol client.
//! - `udp` / `tcp`: the two transports (`mmsg`: batched UDP syscalls).

pub mod agent;
pub mod fqdn;
mod mmsg;
pub mod policy;
mod tcp;
mod udp;

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_proto::op::Message;
use l7_dns::message::same_name;
use l7_dns::policy::{PROTO_TCP, PROTO_UDP};
use l7_dns::{harvest, DnsVerdict, Query, QueryError, Rcode};
use tracing::debug;

use crate::access_log::{DnsEvent, Event};
use crate::config::{DnsConfig, RejectCode, TimeoutResponse};
use crate::state::Shared;

pub use tcp::handle as handle_tcp;
pub use udp::serve as serve_udp;

fn reject_rcode(config: &DnsConfig) -> Rcode {
    match config.reject_response_code {
        RejectCode::Refused => Rcode::Refused,
        RejectCode::NameError => Rcode::NxDomain,
    }
}

fn upstream_timeout(config: &DnsConfig) -> Duration {
    Duration::from_millis(config.upstream_timeout_ms.max(1))
}

/// The reply for a query whose server did not answer in time.
fn timeout_reply(config: &DnsConfig, q: &Query) -> Option<Vec<u8>> {
    match config.timeout_response {
        TimeoutResponse::Servfail => Some(q.reply(Rcode::ServFail)),
        TimeoutResponse::None => None,
    }
}

/// A query on its way: who asked what, and what policy said.
pub(crate) struct Exchange {
    pub listener: Arc<str>,
    pub protocol: &'static str,
    pub client: SocketAddr,
    pub server: SocketAddr,
    pub query: Query,
    pub verdict: DnsVerdict,
    pub started: Instant,
}

impl Exchange {
    /// The event for this query: parties and rule from policy's verdict,
    /// `verdict` what finally became of it (a query policy allowed may
    /// still time out or fail upstream).
    fn event(&self, verdict: &'static str, rcode: String, reason: Cow<'static, str>) -> DnsEvent {
        DnsEvent {
            name: self.query.name.clone(),
            qtype: self.query.qtype.to_string(),
            verdict,
            rule: self.verdict.rule().cloned().unwrap_or_default(),
            reason,
            rcode,
            ..DnsEvent::new(
                &self.listener,
                self.protocol,
                self.client,
                self.server,
                self.verdict.parties,
            )
        }
    }

    /// Logs and counts a query answered here without asking the server
    /// (`rcode`: what the client got, or `none`).
    fn answered_locally(
        &self,
        shared: &Shared,
        verdict: &'static str,
        rcode: &str,
        reason: Cow<'static, str>,
    ) {
        shared.metrics.dns_query(self.protocol, verdict);
        log(shared, || self.event(verdict, rcode.into(), reason));
    }
}

/// Builds the event only when the access log is on.
fn log(shared: &Shared, make: impl FnOnce() -> DnsEvent) {
    if shared.access_log.enabled() {
        shared.access_log.log(Event::Dns(make()));
    }
}

/// What becomes of a query that parsed: answered here (`Reply`) or
/// forwarded (`Forward`).
pub(crate) enum Disposition {
    Reply(Vec<u8>),
    Forward(Box<Exchange>),
}

/// What happens to the bytes of one query from `client`, sent to `server`,
/// received at `now` (one reading of the clock serves a whole batch).
/// `None`: dropped (not a query at all).
pub(crate) fn judge_query(
    shared: &Shared,
    listener: &Arc<str>,
    protocol: &'static str,
    client: SocketAddr,
    server: SocketAddr,
    bytes: &[u8],
    now: Instant,
) -> Option<Disposition> {
    let query = match Query::parse(bytes) {
        Ok(q) => q,
        Err(e) => {
            shared.metrics.dns_query(protocol, "malformed");
            // A response sent to us, or less than a header: nothing to answer.
            let reply = l7_dns::message::formerr(bytes);
            debug!(%client, error = %e, answered = reply.is_some(), "malformed DNS query");
            if let QueryError::QuestionCount(_) = e {
                // Well-formed DNS that a server would act on, each of its
                // names unjudged: worth an access-log line, as a denial is.
                log(shared, || {
                    let parties = shared.policy().dns.parties(client.ip(), server);
                    DnsEvent {
                        verdict: "malformed",
                        reason: e.to_string().into(),
                        rcode: Rcode::FormErr.name().into(),
                        ..DnsEvent::new(listener, protocol, client, server, parties)
                    }
                });
            }
            return reply.map(Disposition::Reply);
        }
    };
    let proto = if protocol == "udp" {
        PROTO_UDP
    } else {
        PROTO_TCP
    };
    // The verdict and the denial's rcode come from the same policy.
    let policy = shared.policy();
    let verdict = policy.dns.judge(client.ip(), server, proto, &query.name);
    let x = Exchange {
        listener: listener.clone(),
        protocol,
        client,
        server,
        query,
        verdict,
        started: now,
    };
    if x.verdict.allowed() {
        Some(Disposition::Forward(Box::new(x)))
    } else {
        let rcode = reject_rcode(&policy.limits.dns);
        x.answered_locally(shared, "denied", rcode.name(), x.verdict.reason().into());
        Some(Disposition::Reply(x.query.reply(rcode)))
    }
}

/// Refuses a forwardable query because too many are waiting upstream.
pub(crate) fn overflow(shared: &Shared, x: &Exchange) -> Vec<u8> {
    x.answered_locally(
        shared,
        "overflow",
        Rcode::Refused.name(),
        Cow::Borrowed("too many queries waiting for upstream answers"),
    );
    x.query.reply(Rcode::Refused)
}

/// The reply for a forwarded query whose server did not answer in time.
pub(crate) fn timed_out(shared: &Shared, x: &Exchange) -> Option<Vec<u8>> {
    let reply = timeout_reply(&shared.policy().limits.dns, &x.query);
    let rcode = if reply.is_some() {
        Rcode::ServFail.name()
    } else {
        "none"
    };
    x.answered_locally(
        shared,
        "timeout",
        rcode,
        Cow::Borrowed("upstream server did not answer"),
    );
    reply
}

/// The reply for a forwarded query the server could not be asked or whose
/// answer was unusable. SERVFAIL, where the agent answers REFUSED: a client
/// must not mistake a dead server for a policy denial.
pub(crate) fn upstream_failed(shared: &Shared, x: &Exchange, error: String) -> Vec<u8> {
    shared.metrics.upstream_errors.inc();
    x.answered_locally(shared, "error", Rcode::ServFail.name(), error.into());
    x.query.reply(Rcode::ServFail)
}

/// An answer from the server for `x`, with the fresh ID still in it,
/// received at `now`.
/// Returns the bytes for the client (its own ID restored) and, when the
/// answer taught the cache something, what to tell the agent.
pub(crate) fn answer(
    shared: &Shared,
    x: &Exchange,
    mut bytes: Vec<u8>,
    now: Instant,
) -> (Vec<u8>, Option<agent::Mapping>) {
    let latency = now.saturating_duration_since(x.started);
    shared.metrics.dns_upstream_latency(latency);
    // Case-insensitively: the question's echo may differ in case (0x20
    // randomisation) from what the client sent.
    let asked = x.query.message.queries().first().map(|q| q.name());
    let echoed = |m: &Message| {
        let q = m.queries().first().map(|q| q.name());
        q.zip(asked).is_some_and(|(q, a)| same_name(q, a))
    };
    let msg = match Message::from_vec(&bytes) {
        Ok(m) if echoed(&m) => m,
        Ok(_) => {
            return (
                upstream_failed(shared, x, "answer is for another question".into()),
                None,
            )
        }
        Err(e) => {
            return (
                upstream_failed(shared, x, format!("malformed answer: {e}")),
                None,
            )
        }
    };
    let mut mapping = None;
    let mut learnt = None;
    let mut reason = Cow::Borrowed("");
    match harvest(&msg) {
        Ok(h) => {
            if let Some(ep) = x.verdict.parties.endpoint {
                shared.fqdn.learn(ep.id, &h);
                mapping = shared
                    .fqdn_data
                    .get()
                    .map(|_| agent::Mapping::new(x, &h, &msg));
            }
            learnt = Some((h.ips, h.ttl));
        }
        Err(e) => {
            if !matches!(
                e,
                l7_dns::HarvestError::NotNoError(_) | l7_dns::HarvestError::NoAddresses
            ) {
                debug!(name = %x.query.name, error = %e, "answer not cached");
                reason = format!("answer not cached: {e}").into();
            }
        }
    }
    l7_dns::message::set_id(&mut bytes, x.query.message.id());
    shared.metrics.dns_query(x.protocol, "allowed");
    log(shared, || {
        let rcode = l7_dns::message::rcode_name(msg.response_code());
        let mut event = x.event("allowed", rcode, reason);
        event.upstream_latency_us = Some(latency.as_micros() as u64);
        if let Some((ips, ttl)) = learnt {
            event.ips = ips;
            event.ttl = Some(ttl);
        }
        event
    });
    (bytes, mapping)
}
