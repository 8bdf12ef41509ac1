//! Channels to the agent: `unix:/path` (the agent's
//! `/var/run/cilium/envoy/sockets/xds.sock`) or `http://host:port`, for xDS
//! and for the standalone DNS proxy's `FQDNData` alike.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tonic::codegen::http::Uri;
use tonic::codegen::{BoxFuture, Context, Poll, Service};
use tonic::transport::{Channel, Endpoint};

/// Why an xDS channel could not be set up; names the target.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error(
        "xDS target {target:?}: {reason} (expected unix:/path/to/xds.sock or http://host:port)"
    )]
    BadTarget {
        target: String,
        reason: &'static str,
    },
    #[error("xDS target {target:?}: {source}")]
    Transport {
        target: String,
        #[source]
        source: tonic::transport::Error,
    },
}

/// A parsed target: the endpoint, and the socket path when it is a unix one.
fn endpoint(target: &str) -> Result<(Endpoint, Option<PathBuf>), ConnectError> {
    let bad = |reason| ConnectError::BadTarget {
        target: target.to_owned(),
        reason,
    };
    // gRPC's naming accepts both `unix:/abs` and `unix:///abs`; a bare
    // absolute path is taken as a unix socket too, for config convenience.
    let unix = target
        .strip_prefix("unix://")
        .or_else(|| target.strip_prefix("unix:"))
        .or_else(|| target.starts_with('/').then_some(target));
    if let Some(path) = unix {
        if !path.starts_with('/') {
            return Err(bad("unix socket path must be absolute"));
        }
        // The URI is never dialed (the connector ignores it) but tonic needs
        // one to build requests' :authority.
        let ep = Endpoint::from_static("http://localhost");
        return Ok((ep, Some(PathBuf::from(path))));
    }
    if !target.starts_with("http://") {
        return Err(bad("unsupported scheme"));
    }
    let ep =
        Endpoint::from_shared(target.to_owned()).map_err(|source| ConnectError::Transport {
            target: target.to_owned(),
            source,
        })?;
    // A dead TCP peer would otherwise hold a reconnect loop for the OS's
    // connect timeout (minutes); the agent is local, so seconds is plenty.
    Ok((ep.connect_timeout(Duration::from_secs(5)), None))
}

/// Connects now to `unix:/path` (the agent's
/// `/var/run/cilium/envoy/sockets/xds.sock`) or `http://host:port`.
pub async fn connect(target: &str) -> Result<Channel, ConnectError> {
    let transport = |source| ConnectError::Transport {
        target: target.to_owned(),
        source,
    };
    match endpoint(target)? {
        (ep, Some(path)) => ep
            .connect_with_connector(UnixConnector(Arc::new(path)))
            .await
            .map_err(transport),
        (ep, None) => ep.connect().await.map_err(transport),
    }
}

/// Like [`connect`], but dials on first use and redials after a failure,
/// which is what a reconnect loop wants: one channel for the process.
pub fn connect_lazy(target: &str) -> Result<Channel, ConnectError> {
    Ok(match endpoint(target)? {
        (ep, Some(path)) => ep.connect_with_connector_lazy(UnixConnector(Arc::new(path))),
        (ep, None) => ep.connect_lazy(),
    })
}

/// Dials a unix socket for tonic, whatever URI it is asked for.
#[derive(Clone, Debug)]
struct UnixConnector(Arc<PathBuf>);

impl Service<Uri> for UnixConnector {
    type Response = TokioIo<tokio::net::UnixStream>;
    type Error = std::io::Error;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _uri: Uri) -> Self::Future {
        let path = Arc::clone(&self.0);
        Box::pin(async move {
            let stream = tokio::net::UnixStream::connect(&*path)
                .await
                .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
            Ok(TokioIo::new(stream))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        for t in ["unix:/run/x.sock", "unix:///run/x.sock", "/run/x.sock"] {
            let (_, path) = endpoint(t).unwrap();
            assert_eq!(path.unwrap(), PathBuf::from("/run/x.sock"), "{t}");
        }
        assert!(endpoint("http://127.0.0.1:1234").unwrap().1.is_none());
        for t in ["unix:rel.sock", "https://h:1", "h:1", ""] {
            let err = endpoint(t).unwrap_err().to_string();
            assert!(err.contains(&format!("{t:?}")), "{err}");
        }
    }
}
