//! The HTTP adapter: hyper on both sides, policy per request.
//!
//! HTTP/1.1 and HTTP/2 (prior knowledge) are told apart by hyper-util's
//! auto builder. Each request: framing hygiene → one normalized path →
//! policy under the snapshot current at that moment → 403 / gRPC status 7,
//! or forward exactly what was judged to the original destination.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri, Version};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use l7_http::{forward, HeaderLog, RequestHead};
use npds::L7Rules;
use tokio::net::TcpStream;
use tracing::{debug, info, warn};

use crate::access_log::{self, Event, HttpEvent};
use crate::conn::ConnInfo;
use crate::metrics::RequestVerdict;
use crate::policy::HttpSettings;
use crate::request_body::RequestBody;
use crate::scanned::Scanned;
use crate::state::Shared;
use crate::upstream::Upstream;

type Body = Either<Incoming, Full<Bytes>>;

/// Request-head limits (bytes of the whole head; header count).
const MAX_HEAD_BYTES: usize = 64 * 1024;
const MAX_HEADERS: usize = 100;
/// What HTTP/2 sessions advertise and the h2 decoder enforces, above the
/// `MAX_HEAD_BYTES` that every request is then held to: h2 derives its
/// CONTINUATION-flood cut-off from it (a quarter over size / 16 KiB, at
/// least 5 frames), and at 64 KiB an ordinary header block split into 8
/// frames was refused with GOAWAY. 256 KiB allows 20 frames; an endless
/// run is still cut, and the decode buffer stays bounded by this size.
const H2_HEADER_LIST_SETTING: u32 = 256 * 1024;
/// HTTP/2 keep-alive pings find dead peers on idle sessions.
const H2_PING_EVERY: Duration = Duration::from_secs(30);
const H2_PING_TIMEOUT: Duration = Duration::from_secs(20);

pub async fn serve(stream: TcpStream, conn: Arc<ConnInfo>, shared: Arc<Shared>) {
    let limits = shared.policy().limits.clone();
    let upstream = Arc::new(Upstream::new(conn.dst, conn.upstream_mark()));
    let io = Scanned::new(stream, conn.clone(), shared.clone());
    let seen_request = Arc::new(AtomicBool::new(false));
    let svc = {
        let (conn, shared, limits, seen) = (
            conn.clone(),
            shared.clone(),
            limits.clone(),
            seen_request.clone(),
        );
        service_fn(move |req| {
            seen.store(true, Ordering::Relaxed);
            let (conn, shared, upstream, limits) = (
                conn.clone(),
                shared.clone(),
                upstream.clone(),
                limits.clone(),
            );
            // Boxed: the request's future is a few KB, and hyper moves the
            // service future on every HTTP/2 stream spawn and completion.
            Box::pin(async move { handle(req, &conn, &shared, &upstream, &limits.http).await })
        })
    };
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .max_buf_size(MAX_HEAD_BYTES)
        .max_headers(MAX_HEADERS)
        .keep_alive(true)
        .timer(TokioTimer::new())
        .header_read_timeout(limits.http.header_timeout);
    builder
        .http2()
        .max_header_list_size(H2_HEADER_LIST_SETTING)
        .max_concurrent_streams(256)
        .timer(TokioTimer::new())
        .keep_alive_interval(H2_PING_EVERY)
        .keep_alive_timeout(H2_PING_TIMEOUT);
    let connection = builder.serve_connection_with_upgrades(TokioIo::new(io), svc);
    tokio::pin!(connection);
    // hyper's header timeout starts once it has bytes to parse (the auto
    // builder first waits for enough to tell HTTP/1 from HTTP/2), so the
    // first head is timed here, from accept: a connection that sends
    // nothing, or too little, is closed when the time is up.
    tokio::select! {
        result = &mut connection => return ended(result),
        () = tokio::time::sleep(limits.http.header_timeout) => {}
    }
    if !seen_request.load(Ordering::Relaxed) {
        let reason = format!(
            "no request head within {:?} of accept",
            limits.http.header_timeout
        );
        info!(%reason, "closing");
        conn.log_event(&shared, "closed", String::new(), reason);
        return;
    }
    ended(connection.await)
}

fn ended(result: Result<(), Box<dyn std::error::Error + Send + Sync>>) {
    if let Err(e) = result {
        debug!(error = %e, "downstream connection ended with an error");
    }
}

/// What the access log needs to know of one request, filled as it goes.
struct Record {
    start: Instant,
    protocol: &'static str,
    method: Method,
    path: String,
    host: String,
    rule: String,
    reason: Option<String>,
    headers: HeaderLog,
}

/// The answer to a request: a response, or (HTTP/2 only) a stream reset
/// for a request that RFC 9113 calls malformed.
type Answer = Result<Response<Body>, h2::Error>;

async fn handle(
    mut req: Request<Incoming>,
    conn: &ConnInfo,
    shared: &Shared,
    upstream: &Upstream,
    settings: &HttpSettings,
) -> Answer {
    let mut rec = Record {
        start: Instant::now(),
        protocol: protocol_name(req.version()),
        method: req.method().clone(),
        path: req
            .uri()
            .path_and_query()
            .map_or("", |p| p.as_str())
            .to_string(),
        host: authority(&req).to_string(),
        rule: String::new(),
        reason: None,
        headers: HeaderLog::default(),
    };

    if req.version() == Version::HTTP_2 {
        if let Err(e) = forward::check_h2_authority(&req) {
            // RFC 9113 8.1.1: a malformed request is a stream error.
            info!(reason = %e, "malformed HTTP/2 request; resetting the stream");
            rec.reason = Some(e.to_string());
            shared.metrics.request(RequestVerdict::Rejected);
            finish(shared, conn, rec, StatusCode::BAD_REQUEST, "rejected");
            return Err(h2::Reason::PROTOCOL_ERROR.into());
        }
    }
    let (path, upgrade) = match prepare(&mut req, &rec.path, settings) {
        Ok(prepared) => prepared,
        Err((status, reason)) => return Ok(reject(shared, conn, rec, status, reason)),
    };

    // Judge under the policy current now; an update mid-request does not
    // change this request's verdict.
    let policy = shared.policy();
    let grpc = l7_http::is_grpc(req.headers());
    let verdict = match conn.port_rules(&policy) {
        Err(refusal) => Err(refusal.reason),
        Ok((rules, remote)) => {
            // Cloning a Method is a copy for the standard ones; it lets the
            // headers be borrowed mutably for header-match side effects.
            let method = req.method().clone();
            let mut head = RequestHead {
                method: method.as_str(),
                path: &path,
                authority: &rec.host,
                headers: req.headers_mut(),
            };
            let log = &mut rec.headers;
            let secrets = &policy.secrets;
            let v = rules.decide(&remote, |l7| match l7 {
                L7Rules::None => true,
                L7Rules::Http(h) => h.matches(&mut head, &**secrets, log),
                // Kafka or proxylib rules on an HTTP listener: fail closed.
                L7Rules::Kafka(_) | L7Rules::Generic(_) => false,
            });
            rec.rule = v.rule_name().to_string();
            if v.allowed {
                Ok(())
            } else {
                Err(match v.rule {
                    Some(r) => {
                        format!("denied by rule {} for identity {}", r.name, remote.identity)
                    }
                    None => format!(
                        "no rule allows this request from identity {}",
                        remote.identity
                    ),
                })
            }
        }
    };
    drop(policy);
    if let Err(reason) = verdict {
        rec.reason = Some(reason);
        let resp = l7_http::deny_response(grpc).map(|b| Either::Right(Full::new(b)));
        shared.metrics.request(RequestVerdict::Denied);
        finish(shared, conn, rec, resp.status(), "denied");
        return Ok(resp);
    }

    Ok(forward(req, path, upgrade, conn, shared, upstream, settings, rec).await)
}

/// Everything checked and settled before policy looks at a request: its
/// framing headers, its authority, and which headers it keeps. Returns the
/// normalized path and the upgrade to relay, or a refusal's status and why.
fn prepare(
    req: &mut Request<Incoming>,
    raw_path: &str,
    settings: &HttpSettings,
) -> Result<(String, Option<String>), (StatusCode, String)> {
    let bad = |e: &dyn std::fmt::Display| (StatusCode::BAD_REQUEST, e.to_string());
    l7_http::check_request_head(req.version(), req.headers())
        .map_err(|e| (e.status(), e.to_string()))?;
    if req.version() == Version::HTTP_2 {
        if forward::header_list_size(req) > MAX_HEAD_BYTES {
            return Err((
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                format!("header list larger than {MAX_HEAD_BYTES} bytes"),
            ));
        }
        // What `host` said is the authority now (`authority()`), which goes
        // upstream as `:authority` alone: origins such as nginx refuse a
        // request that carries both.
        req.headers_mut().remove(header::HOST);
    } else {
        forward::host_from_target(req).map_err(|e| bad(&e))?;
    }
    if req.method() == Method::CONNECT {
        return Err((
            StatusCode::METHOD_NOT_ALLOWED,
            "CONNECT is not supported".into(),
        ));
    }
    let path = l7_http::normalize_path(raw_path).map_err(|e| bad(&e))?;
    // Hop-by-hop headers go before the request is judged, so that the
    // rules see exactly the headers the origin will get.
    let upgrade =
        forward::requested_upgrade(req, |p| settings.allows_upgrade(p)).map_err(|e| bad(&e))?;
    forward::strip_request_hop_by_hop(req.headers_mut(), upgrade.is_some()).map_err(|e| bad(&e))?;
    Ok((path, upgrade))
}

#[allow(clippy::too_many_arguments)] // one request's pieces, passed down once
async fn forward(
    mut req: Request<Incoming>,
    path: String,
    upgrade: Option<String>,
    conn: &ConnInfo,
    shared: &Shared,
    upstream: &Upstream,
    settings: &HttpSettings,
    mut rec: Record,
) -> Response<Body> {
    let downstream_version = req.version();
    let on_downstream_upgrade = upgrade.is_some().then(|| hyper::upgrade::on(&mut req));

    match upstream_uri(&req, path, &rec.host, conn) {
        Ok(uri) => *req.uri_mut() = uri,
        Err(reason) => return reject(shared, conn, rec, StatusCode::BAD_REQUEST, reason),
    }
    let req = req.map(|body| RequestBody::new(body, settings.request_timeout));
    let result = if downstream_version == Version::HTTP_2 {
        upstream.send_h2(req).await
    } else {
        let mut req = req;
        *req.version_mut() = Version::HTTP_11;
        upstream.send_h1(req).await
    };

    let mut resp = match result {
        Ok(resp) => resp,
        Err(e) => {
            let (status, body) = if e.is_request_timeout() {
                shared.metrics.request(RequestVerdict::Rejected);
                (StatusCode::REQUEST_TIMEOUT, "request timeout")
            } else if e.is_downstream_fault() {
                shared.metrics.request(RequestVerdict::Rejected);
                (
                    StatusCode::BAD_REQUEST,
                    "upstream connect error or disconnect/reset before headers",
                )
            } else {
                shared.metrics.upstream_errors.inc();
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "upstream connect error or disconnect/reset before headers",
                )
            };
            warn!(error = %e, "upstream request failed");
            rec.reason = Some(e.to_string());
            finish(shared, conn, rec, status, "allowed");
            let mut resp = local_reply(status, body);
            if status == StatusCode::REQUEST_TIMEOUT {
                // The rest of the body may still be on its way: stop here.
                resp.headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            return resp;
        }
    };

    if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
        let agreed = upgrade
            .as_deref()
            .is_some_and(|asked| forward::upgrade_agreed(asked, resp.headers()));
        match on_downstream_upgrade {
            Some(down) if agreed => {
                let up = hyper::upgrade::on(&mut resp);
                tokio::spawn(async move {
                    match tokio::try_join!(down, up) {
                        Ok((down, up)) => {
                            let (mut down, mut up) = (TokioIo::new(down), TokioIo::new(up));
                            if let Err(e) = tokio::io::copy_bidirectional(&mut down, &mut up).await
                            {
                                debug!(error = %e, "upgraded connection ended");
                            }
                        }
                        Err(e) => debug!(error = %e, "upgrade failed"),
                    }
                });
            }
            _ => {
                // Whatever the origin switched to, its bytes would be relayed
                // unjudged: an upstream error, and that connection is done.
                upstream.discard_h1().await;
                shared.metrics.upstream_errors.inc();
                let reason = format!(
                    "upstream answered 101 Switching Protocols ({}) to a request that asked for no allowed upgrade",
                    forward::switched_to(resp.headers()).unwrap_or("no Upgrade header")
                );
                warn!(%reason, "upstream protocol switch refused");
                rec.reason = Some(reason);
                finish(shared, conn, rec, StatusCode::BAD_GATEWAY, "allowed");
                let mut resp = local_reply(StatusCode::BAD_GATEWAY, "upstream switched protocols");
                resp.headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
                return resp;
            }
        }
    } else {
        forward::strip_response_hop_by_hop(resp.headers_mut());
    }
    shared.metrics.request(RequestVerdict::Allowed);
    finish(shared, conn, rec, resp.status(), "allowed");
    resp.map(Either::Left)
}

/// The target sent upstream: exactly the path that was judged. HTTP/2
/// needs scheme and authority; HTTP/1.1 gets origin form, and a target that
/// normalization left alone is kept as parsed (no second parse).
fn upstream_uri<B>(
    req: &Request<B>,
    path: String,
    host: &str,
    conn: &ConnInfo,
) -> Result<Uri, String> {
    if req.version() == Version::HTTP_2 {
        let authority = if host.is_empty() {
            conn.dst.to_string()
        } else {
            host.to_string()
        };
        return Uri::builder()
            .scheme("http")
            .authority(authority)
            .path_and_query(path)
            .build()
            .map_err(|e| format!("bad authority: {e}"));
    }
    let unchanged = req.uri().scheme().is_none()
        && req
            .uri()
            .path_and_query()
            .is_some_and(|pq| pq.as_str() == path);
    if unchanged {
        return Ok(req.uri().clone());
    }
    path.parse::<Uri>().map_err(|e| format!("bad path: {e}"))
}

fn reject(
    shared: &Shared,
    conn: &ConnInfo,
    mut rec: Record,
    status: StatusCode,
    reason: String,
) -> Response<Body> {
    debug!(%reason, "request rejected");
    shared.metrics.request(RequestVerdict::Rejected);
    let resp = local_reply(status, &reason);
    rec.reason = Some(reason);
    finish(shared, conn, rec, status, "rejected");
    resp
}

/// A reply the proxy makes itself: `reason` as a `text/plain` line.
fn local_reply(status: StatusCode, reason: &str) -> Response<Body> {
    l7_http::error_response(status, reason).map(|b| Either::Right(Full::new(b)))
}

fn finish(
    shared: &Shared,
    conn: &ConnInfo,
    rec: Record,
    status: StatusCode,
    verdict: &'static str,
) {
    shared.access_log.log(Event::Http(HttpEvent {
        time: access_log::now(),
        peers: conn.peers.clone(),
        protocol: rec.protocol,
        method: rec.method,
        path: rec.path,
        host: rec.host,
        status: status.as_u16(),
        verdict,
        rule: rec.rule,
        reason: rec.reason,
        missing_headers: rec.headers.missing,
        rejected_headers: rec.headers.rejected,
        latency_us: rec.start.elapsed().as_micros() as u64,
    }));
}

fn protocol_name(v: Version) -> &'static str {
    match v {
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_11 => "HTTP/1.1",
        Version::HTTP_2 => "HTTP/2",
        _ => "HTTP/?",
    }
}

/// `:authority` for HTTP/2 (and absolute-form HTTP/1), else `Host`.
fn authority<B>(req: &Request<B>) -> &str {
    req.uri()
        .authority()
        .map(|a| a.as_str())
        .or_else(|| {
            req.headers()
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
        })
        .unwrap_or("")
}
