//! Plain TCP relay for listeners without L7 parsing.

use std::sync::Arc;

use tokio::net::TcpStream;
use tracing::debug;

use crate::conn::ConnInfo;

pub async fn relay(mut downstream: TcpStream, conn: Arc<ConnInfo>) {
    let mut upstream = match crate::upstream::connect(conn.dst, conn.upstream_mark()).await {
        Ok(s) => s,
        Err(e) => {
            debug!(error = %e, "upstream connect failed");
            return;
        }
    };
    if let Err(e) = tokio::io::copy_bidirectional(&mut downstream, &mut upstream).await {
        debug!(error = %e, "relay ended");
    }
}
