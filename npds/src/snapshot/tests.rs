use super::*;
use crate::proto::{
    port_network_policy_rule::Verdict as V, HttpNetworkPolicyRule, HttpNetworkPolicyRules,
};
use envoy_types::pb::envoy::config::route::v3::{
    header_matcher::HeaderMatchSpecifier, HeaderMatcher,
};
use envoy_types::pb::envoy::r#type::matcher::v3::{
    string_matcher::MatchPattern, RegexMatcher, StringMatcher,
};

fn rule(name: &str, prec: u32, verdict: Option<V>, remotes: &[u32]) -> PortNetworkPolicyRule {
    PortNetworkPolicyRule {
        name: name.into(),
        precedence: prec,
        verdict,
        remote_policies: remotes.to_vec(),
        ..Default::default()
    }
}

fn port(p: u32, end: u32, rules: Vec<PortNetworkPolicyRule>) -> PortNetworkPolicy {
    PortNetworkPolicy {
        port: p,
        end_port: end,
        protocol: Protocol::Tcp as i32,
        rules,
    }
}

fn policy(ingress: Vec<PortNetworkPolicy>) -> NetworkPolicy {
    NetworkPolicy {
        endpoint_ips: vec!["10.0.0.1".into()],
        endpoint_id: 7,
        ingress_per_port_policies: ingress,
        egress_per_port_policies: vec![],
    }
}

fn path_rule(regex: &str) -> Option<L7> {
    Some(L7::HttpRules(HttpNetworkPolicyRules {
        http_rules: vec![HttpNetworkPolicyRule {
            headers: vec![HeaderMatcher {
                name: ":path".into(),
                header_match_specifier: Some(HeaderMatchSpecifier::StringMatch(StringMatcher {
                    match_pattern: Some(MatchPattern::SafeRegex(RegexMatcher {
                        regex: regex.into(),
                        ..Default::default()
                    })),
                    ..Default::default()
                })),
                ..Default::default()
            }],
            header_matches: vec![],
        }],
    }))
}

/// (identity, port) -> expected (allowed, deciding rule name).
fn check(snap: &PolicySnapshot, cases: &[(u32, u16, bool, &str)]) {
    let ep = snap
        .endpoint("10.0.0.1".parse().unwrap())
        .expect("endpoint");
    for (id, p, allowed, by) in cases {
        let remote = Remote {
            fqdn: &[],
            identity: *id,
            proxy_id: 0,
            sni: Sni::Unread,
        };
        let got = ep
            .port(Direction::Ingress, Protocol::Tcp, *p)
            .map(|pr| {
                let v = pr.allows_connection(&remote);
                (v.allowed, v.rule_name().to_string())
            })
            .unwrap_or((false, "no port".into()));
        assert_eq!(
            (got.0, got.1.as_str()),
            (*allowed, *by),
            "identity {id} port {p}"
        );
    }
}

fn compile(np: NetworkPolicy) -> PolicySnapshot {
    PolicySnapshot::compile("1", vec![np], None).unwrap()
}

#[test]
fn precedence_deny_allow_pass() {
    let snap = compile(policy(vec![port(
        80,
        0,
        vec![
            rule("allow-100", 0, None, &[100]),
            rule("deny-100-low", 0, Some(V::Deny(true)), &[100, 101]),
            rule("allow-101-high", 5, None, &[101]),
            rule("pass-102", 5, Some(V::PassPrecedence(1)), &[102]),
            rule("deny-102-mid", 3, Some(V::Deny(true)), &[102]),
            rule("allow-102-low", 1, None, &[102]),
            rule("deny-103-high", 9, Some(V::Deny(true)), &[103]),
            rule("allow-any-low", 0, None, &[]),
        ],
    )]));
    check(
        &snap,
        &[
            // Same precedence: deny beats allow.
            (100, 80, false, "deny-100-low"),
            // Higher precedence allow beats a lower deny.
            (101, 80, true, "allow-101-high"),
            // Pass skips tier 3's deny and lands at tier 1.
            (102, 80, true, "allow-102-low"),
            (103, 80, false, "deny-103-high"),
            // Empty remote_policies means any.
            (999, 80, true, "allow-any-low"),
            // A missing port denies.
            (999, 81, false, "no port"),
        ],
    );
}

#[test]
fn ports_ranges_wildcard_and_empty_rules() {
    let snap = compile(policy(vec![
        port(8000, 8010, vec![rule("range", 0, None, &[1])]),
        port(8005, 8020, vec![rule("range2", 0, None, &[2])]),
        port(0, 0, vec![rule("any-port-3", 0, None, &[3])]),
        port(443, 0, vec![]),
        port(22, 0, vec![rule("deny-22", 0, Some(V::Deny(true)), &[3])]),
    ]));
    check(
        &snap,
        &[
            (1, 8000, true, "range"),
            (1, 8010, true, "range"),
            (1, 8011, false, ""),
            (2, 8004, false, ""),
            (2, 8005, true, "range2"),
            (2, 8020, true, "range2"),
            // Overlap carries both entries' rules.
            (1, 8007, true, "range"),
            (2, 8007, true, "range2"),
            // Wildcard rules apply on every port, including inside ranges.
            (3, 8007, true, "any-port-3"),
            (3, 9999, true, "any-port-3"),
            (4, 9999, false, ""),
            // An empty rule list allows everyone.
            (4, 443, true, "7/ingress/443/allow-all"),
            // Exact-port deny beats the wildcard allow at the same precedence.
            (3, 22, false, "deny-22"),
        ],
    );
}

#[test]
fn empty_direction_denies_everything() {
    let snap = compile(policy(vec![]));
    check(&snap, &[(1, 80, false, "no port")]);
}

#[test]
fn proxy_id_and_sni_narrow_rules() {
    let mut r = rule("sni", 0, None, &[]);
    r.server_names = vec!["*.cilium.io".into()];
    let mut p = rule("proxy-10001", 0, None, &[5]);
    p.proxy_id = 10001;
    let snap = compile(policy(vec![port(443, 0, vec![r]), port(80, 0, vec![p])]));
    let ep = snap.endpoint("10.0.0.1".parse().unwrap()).unwrap();
    let pr = ep.port(Direction::Ingress, Protocol::Tcp, 443).unwrap();
    let remote = |sni| Remote {
        fqdn: &[],
        identity: 1,
        proxy_id: 0,
        sni,
    };
    assert!(
        pr.allows_connection(&remote(Sni::Name("www.cilium.io")))
            .allowed
    );
    assert!(
        !pr.allows_connection(&remote(Sni::Name("cilium.io")))
            .allowed
    );
    assert!(!pr.allows_connection(&remote(Sni::Absent)).allowed);
    assert!(!pr.allows_connection(&remote(Sni::Unread)).allowed);
    let pr = ep.port(Direction::Ingress, Protocol::Tcp, 80).unwrap();
    assert!(
        pr.allows_connection(&Remote {
            fqdn: &[],
            identity: 5,
            proxy_id: 10001,
            sni: Sni::Unread
        })
        .allowed
    );
    assert!(
        !pr.allows_connection(&Remote {
            fqdn: &[],
            identity: 5,
            proxy_id: 10002,
            sni: Sni::Unread
        })
        .allowed
    );
}

/// Rules with `server_names` under each state of the SNI. An unread name
/// is one the deny may name (it applies) and the allow or pass may not (it
/// does not); a connection without SNI matches no rule that names servers.
#[test]
fn server_names_rules_fail_closed_when_the_sni_is_unread() {
    let names = |mut r: PortNetworkPolicyRule| {
        r.server_names = vec!["*.forbidden.example".into()];
        r
    };
    let allow_all = || rule("allow-all", 0, None, &[]);
    let deny_sni = || names(rule("deny-sni", 0, Some(V::Deny(true)), &[]));
    let allow_sni = || names(rule("allow-sni", 0, None, &[]));
    // The pass rule skips the precedence-5 deny of everything when it applies.
    let pass_sni = || names(rule("pass-sni", 10, Some(V::PassPrecedence(1)), &[]));
    let deny_5 = || rule("deny-5", 5, Some(V::Deny(true)), &[]);
    let snap = compile(policy(vec![
        port(1001, 0, vec![allow_all(), deny_sni()]),
        port(1002, 0, vec![allow_sni()]),
        port(1003, 0, vec![pass_sni(), deny_5(), allow_all()]),
    ]));
    let ep = snap.endpoint("10.0.0.1".parse().unwrap()).unwrap();
    let (bad, good) = (Sni::Name("x.forbidden.example"), Sni::Name("x.example"));
    let cases: &[(u16, Sni<'_>, bool, &str)] = &[
        (1001, Sni::Unread, false, "deny-sni"),
        (1001, Sni::Absent, true, "allow-all"),
        (1001, bad, false, "deny-sni"),
        (1001, good, true, "allow-all"),
        (1002, Sni::Unread, false, ""),
        (1002, Sni::Absent, false, ""),
        (1002, bad, true, "allow-sni"),
        (1002, good, false, ""),
        (1003, Sni::Unread, false, "deny-5"),
        (1003, Sni::Absent, false, "deny-5"),
        (1003, bad, true, "allow-all"),
        (1003, good, false, "deny-5"),
    ];
    for (p, sni, allowed, by) in cases {
        let remote = Remote {
            fqdn: &[],
            identity: 1,
            proxy_id: 0,
            sni: *sni,
        };
        let pr = ep.port(Direction::Ingress, Protocol::Tcp, *p).unwrap();
        let v = pr.allows_connection(&remote);
        assert_eq!(
            (v.allowed, v.rule_name()),
            (*allowed, *by),
            "port {p}, {sni:?}"
        );
        // The L7 path decides the same.
        assert_eq!(
            pr.decide(&remote, |_| true).allowed,
            *allowed,
            "port {p}, {sni:?}"
        );
    }
}

#[test]
fn l7_judge_is_consulted_per_rule() {
    let mut a = rule("http-a", 0, None, &[1]);
    a.l7 = path_rule("/a");
    let mut b = rule("http-b", 0, None, &[1]);
    b.l7 = path_rule("/b");
    let snap = compile(policy(vec![port(80, 0, vec![a, b])]));
    let ep = snap.endpoint("10.0.0.1".parse().unwrap()).unwrap();
    let pr = ep.port(Direction::Ingress, Protocol::Tcp, 80).unwrap();
    assert_eq!(pr.l7_kind(), L7Kind::Http);
    let remote = Remote {
        fqdn: &[],
        identity: 1,
        proxy_id: 0,
        sni: Sni::Unread,
    };
    let mut seen = 0;
    let v = pr.decide(&remote, |_| {
        seen += 1;
        seen == 2
    });
    assert!(v.allowed);
    assert_eq!(v.rule_name(), "http-b");
    assert!(!pr.decide(&remote, |_| false).allowed);
}

#[test]
fn a_port_names_its_l7_protocol_by_its_first_l7_rule() {
    use crate::proto::{port_network_policy_rule::L7, L7NetworkPolicyRule, L7NetworkPolicyRules};
    let plain = rule("l4", 0, None, &[2]);
    let mut generic = rule("r2d2", 0, None, &[1]);
    generic.l7_proto = "r2d2".into();
    generic.l7 = Some(L7::L7Rules(L7NetworkPolicyRules {
        l7_allow_rules: vec![L7NetworkPolicyRule {
            rule: [("cmd".to_string(), "READ".to_string())].into(),
            ..Default::default()
        }],
        ..Default::default()
    }));
    let mut http = rule("web", 0, None, &[1]);
    http.l7 = path_rule("/a");
    let snap = compile(policy(vec![
        port(80, 0, vec![plain.clone(), generic]),
        port(81, 0, vec![plain.clone(), http]),
        port(82, 0, vec![plain]),
    ]));
    let ep = snap.endpoint("10.0.0.1".parse().unwrap()).unwrap();
    let at = |p| ep.port(Direction::Ingress, Protocol::Tcp, p).unwrap();
    assert_eq!(at(80).l7_kind(), L7Kind::Generic);
    let r = at(80).l7_rule().unwrap();
    assert_eq!((&*r.name, r.l7.protocol_name()), ("r2d2", "r2d2"));
    assert_eq!(at(81).l7_kind(), L7Kind::Http);
    assert_eq!(at(81).l7_rule().unwrap().l7.protocol_name(), "http");
    assert_eq!(at(82).l7_kind(), L7Kind::None);
    assert!(at(82).l7_rule().is_none());

    // The dump lists the generic rule as failing closed, and shows it.
    let dump = snap.dump();
    assert_eq!(dump.unenforceable.len(), 1, "{:?}", dump.unenforceable);
    let u = &dump.unenforceable[0];
    assert_eq!(
        (
            u.direction,
            u.port.as_str(),
            u.rule.as_str(),
            u.l7_proto.as_str()
        ),
        ("ingress", "80", "r2d2", "r2d2")
    );
    assert!(
        u.reason.contains("no parser for L7 protocol \"r2d2\""),
        "{}",
        u.reason
    );
    let shown = &dump.endpoints[0].ingress[0].rules[1];
    assert_eq!(shown.l7_rules, Some(vec!["allow cmd=\"READ\"".to_string()]));
}

#[test]
fn invalid_resources_are_rejected_with_their_field() {
    let cases: Vec<(NetworkPolicy, &str)> = vec![
        (
            policy(vec![port(70000, 0, vec![])]),
            "NetworkPolicy \"7\": ingress_per_port_policies[0].port: 70000 is above 65535",
        ),
        (
            policy(vec![port(90, 80, vec![])]),
            "NetworkPolicy \"7\": ingress_per_port_policies[0].end_port: 80 is below port 90",
        ),
        (
            policy(vec![port(80, 0, vec![rule("p", 1, Some(V::PassPrecedence(1)), &[])])]),
            "NetworkPolicy \"7\": ingress_per_port_policies[0].rules[0].pass_precedence: 1 must be below the rule's precedence 1",
        ),
        (
            {
                let mut r = rule("r", 0, None, &[]);
                r.proxy_id = 70000;
                policy(vec![port(80, 0, vec![r])])
            },
            "NetworkPolicy \"7\": ingress_per_port_policies[0].rules[0].proxy_id: 70000 is above 65535",
        ),
        (
            {
                let mut h = rule("h", 0, None, &[]);
                h.l7 = path_rule("/x");
                let mut k = rule("k", 0, None, &[]);
                k.l7 = Some(L7::KafkaRules(crate::proto::KafkaNetworkPolicyRules {
                    kafka_rules: vec![Default::default()],
                }));
                policy(vec![port(80, 0, vec![h, k])])
            },
            "NetworkPolicy \"7\": ingress_per_port_policies[0].rules[1]: Kafka rules on a port whose other rules are Http: one L7 type per port",
        ),
        (
            {
                let mut h = rule("h", 0, None, &[]);
                h.l7 = path_rule("/x");
                let mut k = rule("k", 0, None, &[]);
                k.l7 = Some(L7::KafkaRules(crate::proto::KafkaNetworkPolicyRules {
                    kafka_rules: vec![Default::default()],
                }));
                policy(vec![port(80, 0, vec![h]), port(0, 0, vec![k])])
            },
            "NetworkPolicy \"7\": ingress_per_port_policies (port 80): Http and Kafka rules on the same port: one L7 type per port",
        ),
        (
            {
                let mut k = rule("k", 0, None, &[]);
                k.l7 = Some(L7::KafkaRules(crate::proto::KafkaNetworkPolicyRules {
                    kafka_rules: vec![
                        Default::default(),
                        crate::proto::KafkaNetworkPolicyRule {
                            topic: "deathstar/plans".into(),
                            ..Default::default()
                        },
                    ],
                }));
                policy(vec![port(9092, 0, vec![k])])
            },
            "NetworkPolicy \"7\": ingress_per_port_policies[0].rules[0].kafka_rules: kafka_rules[1].topic: topic \"deathstar/plans\" has characters outside [a-zA-Z0-9._-]",
        ),
        (
            {
                let mut k = rule("k", 0, None, &[]);
                k.l7 = Some(L7::KafkaRules(Default::default()));
                policy(vec![port(9092, 0, vec![k])])
            },
            "NetworkPolicy \"7\": ingress_per_port_policies[0].rules[0].kafka_rules: kafka_rules[0].kafka_rules: at least one rule is required",
        ),
        (
            {
                let mut d = rule("d", 0, Some(V::Deny(true)), &[]);
                d.l7 = path_rule("/x");
                policy(vec![port(80, 0, vec![d])])
            },
            "NetworkPolicy \"7\": ingress_per_port_policies[0].rules[0].l7: deny and pass rules cannot carry L7 rules",
        ),
        (
            NetworkPolicy { endpoint_ips: vec![], ..policy(vec![]) },
            "NetworkPolicy \"7\": endpoint_ips: must hold 1 or 2 addresses, has 0",
        ),
        (
            NetworkPolicy { endpoint_ips: vec!["nope".into()], ..policy(vec![]) },
            "NetworkPolicy \"7\": endpoint_ips[0]: \"nope\" is not an IP address",
        ),
    ];
    for (np, want) in cases {
        let err = PolicySnapshot::compile("1", vec![np], None).unwrap_err();
        assert_eq!(err.to_string(), want);
    }
}

#[test]
fn bad_regex_names_the_rule_and_header() {
    let mut r = rule("r", 0, None, &[]);
    r.l7 = path_rule("/v1/(unclosed");
    let err =
        PolicySnapshot::compile("1", vec![policy(vec![port(80, 0, vec![r])])], None).unwrap_err();
    let s = err.to_string();
    assert!(s.starts_with("NetworkPolicy \"7\": ingress_per_port_policies[0].rules[0].http_rules: http_rules[0].headers[0] (:path)"), "{s}");
    // An oversized regex is rejected rather than compiled (cilium#41314's trigger).
    let mut r = rule("r", 0, None, &[]);
    r.l7 = path_rule(&"(a|b|c|d)[0-9a-z]{1,100}".repeat(200));
    let err =
        PolicySnapshot::compile("1", vec![policy(vec![port(80, 0, vec![r])])], None).unwrap_err();
    assert!(err.to_string().contains("(:path)"), "{err}");
}

#[test]
fn duplicate_endpoint_ips_are_rejected_and_unchanged_endpoints_reused() {
    let a = policy(vec![]);
    let mut b = policy(vec![]);
    b.endpoint_id = 8;
    let err = PolicySnapshot::compile("1", vec![a.clone(), b], None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "NetworkPolicy \"8\": endpoint_ips[0]: 10.0.0.1 is also claimed by endpoint 7"
    );

    let first = PolicySnapshot::compile("1", vec![a.clone()], None).unwrap();
    let second = PolicySnapshot::compile("2", vec![a], Some(&first)).unwrap();
    assert!(Arc::ptr_eq(&first.endpoints[0], &second.endpoints[0]));
    assert_eq!(second.version(), "2");
}

#[test]
fn fqdn_identities_of_an_address_are_selected_like_its_own() {
    let fqdn_id = 16_777_217;
    let snap = compile(policy(vec![port(
        443,
        0,
        vec![rule("to-fqdn", 0, None, &[fqdn_id])],
    )]));
    let ep = snap.endpoint("10.0.0.1".parse().unwrap()).unwrap();
    let pr = ep.port(Direction::Ingress, Protocol::Tcp, 443).unwrap();
    let (none, other, both) = ([], [fqdn_id + 1], [fqdn_id - 5, fqdn_id]);
    let check = |fqdn: &[u32]| {
        let r = Remote {
            fqdn,
            identity: 2,
            proxy_id: 0,
            sni: Sni::Unread,
        };
        let v = pr.allows_connection(&r);
        (v.allowed, v.rule_name().to_string())
    };
    assert_eq!(check(&none), (false, String::new()));
    assert!(!check(&other).0);
    assert_eq!(check(&both), (true, "to-fqdn".to_string()));
}

/// Enough endpoints for the compile to be spread over threads (on a machine
/// with more than one core): the snapshot is the same as a sequential one,
/// unchanged endpoints are reused, and of several invalid resources the
/// first in order is the one reported.
#[test]
fn large_updates_compile_in_parallel_and_report_the_first_error() {
    let endpoint = |i: u64, regex: &str| {
        let mut r = rule("r", 0, None, &[]);
        r.l7 = path_rule(regex);
        NetworkPolicy {
            endpoint_ips: vec![format!("10.1.{}.{}", i / 200, i % 200 + 1)],
            endpoint_id: i + 1,
            ingress_per_port_policies: vec![port(80, 0, vec![r])],
            egress_per_port_policies: vec![],
        }
    };
    let n = 8 * ENDPOINTS_PER_THREAD as u64;
    let good: Vec<_> = (0..n)
        .map(|i| endpoint(i, &format!("/ep{i}/[0-9]+")))
        .collect();
    let snap = PolicySnapshot::compile("1", good.clone(), None).unwrap();
    assert_eq!(snap.len(), n as usize);
    for i in [0, n / 2, n - 1] {
        let ep = snap
            .endpoint(format!("10.1.{}.{}", i / 200, i % 200 + 1).parse().unwrap())
            .unwrap();
        assert_eq!(ep.id, i + 1);
        let rules = ep.port(Direction::Ingress, Protocol::Tcp, 80).unwrap();
        let L7Rules::Http(http) = &rules.rules()[0].l7 else {
            panic!("endpoint {i}: no HTTP rules")
        };
        let mut headers = http::HeaderMap::new();
        let path = format!("/ep{i}/42");
        let mut head = l7_http::RequestHead {
            method: "GET",
            path: &path,
            authority: "",
            headers: &mut headers,
        };
        let mut log = l7_http::HeaderLog::default();
        assert!(http.matches(&mut head, &l7_http::NoSecrets, &mut log));
    }
    // The same content again: every endpoint reused, none compiled.
    let again = PolicySnapshot::compile("2", good.clone(), Some(&snap)).unwrap();
    assert!(snap
        .endpoints
        .iter()
        .zip(&again.endpoints)
        .all(|(a, b)| Arc::ptr_eq(a, b)));

    let mut bad = good;
    let (first, second) = (n as usize * 3 / 4, n as usize - 2);
    bad[second] = endpoint(second as u64, "(");
    bad[first] = endpoint(first as u64, "[z-a]");
    let err = PolicySnapshot::compile("3", bad, None)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(&format!("NetworkPolicy \"{}\": ", first + 1)),
        "{err}"
    );
}
