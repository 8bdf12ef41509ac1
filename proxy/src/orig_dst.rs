//! Where a redirected connection was originally going.

use std::io;
use std::net::SocketAddr;

use socket2::SockRef;
use tokio::net::TcpStream;

/// Recovers a connection's original destination.
pub trait OrigDst: Send + Sync + 'static {
    fn orig_dst(&self, stream: &TcpStream) -> io::Result<SocketAddr>;
}

/// The listener's fixed `upstream`: for running with no redirection at all.
pub struct FixedUpstream(pub SocketAddr);

impl OrigDst for FixedUpstream {
    fn orig_dst(&self, _stream: &TcpStream) -> io::Result<SocketAddr> {
        Ok(self.0)
    }
}

/// The socket itself: `SO_ORIGINAL_DST` after an iptables/nftables REDIRECT
/// (conntrack NAT), else the local address, which *is* the original
/// destination under TPROXY or `bpf_sk_assign`.
pub struct SocketOrigDst {
    /// The listener's own address: a connection "originally" addressed to it
    /// was not redirected, and forwarding it would loop back into us.
    pub listen: SocketAddr,
}

impl OrigDst for SocketOrigDst {
    fn orig_dst(&self, stream: &TcpStream) -> io::Result<SocketAddr> {
        let sock = SockRef::from(stream);
        let nat = match stream.local_addr()? {
            SocketAddr::V4(_) => sock.original_dst_v4(),
            SocketAddr::V6(_) => sock.original_dst_v6(),
        };
        let dst = match nat.ok().and_then(|a| a.as_socket()) {
            Some(a) => a,
            None => stream.local_addr()?,
        };
        if dst == self.listen
            || (dst.port() == self.listen.port() && self.listen.ip().is_unspecified())
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "connection was not redirected: its destination is the listener itself",
            ));
        }
        Ok(dst)
    }
}
