//! Policy over xDS from "the agent" (an in-process xDS server), end to end:
//! initial sync, live HTTP rule updates, NACKs that keep the last good
//! policy, the agent going away and coming back, connections judged again
//! on every update, and secrets rotated under open connections.

use std::net::SocketAddr;
use std::time::Duration;

use portcullis_tests::*;
use portcullis_xds::Path;

const INVENTORY: &str = "
endpoints: [{id: 1, ips: [127.0.0.10], labels: {app: echo}}]
identities:
  - {id: 20002, labels: {app: client-a}, cidrs: [127.0.0.2/32]}
  - {id: 20003, labels: {app: client-b}, cidrs: [127.0.0.3/32]}
";

/// Client A may GET `path_a`; client B may GET `path_b` (if given).
fn policy(origin: u16, path_a: &str, path_b: Option<&str>) -> String {
    let p = Cnp::new("echo", "echo").allow_http(
        &from_app("client-a"),
        origin,
        &[http_rule("GET", path_a)],
    );
    match path_b {
        Some(b) => p.allow_http(&from_app("client-b"), origin, &[http_rule("GET", b)]),
        None => p,
    }
    .to_string()
}

struct Setup {
    agent: Option<Agent>,
    pc: Portcullis,
    _nginx: Nginx,
    origin: u16,
    port: u16,
    _dir: TempDir,
}

impl Setup {
    fn new() -> Setup {
        let origin = free_port();
        let nginx = Nginx::start(
            &echo_server(format_args!("{ORIGIN_IP}:{origin}"), ""),
            &[origin],
        );
        let dir = tempfile::tempdir().unwrap();
        let agent = Agent::start(&dir.path().join("xds.sock"));
        let (policies, hosts) =
            agent_resources(INVENTORY, &policy(origin, "/public/.*", Some("/b/.*")));
        agent.cache.set_hosts(hosts);
        agent.cache.set_network_policies(policies);
        let port = free_port();
        let config = Config::new()
            .listener(Listener::ingress(port).upstream(format_args!("{ORIGIN_IP}:{origin}")));
        let pc = Portcullis::start_with_args(&config, &["--xds", &agent.target()]);
        pc.wait_ready();
        Setup {
            agent: Some(agent),
            pc,
            _nginx: nginx,
            origin,
            port,
            _dir: dir,
        }
    }

    fn agent(&self) -> &Agent {
        self.agent.as_ref().unwrap()
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn status(&self, client: &str, path: &str) -> u16 {
        curl(&["--interface", client, &self.url(path)]).status
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Waits for Portcullis to NACK `version` of `path`; the NACK's message.
    fn nack(&self, path: Path, version: u64) -> String {
        self.agent()
            .wait("the NACK", self.agent().cache.wait_nack(path, version))
            .message
    }

    /// Pushes a policy and waits until Portcullis has ACKed it.
    fn push_policy(&self, yaml: &str) -> u64 {
        let (policies, _) = agent_resources(INVENTORY, yaml);
        let v = self.agent().cache.set_network_policies(policies);
        self.agent().wait(
            "the NPDS ACK",
            self.agent().cache.wait_ack(Path::NetworkPolicies, v),
        );
        v
    }
}

#[test]
fn updates_apply_and_invalid_updates_are_nacked_keeping_the_last_good_policy() {
    let s = Setup::new();
    assert_eq!(s.status("127.0.0.2", "/public/a"), 200);
    assert_eq!(s.status("127.0.0.2", "/private/a"), 403);

    // An update that changes an HTTP rule applies as soon as it is ACKed.
    s.push_policy(&policy(s.origin, "/private/.*", None));
    assert_eq!(s.status("127.0.0.2", "/private/a"), 200);
    assert_eq!(s.status("127.0.0.2", "/public/a"), 403);

    // An invalid regex: NACKed with the resource and field named.
    let (mut bad, _) = agent_resources(INVENTORY, &policy(s.origin, "/private/.*", None));
    let text = format!("{:?}", bad[0]);
    assert!(text.contains("/private/.*"), "{text}");
    set_path_regex(&mut bad[0], "/private/(");
    let v = s.agent().cache.set_network_policies(bad);
    let nack = s.nack(Path::NetworkPolicies, v);
    assert!(
        nack.contains("NetworkPolicy \"1\"") && nack.contains("(:path)"),
        "{nack}"
    );
    assert_eq!(
        s.status("127.0.0.2", "/private/a"),
        200,
        "the last good policy keeps enforcing"
    );
    assert_eq!(s.status("127.0.0.2", "/public/a"), 403);

    // Two L7 types on one port: NACKed the same way.
    let (mut bad, _) = agent_resources(INVENTORY, &policy(s.origin, "/private/.*", None));
    add_kafka_rule(&mut bad[0]);
    let v = s.agent().cache.set_network_policies(bad);
    let nack = s.nack(Path::NetworkPolicies, v);
    assert!(nack.contains("one L7 type per port"), "{nack}");
    assert_eq!(s.status("127.0.0.2", "/private/a"), 200);

    // A Kafka rule naming a topic Kafka cannot have, on a port of its own.
    let (mut bad, _) = agent_resources(INVENTORY, &policy(s.origin, "/private/.*", None));
    add_kafka_port(&mut bad[0], 9092, "deathstar/plans");
    let v = s.agent().cache.set_network_policies(bad);
    let nack = s.nack(Path::NetworkPolicies, v);
    assert!(
        nack.contains("kafka_rules[0].topic") && nack.contains("outside [a-zA-Z0-9._-]"),
        "{nack}"
    );
    assert_eq!(s.status("127.0.0.2", "/private/a"), 200);

    assert_eq!(
        s.pc.metric("portcullis_xds_updates_rejected_total{type_url=\"type.googleapis.com/cilium.NetworkPolicy\"}"),
        3.0
    );
    // The dump shows the last rejection.
    let (_, dump) = s.pc.admin_get("/config_dump");
    assert!(dump.contains("kafka_rules[0].topic"), "{dump}");
}

fn set_path_regex(np: &mut npds::proto::NetworkPolicy, regex: &str) {
    for re in path_regexes(np) {
        *re = regex.to_string();
    }
}

fn add_kafka_port(np: &mut npds::proto::NetworkPolicy, port: u32, topic: &str) {
    use npds::proto::{
        port_network_policy_rule::L7, KafkaNetworkPolicyRule, KafkaNetworkPolicyRules,
        PortNetworkPolicy, PortNetworkPolicyRule,
    };
    np.ingress_per_port_policies.push(PortNetworkPolicy {
        port,
        rules: vec![PortNetworkPolicyRule {
            l7_proto: "kafka".into(),
            l7: Some(L7::KafkaRules(KafkaNetworkPolicyRules {
                kafka_rules: vec![KafkaNetworkPolicyRule {
                    api_version: -1,
                    topic: topic.into(),
                    ..Default::default()
                }],
            })),
            ..Default::default()
        }],
        ..Default::default()
    });
}

fn add_kafka_rule(np: &mut npds::proto::NetworkPolicy) {
    use npds::proto::{
        port_network_policy_rule::L7, KafkaNetworkPolicyRule, KafkaNetworkPolicyRules,
        PortNetworkPolicyRule,
    };
    np.ingress_per_port_policies[0]
        .rules
        .push(PortNetworkPolicyRule {
            remote_policies: vec![20003],
            l7: Some(L7::KafkaRules(KafkaNetworkPolicyRules {
                kafka_rules: vec![KafkaNetworkPolicyRule {
                    topic: "t".into(),
                    ..Default::default()
                }],
            })),
            ..Default::default()
        });
}

#[test]
fn policy_is_kept_while_the_agent_is_away_and_resynced_when_it_returns() {
    let mut s = Setup::new();
    assert_eq!(s.status("127.0.0.2", "/public/a"), 200);
    let socket = s.agent().socket.clone();
    s.agent.take().unwrap().stop();

    // Disconnected: the last good policy keeps enforcing.
    wait_until(
        "the proxy to notice the agent leaving",
        Duration::from_secs(10),
        || {
            s.pc.metric(
                "portcullis_xds_connected{type_url=\"type.googleapis.com/cilium.NetworkPolicy\"}",
            ) == 0.0
        },
    );
    assert_eq!(s.status("127.0.0.2", "/public/a"), 200);
    assert_eq!(s.status("127.0.0.2", "/private/a"), 403);
    assert_eq!(
        s.pc.admin_get("/ready").0,
        200,
        "still ready on the last good policy"
    );

    // A new agent instance with a changed policy: the proxy reconnects (a new
    // stream generation) and re-syncs everything.
    let agent = Agent::start(&socket);
    let (policies, hosts) = agent_resources(INVENTORY, &policy(s.origin, "/private/.*", None));
    agent.cache.set_hosts(hosts);
    let v = agent.cache.set_network_policies(policies);
    agent.wait(
        "the re-sync ACK",
        agent.cache.wait_ack(Path::NetworkPolicies, v),
    );
    s.agent = Some(agent);
    assert_eq!(s.status("127.0.0.2", "/private/a"), 200);
    assert_eq!(s.status("127.0.0.2", "/public/a"), 403);
    assert!(s.pc.metric("portcullis_xds_stream_generation{type_url=\"type.googleapis.com/cilium.NetworkPolicy\"}") >= 2.0);
}

#[test]
fn an_update_closes_only_the_connections_it_no_longer_allows() {
    let s = Setup::new();
    let mut a = KeepAlive::connect("127.0.0.2".parse().unwrap(), s.addr());
    let mut b = KeepAlive::connect("127.0.0.3".parse().unwrap(), s.addr());
    assert_eq!(a.get("/public/1", &[]).unwrap().0, 200);
    assert_eq!(b.get("/b/1", &[]).unwrap().0, 200);

    // Client B loses its allowance; client A keeps its own, with a new L7 rule.
    s.push_policy(&policy(s.origin, "/public/.*|/more/.*", None));

    // A's connection is untouched and its next request is judged anew.
    assert_eq!(
        a.get("/more/2", &[]).unwrap(),
        (200, "GET /more/2\n".into())
    );
    assert_eq!(a.get("/public/3", &[]).unwrap().0, 200);
    // B's connection was closed by the update.
    wait_until(
        "B's connection to be closed",
        Duration::from_secs(5),
        || b.get("/b/2", &[]).is_err(),
    );
    assert_eq!(
        s.pc.metric("portcullis_connections_closed_by_policy_total"),
        1.0
    );
}

#[test]
fn secrets_rotate_under_open_connections_and_missing_ones_fail_closed() {
    let s = Setup::new();
    let yaml = Cnp::new("echo", "echo").allow_http(
        &from_app("client-a"),
        s.origin,
        &[r#"{method: GET, path: "/public/.*", headerMatches: [{name: X-Token, secret: {name: token}}]}"#],
    );
    s.push_policy(&yaml.to_string());
    // The secret is not there yet: the rule fails closed and says why.
    let mut a = KeepAlive::connect("127.0.0.2".parse().unwrap(), s.addr());
    assert_eq!(a.get("/public/1", &[("X-Token", "v1")]).unwrap().0, 403);
    let (_, dump) = s.pc.admin_get("/config_dump");
    assert!(
        dump.contains("\"missing_secrets\": [\n    \"cilium-secrets/default-token\""),
        "{dump}"
    );
    assert_eq!(s.pc.admin_get("/ready").0, 503);

    let token = |v: &str| {
        use envoy_types::pb::envoy::config::core::v3::{data_source::Specifier, DataSource};
        use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
            secret::Type, GenericSecret, Secret,
        };
        Secret {
            name: "cilium-secrets/default-token".into(),
            r#type: Some(Type::GenericSecret(GenericSecret {
                secret: Some(DataSource {
                    specifier: Some(Specifier::InlineString(v.into())),
                    ..Default::default()
                }),
                ..Default::default()
            })),
        }
    };
    let v = s.agent().cache.set_secrets(vec![token("v1")]);
    s.agent()
        .wait("the SDS ACK", s.agent().cache.wait_ack(Path::Secrets, v));
    assert_eq!(a.get("/public/2", &[("X-Token", "v1")]).unwrap().0, 200);
    assert_eq!(a.get("/public/3", &[("X-Token", "v2")]).unwrap().0, 403);
    assert_eq!(s.pc.admin_get("/ready").0, 200);

    // Rotation: the same open connection sees the new value on its next request.
    let v = s.agent().cache.set_secrets(vec![token("v2")]);
    s.agent()
        .wait("the SDS ACK", s.agent().cache.wait_ack(Path::Secrets, v));
    assert_eq!(a.get("/public/4", &[("X-Token", "v2")]).unwrap().0, 200);
    assert_eq!(a.get("/public/5", &[("X-Token", "v1")]).unwrap().0, 403);

    // Material is never shown.
    let (_, dump) = s.pc.admin_get("/config_dump");
    assert!(
        !dump.contains("\"v2\"") && dump.contains("[redacted]"),
        "{dump}"
    );
}

fn agent_listener(name: &str, port: u16) -> envoy_types::pb::envoy::config::listener::v3::Listener {
    use portcullis_xds::listener::{
        build_listener, BpfMetadataSummary, ListenerKind, ProxyListener,
    };
    build_listener(&ProxyListener {
        name: name.into(),
        addresses: vec![
            SocketAddr::from(([127, 0, 0, 1], port)),
            "[::1]:0"
                .parse::<SocketAddr>()
                .map(|mut a| {
                    a.set_port(port);
                    a
                })
                .unwrap(),
        ],
        is_ingress: true,
        proxy_id: u32::from(port),
        kind: ListenerKind::Http { tls_variant: false },
        transparent: false,
        mark: None,
        bpf: BpfMetadataSummary {
            bpf_root: Some("/sys/fs/bpf".into()),
            ipcache_name: "cilium_ipcache_v2".into(),
            use_original_source_address: true,
            use_nphds: false,
            is_l7lb: false,
            enforce_policy_on_l7lb: false,
            ipv4_source_address: None,
            ipv6_source_address: None,
            l7lb_policy_name: None,
            original_source_so_linger: None,
            cache_entry_ttl: Duration::from_millis(3),
            cache_gc_interval: Duration::from_millis(30),
        },
        access_log_path: None,
        denied_403_body: None,
        unsupported_l7_chains: vec![],
    })
}

#[test]
fn listeners_from_lds_open_and_close_and_unhonourable_ones_are_nacked() {
    require_root(
        "agent listeners are transparent (IP_TRANSPARENT) and marked (SO_MARK), as cilium-envoy's",
    );
    let s = Setup::new();
    let port = free_port();
    let v = s
        .agent()
        .cache
        .set_listeners(vec![agent_listener("ingress-proxy", port)]);
    s.agent()
        .wait("the LDS ACK", s.agent().cache.wait_ack(Path::Listeners, v));
    // Open on both of the agent's addresses.
    for addr in [format!("127.0.0.1:{port}"), format!("[::1]:{port}")] {
        std::net::TcpStream::connect(&addr).unwrap_or_else(|e| panic!("{addr}: {e}"));
    }
    let (_, dump) = s.pc.admin_get("/config_dump");
    let dump: serde_json::Value = serde_json::from_str(&dump).unwrap();
    let l = dump["listeners"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == "ingress-proxy")
        .expect("listed");
    assert_eq!(
        (
            l["source"].as_str(),
            l["transparent"].as_bool(),
            l["mark"].as_u64()
        ),
        (Some("lds"), Some(true), Some(0x0A00))
    );

    // A listener on an address already in use is refused with the reason,
    // and the open listeners stay as they were.
    let clash = agent_listener("clash", s.port);
    let v = s
        .agent()
        .cache
        .set_listeners(vec![agent_listener("ingress-proxy", port), clash]);
    let nack = s.nack(Path::Listeners, v);
    assert!(nack.contains("already served by listener"), "{nack}");
    std::net::TcpStream::connect(("127.0.0.1", port)).expect("still open");
    assert_eq!(
        s.status("127.0.0.2", "/public/a"),
        200,
        "the config listener is untouched"
    );

    // Removed from LDS: closed.
    let v = s.agent().cache.set_listeners(vec![]);
    s.agent()
        .wait("the LDS ACK", s.agent().cache.wait_ack(Path::Listeners, v));
    wait_until(
        "the removed listener to close",
        Duration::from_secs(5),
        || std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
    );
}

#[test]
fn malformed_updates_are_nacked_and_never_open_anything() {
    use envoy_types::pb::google::protobuf::Any;
    let s = Setup::new();
    let garbage = Any {
        type_url: "type.googleapis.com/cilium.NetworkPolicy".into(),
        value: vec![0xff, 0xff, 0xff],
    };
    let v = s
        .agent()
        .cache
        .set(Path::NetworkPolicies, vec![("1".into(), garbage)]);
    let nack = s.nack(Path::NetworkPolicies, v);
    assert!(nack.contains("does not decode"), "{nack}");

    let wrong_type = Any {
        type_url: "type.googleapis.com/cilium.NetworkPolicyHosts".into(),
        value: vec![],
    };
    let v = s
        .agent()
        .cache
        .set(Path::NetworkPolicies, vec![("1".into(), wrong_type)]);
    let nack = s.nack(Path::NetworkPolicies, v);
    assert!(nack.contains("has type URL"), "{nack}");

    // Two endpoints claiming one IP.
    let (mut policies, _) = agent_resources(INVENTORY, &policy(s.origin, "/x/.*", None));
    let mut twin = policies[0].clone();
    twin.endpoint_id = 2;
    policies.push(twin);
    let v = s.agent().cache.set_network_policies(policies);
    let nack = s.nack(Path::NetworkPolicies, v);
    assert!(nack.contains("also claimed by endpoint"), "{nack}");

    // Through all of it the first policy kept enforcing, and the proxy lives.
    assert_eq!(s.status("127.0.0.2", "/public/a"), 200);
    assert_eq!(s.status("127.0.0.2", "/x/a"), 403);
}
