//! The socket-based original-destination paths on a real kernel: a listener
//! without `upstream` recovers where each connection was going from the
//! socket itself, `SO_ORIGINAL_DST` after an iptables REDIRECT, the local
//! address after TPROXY. The proxy's own upstream connections carry Cilium's
//! mark, which the redirect rules use to let them through.
//!
//! Runs as root inside network namespaces the tests create (and delete, also
//! on panic); the root namespace's rules and routes are never touched.

use portcullis_tests::*;
use std::net::SocketAddr;

/// Cilium's upstream mark (proxy/src/upstream.rs `cilium_mark`), written out
/// independently: `base | (id & 0xFFFF) << 16 | (id >> 16) & 0xFF`.
fn cilium_mark(base: u32, identity: u32) -> u32 {
    base | (identity & 0xFFFF) << 16 | ((identity >> 16) & 0xFF)
}
const INGRESS_BASE: u32 = 0x0A00;
const EGRESS_BASE: u32 = 0x0B00;

/// Peers and root, checked up front so a missing one is a loud failure.
fn require_all() {
    require_root("the redirect tests");
    for p in ["ip", "iptables", "nginx", "curl", "bash"] {
        require(p);
    }
}

const EGRESS_POLICY: &str = r#"
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: client-egress}
spec:
  endpointSelector: {matchLabels: {app: client}}
  egress:
  - toCIDR: [10.77.0.10/32]
    toPorts:
    - ports: [{port: "80", protocol: TCP}]
      rules:
        http:
        - method: GET
          path: "/allowed.*"
"#;

/// The two HTTP requests both tests make, through the redirect `via` to the
/// server at `server`:80 (curl with `args` in `ns`): `/allowed/x` reaches
/// nginx, `/denied` gets Portcullis' 403.
fn assert_verdicts(ns: &Netns, args: &[&str], server: &str, via: &str, diag: &dyn Fn() -> String) {
    let get = |path: &str| {
        let url = format!("http://{server}{path}");
        curl_in(ns, &[args, &[url.as_str()]].concat())
    };
    let allowed = get("/allowed/x");
    assert_eq!(
        (allowed.status, allowed.body.as_str()),
        (200, "GET /allowed/x\n"),
        "GET /allowed through {via} should reach nginx at {server}:80: {allowed:?}\n{}",
        diag()
    );
    let denied = get("/denied");
    assert_eq!(
        (denied.status, denied.body.as_str()),
        (403, "Access denied\r\n"),
        "GET /denied should be refused by Portcullis (a 200 here means {via} did not divert to it): {denied:?}\n{}",
        diag()
    );
}

/// `r`, from a peer no policy allows, was reset.
fn assert_reset(r: &CurlResult, who: &str, diag: &dyn Fn() -> String) {
    // 56: reset while receiving, 52: empty reply, 7: reset before connect completed.
    assert!(
        [7, 52, 56].contains(&r.exit) && r.status == 0,
        "expected a reset for {who}, got {r:?}\n{}",
        diag()
    );
}

/// Some of the proxy's upstream packets carried `mark`, as counted by the
/// mangle OUTPUT rule that matches it.
fn assert_marked(ns: &Netns, mark: u32, diag: &dyn Fn() -> String) {
    let marked = ns.iptables_packets("mangle", "OUTPUT", &format!("--mark {mark:#x}"));
    assert!(
        marked > 0,
        "no upstream packet carried mark {mark:#x}\n{}",
        diag()
    );
}

/// The access log of both tests: `/allowed/x` allowed with 200, then
/// `/denied` denied with 403, each with the listener's direction and name,
/// the client's identity and address (by prefix: the port is ephemeral) and
/// the original destination `dst`; and the connection refused to the peer
/// from `refused_prefix`, which is returned.
fn assert_access_log<'a>(
    log: &'a [serde_json::Value],
    (direction, listener): (&str, &str),
    (src_identity, src_prefix): (u32, &str),
    dst: &str,
    refused_prefix: &str,
) -> &'a serde_json::Value {
    let http: Vec<_> = log.iter().filter(|e| e["kind"] == "http").collect();
    assert_eq!(http.len(), 2, "{log:#?}");
    for (e, path, verdict, status) in [
        (http[0], "/allowed/x", "allowed", 200),
        (http[1], "/denied", "denied", 403),
    ] {
        assert_eq!(e["dst"], dst, "{e}");
        assert_eq!(e["direction"], direction, "{e}");
        assert_eq!(e["listener"], listener, "{e}");
        assert_eq!(e["src_identity"], src_identity, "{e}");
        assert!(e["src"].as_str().unwrap().starts_with(src_prefix), "{e}");
        assert_eq!(e["path"], path, "{e}");
        assert_eq!(e["verdict"], verdict, "{e}");
        assert_eq!(e["status"], status, "{e}");
    }
    let refused = log
        .iter()
        .find(|e| e["kind"] == "connection")
        .unwrap_or_else(|| panic!("no connection event for {refused_prefix}: {log:#?}"));
    assert_eq!(refused["verdict"], "denied");
    assert_eq!(refused["dst"], dst);
    assert!(
        refused["src"].as_str().unwrap().starts_with(refused_prefix),
        "{refused}"
    );
    refused
}

/// Egress through iptables REDIRECT: the client (10.77.0.1) connects to the
/// server (10.77.0.10:80); nat OUTPUT redirects it to Portcullis on
/// 127.0.0.1:15001, which must recover 10.77.0.10:80 with SO_ORIGINAL_DST and
/// connect there with the egress mark, which the REDIRECT rule exempts.
#[test]
fn iptables_redirect_egress() {
    require_all();
    let ns = Netns::new("redir");
    ns.ip("addr add 10.77.0.1/32 dev lo");
    ns.ip("addr add 10.77.0.10/32 dev lo");
    let server: SocketAddr = "10.77.0.10:80".parse().unwrap();
    let _nginx = Nginx::start_in(&ns, &echo_server(server, ""), &[server]);

    let client_identity = 30001;
    let mark = cilium_mark(EGRESS_BASE, client_identity);
    assert_eq!(mark, 0x7531_0B00);
    let config = Config::new()
        .listener(Listener::egress(15001))
        .endpoint_as(3001, "10.77.0.1", "app: client", client_identity)
        .policy(EGRESS_POLICY);
    let pc = Portcullis::start_in(&ns, &config);

    ns.run(
        "iptables -t nat -A OUTPUT -p tcp -d 10.77.0.10 --dport 80 \
         -m mark ! --mark 0xb00/0xf00 -j REDIRECT --to-ports 15001",
    );
    // Counts (no target) the proxy's upstream packets carrying exactly
    // Cilium's mark for this source identity.
    ns.run(&format!(
        "iptables -t mangle -A OUTPUT -p tcp -d 10.77.0.10 --dport 80 -m mark --mark {mark:#x}"
    ));
    let diag = || format!("{}\nportcullis log:\n{}", ns.dump(), pc.log());

    assert_verdicts(
        &ns,
        &["--interface", "10.77.0.1"],
        "10.77.0.10",
        "REDIRECT",
        &diag,
    );
    // A source that is no local endpoint has no egress policy: reset.
    let stranger = curl_in(
        &ns,
        &["--interface", "127.0.0.1", "http://10.77.0.10/allowed"],
    );
    assert_reset(&stranger, "a stranger", &diag);

    // Both client connections and the stranger's were redirected; the
    // proxy's own upstream connection was not (it carries the mark).
    let redirected = ns.iptables_packets("nat", "OUTPUT", "REDIRECT");
    assert_eq!(
        redirected,
        3,
        "nat OUTPUT sees each connection's first packet\n{}",
        diag()
    );
    assert_marked(&ns, mark, &diag);

    assert_access_log(
        &pc.access_log(),
        ("egress", "egress-15001"),
        (client_identity, "10.77.0.1:"),
        "10.77.0.10:80",
        "127.0.0.1:",
    );
}

fn ingress_policy() -> Cnp {
    Cnp::new("web-ingress", "web").allow_http(
        &from_app("client"),
        80,
        &[http_rule("GET", "/allowed.*")],
    )
}

/// Ingress through TPROXY: a client namespace (10.78.0.1, and 10.78.0.3 for
/// an unknown peer) reaches the server namespace (10.78.0.2) over a veth
/// pair. In the server namespace, mangle PREROUTING on the veth diverts
/// port 80 to Portcullis' transparent listener on 0.0.0.0:15002 (TPROXY
/// drops packets for a listener without IP_TRANSPARENT), whose accepted
/// socket's local address is the original destination 10.78.0.2:80.
#[test]
fn tproxy_ingress() {
    require_all();
    let client = Netns::new("cli");
    let server = Netns::new("srv");
    client.ip(&format!(
        "link add veth-c type veth peer name veth-s netns {}",
        server.name
    ));
    client.ip("addr add 10.78.0.1/24 dev veth-c");
    client.ip("addr add 10.78.0.3/24 dev veth-c");
    client.ip("link set veth-c up");
    server.ip("addr add 10.78.0.2/24 dev veth-s");
    server.ip("link set veth-s up");

    let web: SocketAddr = "10.78.0.2:80".parse().unwrap();
    let _nginx = Nginx::start_in(&server, &echo_server(web, ""), &[web]);

    let client_identity = 20001;
    let mark = cilium_mark(INGRESS_BASE, client_identity);
    assert_eq!(mark, 0x4E21_0A00);
    let config = Config::new()
        .listener(Listener::ingress(15002).address("0.0.0.0").transparent())
        .endpoint(3002, "10.78.0.2", "app: web")
        .identity(client_identity, "app: client", "10.78.0.1/32")
        .policy(ingress_policy());
    let pc = Portcullis::start_in(&server, &config);

    // Only traffic arriving on the veth: the proxy's own connection to
    // 10.78.0.2:80 loops through lo and must reach nginx.
    server.run(
        "iptables -t mangle -A PREROUTING -i veth-s -p tcp --dport 80 \
         -j TPROXY --on-port 15002 --tproxy-mark 0x1/0x1",
    );
    server.run(&format!(
        "iptables -t mangle -A OUTPUT -p tcp -d 10.78.0.2 --dport 80 -m mark --mark {mark:#x}"
    ));
    server.ip("rule add fwmark 0x1/0x1 lookup 100");
    server.ip("route add local 0.0.0.0/0 dev lo table 100");
    let diag = || {
        format!(
            "{}{}\nportcullis log:\n{}",
            client.dump(),
            server.dump(),
            pc.log()
        )
    };

    assert_verdicts(&client, &[], "10.78.0.2", "TPROXY", &diag);
    // 10.78.0.3 is no known identity: WORLD, refused at L3 with a reset.
    let world = curl_in(
        &client,
        &["--interface", "10.78.0.3", "http://10.78.0.2/allowed"],
    );
    assert_reset(&world, "WORLD", &diag);

    let diverted = server.iptables_packets("mangle", "PREROUTING", "TPROXY");
    assert!(diverted > 0, "TPROXY rule matched nothing\n{}", diag());
    assert_marked(&server, mark, &diag);

    let log = pc.access_log();
    let refused = assert_access_log(
        &log,
        ("ingress", "ingress-15002"),
        (client_identity, "10.78.0.1:"),
        "10.78.0.2:80",
        "10.78.0.3:",
    );
    assert_eq!(refused["src_identity"], 2, "{refused}");
}
