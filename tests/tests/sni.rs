//! Rules with `server_names` (SNI) while Portcullis does not read the TLS
//! ClientHello: policy from "the agent" over NPDS (standalone CNP refuses
//! `serverNames`), curl as the TLS client, and an nginx TLS origin whose
//! `stub_status` counts every connection it accepts, so "the origin received
//! nothing" is checked at the TCP level, not just by a missing log line.
//!
//! - A deny rule with `server_names` applies to every connection on its
//!   port: a client naming a denied server is reset and nothing reaches the
//!   origin (with the rule withdrawn, the same connection passes).
//! - An allow rule with `server_names` matches no connection: a port whose
//!   only allow rule names servers resets every connection.

use std::net::SocketAddr;
use std::process::Command;

use npds::proto::{
    port_network_policy_rule::Verdict, NetworkPolicy, NetworkPolicyHosts, PortNetworkPolicy,
    PortNetworkPolicyRule, Protocol,
};
use portcullis_tests::*;
use portcullis_xds::Path;

/// An nginx origin on 127.0.0.10: HTTPS on `tls` ports (a certificate for
/// `*.forbidden.example` and `*.allowed.example`, made here with openssl),
/// logging each request's SNI, and `stub_status` on `status`.
struct Origin {
    _nginx: Nginx,
    /// The certificate, its key and nginx's SNI log.
    files: TempDir,
    tls: [u16; 2],
    status: u16,
}

impl Origin {
    fn start() -> Origin {
        require("openssl");
        let certs = tempfile::tempdir().unwrap();
        let (cert, key) = (certs.path().join("cert.pem"), certs.path().join("key.pem"));
        let out = Command::new("openssl")
            .args(["req", "-x509", "-nodes", "-days", "1", "-newkey", "ec"])
            .args(["-pkeyopt", "ec_paramgen_curve:prime256v1", "-subj"])
            .arg("/CN=forbidden.example")
            .args([
                "-addext",
                "subjectAltName=DNS:*.forbidden.example,DNS:*.allowed.example",
            ])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .expect("run openssl");
        assert!(
            out.status.success(),
            "openssl req: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (tls, status) = ([free_port(), free_port()], free_port());
        let servers = tls
            .iter()
            .map(|p| {
                format!(
                    r#"server {{ listen 127.0.0.10:{p} ssl;
                         ssl_certificate {cert}; ssl_certificate_key {key};
                         access_log {log} sni;
                         location / {{ return 200 "$ssl_server_name\n"; }} }}"#,
                    cert = cert.display(),
                    key = key.display(),
                    log = certs.path().join("sni.log").display(),
                )
            })
            .collect::<String>();
        let nginx = Nginx::start(
            &format!(
                "log_format sni '$server_port $ssl_server_name $request';\n{servers}\n\
                 server {{ listen 127.0.0.10:{status}; location / {{ stub_status; }} }}"
            ),
            &[tls[0], tls[1], status],
        );
        Origin {
            _nginx: nginx,
            files: certs,
            tls,
            status,
        }
    }

    /// Connections nginx has accepted so far, this status request included.
    fn accepts(&self) -> u64 {
        let (code, body) = http_get(SocketAddr::from(([127, 0, 0, 10], self.status)), "/");
        assert_eq!(code, 200, "{body}");
        // "server accepts handled requests\n N N N"
        let counts = body
            .lines()
            .skip_while(|l| !l.starts_with("server accepts"))
            .nth(1)
            .unwrap_or_else(|| panic!("no counts in stub_status:\n{body}"));
        counts.split_whitespace().next().unwrap().parse().unwrap()
    }

    /// The requests nginx served: "port sni request" lines.
    fn log(&self) -> String {
        std::fs::read_to_string(self.files.path().join("sni.log")).unwrap_or_default()
    }
}

fn rule(name: &str, deny: bool, server_names: &[&str]) -> PortNetworkPolicyRule {
    PortNetworkPolicyRule {
        name: name.into(),
        verdict: deny.then_some(Verdict::Deny(true)),
        server_names: server_names.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

/// Endpoint 1 (the origin) with `rules` on each of its two TLS ports.
fn policy(tls: [u16; 2], rules: [Vec<PortNetworkPolicyRule>; 2]) -> Vec<NetworkPolicy> {
    let ports = tls
        .iter()
        .zip(rules)
        .map(|(port, rules)| PortNetworkPolicy {
            port: u32::from(*port),
            protocol: Protocol::Tcp as i32,
            rules,
            ..Default::default()
        })
        .collect();
    vec![NetworkPolicy {
        endpoint_ips: vec!["127.0.0.10".into()],
        endpoint_id: 1,
        ingress_per_port_policies: ports,
        ..Default::default()
    }]
}

/// curl to `https://{name}:{port}/` through Portcullis's listener `port`.
fn https(name: &str, port: u16) -> CurlResult {
    let resolve = format!("{name}:{port}:127.0.0.1");
    curl(&[
        "-k",
        "--resolve",
        &resolve,
        &format!("https://{name}:{port}/"),
    ])
}

#[test]
fn server_names_deny_applies_to_every_connection_until_sni_is_read() {
    let origin = Origin::start();
    let dir = tempfile::tempdir().unwrap();
    let agent = Agent::start(&dir.path().join("xds.sock"));
    agent.cache.set_hosts(vec![NetworkPolicyHosts {
        policy: 20002,
        host_addresses: vec!["127.0.0.2/32".into()],
    }]);
    let allow_all = || rule("allow-all", false, &[]);
    let allow_sni = || rule("allow-sni", false, &["*.allowed.example"]);
    let deny_sni = || rule("deny-forbidden-sni", true, &["*.forbidden.example"]);
    // Control: no deny rule yet.
    agent
        .cache
        .set_network_policies(policy(origin.tls, [vec![allow_all()], vec![allow_sni()]]));
    let listen = [free_port(), free_port()];
    let config = listen
        .iter()
        .zip(origin.tls)
        .fold(Config::new(), |c, (port, tls)| {
            c.listener(
                Listener::ingress(*port)
                    .protocol("tcp")
                    .upstream(format_args!("{ORIGIN_IP}:{tls}")),
            )
        });
    let pc = Portcullis::start_with_args(&config, &["--xds", &agent.target()]);
    pc.wait_ready();

    // Without the deny rule the connection passes, SNI and all.
    let r = https("x.forbidden.example", listen[0]);
    assert_eq!(
        (r.status, r.body.trim()),
        (200, "x.forbidden.example"),
        "{r:?}\n{}",
        pc.log()
    );
    assert!(
        origin.log().contains("x.forbidden.example GET / "),
        "{}",
        origin.log()
    );

    // The deny rule arrives (same precedence as the allow: deny wins).
    let v = agent.cache.set_network_policies(policy(
        origin.tls,
        [vec![allow_all(), deny_sni()], vec![allow_sni()]],
    ));
    agent.wait(
        "the NPDS ACK",
        agent.cache.wait_ack(Path::NetworkPolicies, v),
    );
    let served = origin.log();
    let before = origin.accepts();
    for name in ["x.forbidden.example", "x.allowed.example", "plain.example"] {
        let r = https(name, listen[0]);
        assert_ne!(r.exit, 0, "{name} through the SNI deny: {r:?}");
        assert_eq!(r.status, 0, "{name}: {r:?}");
    }
    // Nor may the port whose only allow rule names servers pass anything,
    // whatever name the client sends.
    for name in ["x.allowed.example", "x.forbidden.example"] {
        let r = https(name, listen[1]);
        assert_ne!(r.exit, 0, "{name} through an SNI-only allow: {r:?}");
        assert_eq!(r.status, 0, "{name}: {r:?}");
    }
    // One more accept: this status request. No TLS connection arrived.
    assert_eq!(
        origin.accepts(),
        before + 1,
        "the origin accepted connections:\n{}",
        origin.log()
    );
    assert_eq!(origin.log(), served, "the origin served requests");

    let log = pc.access_log();
    let denied: Vec<_> = log
        .iter()
        .filter(|e| e["kind"] == "connection" && e["verdict"] == "denied")
        .collect();
    assert_eq!(denied.len(), 5, "{log:#?}");
    assert_eq!(
        denied
            .iter()
            .filter(|e| e["rule"] == "deny-forbidden-sni")
            .count(),
        3,
        "{denied:#?}"
    );
    assert_eq!(
        pc.metric("portcullis_connections_total{verdict=\"denied\"}"),
        5.0
    );
}
