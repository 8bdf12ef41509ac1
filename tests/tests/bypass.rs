//! The outside review's HTTP attacks, replayed through a real Portcullis to
//! real origins that record what they receive: upgrade smuggling, Host
//! confusion (absolute-form targets, `:authority` against `host`), headers
//! removed after they were judged, CONTINUATION splits, slow clients, and
//! access-log drops that `/metrics` did not count.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portcullis_tests::h2raw::{self, frame, Client};
use portcullis_tests::*;

/// Portcullis on a fresh port in front of `origin` (127.0.0.10), with
/// `policy` (`{origin}` replaced by its port) and `extra` config lines.
fn proxy(origin: u16, policy: &str, extra: &str) -> (Portcullis, SocketAddr) {
    let port = free_port();
    let policy = policy.replace("{origin}", &origin.to_string());
    let pc = Portcullis::start(
        &Config::front(port, origin, "origin")
            .policy(policy)
            .set(extra),
    );
    pc.wait_ready();
    (pc, SocketAddr::from(([127, 0, 0, 1], port)))
}

/// Anyone may send the HTTP requests `rules` allow to the origin's port.
fn http_policy(rules: &[String]) -> String {
    Cnp::new("origin", "origin")
        .allow_http(ANYONE, "{origin}", rules)
        .to_string()
}

/// An nginx origin that logs every request it gets as
/// `METHOD URI host=HOST token=X-TOKEN` (HTTP/2 with prior knowledge
/// when `h2`), and answers with the same line.
struct LoggingNginx {
    _nginx: Nginx,
    log: TempDir,
    port: u16,
}

impl LoggingNginx {
    fn start(h2: bool) -> LoggingNginx {
        let port = free_port();
        let log = TempDir::new().unwrap();
        let line = "$request_method $request_uri host=$http_host token=$http_x_token";
        let nginx = Nginx::start(
            &format!(
                r#"log_format seen '{line}';
                server {{ listen 127.0.0.10:{port}{h2};
                  access_log {}/seen.log seen;
                  location / {{ return 200 "{line}\n"; }}
                  location = /upload {{ proxy_pass http://127.0.0.10:{port}/echo-length; }}
                  location = /echo-length {{ return 200 "length=$http_content_length\n"; }} }}"#,
                log.path().display(),
                h2 = if h2 { " http2" } else { "" },
            ),
            &[port],
        );
        LoggingNginx {
            _nginx: nginx,
            log,
            port,
        }
    }

    fn seen(&self) -> Vec<String> {
        std::thread::sleep(Duration::from_millis(200));
        std::fs::read_to_string(self.log.path().join("seen.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

/// An HTTP/1.1 origin written for these tests, since nginx never switches
/// to h2c: it records every byte it receives; to a request asking for
/// `Upgrade: h2c` (or, when `rogue`, to any request) it answers `101
/// Switching Protocols` and from then on reads what arrives as its h2c
/// session; to anything else it answers 200.
struct UpgradeOrigin {
    port: u16,
    received: Arc<Mutex<Vec<u8>>>,
}

impl UpgradeOrigin {
    fn start(rogue: bool) -> UpgradeOrigin {
        let listener = TcpListener::bind((ORIGIN_IP, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let log = received.clone();
        std::thread::spawn(move || {
            for s in listener.incoming().flatten() {
                let log = log.clone();
                std::thread::spawn(move || Self::serve(s, rogue, &log));
            }
        });
        UpgradeOrigin { port, received }
    }

    fn serve(mut s: TcpStream, rogue: bool, log: &Mutex<Vec<u8>>) {
        let mut pending = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let Ok(n) = s.read(&mut buf) else { return };
            if n == 0 {
                return;
            }
            log.lock().unwrap().extend_from_slice(&buf[..n]);
            pending.extend_from_slice(&buf[..n]);
            while let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&pending[..end]).to_ascii_lowercase();
                pending.drain(..end + 4);
                if rogue || head.contains("\r\nupgrade: h2c") {
                    let _ = s.write_all(
                        b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n",
                    );
                    // An h2c session from here on: everything is logged.
                    while let Ok(n) = s.read(&mut buf) {
                        if n == 0 {
                            return;
                        }
                        log.lock().unwrap().extend_from_slice(&buf[..n]);
                    }
                    return;
                }
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n");
            }
        }
    }

    fn received(&self) -> String {
        std::thread::sleep(Duration::from_millis(300));
        String::from_utf8_lossy(&self.received.lock().unwrap()).into_owned()
    }
}

fn public_get() -> Vec<String> {
    vec![http_rule("GET", "/public/.*")]
}

/// Reads one response head (and nothing more) from `s`.
fn read_head(s: &mut TcpStream) -> String {
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(1) => got.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// The HTTP/2 request that would follow an accepted h2c upgrade: the
/// preface, SETTINGS and a GET of a path the policy denies.
fn h2c_followup(path: &str) -> Vec<u8> {
    let mut bytes = h2raw::PREFACE.to_vec();
    bytes.extend(frame(h2raw::SETTINGS, 0, 0, &[]));
    let block = h2raw::block(&[
        (":method", "GET"),
        (":scheme", "http"),
        (":authority", "x"),
        (":path", path),
    ]);
    bytes.extend(frame(
        h2raw::HEADERS,
        h2raw::END_STREAM | h2raw::END_HEADERS,
        3,
        &block,
    ));
    bytes
}

#[test]
fn h2c_upgrade_is_not_relayed_and_what_follows_never_reaches_the_origin() {
    let origin = UpgradeOrigin::start(false);
    let (pc, addr) = proxy(origin.port, &http_policy(&public_get()), "");
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(
        b"GET /public/a HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\n\
          Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n",
    )
    .unwrap();
    let head = read_head(&mut s);
    assert!(head.starts_with("HTTP/1.1 200"), "{head:?}");
    // The attacker goes on as if the upgrade had happened.
    let _ = s.write_all(&h2c_followup("/private/secret"));
    let received = origin.received();
    let lower = received.to_ascii_lowercase();
    assert!(lower.contains("get /public/a http/1.1"), "{received:?}");
    assert!(
        !lower.contains("upgrade"),
        "Upgrade reached the origin: {received:?}"
    );
    assert!(!lower.contains("http2-settings"), "{received:?}");
    assert!(
        !received.contains("/private"),
        "unjudged request reached the origin: {received:?}"
    );
    assert!(!received.contains("PRI * HTTP/2.0"), "{received:?}");
    let log = pc.access_log();
    assert!(
        log.iter()
            .any(|e| e["path"] == "/public/a" && e["verdict"] == "allowed"),
        "{log:#?}"
    );
}

#[test]
fn a_101_nobody_asked_for_is_an_upstream_error() {
    let origin = UpgradeOrigin::start(true);
    let (pc, addr) = proxy(origin.port, &http_policy(&public_get()), "");
    // A plain request, and a WebSocket upgrade answered with h2c.
    for req in [
        &b"GET /public/a HTTP/1.1\r\nHost: x\r\n\r\n"[..],
        b"GET /public/ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
          Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    ] {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(req).unwrap();
        let head = read_head(&mut s);
        assert!(head.starts_with("HTTP/1.1 502"), "{head:?}");
        let _ = s.write_all(&h2c_followup("/private/secret"));
    }
    let received = origin.received();
    assert!(!received.contains("/private"), "{received:?}");
    assert!(pc.metric("portcullis_upstream_errors_total") >= 2.0);
    let log = pc.access_log();
    assert!(
        log.iter().any(|e| e["status"] == 502
            && e["reason"]
                .as_str()
                .is_some_and(|r| r.contains("101 Switching Protocols"))),
        "{log:#?}"
    );
}

#[test]
fn h2c_cannot_be_configured_as_an_allowed_upgrade() {
    let origin = UpgradeOrigin::start(false);
    let config = Config::new()
        .listener(
            Listener::ingress(free_port()).upstream(format_args!("{ORIGIN_IP}:{}", origin.port)),
        )
        .set("http: {upgrades: [websocket, h2c]}");
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("c.yaml");
    std::fs::write(&path, config.yaml().replace("{admin}", "127.0.0.1:0")).unwrap();
    let out = std::process::Command::new(portcullis_bin())
        .arg("run")
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("http.upgrades[1]") && err.contains("h2c"),
        "{err}"
    );
}

/// Sends each raw request on its own connection and checks the status.
fn assert_statuses(addr: SocketAddr, cases: &[(&[u8], &str)]) {
    for (req, want) in cases {
        let resp = raw_exchange(addr, req);
        assert_eq!(
            resp.get(9..12),
            Some(*want),
            "{}: {resp:?}",
            String::from_utf8_lossy(req)
        );
    }
}

fn host_policy() -> String {
    http_policy(&[
        r#"{method: GET, path: "/.*", host: "public\\.example"}"#.to_string(),
        r#"{method: GET, path: "/token", headers: ["X-Token: yes"]}"#.to_string(),
        http_rule("POST", "/upload"),
    ])
}

#[test]
fn absolute_form_targets_set_the_host_the_origin_gets() {
    let origin = LoggingNginx::start(false);
    let (_pc, addr) = proxy(origin.port, &host_policy(), "");
    let cases: &[(&[u8], &str)] = &[
        // Judged on the target's authority: that is the Host forwarded.
        (
            b"GET http://public.example/internal HTTP/1.1\r\nHost: admin.example\r\nConnection: close\r\n\r\n",
            "200",
        ),
        // HTTP/1.0 with no Host at all.
        (b"GET http://public.example/old HTTP/1.0\r\n\r\n", "200"),
        // The Host header alone is judged as it is.
        (
            b"GET /internal HTTP/1.1\r\nHost: admin.example\r\nConnection: close\r\n\r\n",
            "403",
        ),
        // Userinfo in the target.
        (
            b"GET http://admin.example@public.example/x HTTP/1.1\r\nHost: public.example\r\nConnection: close\r\n\r\n",
            "400",
        ),
    ];
    assert_statuses(addr, cases);
    assert_eq!(
        origin.seen(),
        [
            "GET /internal host=public.example token=-",
            "GET /old host=public.example token=-"
        ]
    );
}

#[test]
fn connection_cannot_remove_what_is_judged() {
    let origin = LoggingNginx::start(false);
    let (_pc, addr) = proxy(origin.port, &host_policy(), "");
    let cases: &[(&[u8], &str)] = &[
        // Host judged, then stripped as "hop-by-hop": refused.
        (
            b"GET /a HTTP/1.1\r\nHost: public.example\r\nConnection: close, Host\r\n\r\n",
            "400",
        ),
        (
            b"POST /upload HTTP/1.1\r\nHost: public.example\r\nContent-Length: 2\r\nConnection: close, Content-Length\r\n\r\nab",
            "400",
        ),
        // A header named by Connection is gone before the rules look, so a
        // rule that needs it does not match.
        (
            b"GET /token HTTP/1.1\r\nHost: other.example\r\nX-Token: yes\r\nConnection: close, X-Token\r\n\r\n",
            "403",
        ),
        // The same header, not named: judged and forwarded.
        (
            b"GET /token HTTP/1.1\r\nHost: other.example\r\nX-Token: yes\r\nConnection: close\r\n\r\n",
            "200",
        ),
    ];
    assert_statuses(addr, cases);
    assert_eq!(origin.seen(), ["GET /token host=other.example token=yes"]);
}

#[test]
fn h2_authority_and_host_must_agree() {
    let origin = LoggingNginx::start(true);
    let (pc, addr) = proxy(origin.port, &host_policy(), "");
    let mut c = Client::connect(addr);
    let pseudo = |path| {
        vec![
            (":method", "GET"),
            (":scheme", "http"),
            (":authority", "public.example"),
            (":path", path),
        ]
    };
    c.get(1, &pseudo("/ok"));
    let f = c.next_answer().expect("an answer");
    assert!(f.is_status_200() && f.stream == 1, "{f:?}");

    let mut fields = pseudo("/disagree");
    fields.push(("host", "admin.example"));
    c.get(3, &fields);
    let f = c.next_answer().expect("an answer");
    assert_eq!(
        (f.kind, f.stream, f.error_code()),
        (h2raw::RST_STREAM, 3, Some(h2raw::PROTOCOL_ERROR)),
        "{f:?}"
    );

    c.get(
        5,
        &[
            (":method", "GET"),
            (":scheme", "http"),
            (":path", "/two-hosts"),
            ("host", "public.example"),
            ("host", "admin.example"),
        ],
    );
    let f = c.next_answer().expect("an answer");
    assert_eq!(
        (f.kind, f.stream, f.error_code()),
        (h2raw::RST_STREAM, 5, Some(h2raw::PROTOCOL_ERROR)),
        "{f:?}"
    );
    // A host that agrees is fine.
    let mut fields = pseudo("/agree");
    fields.push(("host", "PUBLIC.example"));
    c.get(7, &fields);
    let f = c.next_answer().expect("an answer");
    assert!(f.is_status_200() && f.stream == 7, "{f:?}");

    let seen = origin.seen();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(
        seen[0].starts_with("GET /ok host=public.example"),
        "{seen:?}"
    );
    assert!(seen[1].starts_with("GET /agree "), "{seen:?}");
    let log = pc.access_log();
    assert!(
        log.iter()
            .any(|e| e["path"] == "/disagree" && e["reason"] == ":authority and host disagree"),
        "{log:#?}"
    );
}

#[test]
fn a_header_block_split_in_continuation_frames_is_served_and_a_flood_is_refused() {
    let origin = LoggingNginx::start(true);
    let (_pc, addr) = proxy(origin.port, &host_policy(), "");
    let pad = "p".repeat(100);
    let mut fields = vec![
        (":method", "GET"),
        (":scheme", "http"),
        (":authority", "public.example"),
        (":path", "/split"),
    ];
    let names: Vec<String> = (0..9).map(|i| format!("x-pad-{i}")).collect();
    for n in &names {
        fields.push((n.as_str(), pad.as_str()));
    }
    let block = h2raw::block(&fields);
    assert!(block.len() > 1000, "{}", block.len());
    // One HEADERS frame and 8 CONTINUATION frames, the last ending the block.
    let chunks: Vec<&[u8]> = block.chunks(block.len().div_ceil(9)).collect();
    assert_eq!(chunks.len(), 9);
    let mut c = Client::connect(addr);
    let mut bytes = frame(h2raw::HEADERS, h2raw::END_STREAM, 1, chunks[0]);
    for (i, chunk) in chunks[1..].iter().enumerate() {
        let last = i == chunks.len() - 2;
        let flags = if last { h2raw::END_HEADERS } else { 0 };
        bytes.extend(frame(h2raw::CONTINUATION, flags, 1, chunk));
    }
    c.send(&bytes);
    let f = c.next_answer().expect("an answer");
    assert!(f.is_status_200(), "{f:?}");
    assert_eq!(origin.seen().len(), 1);

    // A flood: CONTINUATION frames that never end the block.
    let mut c = Client::connect(addr);
    let mut bytes = frame(
        h2raw::HEADERS,
        h2raw::END_STREAM,
        1,
        &h2raw::block(&fields[..4]),
    );
    for _ in 0..200 {
        bytes.extend(frame(
            h2raw::CONTINUATION,
            0,
            1,
            &h2raw::literal("x-f", "v"),
        ));
    }
    c.send(&bytes);
    let f = c.next_answer().expect("a GOAWAY");
    assert_eq!(
        (f.kind, f.error_code()),
        (h2raw::GOAWAY, Some(h2raw::ENHANCE_YOUR_CALM)),
        "{f:?}"
    );
    assert_eq!(origin.seen().len(), 1);
}

/// How long until the peer closes `s` (EOF or reset); `None` if it is still
/// open after `limit`.
fn closed_within(s: &mut TcpStream, limit: Duration) -> Option<(Duration, String)> {
    let start = Instant::now();
    s.set_read_timeout(Some(limit)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(_) => return None,
        }
    }
    Some((start.elapsed(), String::from_utf8_lossy(&got).into_owned()))
}

#[test]
fn slow_clients_are_timed_from_accept() {
    let origin = LoggingNginx::start(false);
    let (pc, addr) = proxy(
        origin.port,
        &host_policy(),
        "http: {headerTimeoutMs: 1000, requestTimeoutMs: 1500}",
    );
    // Connects and sends nothing.
    let mut s = TcpStream::connect(addr).unwrap();
    let (after, _) = closed_within(&mut s, Duration::from_secs(6)).expect("idle connection closed");
    assert!(after >= Duration::from_millis(900), "{after:?}");
    // Sends half a head.
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(b"GET /a HTTP/1.1\r\nHost: public.example\r\n")
        .unwrap();
    closed_within(&mut s, Duration::from_secs(6)).expect("half a head: closed");
    // A body trickling a byte at a time.
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(b"POST /upload HTTP/1.1\r\nHost: public.example\r\nContent-Length: 100\r\n\r\n")
        .unwrap();
    let mut w = s.try_clone().unwrap();
    std::thread::spawn(move || {
        for _ in 0..40 {
            if w.write_all(b"x").is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    let start = Instant::now();
    let (_, resp) = closed_within(&mut s, Duration::from_secs(8)).expect("trickle cut");
    assert!(resp.starts_with("HTTP/1.1 408"), "{resp:?}");
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "{:?}",
        start.elapsed()
    );
    let log = pc.access_log();
    assert!(
        log.iter().any(|e| e["kind"] == "connection"
            && e["verdict"] == "closed"
            && e["reason"]
                .as_str()
                .is_some_and(|r| r.contains("no request head"))),
        "{log:#?}"
    );
    assert!(
        log.iter()
            .any(|e| e["path"] == "/upload" && e["status"] == 408),
        "{log:#?}"
    );
    // Well-behaved clients are unaffected.
    let resp = raw_exchange(
        addr,
        b"GET /fine HTTP/1.1\r\nHost: public.example\r\nConnection: close\r\n\r\n",
    );
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp:?}");
}

#[test]
fn every_dropped_access_log_event_is_counted() {
    // The access log is a FIFO that is opened and never read: the writer
    // blocks, its queue fills, and every further event is dropped.
    let dir = TempDir::new().unwrap();
    let fifo = dir.path().join("access.log");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let (tx, rx) = std::sync::mpsc::channel();
    {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            let f = std::fs::File::open(fifo).unwrap();
            tx.send(f).unwrap();
        });
    }
    let port = free_port();
    // Nobody is allowed in: every connection is refused and logged.
    let policy = Cnp::new("nobody", "origin").allow(&from_app("nobody"));
    let config = Config::front(port, 9, "origin").policy(policy);
    let pc = Portcullis::start_in_dir(dir, &config).start();
    pc.wait_ready();
    let mut reader = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let tries = 18_000;
    for _ in 0..tries {
        let _ = TcpStream::connect(addr);
    }
    let denied = loop {
        let before = pc.metric("portcullis_connections_total{verdict=\"denied\"}");
        std::thread::sleep(Duration::from_millis(500));
        let after = pc.metric("portcullis_connections_total{verdict=\"denied\"}");
        if before == after {
            break after;
        }
    };
    assert!(denied > 17_000.0, "{denied}");
    // Now read everything the writer has and will write.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 16];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                return;
            }
        }
    });
    let mut written = Vec::new();
    while let Ok(chunk) = rx.recv_timeout(Duration::from_secs(2)) {
        written.extend(chunk);
    }
    let lines = String::from_utf8_lossy(&written)
        .lines()
        .filter(|l| l.contains("\"kind\":\"connection\""))
        .count() as f64;
    let dropped = pc.metric("portcullis_access_log_dropped_total");
    assert!(
        dropped > 0.0,
        "nothing dropped: lines {lines}, denied {denied}"
    );
    assert_eq!(lines + dropped, denied, "lines {lines} + dropped {dropped}");
}
