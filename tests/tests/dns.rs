//! The DNS proxy end to end: dig as the client, dnsmasq as the server, on
//! loopback addresses (no root needed): the pod at 127.0.0.93 (endpoint 1),
//! Portcullis's DNS listener at 127.0.0.92, dnsmasq ("kube-dns") at
//! 127.0.0.91, and the names' addresses 127.0.0.81–83 where nginx answers.
//!
//! - Cilium's DNS demo with local names: matchName, then matchPattern
//!   applied live; REFUSED and NXDOMAIN modes; UDP and TCP.
//! - toFQDNs: HTTP to a harvested address is allowed only while its TTL
//!   lasts; another address stays denied.
//! - A dead upstream answers SERVFAIL, and so does an answer to another
//!   question; malformed datagrams and frames are dropped or answered
//!   FORMERR and the proxy keeps serving; a query with any number of
//!   questions but one is answered FORMERR and never forwarded (a second
//!   question would smuggle an unjudged name to the server).
//! - The cache survives a restart (`dns.cacheFile`, `portcullis fqdn list`).
//! - The agent's side of the standalone DNS proxy protocol: policy over
//!   `FQDNData/StreamPolicyState`, ACKs, `UpdateMappingRequest`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use portcullis_tests::dns::{dig, Dnsmasq};
use portcullis_tests::{
    curl, free_port, portcullis_bin, wait_for, Config, Listener, Nginx, Portcullis,
};

const CLIENT: &str = "127.0.0.93";

fn records() -> Vec<(&'static str, &'static str)> {
    vec![
        ("api.github.com", "127.0.0.81"),
        ("support.github.com", "127.0.0.82"),
        ("github.com", "127.0.0.83"),
    ]
}

/// The endpoint, kube-dns's identity and one DNS listener.
fn config(dns_port: u16, upstream: SocketAddr) -> Config {
    Config::new()
        .listener(
            Listener::egress(dns_port)
                .name("dns")
                .address("127.0.0.92")
                .protocol("dns")
                .upstream(upstream),
        )
        .endpoint(1, CLIENT, "org: empire, class: mediabot")
        .identity_in(
            "kube-system",
            100,
            "k8s-app: kube-dns",
            &format!("{}/32", upstream.ip()),
        )
}

/// Cilium's DNS demo policy with `dns` as the rule list, plus `more` egress rules.
fn policy(dns: &str, dns_port: u16, more: &str) -> String {
    format!(
        "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata:\n  name: fqdn\nspec:\n\
         \x20 endpointSelector:\n    matchLabels: {{org: empire, class: mediabot}}\n\
         \x20 egress:\n\
         \x20 - toEndpoints:\n    - matchLabels:\n        \"k8s:io.kubernetes.pod.namespace\": kube-system\n        \"k8s:k8s-app\": kube-dns\n\
         \x20   toPorts:\n    - ports:\n      - port: \"{dns_port}\"\n        protocol: ANY\n      rules:\n        dns:\n{dns}{more}"
    )
}

fn upstream_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 91], free_port()))
}

fn proxy(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 92], port))
}

/// A ready Portcullis whose DNS listener forwards to `upstream`, with
/// `dns_extra` in its config and the policy's one DNS rule line `dns_rule`;
/// and the listener's port.
fn start_proxy(upstream: SocketAddr, dns_extra: &str, dns_rule: &str) -> (Portcullis, u16) {
    let port = free_port();
    let pc = Portcullis::start(&config(port, upstream).set(dns_extra).policy(policy(
        dns_rule,
        upstream.port(),
        "",
    )));
    pc.wait_ready();
    (pc, port)
}

#[test]
fn cilium_dns_demo_match_name_then_match_pattern() {
    let up = upstream_addr();
    let _dnsmasq = Dnsmasq::start(up, &records(), 60);
    let (pc, port) = start_proxy(up, "", "        - matchName: \"api.github.com\"\n");

    let d = dig(CLIENT, proxy(port), "api.github.com", &[]);
    assert_eq!(d.status, "NOERROR", "{}\n{}", d.output, pc.log());
    assert_eq!(d.answers, vec!["127.0.0.81"]);
    let d = dig(CLIENT, proxy(port), "support.github.com", &[]);
    assert_eq!(d.status, "REFUSED", "{}", d.output);
    // Over TCP the same.
    assert_eq!(
        dig(CLIENT, proxy(port), "api.github.com", &["+tcp"]).status,
        "NOERROR"
    );
    assert_eq!(
        dig(CLIENT, proxy(port), "support.github.com", &["+tcp"]).status,
        "REFUSED"
    );
    // A source that is no local endpoint is refused.
    assert_eq!(
        dig("127.0.0.94", proxy(port), "api.github.com", &[]).status,
        "REFUSED"
    );

    // The policy file edited: *.github.com allows both, not github.com itself.
    std::fs::write(
        pc.path("policy.yaml"),
        policy("        - matchPattern: \"*.github.com\"\n", up.port(), ""),
    )
    .unwrap();
    pc.wait_until("the pattern to apply", Duration::from_secs(10), || {
        dig(CLIENT, proxy(port), "support.github.com", &[]).status == "NOERROR"
    });
    assert_eq!(
        dig(CLIENT, proxy(port), "api.github.com", &[]).status,
        "NOERROR"
    );
    assert_eq!(
        dig(CLIENT, proxy(port), "github.com", &[]).status,
        "REFUSED"
    );
    assert_eq!(
        dig(CLIENT, proxy(port), "API.GitHub.com", &["+tcp"]).status,
        "NOERROR"
    );

    let log = pc.access_log();
    let dns: Vec<_> = log.iter().filter(|e| e["kind"] == "dns").collect();
    let allowed = dns
        .iter()
        .find(|e| e["name"] == "api.github.com." && e["verdict"] == "allowed")
        .expect("an allowed event");
    assert_eq!(allowed["rcode"], "NOERROR");
    assert_eq!(allowed["ips"][0], "127.0.0.81");
    assert_eq!(allowed["endpoint"], 1);
    assert_eq!(allowed["dst_identity"], 100);
    assert!(allowed["upstream_latency_us"].as_u64().is_some());
    let denied = dns
        .iter()
        .find(|e| e["name"] == "github.com." && e["verdict"] == "denied")
        .expect("a denied event");
    assert_eq!(denied["rcode"], "REFUSED");
    assert!(pc.metric("portcullis_dns_queries_total{protocol=\"udp\",verdict=\"denied\"}") >= 2.0);
    assert!(pc.metric("portcullis_dns_queries_total{protocol=\"tcp\",verdict=\"allowed\"}") >= 2.0);
}

#[test]
fn name_error_mode_answers_nxdomain() {
    let up = upstream_addr();
    let _dnsmasq = Dnsmasq::start(up, &records(), 60);
    let (_pc, port) = start_proxy(
        up,
        "dns:\n  rejectResponseCode: nameError\n",
        "        - matchName: \"api.github.com\"\n",
    );
    assert_eq!(
        dig(CLIENT, proxy(port), "support.github.com", &[]).status,
        "NXDOMAIN"
    );
    assert_eq!(
        dig(CLIENT, proxy(port), "support.github.com", &["+tcp"]).status,
        "NXDOMAIN"
    );
    assert_eq!(
        dig(CLIENT, proxy(port), "api.github.com", &[]).status,
        "NOERROR"
    );
}

/// An egress HTTP listener per name address, toFQDNs allowing api.github.com.
fn fqdn_setup(ttl: u32) -> (Dnsmasq, Nginx, u16, u16, u16, Config) {
    let up = upstream_addr();
    let dnsmasq = Dnsmasq::start(up, &records(), ttl);
    let web = free_port();
    let nginx = Nginx::start(
        &format!(
            "server {{ listen 127.0.0.81:{web}; listen 127.0.0.82:{web}; location / {{ return 200 \"fqdn ok\\n\"; }} }}"
        ),
        &[],
    );
    portcullis_tests::wait_for_port(
        SocketAddr::from(([127, 0, 0, 81], web)),
        Duration::from_secs(10),
    );
    let (dns_port, to_api, to_support) = (free_port(), free_port(), free_port());
    let to = |name: &str, port: u16, ip: &str| {
        Listener::egress(port)
            .name(name)
            .address("127.0.0.92")
            .upstream(format_args!("{ip}:{web}"))
    };
    let more = format!(
        "\x20 - toFQDNs:\n    - matchName: \"api.github.com\"\n\
         \x20   toPorts:\n    - ports:\n      - port: \"{web}\"\n        protocol: TCP\n      rules:\n        http:\n        - method: GET\n"
    );
    let pol = policy(
        "        - matchPattern: \"*.github.com\"\n",
        up.port(),
        &more,
    );
    let cfg = config(dns_port, up)
        .listener(to("to-api", to_api, "127.0.0.81"))
        .listener(to("to-support", to_support, "127.0.0.82"))
        .policy(pol);
    (dnsmasq, nginx, dns_port, to_api, to_support, cfg)
}

fn get(port: u16) -> u16 {
    let url = format!("http://127.0.0.92:{port}/");
    curl(&["--interface", CLIENT, "-m", "3", &url]).status
}

#[test]
fn to_fqdns_allows_harvested_addresses_while_their_ttl_lasts() {
    let (_dnsmasq, _nginx, dns_port, to_api, to_support, cfg) = fqdn_setup(3);
    let pc = Portcullis::start(&cfg);
    pc.wait_ready();

    // Before any lookup the address is just WORLD: denied.
    assert_ne!(get(to_api), 200);
    let d = dig(CLIENT, proxy(dns_port), "api.github.com", &[]);
    assert_eq!(d.answers, vec!["127.0.0.81"], "{}", d.output);
    // Right after the answer: allowed, as policy saw the address first.
    assert_eq!(get(to_api), 200, "{}", pc.log());
    // support.github.com is allowed to resolve, but no toFQDNs selects it.
    assert_eq!(
        dig(CLIENT, proxy(dns_port), "support.github.com", &[]).answers,
        vec!["127.0.0.82"]
    );
    assert_ne!(get(to_support), 200);

    let (_, dump) = pc.admin_get("/config_dump");
    let dump: serde_json::Value = serde_json::from_str(&dump).unwrap();
    let cache = &dump["dns"]["fqdn_cache"];
    assert_eq!(cache["selectors"][0]["matchName"], "api.github.com");
    let names: Vec<&str> = cache["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["api.github.com.", "support.github.com."]);

    // The TTL (3 s) runs out: denied again.
    std::thread::sleep(Duration::from_secs(5));
    assert_ne!(get(to_api), 200, "{}", pc.log());
    let (_, dump) = pc.admin_get("/config_dump");
    assert!(!dump.contains("api.github.com."), "{dump}");
}

#[test]
fn cache_survives_a_restart() {
    let (_dnsmasq, _nginx, dns_port, to_api, _to_support, cfg) = fqdn_setup(3600);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("fqdn-cache.json");
    let cfg = cfg.set(format_args!("dns:\n  cacheFile: \"{}\"", file.display()));
    {
        let pc = Portcullis::start(&cfg);
        pc.wait_ready();
        assert_eq!(
            dig(CLIENT, proxy(dns_port), "api.github.com", &[]).status,
            "NOERROR"
        );
        assert_eq!(get(to_api), 200);
        // Saved within a second of the change.
        pc.wait_until("the cache to be saved", Duration::from_secs(5), || {
            std::fs::read_to_string(&file)
                .unwrap_or_default()
                .contains("api.github.com.")
        });
    }
    // A new process: no lookup yet, and the address is allowed at once.
    let pc = Portcullis::start(&cfg);
    pc.wait_ready();
    assert_eq!(get(to_api), 200, "{}", pc.log());
    let out = std::process::Command::new(portcullis_bin())
        .args(["fqdn", "list", "--admin", &pc.admin.to_string()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let line = text
        .lines()
        .find(|l| l.contains("api.github.com."))
        .unwrap_or_else(|| panic!("no entry in:\n{text}"));
    assert!(
        line.starts_with('1') && line.ends_with("127.0.0.81"),
        "{line}"
    );
}

#[test]
fn dead_upstream_answers_servfail() {
    let dead = upstream_addr();
    let (pc, port) = start_proxy(
        dead,
        "dns:\n  upstreamTimeoutMs: 500\n",
        "        - matchPattern: \"*\"\n",
    );
    let d = dig(CLIENT, proxy(port), "api.github.com", &[]);
    assert_eq!(d.status, "SERVFAIL", "{}", d.output);
    assert!(d.elapsed < Duration::from_secs(2), "{:?}", d.elapsed);
    let d = dig(CLIENT, proxy(port), "api.github.com", &["+tcp"]);
    assert_eq!(d.status, "SERVFAIL", "{}", d.output);
    assert_eq!(
        pc.metric("portcullis_dns_queries_total{protocol=\"udp\",verdict=\"timeout\"}"),
        1.0
    );
}

#[test]
fn malformed_queries_are_dropped_or_answered_formerr() {
    let up = upstream_addr();
    let _dnsmasq = Dnsmasq::start(up, &records(), 60);
    let (mut pc, port) = start_proxy(up, "", "        - matchPattern: \"*\"\n");
    let sock = UdpSocket::bind((CLIENT, 0)).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut buf = [0u8; 1024];
    // A header then a question whose name is a compression pointer to itself.
    let mut looped = vec![0xAB, 0xCD, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    looped.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1]);
    sock.send_to(&looped, proxy(port)).unwrap();
    let (n, _) = sock
        .recv_from(&mut buf)
        .expect("FORMERR for a looping name");
    assert_eq!(&buf[..2], &[0xAB, 0xCD]);
    assert_eq!(buf[3] & 0x0F, 1, "rcode FORMERR: {:?}", &buf[..n]);
    // Shorter than a header, and a response: no answer at all.
    sock.send_to(&[1, 2, 3], proxy(port)).unwrap();
    let mut response = looped.clone();
    response[2] |= 0x80;
    sock.send_to(&response, proxy(port)).unwrap();
    assert!(
        sock.recv_from(&mut buf).is_err(),
        "nothing answers a runt or a response"
    );
    // Random garbage of every length.
    let mut seed = 0x1234_5678u32;
    for len in 0..300 {
        let junk: Vec<u8> = (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                seed as u8
            })
            .collect();
        sock.send_to(&junk, proxy(port)).unwrap();
    }
    // A TCP frame announcing 300 bytes and sending 10, then closing.
    let mut t = TcpStream::connect(proxy(port)).unwrap();
    t.write_all(&[1, 44]).unwrap();
    t.write_all(&[0; 10]).unwrap();
    t.shutdown(std::net::Shutdown::Write).unwrap();
    t.set_read_timeout(Some(Duration::from_secs(7))).unwrap();
    assert_eq!(t.read(&mut buf).unwrap_or(0), 0, "closed without a reply");

    assert!(pc.is_running(), "{}", pc.log());
    assert_eq!(
        dig(CLIENT, proxy(port), "api.github.com", &[]).status,
        "NOERROR"
    );
    assert!(
        pc.metric("portcullis_dns_queries_total{protocol=\"udp\",verdict=\"malformed\"}") >= 1.0
    );
}

/// An upstream that misbehaves on purpose, which dnsmasq cannot be made to
/// do: every answer carries one A record (127.0.0.81) but echoes the
/// question changed. For `api.github.com` only the case changes (0x20
/// randomisation, legal); for any other name the first letter does, so the
/// answer is for a question nobody asked.
fn start_echoing_upstream(addr: SocketAddr) {
    let sock = UdpSocket::bind(addr).unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        while let Ok((n, from)) = sock.recv_from(&mut buf) {
            // Header, then the question's name from byte 12 to its root label.
            let Some(end) = buf[12..n].iter().position(|b| *b == 0).map(|i| 12 + i) else {
                continue;
            };
            let mut reply = buf[..end + 5].to_vec();
            reply[2] |= 0x80; // QR: a response
            reply[6..12].copy_from_slice(&[0, 1, 0, 0, 0, 0]); // one answer, nothing else
            if &reply[12..17] == b"\x03api\x06" {
                reply[13..16].copy_from_slice(b"API");
            } else {
                reply[13] = b'x';
            }
            // The answer: a pointer to the question's name, A IN, TTL 60.
            reply.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 81]);
            let _ = sock.send_to(&reply, from);
        }
    });
}

#[test]
fn answers_must_echo_the_question_in_any_case() {
    let up = upstream_addr();
    start_echoing_upstream(up);
    let (pc, port) = start_proxy(up, "", "        - matchPattern: \"*\"\n");
    // Same name in other case: relayed as the server sent it, and harvested.
    let d = dig(CLIENT, proxy(port), "api.github.com", &[]);
    assert_eq!(d.status, "NOERROR", "{}", d.output);
    assert_eq!(d.answers, vec!["127.0.0.81"], "{}", d.output);
    assert_eq!(pc.metric("portcullis_fqdn_cache_names"), 1.0);
    // Another name: the client gets SERVFAIL, the cache learns nothing.
    let d = dig(CLIENT, proxy(port), "support.github.com", &[]);
    assert_eq!(d.status, "SERVFAIL", "{}", d.output);
    assert!(d.answers.is_empty(), "{}", d.output);
    assert_eq!(pc.metric("portcullis_fqdn_cache_names"), 1.0);
    let log = pc.access_log();
    let event = log
        .iter()
        .find(|e| e["name"] == "support.github.com.")
        .unwrap_or_else(|| panic!("no event for support.github.com. in {log:?}"));
    assert_eq!(event["verdict"], "error", "{event}");
    assert_eq!(event["reason"], "answer is for another question", "{event}");
}

/// An upstream that records every message it receives, over UDP and TCP,
/// and answers each with its first question, NOERROR and no records.
fn start_recording_upstream(addr: SocketAddr) -> Arc<Mutex<Vec<Vec<u8>>>> {
    fn answer(query: &[u8]) -> Option<Vec<u8>> {
        let end = 12 + query.get(12..)?.iter().position(|b| *b == 0)?;
        let mut reply = query.get(..end + 5)?.to_vec();
        reply[2] |= 0x80; // QR: a response
        reply[4..12].copy_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
        Some(reply)
    }
    let received = Arc::new(Mutex::new(Vec::new()));
    let udp = UdpSocket::bind(addr).unwrap();
    let seen = received.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 65535];
        while let Ok((n, from)) = udp.recv_from(&mut buf) {
            seen.lock().unwrap().push(buf[..n].to_vec());
            if let Some(reply) = answer(&buf[..n]) {
                let _ = udp.send_to(&reply, from);
            }
        }
    });
    let tcp = std::net::TcpListener::bind(addr).unwrap();
    let seen = received.clone();
    std::thread::spawn(move || {
        for mut conn in tcp.incoming().flatten() {
            let seen = seen.clone();
            std::thread::spawn(move || {
                while let Some(query) = read_frame(&mut conn) {
                    seen.lock().unwrap().push(query.clone());
                    if let Some(reply) = answer(&query) {
                        let _ = conn.write_all(&frame(&reply));
                    }
                }
            });
        }
    });
    received
}

/// A query for each of `names` (type A), in one message with recursion desired.
fn raw_query(id: u16, names: &[&str]) -> Vec<u8> {
    let mut m = id.to_be_bytes().to_vec();
    m.extend_from_slice(&[0x01, 0x00]);
    m.extend_from_slice(&(names.len() as u16).to_be_bytes());
    m.extend_from_slice(&[0; 6]);
    for name in names {
        for label in name.split('.') {
            m.push(label.len() as u8);
            m.extend_from_slice(label.as_bytes());
        }
        m.extend_from_slice(&[0, 0, 1, 0, 1]);
    }
    m
}

/// The names of a raw message's questions, read from its header count.
fn question_names(m: &[u8]) -> Vec<String> {
    let count = u16::from_be_bytes([m[4], m[5]]);
    let mut at = 12;
    let mut names = Vec::new();
    for _ in 0..count {
        let mut labels = Vec::new();
        while let Some(&len) = m.get(at).filter(|l| **l != 0) {
            labels.push(String::from_utf8_lossy(&m[at + 1..at + 1 + len as usize]).into_owned());
            at += 1 + len as usize;
        }
        names.push(labels.join("."));
        at += 5;
    }
    names
}

fn frame(m: &[u8]) -> Vec<u8> {
    let mut f = (m.len() as u16).to_be_bytes().to_vec();
    f.extend_from_slice(m);
    f
}

fn read_frame(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 2];
    s.read_exact(&mut len).ok()?;
    let mut m = vec![0u8; usize::from(u16::from_be_bytes(len))];
    s.read_exact(&mut m).ok()?;
    Some(m)
}

/// `query` from the pod to the proxy over UDP and over TCP: the two replies.
fn exchange_both(port: u16, query: &[u8]) -> [Vec<u8>; 2] {
    let sock = UdpSocket::bind((CLIENT, 0)).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    sock.send_to(query, proxy(port)).unwrap();
    let mut buf = [0u8; 65535];
    let (n, _) = sock.recv_from(&mut buf).expect("a reply over UDP");
    let udp = buf[..n].to_vec();

    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    s.bind(&SocketAddr::from((CLIENT.parse::<std::net::Ipv4Addr>().unwrap(), 0)).into())
        .unwrap();
    s.connect(&proxy(port).into()).unwrap();
    let mut t: TcpStream = s.into();
    t.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    t.write_all(&frame(query)).unwrap();
    let tcp = read_frame(&mut t).expect("a reply over TCP");
    [udp, tcp]
}

/// A second question is not judged, so it must never reach the server: a
/// denied name riding behind an allowed one. Any count but one is answered
/// FORMERR (ID echoed) over both transports and the upstream sees nothing;
/// a one-question query still goes through, so the upstream does record.
#[test]
fn queries_without_exactly_one_question_get_formerr_and_are_never_forwarded() {
    let up = upstream_addr();
    let received = start_recording_upstream(up);
    let (pc, port) = start_proxy(up, "", "        - matchName: \"api.github.com\"\n");

    let smuggled = raw_query(0xD1D1, &["api.github.com", "support.github.com"]);
    let reversed = raw_query(0xD2D2, &["support.github.com", "api.github.com"]);
    let empty = raw_query(0xD0D0, &[]);
    for (query, id) in [
        (&smuggled, 0xD1D1u16),
        (&reversed, 0xD2D2),
        (&empty, 0xD0D0),
    ] {
        for (reply, transport) in exchange_both(port, query).iter().zip(["udp", "tcp"]) {
            let what = format!("{transport}, {:?}: {reply:?}", question_names(query));
            assert_eq!(u16::from_be_bytes([reply[0], reply[1]]), id, "{what}");
            assert_eq!(reply[2] & 0x80, 0x80, "a response: {what}");
            assert_eq!(reply[3] & 0x0F, 1, "rcode FORMERR: {what}");
        }
    }
    // Control: one allowed question goes upstream, over both transports.
    let one = raw_query(0x0101, &["api.github.com"]);
    for reply in exchange_both(port, &one) {
        assert_eq!(
            (u16::from_be_bytes([reply[0], reply[1]]), reply[3] & 0x0F),
            (0x0101, 0),
            "{reply:?}\n{}",
            pc.log()
        );
    }
    let got: Vec<Vec<String>> = received
        .lock()
        .unwrap()
        .iter()
        .map(|m| question_names(m))
        .collect();
    assert_eq!(
        got,
        vec![vec!["api.github.com".to_string()]; 2],
        "the upstream received more than the two control queries"
    );

    let log = pc.access_log();
    let malformed: Vec<_> = log
        .iter()
        .filter(|e| e["kind"] == "dns" && e["verdict"] == "malformed")
        .collect();
    assert_eq!(malformed.len(), 6, "{log:#?}");
    for e in &malformed {
        assert_eq!(e["rcode"], "FORMERR", "{e}");
        assert_eq!(e["endpoint"], 1, "{e}");
        assert_eq!(e["dst_identity"], 100, "{e}");
    }
    let reasons: Vec<&str> = malformed
        .iter()
        .map(|e| e["reason"].as_str().unwrap())
        .collect();
    assert_eq!(
        reasons
            .iter()
            .filter(|r| r.starts_with("2 questions"))
            .count(),
        4,
        "{reasons:?}"
    );
    assert_eq!(
        reasons
            .iter()
            .filter(|r| r.starts_with("0 questions"))
            .count(),
        2,
        "{reasons:?}"
    );
    for transport in ["udp", "tcp"] {
        assert_eq!(
            pc.metric(&format!(
                "portcullis_dns_queries_total{{protocol=\"{transport}\",verdict=\"malformed\"}}"
            )),
            3.0
        );
    }
}

/// The agent's side of `standalonednsproxy.FQDNData`: streams the states
/// the test queues, and hands back the ACKs and mappings it receives.
mod agent {
    use std::sync::Mutex;

    use cilium_api::standalonednsproxy::fqdn_data_server::FqdnData;
    use futures_util::stream::BoxStream;
    use futures_util::StreamExt;
    use l7_dns::proto::{
        FqdnMapping, PolicyState, PolicyStateResponse, ResponseCode, UpdateMappingResponse,
    };
    use tokio::sync::mpsc;
    use tonic::{Request, Response, Status, Streaming};

    pub struct Agent {
        pub states: Mutex<Option<mpsc::UnboundedReceiver<PolicyState>>>,
        pub acks: mpsc::UnboundedSender<PolicyStateResponse>,
        pub mappings: mpsc::UnboundedSender<FqdnMapping>,
    }

    type PolicyStateStream = BoxStream<'static, Result<PolicyState, Status>>;

    #[tonic::async_trait]
    impl FqdnData for Agent {
        type StreamPolicyStateStream = PolicyStateStream;

        async fn stream_policy_state(
            &self,
            request: Request<Streaming<PolicyStateResponse>>,
        ) -> Result<Response<PolicyStateStream>, Status> {
            let mut acks = request.into_inner();
            let states = self
                .states
                .lock()
                .unwrap()
                .take()
                .ok_or_else(|| Status::unavailable("one subscription per test"))?;
            let tx = self.acks.clone();
            tokio::spawn(async move {
                while let Some(Ok(ack)) = acks.next().await {
                    let _ = tx.send(ack);
                }
            });
            let out = tokio_stream(states);
            Ok(Response::new(out))
        }

        async fn update_mapping_request(
            &self,
            req: Request<FqdnMapping>,
        ) -> Result<Response<UpdateMappingResponse>, Status> {
            let _ = self.mappings.send(req.into_inner());
            Ok(Response::new(UpdateMappingResponse {
                response: ResponseCode::NoError as i32,
            }))
        }
    }

    fn tokio_stream(mut rx: mpsc::UnboundedReceiver<PolicyState>) -> PolicyStateStream {
        Box::pin(futures_util::stream::poll_fn(move |cx| {
            rx.poll_recv(cx).map(|o| o.map(Ok))
        }))
    }
}

#[test]
fn agent_streams_dns_policy_and_receives_fqdn_mappings() {
    use cilium_api::standalonednsproxy::fqdn_data_server::FqdnDataServer;
    use l7_dns::proto::{
        DnsPolicy, DnsServer, EndpointInfo, IdentityToEndpointMapping, IdentityToPrefixMapping,
        PolicyState, ResponseCode,
    };
    use tokio::sync::mpsc;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (states_tx, states_rx) = mpsc::unbounded_channel();
    let (acks_tx, mut acks) = mpsc::unbounded_channel();
    let (maps_tx, mut mappings) = mpsc::unbounded_channel();
    let agent = agent::Agent {
        states: std::sync::Mutex::new(Some(states_rx)),
        acks: acks_tx,
        mappings: maps_tx,
    };
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let agent_addr = listener.local_addr().unwrap();
    rt.spawn(
        tonic::transport::Server::builder()
            .add_service(FqdnDataServer::new(agent))
            .serve_with_incoming(tokio_stream_incoming(listener)),
    );

    let up = upstream_addr();
    let _dnsmasq = Dnsmasq::start(up, &records(), 60);
    let port = free_port();
    // The files allow every name; the agent's stream overrides them.
    let pc = Portcullis::start(
        &config(port, up)
            .set(format_args!("dns:\n  fqdnData: \"http://{agent_addr}\""))
            .policy(policy("        - matchPattern: \"*\"\n", up.port(), "")),
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(pc.admin_get("/ready").0, 503, "ready before any DNS policy");

    let state = |id: &str, pattern: &str| PolicyState {
        request_id: id.into(),
        egress_l7_dns_policy: vec![DnsPolicy {
            source_endpoint_id: 1,
            dns_pattern: vec![pattern.into()],
            dns_servers: vec![DnsServer {
                dns_server_identity: 100,
                dns_server_port: u32::from(up.port()),
                dns_server_proto: 17,
            }],
        }],
        identity_to_endpoint_mapping: vec![IdentityToEndpointMapping {
            identity: 5001,
            endpoint_info: vec![EndpointInfo {
                id: 1,
                ip: vec![vec![127, 0, 0, 93]],
            }],
        }],
        identity_to_prefix_mapping: vec![IdentityToPrefixMapping {
            identity: 100,
            prefix: vec![vec![127, 0, 0, 91, 32]],
        }],
    };
    states_tx.send(state("req-1", "api.github.com")).unwrap();
    let ack = wait_for(&rt, "an ACK", Duration::from_secs(10), acks.recv()).unwrap();
    assert_eq!(ack.request_id, "req-1");
    assert_eq!(ack.response(), ResponseCode::NoError);
    pc.wait_ready();

    let d = dig(CLIENT, proxy(port), "api.github.com", &[]);
    assert_eq!(d.status, "NOERROR", "{}\n{}", d.output, pc.log());
    assert_eq!(
        dig(CLIENT, proxy(port), "support.github.com", &[]).status,
        "REFUSED"
    );
    let m = wait_for(&rt, "a mapping", Duration::from_secs(10), mappings.recv()).unwrap();
    assert_eq!(m.fqdn, "api.github.com.");
    assert_eq!(m.record_ip, vec![vec![127, 0, 0, 81]]);
    assert!(m.ttl > 0 && m.ttl <= 60, "{}", m.ttl);
    assert_eq!(m.source_identity, 5001);
    assert_eq!(m.source_ip, vec![127, 0, 0, 93]);
    assert_eq!(m.response_code, 0);
    let md = m.metrics_data.expect("metrics data");
    assert_eq!(md.server_identity, 100);
    assert_eq!(md.server_addr, up.to_string());
    assert_eq!(md.protocol, "udp");
    assert!(md.allowed);

    // A state that does not compile is refused and the last good one stays.
    states_tx.send(state("req-2", "bad/name")).unwrap();
    let ack = wait_for(&rt, "an ACK", Duration::from_secs(10), acks.recv()).unwrap();
    assert_eq!(ack.request_id, "req-2");
    assert_eq!(ack.response(), ResponseCode::ErrorInvalidArgument);
    assert_eq!(
        dig(CLIENT, proxy(port), "support.github.com", &[]).status,
        "REFUSED"
    );
    assert_eq!(
        dig(CLIENT, proxy(port), "api.github.com", &[]).status,
        "NOERROR"
    );
    // The agent listed UDP only: the same name over TCP is refused.
    assert_eq!(
        dig(CLIENT, proxy(port), "api.github.com", &["+tcp"]).status,
        "REFUSED"
    );
    let (_, dump) = pc.admin_get("/config_dump");
    assert!(
        dump.contains("req-2") && dump.contains("bad/name"),
        "{dump}"
    );
}

fn tokio_stream_incoming(
    l: tokio::net::TcpListener,
) -> impl futures_util::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    futures_util::stream::unfold(l, |l| async move {
        let r = l.accept().await.map(|(s, _)| s);
        Some((r, l))
    })
}

#[test]
fn shipped_example_translates() {
    let root = portcullis_tests::workspace_root().join("examples/dns");
    let config: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(root.join("portcullis.yaml")).unwrap())
            .unwrap();
    let inv: cnp::Inventory = serde_yaml_ng::from_value(serde_yaml_ng::Value::Mapping(
        config
            .as_mapping()
            .unwrap()
            .iter()
            .filter(|(k, _)| k.as_str() == Some("endpoints") || k.as_str() == Some("identities"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    ))
    .unwrap();
    let path = root.join("policy.yaml");
    let docs = cnp::parse_file(&path, &std::fs::read_to_string(&path).unwrap()).unwrap();
    let t = cnp::translate(&inv, &docs).unwrap();
    assert_eq!(t.fqdn_selectors.len(), 1);
    assert_eq!(t.fqdn_selectors[0].match_name, "api.github.com");
    assert_eq!(t.dns_rules.len(), 1);
    assert_eq!(t.dns_rules[0].patterns, vec!["*"]);
    assert!(t.dns_rules[0]
        .servers
        .iter()
        .all(|s| s.identity == 100 && s.port == 5353));
}
