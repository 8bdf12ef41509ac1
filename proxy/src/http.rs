//! The HTTP adapter: hyper on both sides, policy per request.
//!
//! HTTP/1.1 and HTTP/2 (prior knowledge) are told apart by hyper-util's
//! auto builder. Each request: framing hygiene → one normalized path →
//! policy under the snapshot current at that moment → 403 / gRPC status 7,
//! or forward exactly what was judged to the original destination.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri, Version};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use l7_http::{HeaderLog, RequestHead};
use npds::L7Rules;
use smallvec::SmallVec;
use tokio::net::TcpStream;
use tracing::{debug, warn};

use crate::access_log::{self, Event, HttpEvent};
use crate::conn::ConnInfo;
use crate::metrics::RequestVerdict;
use crate::scanned::Scanned;
use crate::state::Shared;
use crate::upstream::Upstream;

type Body = Either<Incoming, Full<Bytes>>;

/// Request-head limits (bytes of the whole head; header count).
const MAX_HEAD_BYTES: usize = 64 * 1024;
const MAX_HEADERS: usize = 100;
/// A client has this long to send a request head, from its first byte (or,
/// on a kept-alive connection, from the end of the previous exchange): a
/// slow-header client cannot hold a connection and its buffers forever.
const HEAD_TIMEOUT: Duration = Duration::from_secs(30);
/// HTTP/2 keep-alive pings find dead peers on idle sessions.
const H2_PING_EVERY: Duration = Duration::from_secs(30);
const H2_PING_TIMEOUT: Duration = Duration::from_secs(20);

pub async fn serve(stream: TcpStream, conn: Arc<ConnInfo>, shared: Arc<Shared>) {
    let upstream = Arc::new(Upstream::new(conn.dst, conn.upstream_mark()));
    let io = Scanned::new(stream, conn.clone(), shared.clone());
    let svc = service_fn(move |req| {
        let (conn, shared, upstream) = (conn.clone(), shared.clone(), upstream.clone());
        // Boxed: the request's future is a few KB, and hyper moves the
        // service future on every HTTP/2 stream spawn and completion.
        Box::pin(async move { Ok::<_, Infallible>(handle(req, &conn, &shared, &upstream).await) })
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .max_buf_size(MAX_HEAD_BYTES)
        .max_headers(MAX_HEADERS)
        .keep_alive(true)
        .timer(TokioTimer::new())
        .header_read_timeout(HEAD_TIMEOUT);
    builder
        .http2()
        .max_header_list_size(MAX_HEAD_BYTES as u32)
        .max_concurrent_streams(256)
        .timer(TokioTimer::new())
        .keep_alive_interval(H2_PING_EVERY)
        .keep_alive_timeout(H2_PING_TIMEOUT);
    if let Err(e) = builder
        .serve_connection_with_upgrades(TokioIo::new(io), svc)
        .await
    {
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

async fn handle(
    mut req: Request<Incoming>,
    conn: &ConnInfo,
    shared: &Shared,
    upstream: &Upstream,
) -> Response<Body> {
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

    if let Err(e) = l7_http::check_request_head(req.version(), req.headers()) {
        return reject(shared, conn, rec, e.status(), e.to_string());
    }
    if req.method() == Method::CONNECT {
        return reject(
            shared,
            conn,
            rec,
            StatusCode::METHOD_NOT_ALLOWED,
            "CONNECT is not supported".into(),
        );
    }
    let path = match l7_http::normalize_path(&rec.path) {
        Ok(p) => p,
        Err(e) => return reject(shared, conn, rec, StatusCode::BAD_REQUEST, e.to_string()),
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
            let secrets = shared.secrets();
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
        return resp;
    }

    forward(req, path, conn, shared, upstream, rec).await
}

async fn forward(
    mut req: Request<Incoming>,
    path: String,
    conn: &ConnInfo,
    shared: &Shared,
    upstream: &Upstream,
    mut rec: Record,
) -> Response<Body> {
    let downstream_version = req.version();
    let upgrade = is_upgrade(&req);
    let on_downstream_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
    strip_hop_by_hop(req.headers_mut(), upgrade);

    match upstream_uri(&req, path, &rec.host, conn) {
        Ok(uri) => *req.uri_mut() = uri,
        Err(reason) => return reject(shared, conn, rec, StatusCode::BAD_REQUEST, reason),
    }
    let result = if downstream_version == Version::HTTP_2 {
        upstream.send_h2(req).await
    } else {
        *req.version_mut() = Version::HTTP_11;
        upstream.send_h1(req).await
    };

    let mut resp = match result {
        Ok(resp) => resp,
        Err(e) => {
            let status = if e.is_downstream_fault() {
                shared.metrics.request(RequestVerdict::Rejected);
                StatusCode::BAD_REQUEST
            } else {
                shared.metrics.upstream_errors.inc();
                StatusCode::SERVICE_UNAVAILABLE
            };
            warn!(error = %e, "upstream request failed");
            rec.reason = Some(e.to_string());
            finish(shared, conn, rec, status, "allowed");
            return plain(
                status,
                "upstream connect error or disconnect/reset before headers\r\n",
            );
        }
    };

    if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
        if let Some(down) = on_downstream_upgrade {
            let up = hyper::upgrade::on(&mut resp);
            tokio::spawn(async move {
                match tokio::try_join!(down, up) {
                    Ok((down, up)) => {
                        let (mut down, mut up) = (TokioIo::new(down), TokioIo::new(up));
                        if let Err(e) = tokio::io::copy_bidirectional(&mut down, &mut up).await {
                            debug!(error = %e, "upgraded connection ended");
                        }
                    }
                    Err(e) => debug!(error = %e, "upgrade failed"),
                }
            });
        }
    } else {
        strip_hop_by_hop(resp.headers_mut(), false);
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
    let resp = plain(status, &format!("{reason}\r\n"));
    rec.reason = Some(reason);
    finish(shared, conn, rec, status, "rejected");
    resp
}

fn plain(status: StatusCode, body: &str) -> Response<Body> {
    let mut resp = Response::new(Either::Right(Full::new(Bytes::copy_from_slice(
        body.as_bytes(),
    ))));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    resp
}

fn finish(
    shared: &Shared,
    conn: &ConnInfo,
    rec: Record,
    status: StatusCode,
    verdict: &'static str,
) {
    let logged = shared.access_log.log(Event::Http(HttpEvent {
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
    if !logged {
        shared.metrics.access_log_dropped.inc();
    }
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

fn is_upgrade<B>(req: &Request<B>) -> bool {
    req.version() == Version::HTTP_11
        && req.headers().contains_key(header::UPGRADE)
        && req.headers().get_all(header::CONNECTION).iter().any(|v| {
            v.to_str().is_ok_and(|s| {
                s.split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
            })
        })
}

/// Removes hop-by-hop headers (RFC 9110 7.6.1), including those the
/// `Connection` header names; keeps `Connection: upgrade` + `Upgrade` when
/// an upgrade is being relayed, and `te: trailers` (gRPC needs it).
fn strip_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    // One pass over the names picks what goes; only those are removed (a
    // hashed removal per possible hop-by-hop name cost more than the rest
    // of the header handling).
    let named: SmallVec<[&str; 4]> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|s| s.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .collect();
    let te_trailers_only = headers
        .get(header::TE)
        .is_none_or(|v| v.as_bytes().eq_ignore_ascii_case(b"trailers"));
    let doomed: SmallVec<[HeaderName; 4]> = headers
        .keys()
        .filter(|name| {
            let name = name.as_str();
            if keep_upgrade && (name == "upgrade" || name == "connection") {
                // `Connection` is rewritten below.
                return false;
            }
            match name {
                "connection"
                | "upgrade"
                | "keep-alive"
                | "proxy-connection"
                | "proxy-authenticate"
                | "proxy-authorization"
                | "transfer-encoding" => true,
                _ if named.iter().any(|t| t.eq_ignore_ascii_case(name)) => true,
                "te" => !te_trailers_only,
                _ => false,
            }
        })
        .cloned()
        .collect();
    drop(named);
    for name in &doomed {
        headers.remove(name);
    }
    if keep_upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        // Collecting appends, so repeated names keep every value.
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    HeaderName::try_from(*k).unwrap(),
                    HeaderValue::try_from(*v).unwrap(),
                )
            })
            .collect()
    }

    fn names(h: &HeaderMap) -> Vec<String> {
        let mut v: Vec<String> = h
            .iter()
            .map(|(k, v)| format!("{k}: {}", v.to_str().unwrap()))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn hop_by_hop_headers_are_stripped() {
        let mut h = headers(&[
            ("host", "a"),
            ("connection", "keep-alive, X-Secret"),
            ("keep-alive", "timeout=5"),
            ("x-secret", "1"),
            ("x-kept", "2"),
            ("transfer-encoding", "chunked"),
            ("proxy-authorization", "basic x"),
            ("proxy-connection", "close"),
            ("upgrade", "websocket"),
            ("te", "trailers"),
        ]);
        strip_hop_by_hop(&mut h, false);
        assert_eq!(names(&h), ["host: a", "te: trailers", "x-kept: 2"]);

        // A TE other than "trailers" goes; so does one `Connection` names.
        let mut h = headers(&[("te", "gzip"), ("x", "1")]);
        strip_hop_by_hop(&mut h, false);
        assert_eq!(names(&h), ["x: 1"]);
        let mut h = headers(&[("connection", "TE"), ("te", "trailers")]);
        strip_hop_by_hop(&mut h, false);
        assert!(h.is_empty());

        // Nothing hop-by-hop: untouched.
        let mut h = headers(&[("content-length", "3"), ("x", "1"), ("x", "2")]);
        strip_hop_by_hop(&mut h, false);
        assert_eq!(names(&h), ["content-length: 3", "x: 1", "x: 2"]);
    }

    #[test]
    fn an_upgrade_keeps_upgrade_and_says_so_in_connection() {
        let mut h = headers(&[
            ("connection", "Upgrade, x-hop"),
            ("upgrade", "websocket"),
            ("x-hop", "1"),
            ("keep-alive", "timeout=5"),
            ("sec-websocket-key", "k"),
        ]);
        strip_hop_by_hop(&mut h, true);
        assert_eq!(
            names(&h),
            [
                "connection: upgrade",
                "sec-websocket-key: k",
                "upgrade: websocket"
            ]
        );
    }
}
