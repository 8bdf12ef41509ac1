//! Admin listener: `/ready`, `/metrics` (Prometheus text), `/config_dump`,
//! `/fqdn` (the FQDN cache as JSON, what `portcullis fqdn list` prints).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{header, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpListener;
use tracing::{debug, warn};

use crate::listeners::Listeners;
use crate::state::Shared;

pub async fn serve(listener: TcpListener, shared: Arc<Shared>, listeners: Arc<Listeners>) {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                warn!(error = %e, "admin accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let (shared, listeners) = (shared.clone(), listeners.clone());
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let resp = route(&req, &shared, &listeners);
                async move { Ok::<_, Infallible>(resp) }
            });
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await
            {
                debug!(error = %e, "admin connection ended");
            }
        });
    }
}

pub fn bind_addr(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let l = std::net::TcpListener::bind(addr)?;
    l.set_nonblocking(true)?;
    Ok(l)
}

fn route(req: &Request<Incoming>, shared: &Shared, listeners: &Listeners) -> Response<Full<Bytes>> {
    match req.uri().path() {
        "/ready" if shared.is_ready() => text(StatusCode::OK, "ready\n".into()),
        "/ready" => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: no policy applied yet\n".into(),
        ),
        "/metrics" => {
            let mut r = text(StatusCode::OK, shared.metrics.render());
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            );
            r
        }
        "/config_dump" => {
            let policy = shared.policy();
            let identities: Vec<_> = policy
                .identities
                .entries()
                .iter()
                .map(|(id, nets)| json!({"identity": id, "addresses": nets.iter().map(|n| n.to_string()).collect::<Vec<_>>()}))
                .collect();
            let xds: Vec<_> = shared
                .metrics
                .xds
                .get()
                .map(|streams| {
                    streams
                        .iter()
                        .map(|s| {
                            use std::sync::atomic::Ordering::Relaxed;
                            let snap = s.stats.snapshot();
                            json!({
                                "type_url": s.path.type_url(),
                                "connected": s.stats.connected.load(Relaxed),
                                "generation": s.stats.generation.load(Relaxed),
                                "accepted": s.stats.accepted.load(Relaxed),
                                "rejected": s.stats.rejected.load(Relaxed),
                                "version": snap.version,
                                "last_update": snap.last_update.map(|t| humantime::format_rfc3339_millis(t).to_string()),
                                "last_rejection": snap.last_rejection,
                            })
                        })
                        .collect()
                })
                .unwrap_or_default();
            let body = json!({
                "ready": shared.is_ready(),
                "waiting_for": shared.pending(),
                "xds": xds,
                "listeners": listeners.dump(),
                "policy": policy.snapshot.dump(),
                "identities": identities,
                "last_rejection": shared.last_rejection(),
                "secrets": shared.policy().secrets.dump(),
                "missing_secrets": shared.missing_secrets(),
                "dns": {
                    "policy": shared.policy().dns.dump(),
                    "fqdn_cache": shared.fqdn.dump(),
                },
            });
            let mut r = text(StatusCode::OK, format!("{:#}\n", body));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("application/json"),
            );
            r
        }
        "/fqdn" => {
            let body = serde_json::to_string_pretty(&shared.fqdn.entries())
                .unwrap_or_else(|_| "[]".into());
            let mut r = text(StatusCode::OK, body + "\n");
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("application/json"),
            );
            r
        }
        _ => text(
            StatusCode::NOT_FOUND,
            "try /ready, /metrics, /config_dump or /fqdn\n".into(),
        ),
    }
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain"),
    );
    r
}
