//! Kafka end to end against a real broker (tansu) and real clients.
//!
//! `cilium_kafka_demo` (root: network namespaces) plays Cilium's Kafka demo
//! with the shipped example, unchanged: each client in its own namespace and
//! address, as pods are, reaching Portcullis on 10.79.0.1:9092 in front of
//! the broker. kcat and python confluent-kafka (librdkafka 2.16: flexible
//! versions) and kafka-python pinned to Kafka 1.0's versions (non-flexible)
//! produce and consume; what policy denies comes back as the client
//! library's topic authorization error.
//!
//! The other tests need no root: a raw client on loopback checks response
//! order with a denied request behind one the broker holds, acks=0, and
//! that malformed frames close only their own connection.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, FetchRequest, MetadataRequest, ProduceRequest, RequestKind,
    ResponseKind, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use portcullis_tests::kafka::{frame, kafka_client_in, kcat, kcat_in, read_response, Tansu};
use portcullis_tests::{free_port, require_root, Config, Listener, Netns, Portcullis};

const EXAMPLE: &str = include_str!("../../examples/kafka/portcullis.yaml");
const POLICY: &str = include_str!("../../examples/kafka/policy.yaml");

struct Demo {
    node: Netns,
    hq: Netns,
    outpost: Netns,
    backup: Netns,
    _tansu: Tansu,
    pc: Portcullis,
}

/// The node namespace runs tansu (127.0.0.1:9092, advertising 10.79.0.1:9092)
/// and Portcullis (10.79.0.1:9092); client i lives at 10.79.i.2 in its own
/// namespace, routed to the node over a veth pair.
fn demo() -> Demo {
    require_root("network namespaces for the Kafka demo's client addresses");
    let node = Netns::new("knode");
    node.ip("addr add 10.79.0.1/32 dev lo");
    let client = |i: u8, tag: &str| {
        let ns = Netns::new(tag);
        node.ip(&format!(
            "link add kv{i} type veth peer name kc{i} netns {}",
            ns.name
        ));
        node.ip(&format!("addr add 10.79.{i}.1/24 dev kv{i}"));
        node.ip(&format!("link set kv{i} up"));
        ns.ip(&format!("addr add 10.79.{i}.2/24 dev kc{i}"));
        ns.ip(&format!("link set kc{i} up"));
        ns.ip(&format!("route add default via 10.79.{i}.1"));
        ns
    };
    let hq = client(1, "hq");
    let outpost = client(2, "outpost");
    let backup = client(3, "backup");
    let tansu = Tansu::start_in(&node, "127.0.0.1:9092", "10.79.0.1:9092");
    tansu.create_topic("empire-announce", 1);
    tansu.create_topic("deathstar-plans", 1);
    let pc = Portcullis::start_in(&node, &Config::verbatim(EXAMPLE).policy(POLICY));
    Demo {
        node,
        hq,
        outpost,
        backup,
        _tansu: tansu,
        pc,
    }
}

const BROKER: &str = "10.79.0.1:9092";

fn assert_ok(what: &str, (code, out): (i32, String), demo: &Demo) {
    assert_eq!(code, 0, "{what}: {out}\nportcullis log:\n{}", demo.pc.log());
}

fn assert_denied(what: &str, (code, out): (i32, String), error: &str, demo: &Demo) {
    assert!(
        code != 0 && out.contains(error),
        "{what}: expected {error}, got exit {code}: {out}\nportcullis log:\n{}",
        demo.pc.log()
    );
}

#[test]
fn cilium_kafka_demo() {
    let d = demo();
    // kcat (librdkafka 2.16, flexible versions).
    let produce = |ns: &Netns, topic: &str, msg: &str| {
        kcat_in(
            ns,
            &[
                "-b",
                BROKER,
                "-P",
                "-t",
                topic,
                "-X",
                "message.timeout.ms=15000",
            ],
            msg,
        )
    };
    let consume = |ns: &Netns, topic: &str| {
        kcat_in(
            ns,
            &[
                "-b",
                BROKER,
                "-C",
                "-t",
                topic,
                "-o",
                "beginning",
                "-c",
                "1",
                "-e",
                "-q",
            ],
            "",
        )
    };
    assert_ok(
        "hq produces to empire-announce",
        produce(&d.hq, "empire-announce", "Ship landed\n"),
        &d,
    );
    assert_ok(
        "hq produces to deathstar-plans",
        produce(&d.hq, "deathstar-plans", "Exhaust port\n"),
        &d,
    );
    let (code, out) = consume(&d.outpost, "empire-announce");
    assert!(
        code == 0 && out.contains("Ship landed"),
        "outpost consumes empire-announce: {code} {out}\n{}",
        d.pc.log()
    );
    assert_denied(
        "outpost produces to empire-announce",
        produce(&d.outpost, "empire-announce", "Rebels!\n"),
        "Topic authorization failed",
        &d,
    );
    assert_denied(
        "outpost consumes deathstar-plans",
        consume(&d.outpost, "deathstar-plans"),
        "Topic authorization failed",
        &d,
    );
    let (code, out) = consume(&d.backup, "deathstar-plans");
    assert!(
        code == 0 && out.contains("Exhaust port"),
        "backup consumes deathstar-plans: {code} {out}"
    );

    // python confluent-kafka (librdkafka) with a consumer group.
    let py = |ns: &Netns, args: &[&str]| kafka_client_in(ns, args);
    assert_ok(
        "confluent: hq produces",
        py(
            &d.hq,
            &["confluent", "produce", BROKER, "empire-announce", "20"],
        ),
        &d,
    );
    assert_ok(
        "confluent: outpost consumes",
        py(
            &d.outpost,
            &["confluent", "consume", BROKER, "empire-announce", "21"],
        ),
        &d,
    );
    assert_denied(
        "confluent: outpost produces",
        py(
            &d.outpost,
            &["confluent", "produce", BROKER, "empire-announce", "1"],
        ),
        "TOPIC_AUTHORIZATION_FAILED",
        &d,
    );
    assert_denied(
        "confluent: outpost consumes deathstar-plans",
        py(
            &d.outpost,
            &[
                "confluent",
                "consume",
                BROKER,
                "deathstar-plans",
                "1",
                "--timeout",
                "6",
            ],
        ),
        "TOPIC_AUTHORIZATION_FAILED",
        &d,
    );

    // kafka-python with Kafka 1.0's protocol versions (none flexible).
    let old = ["--api-version", "1.0.0"];
    let kp = |ns: &Netns, action: &str, topic: &str, n: &str| {
        let mut args = vec!["kafka-python", action, BROKER, topic, n];
        args.extend(old);
        py(ns, &args)
    };
    assert_ok(
        "kafka-python: hq produces",
        kp(&d.hq, "produce", "deathstar-plans", "5"),
        &d,
    );
    assert_ok(
        "kafka-python: backup consumes",
        kp(&d.backup, "consume", "deathstar-plans", "6"),
        &d,
    );
    assert_denied(
        "kafka-python: outpost produces",
        kp(&d.outpost, "produce", "empire-announce", "1"),
        "TopicAuthorizationFailedError",
        &d,
    );
    assert_denied(
        "kafka-python: backup consumes empire-announce",
        kp(&d.backup, "consume", "empire-announce", "1"),
        "TopicAuthorizationFailedError",
        &d,
    );

    // One access-log event per request, with its verdict.
    let log = d.pc.access_log();
    let kafka: Vec<_> = log.iter().filter(|e| e["kind"] == "kafka").collect();
    let denied_produce = kafka.iter().find(|e| {
        e["verdict"] == "denied"
            && e["api_name"] == "produce"
            && e["src"].as_str().unwrap().starts_with("10.79.2.2:")
    });
    let e = denied_produce
        .unwrap_or_else(|| panic!("no denied produce from the outpost in {kafka:#?}"));
    assert_eq!(e["topics"], serde_json::json!(["empire-announce"]));
    assert_eq!(e["error_code"], 29);
    assert!(kafka
        .iter()
        .any(|e| e["verdict"] == "allowed" && e["api_name"] == "fetch"));
    let metrics = d.pc.admin_get_in(&d.node, "/metrics").1;
    assert!(
        metrics.contains("portcullis_kafka_requests_total{api_key=\"produce\",verdict=\"denied\"}"),
        "{metrics}"
    );
}

// ---- Raw-protocol tests on loopback (no root) --------------------------------

fn loopback_config(broker: &str, port: u16) -> Config {
    loopback_config_as(broker, port, "empire-outpost", 1_048_576, 0)
}

/// Clients on 127.0.0.1 are `app: <client>`.
/// `splice_min` is `kafka.spliceMinBytes` (0, the default, is off).
fn loopback_config_as(
    broker: &str,
    port: u16,
    client: &str,
    max_frame: usize,
    splice_min: usize,
) -> Config {
    let ip = broker.split(':').next().unwrap();
    Config::new()
        .listener(
            Listener::ingress(port)
                .name("kafka")
                .address("127.0.0.1")
                .protocol("tcp")
                .upstream(broker),
        )
        .endpoint(4001, ip, "app: kafka")
        .identity(21002, &format!("app: {client}"), "127.0.0.1/32")
        .set(format_args!(
            "kafka: {{maxFrameBytes: {max_frame}, spliceMinBytes: {splice_min}}}"
        ))
}

fn produce(topic: &'static str, acks: i16) -> RequestKind {
    RequestKind::Produce(
        ProduceRequest::default()
            .with_acks(acks)
            .with_timeout_ms(5000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_static_str(topic)))
                .with_partition_data(
                    vec![PartitionProduceData::default().with_index(0)],
                )]),
    )
}

struct Loopback {
    _tansu: Tansu,
    pc: Portcullis,
    listener: SocketAddr,
}

/// A broker at `ip`:9092 (the policy's port), Portcullis in front of it;
/// the client is an outpost.
fn loopback(ip: &str) -> Loopback {
    let broker = format!("{ip}:9092");
    let port = free_port();
    let config = loopback_config(&broker, port);
    loopback_with(&broker, port, config, POLICY, &broker)
}

/// A broker at `broker` advertising `advertised`, Portcullis on
/// 127.0.0.1:`port` in front of it with `config` and `policy`.
fn loopback_with(
    broker: &str,
    port: u16,
    config: Config,
    policy: &str,
    advertised: &str,
) -> Loopback {
    let tansu = Tansu::start(broker, advertised);
    tansu.create_topic("empire-announce", 1);
    tansu.create_topic("deathstar-plans", 1);
    let pc = Portcullis::start(&config.policy(policy));
    pc.wait_ready();
    let listener = SocketAddr::from(([127, 0, 0, 1], port));
    portcullis_tests::wait_for_port(listener, Duration::from_secs(10));
    Loopback {
        _tansu: tansu,
        pc,
        listener,
    }
}

#[test]
fn responses_stay_in_request_order_and_acks_zero_gets_none() {
    let l = loopback("127.0.0.31");
    let mut s = TcpStream::connect(l.listener).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // 1: a Fetch the broker holds for up to 800 ms (empty topic); 2: a
    // denied Produce answered here; 3: a denied acks=0 Produce (no answer
    // at all); 4: ApiVersions. Sent back to back.
    let topic = kafka_protocol::messages::fetch_request::FetchTopic::default()
        .with_topic(TopicName(StrBytes::from_static_str("empire-announce")))
        .with_partitions(vec![
            kafka_protocol::messages::fetch_request::FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(0)
                .with_partition_max_bytes(1 << 20),
        ]);
    let fetch = RequestKind::Fetch(
        FetchRequest::default()
            .with_max_wait_ms(800)
            .with_min_bytes(1)
            .with_max_bytes(1 << 20)
            .with_topics(vec![topic]),
    );
    let mut batch = Vec::new();
    batch.extend_from_slice(&frame(ApiKey::Fetch, 12, 1, &fetch));
    batch.extend_from_slice(&frame(
        ApiKey::Produce,
        9,
        2,
        &produce("empire-announce", -1),
    ));
    batch.extend_from_slice(&frame(
        ApiKey::Produce,
        9,
        3,
        &produce("empire-announce", 0),
    ));
    batch.extend_from_slice(&frame(
        ApiKey::ApiVersions,
        3,
        4,
        &RequestKind::ApiVersions(
            ApiVersionsRequest::default()
                .with_client_software_name(StrBytes::from_static_str("raw"))
                .with_client_software_version(StrBytes::from_static_str("1")),
        ),
    ));
    let started = Instant::now();
    s.write_all(&batch).unwrap();
    let (c1, _) = read_response(&mut s, ApiKey::Fetch, 12);
    let fetched = started.elapsed();
    let (c2, r2) = read_response(&mut s, ApiKey::Produce, 9);
    let (c4, _) = read_response(&mut s, ApiKey::ApiVersions, 3);
    assert_eq!(
        (c1, c2, c4),
        (1, 2, 4),
        "responses in request order, none for acks=0"
    );
    // The broker really held the Fetch: the denial waited behind it.
    assert!(
        fetched >= Duration::from_millis(500),
        "fetch answered after {fetched:?}"
    );
    let Some(ResponseKind::Produce(p)) = r2 else {
        panic!()
    };
    assert_eq!(
        p.responses[0].partition_responses[0].error_code, 29,
        "{p:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    // Nothing else is owed on the connection.
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut extra = [0u8; 1];
    assert!(
        s.read(&mut extra).is_err(),
        "no response to the acks=0 request"
    );
}

#[test]
fn malformed_frames_close_only_their_connection() {
    let l = loopback("127.0.0.32");
    let good = TcpStream::connect(l.listener).unwrap();
    let metadata = |c: i32| {
        frame(
            ApiKey::Metadata,
            9,
            c,
            &RequestKind::Metadata(MetadataRequest::default().with_topics(Some(vec![]))),
        )
    };
    let mut good = good;
    good.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    good.write_all(&metadata(1)).unwrap();
    assert_eq!(read_response(&mut good, ApiKey::Metadata, 9).0, 1);

    let bad_frames: Vec<(&str, Vec<u8>)> = vec![
        ("negative length", (-5i32).to_be_bytes().to_vec()),
        ("over maxFrameBytes", (2_000_000i32).to_be_bytes().to_vec()),
        ("unknown api key", {
            let mut f = metadata(2).to_vec();
            f[4..6].copy_from_slice(&999i16.to_be_bytes());
            f
        }),
        ("unknown version", {
            let mut f = metadata(2).to_vec();
            f[6..8].copy_from_slice(&99i16.to_be_bytes());
            f
        }),
        ("truncated header", {
            let mut f = 3i32.to_be_bytes().to_vec();
            f.extend_from_slice(&[0, 3, 0]);
            f
        }),
        ("array count beyond the frame", {
            let mut f = vec![0, 0, 0, 0];
            f.extend_from_slice(&3i16.to_be_bytes());
            f.extend_from_slice(&1i16.to_be_bytes());
            f.extend_from_slice(&7i32.to_be_bytes());
            f.extend_from_slice(&(-1i16).to_be_bytes());
            f.extend_from_slice(&0x7fff_ffffi32.to_be_bytes());
            let n = (f.len() - 4) as i32;
            f[..4].copy_from_slice(&n.to_be_bytes());
            f
        }),
    ];
    for (what, bytes) in bad_frames {
        let mut s = TcpStream::connect(l.listener).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(&bytes).unwrap();
        let mut buf = [0u8; 16];
        let n = s.read(&mut buf);
        assert!(
            matches!(n, Ok(0)) || n.is_err(),
            "{what}: connection not closed ({n:?})"
        );
    }
    // The proxy and the other connection carry on.
    good.write_all(&metadata(3)).unwrap();
    assert_eq!(read_response(&mut good, ApiKey::Metadata, 9).0, 3);
    let log = l.pc.log();
    for reason in [
        "negative frame length",
        "over the 1048576-byte limit",
        "unknown API key 999",
        "version 99",
        "exceeds",
    ] {
        assert!(log.contains(reason), "no {reason:?} in log:\n{log}");
    }
    assert!(l.pc.metric("portcullis_kafka_connections_closed_total") >= 6.0);
}

#[test]
fn a_policy_update_judges_the_next_request_on_an_open_connection() {
    let l = loopback("127.0.0.33");
    let mut s = TcpStream::connect(l.listener).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let produce_error = |s: &mut TcpStream, c: i32| {
        s.write_all(&frame(
            ApiKey::Produce,
            9,
            c,
            &produce("empire-announce", -1),
        ))
        .unwrap();
        let (got, r) = read_response(s, ApiKey::Produce, 9);
        assert_eq!(got, c);
        let Some(ResponseKind::Produce(p)) = r else {
            panic!()
        };
        p.responses[0].partition_responses[0].error_code
    };
    // The outpost (127.0.0.1) may not produce...
    assert_eq!(produce_error(&mut s, 1), 29);
    // ...until the policy lets outposts produce to empire-announce too.
    let edited = format!(
        "{POLICY}\n---\napiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {{name: outposts-announce}}\nspec:\n  endpointSelector: {{matchLabels: {{app: kafka}}}}\n  ingress:\n  - fromEndpoints: [{{matchLabels: {{app: empire-outpost}}}}]\n    toPorts:\n    - ports: [{{port: \"9092\", protocol: TCP}}]\n      rules:\n        kafka: [{{role: produce, topic: empire-announce}}]\n"
    );
    std::fs::write(l.pc.path("policy.yaml"), edited).unwrap();
    // Same connection: the next request is judged under the new policy.
    // (An empty record set is a broker-side error other than 29.) Each try
    // is a request with the next correlation ID.
    let mut c = 1;
    l.pc.wait_until("the update to apply", Duration::from_secs(10), || {
        c += 1;
        produce_error(&mut s, c) != 29
    });
    // And back: removing the rule denies again, still on that connection.
    std::fs::write(l.pc.path("policy.yaml"), POLICY).unwrap();
    l.pc.wait_until("the revert to apply", Duration::from_secs(10), || {
        c += 1;
        produce_error(&mut s, c) == 29
    });
}

#[test]
fn large_produce_batches_are_spliced_and_arrive_intact() {
    // empire-hq on 127.0.0.1 produces; the broker advertises Portcullis, so
    // every kcat connection goes through it.
    let broker = "127.0.0.34:9092";
    let port = free_port();
    let via = format!("127.0.0.1:{port}");
    // Splicing is off by default (see DEFAULT_SPLICE_MIN): turn it on.
    let config = loopback_config_as(broker, port, "empire-hq", 16 << 20, 128 << 10);
    // hq also reads back what it wrote.
    let policy = format!(
        "{POLICY}\n---\napiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {{name: hq-reads}}\nspec:\n  endpointSelector: {{matchLabels: {{app: kafka}}}}\n  ingress:\n  - fromEndpoints: [{{matchLabels: {{app: empire-hq}}}}]\n    toPorts:\n    - ports: [{{port: \"9092\", protocol: TCP}}]\n      rules:\n        kafka: [{{role: consume, topic: deathstar-plans}}]\n"
    );
    let l = loopback_with(broker, port, config, &policy, &via);
    const N: usize = 20_000;
    let payload: String = (0..N)
        .map(|i| format!("{i:06}-{}\n", "x".repeat(992)))
        .collect();
    // Batches of up to ~1 MB: Produce frames well over the 128 KiB at which
    // record batches are spliced rather than copied.
    let (code, out, err) = kcat(
        &[
            "-b",
            &via,
            "-P",
            "-t",
            "deathstar-plans",
            "-l",
            "-X",
            "linger.ms=50",
            "-X",
            "batch.num.messages=10000",
            "-X",
            "message.timeout.ms=20000",
            "/dev/stdin",
        ],
        payload.as_bytes(),
    );
    assert_eq!(
        code,
        0,
        "produce: {out}{err}\nportcullis log:\n{}",
        l.pc.log()
    );
    let spliced = l.pc.metric("portcullis_kafka_spliced_bytes_total");
    assert!(
        spliced >= (N * 1000 / 2) as f64,
        "only {spliced} of {} bytes spliced",
        N * 1000
    );
    // Every record is there, in order and unchanged.
    let (code, out, err) = kcat(
        &[
            "-b",
            &via,
            "-C",
            "-t",
            "deathstar-plans",
            "-o",
            "beginning",
            "-c",
            &N.to_string(),
            "-e",
            "-q",
            "-X",
            "fetch.message.max.bytes=8388608",
        ],
        b"",
    );
    assert_eq!(code, 0, "consume: {err}");
    assert!(
        out == payload,
        "consumed {} of {} bytes, not the records produced",
        out.len(),
        payload.len()
    );

    // A large Produce for a topic hq may not write is judged from its head
    // too, but a denial needs the whole request: it is read and answered
    // with TOPIC_AUTHORIZATION_FAILED on every partition, and the
    // connection goes on.
    let mut s = TcpStream::connect(l.listener).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let big = |topic: &'static str| {
        RequestKind::Produce(
            ProduceRequest::default()
                .with_acks(-1)
                .with_timeout_ms(5000)
                .with_topic_data(vec![TopicProduceData::default()
                    .with_name(TopicName(StrBytes::from_static_str(topic)))
                    .with_partition_data(
                        (0..3)
                            .map(|p| {
                                PartitionProduceData::default()
                                    .with_index(p)
                                    .with_records(Some(Bytes::from(vec![0u8; 200_000])))
                            })
                            .collect(),
                    )]),
        )
    };
    s.write_all(&frame(ApiKey::Produce, 9, 1, &big("rebel-plans")))
        .unwrap();
    let (c, r) = read_response(&mut s, ApiKey::Produce, 9);
    let Some(ResponseKind::Produce(p)) = r else {
        panic!()
    };
    let codes: Vec<i16> = p.responses[0]
        .partition_responses
        .iter()
        .map(|r| r.error_code)
        .collect();
    assert_eq!((c, codes), (1, vec![29, 29, 29]));
    let metadata = frame(
        ApiKey::Metadata,
        9,
        2,
        &RequestKind::Metadata(MetadataRequest::default().with_topics(Some(vec![]))),
    );
    s.write_all(&metadata).unwrap();
    assert_eq!(read_response(&mut s, ApiKey::Metadata, 9).0, 2);
    assert_eq!(
        l.pc.metric("portcullis_kafka_spliced_bytes_total"),
        spliced,
        "the denied request was spliced"
    );
}
