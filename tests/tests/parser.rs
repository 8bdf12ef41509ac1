//! The parser follows the policy (issue 15, item 5): a listener runs, per
//! connection, the parser its port's L7 rules call for, and a listener that
//! cannot enforce those rules resets the connection with a logged reason,
//! never relays past them.
//!
//! Real binary, real origins: nginx (logging every request it receives, so
//! "never reached the origin" is checked where it matters), a tansu broker,
//! and the in-process agent for what only NPDS can carry (`l7_rules`).

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, MetadataRequest, ProduceRequest, RequestKind, ResponseKind,
    TopicName,
};
use kafka_protocol::protocol::StrBytes;
use npds::proto::port_network_policy_rule::L7;
use npds::proto::{L7NetworkPolicyRule, L7NetworkPolicyRules};
use portcullis_tests::kafka::{frame, read_response, Tansu};
use portcullis_tests::*;
use portcullis_xds::Path as XdsPath;

/// An nginx origin on 127.0.0.10:`port` for each of `ports` that echoes the
/// request line and logs every request it receives to `log`.
fn origin(ports: &[u16], log: &Path) -> Nginx {
    let access_log = format!("access_log {};", log.display());
    let servers: String = ports
        .iter()
        .map(|p| echo_server(format_args!("{ORIGIN_IP}:{p}"), &access_log) + "\n")
        .collect();
    Nginx::start(&servers, ports)
}

/// What the origin has been asked, one request line each.
fn origin_requests(log: &Path) -> String {
    std::fs::read_to_string(log).unwrap_or_default()
}

/// GET `/public/.*` only, for anyone, on `http_port`; plain L4 allow on
/// `l4_port` (if any).
fn http_policy(http_port: u16, l4_port: Option<u16>) -> Cnp {
    let cnp =
        Cnp::new("web", "web").allow_http(ANYONE, http_port, &[http_rule("GET", "/public/.*")]);
    match l4_port {
        Some(l4) => cnp.allow_port(ANYONE, l4),
        None => cnp,
    }
}

/// An ingress listener on `port` to the origin port `to`, with `protocol`
/// (`None` leaves it out).
fn listener(port: u16, protocol: Option<&str>, to: u16) -> Listener {
    let l = Listener::ingress(port).upstream(format_args!("{ORIGIN_IP}:{to}"));
    match protocol {
        Some(p) => l.protocol(p),
        None => l,
    }
}

/// A standalone config: the web endpoint at 127.0.0.10, one ingress
/// listener per (port, protocol, origin port), and `policy`.
fn config(listeners: &[(u16, Option<&str>, u16)], policy: Cnp) -> Config {
    listeners
        .iter()
        .fold(Config::new(), |c, (port, protocol, to)| {
            c.listener(listener(*port, *protocol, *to))
        })
        .endpoint(1, ORIGIN_IP, "app: web")
        .policy(policy)
}

fn url(port: u16, path: &str) -> String {
    format!("http://127.0.0.1:{port}{path}")
}

/// 56: reset while receiving, 52: empty reply; 7: the RST arrived before
/// curl saw its connect complete (loopback is that fast).
fn was_reset(r: &CurlResult) -> bool {
    [7, 52, 56].contains(&r.exit) && r.status == 0
}

/// The access log's connection events with `verdict`.
fn connection_events(pc: &Portcullis, verdict: &str) -> Vec<serde_json::Value> {
    pc.access_log()
        .into_iter()
        .filter(|e| e["kind"] == "connection" && e["verdict"] == verdict)
        .collect()
}

#[test]
fn a_tcp_listener_resets_a_port_with_http_rules_instead_of_relaying_it() {
    let logs = TempDir::new().unwrap();
    let log = logs.path().join("origin.log");
    let web = free_port();
    let _nginx = origin(&[web], &log);
    let port = free_port();
    let pc = Portcullis::start(&config(&[(port, Some("tcp"), web)], http_policy(web, None)));
    pc.wait_ready();

    let r = curl(&[&url(port, "/private")]);
    assert!(was_reset(&r), "expected a reset, got {r:?}\n{}", pc.log());
    // Allowed paths too: the listener cannot judge any request on this port.
    let r = curl(&[&url(port, "/public/x")]);
    assert!(was_reset(&r), "expected a reset, got {r:?}");
    let seen = origin_requests(&log);
    assert!(!seen.contains("/private"), "the origin was reached: {seen}");
    assert_eq!(seen, "", "nothing may reach the origin");

    let events = connection_events(&pc, "rejected");
    assert_eq!(events.len(), 2, "{:#?}", pc.access_log());
    let reason = events[0]["reason"].as_str().unwrap();
    assert_eq!(
        reason,
        format!("port {web}: HTTP rules cannot be enforced by a tcp listener")
    );
    assert_eq!(
        pc.metric("portcullis_connections_total{verdict=\"rejected\"}"),
        2.0
    );
    assert!(pc.log().contains(reason), "{}", pc.log());
}

#[test]
fn a_default_listener_parses_http_where_the_rules_are_http_and_relays_elsewhere() {
    let logs = TempDir::new().unwrap();
    let log = logs.path().join("origin.log");
    let (web, plain) = (free_port(), free_port());
    let _nginx = origin(&[web, plain], &log);
    let (to_web, to_plain, to_plain_http) = (free_port(), free_port(), free_port());
    let pc = Portcullis::start(&config(
        &[
            (to_web, None, web),
            (to_plain, None, plain),
            (to_plain_http, Some("http"), plain),
        ],
        http_policy(web, Some(plain)),
    ));
    pc.wait_ready();

    // HTTP rules: HTTP parsing, each request judged.
    let r = curl(&[&url(to_web, "/public/x")]);
    assert_eq!(
        (r.status, r.body.as_str()),
        (200, "GET /public/x\n"),
        "{r:?}"
    );
    let r = curl(&[&url(to_web, "/private")]);
    assert_eq!(
        (r.status, r.body.as_str()),
        (403, "Access denied\r\n"),
        "{r:?}"
    );
    assert!(!origin_requests(&log).contains("/private"));

    // No L7 rules: a relay, as when Cilium sends no traffic to its proxy.
    // A path the HTTP parser refuses (an encoded slash) reaches the origin
    // untouched, which only a relay does...
    let r = curl(&["--path-as-is", &url(to_plain, "/a%2Fb")]);
    assert_eq!((r.status, r.body.as_str()), (200, "GET /a%2Fb\n"), "{r:?}");
    // ...while an explicit `protocol: http` listener still parses HTTP there.
    let r = curl(&["--path-as-is", &url(to_plain_http, "/a%2Fb")]);
    assert_eq!(r.status, 400, "{r:?}");

    let (_, dump) = pc.admin_get("/config_dump");
    let dump: serde_json::Value = serde_json::from_str(&dump).unwrap();
    let protocols: Vec<_> = dump["listeners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["name"].as_str().unwrap().to_string(),
                l["protocol"].clone(),
            )
        })
        .collect();
    assert!(
        protocols.contains(&(format!("ingress-{to_web}"), "auto".into()))
            && protocols.contains(&(format!("ingress-{to_plain_http}"), "http".into())),
        "{protocols:?}"
    );
}

#[test]
fn a_default_listener_on_a_kafka_port_speaks_kafka() {
    // The broker is the policy's endpoint (127.0.0.35:9092, the port of
    // Cilium's Kafka demo); the client on 127.0.0.1 is an outpost.
    let broker = "127.0.0.35:9092";
    let tansu = Tansu::start(broker, broker);
    tansu.create_topic("empire-announce", 1);
    let port = free_port();
    let config = Config::new()
        .listener(Listener::ingress(port).name("kafka").upstream(broker))
        .endpoint(4001, "127.0.0.35", "app: kafka")
        .identity(21002, "app: empire-outpost", "127.0.0.1/32")
        .policy(include_str!("../../examples/kafka/policy.yaml"));
    let pc = Portcullis::start(&config);
    pc.wait_ready();

    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    use std::io::Write;
    // A real Kafka answer from the broker (the HTTP parser would have
    // closed the connection: "NUL byte in the request head")...
    let versions = RequestKind::ApiVersions(
        ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("raw"))
            .with_client_software_version(StrBytes::from_static_str("1")),
    );
    s.write_all(&frame(ApiKey::ApiVersions, 3, 1, &versions))
        .unwrap();
    let (c, r) = read_response(&mut s, ApiKey::ApiVersions, 3);
    let Some(ResponseKind::ApiVersions(v)) = r else {
        panic!("{r:?}\n{}", pc.log())
    };
    assert_eq!((c, v.error_code), (1, 0));
    assert!(!v.api_keys.is_empty(), "{v:?}");
    let metadata = RequestKind::Metadata(MetadataRequest::default().with_topics(Some(vec![])));
    s.write_all(&frame(ApiKey::Metadata, 9, 2, &metadata))
        .unwrap();
    assert_eq!(read_response(&mut s, ApiKey::Metadata, 9).0, 2);
    // ...and the Kafka rules enforced: an outpost may not produce.
    let produce = RequestKind::Produce(
        ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(5000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_static_str("empire-announce")))
                .with_partition_data(
                    vec![PartitionProduceData::default().with_index(0)],
                )]),
    );
    s.write_all(&frame(ApiKey::Produce, 9, 3, &produce))
        .unwrap();
    let (c, r) = read_response(&mut s, ApiKey::Produce, 9);
    let Some(ResponseKind::Produce(p)) = r else {
        panic!("{r:?}")
    };
    assert_eq!(
        (c, p.responses[0].partition_responses[0].error_code),
        (3, 29),
        "TOPIC_AUTHORIZATION_FAILED"
    );
    let log = pc.access_log();
    assert!(
        log.iter().any(|e| e["kind"] == "kafka"
            && e["api_name"] == "produce"
            && e["verdict"] == "denied"),
        "{log:#?}"
    );
    assert!(!pc.log().contains("NUL byte"), "{}", pc.log());
}

// ---- Over NPDS, from the agent ----------------------------------------------

const INVENTORY: &str = "
endpoints: [{id: 1, ips: [127.0.0.10], labels: {app: web}}]
identities: [{id: 20002, labels: {app: client}, cidrs: [127.0.0.2/32]}]
";

/// `client` may connect to `port`, with no L7 rules.
fn l4_policy(port: u16) -> String {
    Cnp::new("web", "web")
        .allow_port(&from_app("client"), port)
        .to_string()
}

/// Portcullis on the agent's policy, with one listener per (protocol,
/// origin port) in `listeners`; their ports, in order.
struct WithAgent {
    agent: Agent,
    pc: Portcullis,
    ports: Vec<u16>,
    _dir: TempDir,
}

impl WithAgent {
    fn start(
        policies: Vec<npds::proto::NetworkPolicy>,
        hosts: Vec<npds::proto::NetworkPolicyHosts>,
        listeners: &[(Option<&str>, u16)],
    ) -> WithAgent {
        let dir = TempDir::new().unwrap();
        let agent = Agent::start(&dir.path().join("xds.sock"));
        agent.cache.set_hosts(hosts);
        agent.cache.set_network_policies(policies);
        let ports: Vec<u16> = listeners.iter().map(|_| free_port()).collect();
        let config = ports
            .iter()
            .zip(listeners)
            .fold(Config::new(), |c, (port, (protocol, to))| {
                c.listener(listener(*port, *protocol, *to))
            });
        let pc = Portcullis::start_with_args(&config, &["--xds", &agent.target()]);
        pc.wait_ready();
        WithAgent {
            agent,
            pc,
            ports,
            _dir: dir,
        }
    }
}

const CLIENT: &str = "127.0.0.2";

#[test]
fn generic_l7_rules_fail_closed_on_every_listener_and_show_in_config_dump() {
    let logs = TempDir::new().unwrap();
    let log = logs.path().join("origin.log");
    let web = free_port();
    let _nginx = origin(&[web], &log);
    // What the agent sends for a CNP with `l7proto: r2d2` rules.
    let (mut policies, hosts) = agent_resources(INVENTORY, &l4_policy(web));
    for rule in &mut policies[0].ingress_per_port_policies[0].rules {
        rule.name = "r2d2-read".into();
        rule.l7_proto = "r2d2".into();
        rule.l7 = Some(L7::L7Rules(L7NetworkPolicyRules {
            l7_allow_rules: vec![L7NetworkPolicyRule {
                rule: [("cmd".to_string(), "READ".to_string())].into(),
                ..Default::default()
            }],
            ..Default::default()
        }));
    }
    let s = WithAgent::start(
        policies,
        hosts,
        &[(Some("tcp"), web), (None, web), (Some("http"), web)],
    );

    for port in &s.ports {
        let r = curl(&["--interface", CLIENT, &url(*port, "/anything")]);
        assert!(
            was_reset(&r),
            "port {port}: expected a reset, got {r:?}\n{}",
            s.pc.log()
        );
    }
    assert_eq!(origin_requests(&log), "", "nothing may reach the origin");
    let events = connection_events(&s.pc, "rejected");
    assert_eq!(events.len(), 3, "{:#?}", s.pc.access_log());
    for e in &events {
        assert_eq!(e["rule"], "r2d2-read", "{e}");
        assert_eq!(
            e["reason"],
            format!("port {web}: no parser for L7 protocol \"r2d2\""),
            "{e}"
        );
    }

    let (_, dump) = s.pc.admin_get("/config_dump");
    let dump: serde_json::Value = serde_json::from_str(&dump).unwrap();
    let unenforceable = dump["policy"]["unenforceable"].as_array().unwrap();
    assert_eq!(unenforceable.len(), 1, "{unenforceable:?}");
    let u = &unenforceable[0];
    assert_eq!(
        (
            &u["endpoint_id"],
            &u["direction"],
            &u["port"],
            &u["rule"],
            &u["l7_proto"]
        ),
        (
            &1.into(),
            &"ingress".into(),
            &web.to_string().into(),
            &"r2d2-read".into(),
            &"r2d2".into()
        ),
        "{u}"
    );
    assert!(
        u["reason"]
            .as_str()
            .unwrap()
            .contains("no parser for L7 protocol"),
        "{u}"
    );
    let rule = &dump["policy"]["endpoints"][0]["ingress"][0]["rules"][0];
    assert_eq!(
        rule["l7_rules"],
        serde_json::json!(["allow cmd=\"READ\""]),
        "{rule}"
    );
}

/// An HTTP/1.1 keep-alive request on `c`: `Err` once the proxy closed it.
fn get(c: &mut KeepAlive, path: &str) -> std::io::Result<(u16, String)> {
    c.get(path, &[])
}

#[test]
fn an_open_relay_is_closed_when_its_port_gains_http_rules() {
    let logs = TempDir::new().unwrap();
    let log = logs.path().join("origin.log");
    let web = free_port();
    let _nginx = origin(&[web], &log);
    let (policies, hosts) = agent_resources(INVENTORY, &l4_policy(web));
    let s = WithAgent::start(policies, hosts, &[(None, web), (Some("http"), web)]);
    let client: IpAddr = CLIENT.parse().unwrap();
    let addr = |i: usize| SocketAddr::from(([127, 0, 0, 1], s.ports[i]));

    // No L7 rules: the default listener relays, the http one parses.
    let mut relay = KeepAlive::connect(client, addr(0));
    let mut parsed = KeepAlive::connect(client, addr(1));
    assert_eq!(get(&mut relay, "/private").unwrap().0, 200);
    assert_eq!(get(&mut parsed, "/private").unwrap().0, 200);

    // The port gains HTTP rules.
    let (policies, _) = agent_resources(INVENTORY, &http_policy(web, None).to_string());
    let v = s.agent.cache.set_network_policies(policies);
    s.agent.wait(
        "the NPDS ACK",
        s.agent.cache.wait_ack(XdsPath::NetworkPolicies, v),
    );

    // The relay would judge nothing: it is closed...
    s.pc.wait_until("the relay to be closed", Duration::from_secs(5), || {
        get(&mut relay, "/private").is_err()
    });
    // ...while the HTTP session judges its next request under the new rules.
    assert_eq!(get(&mut parsed, "/private").unwrap().0, 403);
    assert_eq!(get(&mut parsed, "/public/a").unwrap().0, 200);
    // A new connection through the default listener gets HTTP parsing.
    let r = curl(&["--interface", CLIENT, &url(s.ports[0], "/private")]);
    assert_eq!(r.status, 403, "{r:?}");

    let closed = connection_events(&s.pc, "closed");
    assert_eq!(closed.len(), 1, "{:#?}", s.pc.access_log());
    assert_eq!(
        closed[0]["reason"],
        "the port's rules now need HTTP parsing; this connection runs relay"
    );
    assert_eq!(
        s.pc.metric("portcullis_connections_closed_by_policy_total"),
        1.0
    );
}
