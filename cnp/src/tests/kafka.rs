//! `rules.kafka`: Cilium's Kafka demo policy and the validation of each field.

use npds::proto::port_network_policy_rule::L7;
use npds::proto::KafkaNetworkPolicyRule;

use super::*;

const INVENTORY: &str = r#"
endpoints:
  - {id: 4001, ips: [127.0.0.1], labels: {app: kafka}}
identities:
  - {id: 21001, labels: {app: empire-hq}, cidrs: [10.79.1.2/32]}
  - {id: 21002, labels: {app: empire-outpost}, cidrs: [10.79.2.2/32]}
  - {id: 21003, labels: {app: empire-backup}, cidrs: [10.79.3.2/32]}
"#;

/// The policy the Kafka example ships: the file the e2e test runs.
const POLICY: &str = include_str!("../../../examples/kafka/policy.yaml");

fn kafka(keys: &[i32], topic: &str) -> KafkaNetworkPolicyRule {
    KafkaNetworkPolicyRule {
        api_version: -1,
        api_keys: keys.to_vec(),
        client_id: String::new(),
        topic: topic.into(),
    }
}

#[test]
fn kafka_demo_translates_like_the_agent() {
    let t = run(INVENTORY, POLICY);
    let np = &t.network_policies[0];
    assert_eq!(np.ingress_per_port_policies.len(), 2, "{np:#?}");
    // Port 0: the broker's own identity, L3 only.
    let l3 = &np.ingress_per_port_policies[0];
    assert_eq!(l3.port, 0);
    let self_id = t.endpoint_identities[&4001];
    assert_eq!(l3.rules.len(), 1);
    assert_eq!(l3.rules[0].remote_policies, vec![self_id]);
    assert!(l3.rules[0].l7.is_none());
    // Port 9092: one Kafka rule per client identity.
    let p = &np.ingress_per_port_policies[1];
    assert_eq!(p.port, 9092);
    let produce = vec![0, 3, 18];
    let consume = vec![1, 2, 3, 8, 9, 10, 11, 12, 13, 14, 18];
    let by_remote = |id: u32| {
        let r = p
            .rules
            .iter()
            .find(|r| r.remote_policies == vec![id])
            .unwrap_or_else(|| panic!("no rule for {id}: {p:#?}"));
        assert_eq!(r.l7_proto, "kafka");
        match &r.l7 {
            Some(L7::KafkaRules(k)) => k.kafka_rules.clone(),
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(
        by_remote(21001),
        vec![
            kafka(&produce, "deathstar-plans"),
            kafka(&produce, "empire-announce")
        ]
    );
    assert_eq!(by_remote(21002), vec![kafka(&consume, "empire-announce")]);
    assert_eq!(by_remote(21003), vec![kafka(&consume, "deathstar-plans")]);
    // What the proxy compiles is what was translated.
    npds::PolicySnapshot::compile("1", t.network_policies.clone(), None).unwrap();
}

#[test]
fn kafka_fields_translate() {
    let t = run(
        INVENTORY,
        &cnp(
            "default",
            r#"
endpointSelector: {matchLabels: {app: kafka}}
ingress:
- fromEndpoints: [{matchLabels: {app: empire-hq}}]
  toPorts:
  - ports: [{port: "9092", protocol: TCP}]
    rules:
      kafka:
      - {apiKey: Fetch, apiVersion: "11", clientID: hq-1, topic: t}
      - {apiKey: "describetopicpartitions"}
- fromEndpoints: [{matchLabels: {app: empire-hq}}]
  toPorts:
  - ports: [{port: "9092", protocol: TCP}]
"#,
        ),
    );
    let rules = &t.network_policies[0].ingress_per_port_policies[0].rules;
    let Some(L7::KafkaRules(k)) = &rules[0].l7 else {
        panic!("{rules:#?}")
    };
    // An L3/L4 allow for the same peer adds the match-all Kafka rule.
    assert_eq!(
        k.kafka_rules,
        vec![
            kafka(&[], ""),
            kafka(&[75], ""),
            KafkaNetworkPolicyRule {
                api_version: 11,
                api_keys: vec![1],
                client_id: "hq-1".into(),
                topic: "t".into()
            },
        ]
    );
}

#[test]
fn kafka_errors_name_the_field() {
    let spec = |rule: &str| {
        cnp(
            "default",
            &format!(
                "endpointSelector: {{matchLabels: {{app: kafka}}}}\ningress:\n- toPorts:\n  - ports: [{{port: \"9092\"}}]\n    rules:\n      kafka:\n      - {rule}\n"
            ),
        )
    };
    let cases = [
        (
            "{role: produce, apiKey: fetch}",
            "spec.ingress[0].toPorts[0].rules.kafka[0].apiKey",
            "role and apiKey",
        ),
        ("{role: publish}", "kafka[0].role", "invalid Kafka role"),
        (
            "{apiKey: fetchall}",
            "kafka[0].apiKey",
            "unknown Kafka request API key",
        ),
        (
            "{apiVersion: \"-2\"}",
            "kafka[0].apiVersion",
            "invalid apiVersion",
        ),
        (
            "{clientID: \"a b\"}",
            "kafka[0].clientID",
            "outside [a-zA-Z0-9._-]",
        ),
        (
            "{topic: \"deathstar/plans\"}",
            "kafka[0].topic",
            "outside [a-zA-Z0-9._-]",
        ),
        ("{topic: tpc, tpoic: x}", "kafka[0]", "tpoic"),
    ];
    for (rule, field, why) in cases {
        let e = parse_file(Path::new("k.yaml"), &spec(rule))
            .unwrap_err()
            .to_string();
        assert!(e.contains(field) && e.contains(why), "{rule}: {e}");
        assert!(e.contains("k.yaml"), "{e}");
    }
    let long = format!("{{topic: {}}}", "t".repeat(250));
    let e = parse_file(Path::new("k.yaml"), &spec(&long))
        .unwrap_err()
        .to_string();
    assert!(e.contains("at most 249"), "{e}");
    // HTTP and Kafka for the same peers on one port.
    let e = parse_file(
        Path::new("k.yaml"),
        &cnp(
            "default",
            "endpointSelector: {}\ningress:\n- toPorts:\n  - ports: [{port: \"80\"}]\n    rules:\n      http: [{path: /}]\n      kafka: [{topic: t}]\n",
        ),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("multiple L7 protocol rule types"), "{e}");
    let both = cnp(
        "default",
        "endpointSelector: {}\ningress:\n- toPorts:\n  - ports: [{port: \"80\", protocol: TCP}]\n    rules:\n      http: [{path: /}]\n- toPorts:\n  - ports: [{port: \"80\", protocol: TCP}]\n    rules:\n      kafka: [{topic: t}]\n",
    );
    let e = translate(&inventory(INVENTORY), &docs(&both))
        .unwrap_err()
        .to_string();
    assert!(e.contains("one L7 parser per port"), "{e}");
}
