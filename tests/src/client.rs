//! Clients for the proxy under test: curl, raw bytes, and HTTP/1.1 on a
//! connection kept open between requests.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::Duration;

use crate::{require, Netns};

/// A minimal HTTP/1.1 GET over a fresh connection (admin checks only).
pub fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
        return (0, String::new());
    };
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    let status = buf.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = buf
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// Sends raw bytes and returns whatever comes back before the peer closes
/// or goes quiet: for request shapes no well-behaved client will send.
pub fn raw_exchange(addr: SocketAddr, bytes: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    s.write_all(bytes).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The outcome of one curl run.
#[derive(Debug)]
pub struct CurlResult {
    pub exit: i32,
    pub status: u16,
    pub body: String,
    pub stderr: String,
}

/// Runs curl with `args`, adding `-s -o - -w '\n%{http_code}'`.
pub fn curl(args: &[&str]) -> CurlResult {
    run_curl(Command::new("curl"), args)
}

/// `cmd` is curl, maybe behind `ip netns exec`.
fn run_curl(mut cmd: Command, args: &[&str]) -> CurlResult {
    require("curl");
    let out = cmd
        .args(["-s", "-S", "--max-time", "10", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("run curl");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = stdout.rsplit_once('\n').unwrap_or(("", &stdout));
    CurlResult {
        exit: out.status.code().unwrap_or(-1),
        status: code.trim().parse().unwrap_or(0),
        body: body.to_string(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs curl inside `ns`, like `curl`.
pub fn curl_in(ns: &Netns, args: &[&str]) -> CurlResult {
    run_curl(ns.command("curl"), args)
}

/// An HTTP/1.1 keep-alive connection from a chosen source address, for
/// requests that must share one connection.
pub struct KeepAlive {
    stream: TcpStream,
}

impl KeepAlive {
    pub fn connect(source: std::net::IpAddr, to: SocketAddr) -> KeepAlive {
        let sock =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        sock.bind(&SocketAddr::new(source, 0).into()).unwrap();
        sock.connect(&to.into()).unwrap();
        let stream: TcpStream = sock.into();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        KeepAlive { stream }
    }

    /// One GET; `Err` when the connection is closed or reset.
    pub fn get(&mut self, path: &str, headers: &[(&str, &str)]) -> std::io::Result<(u16, String)> {
        let extra: String = headers
            .iter()
            .map(|(k, v)| format!("{k}: {v}\r\n"))
            .collect();
        write!(
            self.stream,
            "GET {path} HTTP/1.1\r\nHost: echo\r\n{extra}\r\n"
        )?;
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if self.stream.read(&mut byte)? == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "closed",
                ));
            }
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head).to_string();
        let status = head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
        let len: usize = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().parse().unwrap_or(0))
            })
            .unwrap_or(0);
        let mut body = vec![0u8; len];
        self.stream.read_exact(&mut body)?;
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }
}
