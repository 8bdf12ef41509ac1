//! Batched datagram I/O: `recvmmsg(2)` and `sendmmsg(2)` on tokio sockets.
//!
//! One system call moves a whole batch, and, more to the point on a busy
//! machine, the peer woken by the first datagram of a batch finds the rest
//! already queued: without batching, every forwarded query woke dnsmasq and
//! every reply woke the client, each wake-up preempting the proxy.
//!
//! Written on `libc` directly: tokio and socket2 have no batched datagram
//! I/O, and nix's mmsg wrappers tie every buffer's lifetime to one call's
//! results, which fights buffers reused across calls. Addresses go through
//! socket2's `SockAddr`, so no sockaddr layout is written by hand here.

use std::io;
use std::mem::MaybeUninit;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;

use socket2::{SockAddr, SockAddrStorage};
use tokio::io::Interest;
use tokio::net::UdpSocket;

/// Receive buffers for up to `count` datagrams of up to `size` bytes.
pub struct RecvBatch {
    size: usize,
    data: Vec<u8>,
    addrs: Vec<libc::sockaddr_storage>,
    iovecs: Vec<libc::iovec>,
    headers: Vec<libc::mmsghdr>,
    /// Datagrams held by the last `recv`.
    len: usize,
}

// The raw pointers in `iovecs` and `headers` point into `data` and `addrs`,
// which this struct owns and never reallocates: moving it between threads
// (tokio tasks migrate) is sound.
unsafe impl Send for RecvBatch {}

impl RecvBatch {
    pub fn new(count: usize, size: usize) -> RecvBatch {
        let count = count.max(1);
        let mut b = RecvBatch {
            size,
            data: vec![0; count * size],
            // SAFETY: all-zero bytes are a valid (empty) sockaddr_storage.
            addrs: vec![unsafe { MaybeUninit::zeroed().assume_init() }; count],
            iovecs: Vec::with_capacity(count),
            headers: Vec::with_capacity(count),
            len: 0,
        };
        let base = b.data.as_mut_ptr();
        for i in 0..count {
            b.iovecs.push(libc::iovec {
                // SAFETY: i * size is within `data` (count * size bytes).
                iov_base: unsafe { base.add(i * size) }.cast(),
                iov_len: size,
            });
        }
        for i in 0..count {
            // SAFETY: all-zero bytes are a valid mmsghdr (null pointers, zero
            // lengths); the fields that matter are set below.
            let mut h: libc::mmsghdr = unsafe { MaybeUninit::zeroed().assume_init() };
            h.msg_hdr.msg_iov = &mut b.iovecs[i];
            h.msg_hdr.msg_iovlen = 1;
            h.msg_hdr.msg_name = (&mut b.addrs[i] as *mut libc::sockaddr_storage).cast();
            b.headers.push(h);
        }
        b
    }

    /// Takes what is queued on `socket`, up to the batch size, without
    /// waiting: `WouldBlock` when nothing is (and the socket's readiness is
    /// cleared, so the next `readable().await` waits for more).
    pub fn recv(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        self.len = 0;
        for h in &mut self.headers {
            h.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as _;
            h.msg_hdr.msg_flags = 0;
            h.msg_len = 0;
        }
        let fd = socket.as_raw_fd();
        let (headers, count) = (self.headers.as_mut_ptr(), self.headers.len());
        let n = socket.try_io(Interest::READABLE, || {
            // SAFETY: `headers` holds `count` initialised mmsghdrs whose
            // iovecs and names point into buffers owned by `self`, of the
            // lengths given; nothing else touches them during the call.
            let n = unsafe {
                libc::recvmmsg(
                    fd,
                    headers,
                    count as _,
                    libc::MSG_DONTWAIT,
                    std::ptr::null_mut(),
                )
            };
            if n < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(n as usize)
            }
        })?;
        self.len = n;
        Ok(n)
    }

    /// Datagram `i` of the last `recv`: its bytes (mutable, to rewrite the
    /// ID in place), its sender (unconnected sockets), and whether it was
    /// longer than the buffer and so cut short.
    pub fn get(&mut self, i: usize) -> (&mut [u8], Option<SocketAddr>, bool) {
        assert!(i < self.len, "datagram {i} of {}", self.len);
        let h = &self.headers[i];
        let len = (h.msg_len as usize).min(self.size);
        let truncated = h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
        let namelen = h.msg_hdr.msg_namelen;
        let from = (namelen > 0)
            .then(|| {
                let mut storage = SockAddrStorage::zeroed();
                // SAFETY: `sockaddr_storage` is the type SockAddrStorage
                // wraps, and the kernel wrote a sockaddr of `namelen` bytes
                // into the one copied.
                unsafe {
                    *storage.view_as::<libc::sockaddr_storage>() = self.addrs[i];
                    SockAddr::new(storage, namelen)
                }
                .as_socket()
            })
            .flatten();
        let start = i * self.size;
        (&mut self.data[start..start + len], from, truncated)
    }
}

/// Datagrams waiting to be sent together, at most `count` at a time.
pub struct SendBatch {
    data: Vec<u8>,
    /// (start in `data`, length, destination; `None` on a connected socket).
    entries: Vec<(usize, usize, Option<SockAddr>)>,
    count: usize,
}

impl SendBatch {
    pub fn new(count: usize) -> SendBatch {
        SendBatch {
            data: Vec::new(),
            entries: Vec::new(),
            count: count.max(1),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn is_full(&self) -> bool {
        self.entries.len() >= self.count
    }

    pub fn push(&mut self, bytes: &[u8], to: Option<SocketAddr>) {
        self.entries
            .push((self.data.len(), bytes.len(), to.map(SockAddr::from)));
        self.data.extend_from_slice(bytes);
    }

    /// Sends everything queued, waiting for buffer space when the socket is
    /// full, and empties the batch. A datagram the kernel refuses (no route,
    /// a peer's ICMP error) is handed to `failed` with its index in push
    /// order and skipped; the rest still go.
    pub async fn flush(&mut self, socket: &UdpSocket, mut failed: impl FnMut(usize, io::Error)) {
        let mut sent = 0;
        while sent < self.entries.len() {
            let rest = &self.entries[sent..];
            let r = socket
                .async_io(Interest::WRITABLE, || send_some(socket, &self.data, rest))
                .await;
            match r {
                Ok(0) => {
                    failed(sent, io::Error::other("sendmmsg sent nothing"));
                    sent += 1;
                }
                Ok(n) => sent += n,
                Err(e) => {
                    failed(sent, e);
                    sent += 1;
                }
            }
        }
        self.entries.clear();
        self.data.clear();
    }
}

/// One `sendmmsg` of `entries`: how many went, or the error of the first.
fn send_some(
    socket: &UdpSocket,
    data: &[u8],
    entries: &[(usize, usize, Option<SockAddr>)],
) -> io::Result<usize> {
    let mut iovecs: Vec<libc::iovec> = entries
        .iter()
        .map(|&(start, len, _)| libc::iovec {
            iov_base: data[start..start + len].as_ptr() as *mut libc::c_void,
            iov_len: len,
        })
        .collect();
    let mut headers: Vec<libc::mmsghdr> = entries
        .iter()
        .zip(&mut iovecs)
        .map(|(entry, iov)| {
            // SAFETY: all-zero bytes are a valid mmsghdr.
            let mut h: libc::mmsghdr = unsafe { MaybeUninit::zeroed().assume_init() };
            h.msg_hdr.msg_iov = iov;
            h.msg_hdr.msg_iovlen = 1;
            if let Some(to) = &entry.2 {
                h.msg_hdr.msg_name = to.as_ptr() as *mut libc::c_void;
                h.msg_hdr.msg_namelen = to.len();
            }
            h
        })
        .collect();
    // SAFETY: every header points at an iovec and (optionally) an address
    // that live until this function returns; the kernel only reads them.
    let n = unsafe {
        libc::sendmmsg(
            socket.as_raw_fd(),
            headers.as_mut_ptr(),
            headers.len() as _,
            libc::MSG_DONTWAIT,
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_batch_goes_out_and_comes_back_with_senders_and_truncation() {
        let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let c = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let to_a = a.local_addr().unwrap();
        let mut out = SendBatch::new(8);
        out.push(b"one", Some(to_a));
        out.push(b"two", Some(to_a));
        out.push(&[7u8; 100], Some(to_a));
        assert!(!out.is_full());
        let mut errors = 0;
        out.flush(&b, |_, _| errors += 1).await;
        assert!(out.is_empty());
        c.send_to(b"three", to_a).await.unwrap();
        assert_eq!(errors, 0);

        let mut batch = RecvBatch::new(8, 16);
        let mut got = Vec::new();
        while got.len() < 4 {
            a.readable().await.unwrap();
            let n = match batch.recv(&a) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => panic!("{e}"),
            };
            for i in 0..n {
                let (bytes, from, truncated) = batch.get(i);
                got.push((bytes.to_vec(), from.unwrap(), truncated));
            }
        }
        let (b, c) = (b.local_addr().unwrap(), c.local_addr().unwrap());
        assert_eq!(got[0], (b"one".to_vec(), b, false));
        assert_eq!(got[1], (b"two".to_vec(), b, false));
        assert_eq!(got[2], (vec![7u8; 16], b, true));
        assert_eq!(got[3], (b"three".to_vec(), c, false));
        assert_eq!(
            batch.recv(&a).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
    }

    #[tokio::test]
    async fn a_refused_datagram_is_reported_and_the_rest_still_go() {
        let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let to_a = a.local_addr().unwrap();
        let mut out = SendBatch::new(8);
        out.push(b"ok", Some(to_a));
        // An IPv6 destination on an IPv4 socket: refused by the kernel.
        out.push(b"bad", Some("[::1]:53".parse().unwrap()));
        out.push(b"also ok", Some(to_a));
        let mut failed = Vec::new();
        out.flush(&b, |i, e| failed.push((i, e.kind()))).await;
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].0, 1);
        let mut buf = [0u8; 16];
        let n = a.recv(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"ok");
        let n = a.recv(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"also ok");
    }
}
