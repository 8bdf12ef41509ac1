//! Policy semantics: selection, namespaces, entities, CIDRs, ports,
//! protocols, deny rules, default enforcement and merging.

use npds::proto::port_network_policy_rule::L7;
use npds::proto::PortNetworkPolicy;

use super::*;
use crate::spec::HttpRule;
use crate::{translate, FIRST_CIDR_IDENTITY};

/// Local endpoints in two namespaces, and remote identities.
const INV: &str = r#"
endpoints:
  - {id: 1, ips: [10.0.0.1], namespace: a, labels: {app: web, tier: front}, identity: 1001, namedPorts: {http: 8080}}
  - {id: 2, ips: [10.0.0.2], namespace: a, labels: {app: db}, identity: 1002, namedPorts: {pg: 5432}}
  - {id: 3, ips: [10.0.0.3], namespace: b, labels: {app: web}, identity: 1003, namedPorts: {http: 9090}}
identities:
  - {id: 2001, namespace: a, labels: {app: client}, cidrs: [192.168.0.1/32]}
  - {id: 2002, namespace: b, labels: {app: client}, cidrs: [192.168.0.2/32]}
"#;

/// The remotes of the single port-0 rule of endpoint 1's ingress.
fn l3_remotes(policy: &str) -> Vec<u32> {
    let t = run(INV, policy);
    let ingress = &ep(&t, 1).ingress_per_port_policies;
    match ingress.as_slice() {
        [] => vec![],
        [p] if p.port == 0 && p.rules.is_empty() => vec![0],
        [p] if p.port == 0 && p.rules.len() == 1 => p.rules[0].remote_policies.clone(),
        other => panic!("unexpected ingress {other:?}"),
    }
}

#[test]
fn match_expressions_select_peers() {
    let table: &[(&str, &[u32])] = &[
        ("matchLabels: {app: client}", &[2001]),
        (
            "matchExpressions: [{key: app, operator: In, values: [client, db]}]",
            &[1002, 2001],
        ),
        (
            "matchExpressions: [{key: app, operator: NotIn, values: [client]}]",
            &[1001, 1002],
        ),
        ("matchExpressions: [{key: tier, operator: Exists}]", &[1001]),
        (
            "matchExpressions: [{key: tier, operator: DoesNotExist}]",
            &[1002, 2001],
        ),
        ("matchLabels: {k8s:app: db}", &[1002]),
        ("matchLabels: {any:app: db}", &[1002]),
        ("matchLabels: {reserved:app: db}", &[]),
        ("{}", &[1001, 1002, 2001]),
    ];
    for (sel, want) in table {
        let policy = cnp(
            "a",
            &format!(
                "endpointSelector: {{matchLabels: {{app: web}}}}\ningress:\n- fromEndpoints:\n  - {sel}"
            ),
        );
        assert_eq!(l3_remotes(&policy), want.to_vec(), "{sel}");
    }
}

#[test]
fn endpoint_selector_operators_pick_subjects() {
    let table: &[(&str, &[u64])] = &[
        ("{matchLabels: {app: web}}", &[1]),
        (
            "{matchExpressions: [{key: app, operator: In, values: [web, db]}]}",
            &[1, 2],
        ),
        (
            "{matchExpressions: [{key: tier, operator: DoesNotExist}]}",
            &[2],
        ),
        ("{}", &[1, 2]),
    ];
    for (sel, want) in table {
        let policy = cnp("a", &format!("endpointSelector: {sel}\ningress:\n- {{}}"));
        let t = run(INV, &policy);
        let enforced: Vec<u64> = t
            .network_policies
            .iter()
            .filter(|n| n.ingress_per_port_policies.is_empty())
            .map(|n| n.endpoint_id)
            .collect();
        assert_eq!(enforced, want.to_vec(), "{sel}");
    }
}

#[test]
fn namespaces_scope_subjects_and_peers() {
    // A CNP in namespace a never selects the web endpoint of namespace b.
    let in_a = cnp(
        "a",
        "endpointSelector: {matchLabels: {app: web}}\ningress:\n- {}",
    );
    let t = run(INV, &in_a);
    assert_eq!(ep(&t, 1).ingress_per_port_policies, vec![]);
    assert_eq!(ep(&t, 3).ingress_per_port_policies, allow_all());

    // A peer selector without a namespace key stays in the policy namespace;
    // with one, it selects that namespace.
    let table: &[(&str, &[u32])] = &[
        ("{matchLabels: {app: client}}", &[2001]),
        ("{matchLabels: {app: client, k8s:io.kubernetes.pod.namespace: b}}", &[2002]),
        ("{matchLabels: {app: client, io.kubernetes.pod.namespace: b}}", &[2002]),
        (
            "{matchExpressions: [{key: io.kubernetes.pod.namespace, operator: Exists}], matchLabels: {app: client}}",
            &[2001, 2002],
        ),
    ];
    for (sel, want) in table {
        let policy = cnp(
            "a",
            &format!("endpointSelector: {{matchLabels: {{app: web}}}}\ningress:\n- fromEndpoints: [{sel}]"),
        );
        assert_eq!(l3_remotes(&policy), want.to_vec(), "{sel}");
    }

    // A clusterwide policy selects subjects in every namespace, and its
    // empty peer selector means "every pod" (not world or other reserved).
    let t = run(
        INV,
        &ccnp("endpointSelector: {matchLabels: {app: web}}\ningress:\n- fromEndpoints: [{}]"),
    );
    let pods = vec![allow(&[1001, 1002, 1003, 2001, 2002], "c")];
    assert_eq!(
        ep(&t, 1).ingress_per_port_policies,
        vec![port(0, 0, pods.clone())]
    );
    assert_eq!(ep(&t, 3).ingress_per_port_policies, vec![port(0, 0, pods)]);
    assert_eq!(ep(&t, 2).ingress_per_port_policies, allow_all());
}

#[test]
fn entities_select_reserved_identities() {
    let cidr = "- toCIDR: [203.0.113.0/24]";
    let table: &[(&str, &[u32])] = &[
        ("host", &[1]),
        ("world", &[2, 9, 10, FIRST_CIDR_IDENTITY]),
        ("unmanaged", &[3]),
        ("health", &[4]),
        ("init", &[5]),
        ("remote-node", &[6, 7]),
        ("kube-apiserver", &[7]),
        ("ingress", &[8]),
        (
            "cluster",
            &[1, 3, 4, 5, 6, 7, 8, 1001, 1002, 1003, 2001, 2002],
        ),
        ("all", &[0]),
        ("none", &[]),
    ];
    for (entity, want) in table {
        // An egress CIDR rule elsewhere allocates one CIDR identity.
        let policy = cnp(
            "a",
            &format!(
                "endpointSelector: {{matchLabels: {{app: web}}}}\ningress:\n- fromEntities: [{entity}]\negress:\n{cidr}"
            ),
        );
        assert_eq!(l3_remotes(&policy), want.to_vec(), "{entity}");
    }
}

#[test]
fn cidr_rules_allocate_identities_and_hosts() {
    let policy = cnp(
        "a",
        "endpointSelector: {matchLabels: {app: web}}\negress:\n\
         - toCIDRSet: [{cidr: 10.0.0.0/8, except: [10.96.0.0/12]}]\n\
         - toCIDR: [172.16.1.1]",
    );
    let t = run(INV, &policy);
    let (wide, except, single) = (
        FIRST_CIDR_IDENTITY,
        FIRST_CIDR_IDENTITY + 1,
        FIRST_CIDR_IDENTITY + 2,
    );
    // 10.0.0.1-3 are endpoints: LPM gives them their own identities, so the
    // CIDR rule covers only the CIDR identities, minus the carved-out except.
    assert_eq!(
        ep(&t, 1).egress_per_port_policies,
        vec![port(0, 0, vec![allow(&[wide, single], "a/p")])]
    );
    let hosts: Vec<(u64, Vec<String>)> = t
        .hosts
        .iter()
        .map(|h| (h.policy, h.host_addresses.clone()))
        .collect();
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    assert_eq!(
        hosts,
        vec![
            (1001, s(&["10.0.0.1/32"])),
            (1002, s(&["10.0.0.2/32"])),
            (1003, s(&["10.0.0.3/32"])),
            (2001, s(&["192.168.0.1/32"])),
            (2002, s(&["192.168.0.2/32"])),
            (u64::from(wide), s(&["10.0.0.0/8"])),
            (u64::from(except), s(&["10.96.0.0/12"])),
            (u64::from(single), s(&["172.16.1.1/32"])),
        ]
    );

    // 0.0.0.0/0 is world: identity 2 and the CIDR identities, here minus
    // the only one (10.0.0.0/8, excepted).
    let all = cnp(
        "a",
        "endpointSelector: {matchLabels: {app: web}}\negress:\n\
         - toCIDRSet: [{cidr: 0.0.0.0/0, except: [10.0.0.0/8]}]",
    );
    let t = run(INV, &all);
    assert_eq!(
        ep(&t, 1).egress_per_port_policies,
        vec![port(0, 0, vec![allow(&[2], "a/p")])]
    );
}

#[test]
fn ports_ranges_names_and_protocols() {
    let table: &[(&str, Vec<PortNetworkPolicy>)] = &[
        (
            "[{port: '80', protocol: TCP}]",
            vec![port(80, 0, vec![allow(&[2001], "a/p")])],
        ),
        (
            "[{port: '8000', endPort: 8080, protocol: TCP}]",
            vec![port(8000, 8080, vec![allow(&[2001], "a/p")])],
        ),
        // ANY (or no protocol) becomes TCP, UDP and SCTP; only TCP is sent.
        (
            "[{port: '53'}]",
            vec![port(53, 0, vec![allow(&[2001], "a/p")])],
        ),
        (
            "[{port: '53', protocol: ANY}]",
            vec![port(53, 0, vec![allow(&[2001], "a/p")])],
        ),
        // UDP alone never reaches the proxy, but the direction is enforced.
        ("[{port: '53', protocol: UDP}]", vec![]),
        // A named port resolves against the endpoint's own named ports.
        (
            "[{port: HTTP, protocol: TCP}]",
            vec![port(8080, 0, vec![allow(&[2001], "a/p")])],
        ),
        (
            "[{port: '443', protocol: TCP}, {port: '80', protocol: TCP}]",
            vec![
                port(80, 0, vec![allow(&[2001], "a/p")]),
                port(443, 0, vec![allow(&[2001], "a/p")]),
            ],
        ),
    ];
    for (ports, want) in table {
        let policy = cnp(
            "a",
            &format!(
                "endpointSelector: {{matchLabels: {{app: web}}}}\ningress:\n\
                 - fromEndpoints: [{{matchLabels: {{app: client}}}}]\n  toPorts: [{{ports: {ports}}}]"
            ),
        );
        let t = run(INV, &policy);
        assert_eq!(&ep(&t, 1).ingress_per_port_policies, want, "{ports}");
    }
}

#[test]
fn egress_named_ports_resolve_per_peer() {
    let policy = ccnp(
        "endpointSelector: {matchLabels: {app: client}}\negress:\n\
         - toEndpoints: [{matchLabels: {app: web}}]\n  toPorts: [{ports: [{port: http, protocol: TCP}]}]",
    );
    let inv = INV
        .replace(
            "  - {id: 2001, namespace: a, labels: {app: client}, cidrs: [192.168.0.1/32]}\n",
            "",
        )
        .replace(
            "identities:",
            "  - {id: 4, ips: [10.0.0.4], namespace: a, labels: {app: client}, identity: 2001}\nidentities:",
        );
    let t = translate(&inventory(&inv), &docs(&policy)).unwrap();
    assert_eq!(
        ep(&t, 4).egress_per_port_policies,
        vec![
            port(8080, 0, vec![allow(&[1001], "c")]),
            port(9090, 0, vec![allow(&[1003], "c")]),
        ]
    );
}

#[test]
fn deny_rules_carry_a_deny_verdict() {
    let spec = "endpointSelector: {matchLabels: {app: web}}\n\
                ingress:\n- fromEndpoints: [{matchLabels: {app: client}}]\n\
                ingressDeny:\n- fromEntities: [world]";
    let t = run(INV, &cnp("a", spec));
    assert_eq!(
        ep(&t, 1).ingress_per_port_policies,
        vec![port(
            0,
            0,
            vec![deny(&[2, 9, 10], "a/p"), allow(&[2001], "a/p")]
        )]
    );

    // A deny for every peer on a port prunes the allows there.
    let spec = "endpointSelector: {matchLabels: {app: web}}\n\
                ingress:\n- fromEndpoints: [{matchLabels: {app: client}}]\n  toPorts: [{ports: [{port: '80', protocol: TCP}]}]\n\
                ingressDeny:\n- toPorts: [{ports: [{port: '80', protocol: TCP}]}]";
    let t = run(INV, &cnp("a", spec));
    assert_eq!(
        ep(&t, 1).ingress_per_port_policies,
        vec![port(80, 0, vec![deny(&[], "a/p")])]
    );

    // Deny and allow for the same peer on the same port: deny wins.
    let spec = "endpointSelector: {matchLabels: {app: web}}\n\
                ingress:\n- fromEndpoints: [{matchLabels: {app: client}}]\n  toPorts: [{ports: [{port: '80', protocol: TCP}]}]\n\
                ingressDeny:\n- fromEndpoints: [{matchLabels: {app: client}}]\n  toPorts: [{ports: [{port: '80', protocol: TCP}]}]";
    let t = run(INV, &cnp("a", spec));
    assert_eq!(
        ep(&t, 1).ingress_per_port_policies,
        vec![port(80, 0, vec![deny(&[2001], "a/p")])]
    );
}

#[test]
fn default_enforcement_per_direction() {
    // Unselected endpoints allow everything both ways; a selected endpoint
    // with ingress rules only keeps egress open; `ingress: [{}]` denies all.
    let t = run(
        INV,
        &cnp(
            "a",
            "endpointSelector: {matchLabels: {app: web}}\ningress:\n- {}",
        ),
    );
    assert_eq!(ep(&t, 1).ingress_per_port_policies, vec![]);
    assert_eq!(ep(&t, 1).egress_per_port_policies, allow_all());
    assert_eq!(ep(&t, 2).ingress_per_port_policies, allow_all());
    assert_eq!(ep(&t, 2).egress_per_port_policies, allow_all());

    // enableDefaultDeny: false keeps everything allowed, with L7 on top.
    let spec = "endpointSelector: {matchLabels: {app: web}}\nenableDefaultDeny: {ingress: false}\n\
                ingress:\n- fromEndpoints: [{matchLabels: {app: client}}]\n  toPorts:\n  - ports: [{port: '80', protocol: TCP}]\n    rules: {http: [{method: GET, path: /}]}";
    let t = run(INV, &cnp("a", spec));
    assert_eq!(
        ep(&t, 1).ingress_per_port_policies,
        vec![
            port(0, 0, vec![]),
            port(80, 0, vec![http(&[2001], "a/p", &[get("/")])]),
        ]
    );
}

#[test]
fn l3_allows_are_not_narrowed_by_l7_rules() {
    let http_80 = "  toPorts:\n  - ports: [{port: '80', protocol: TCP}]\n    rules: {http: [{method: GET, path: /}]}";
    let client = "- fromEndpoints: [{matchLabels: {app: client}}]";
    let table: Vec<(String, Vec<PortNetworkPolicy>)> = vec![
        // Another peer allowed on all ports stays unrestricted (port 0).
        (
            format!("{client}\n{http_80}\n- fromEndpoints: [{{matchLabels: {{app: db}}}}]"),
            vec![
                port(0, 0, vec![allow(&[1002], "a/p")]),
                port(80, 0, vec![http(&[2001], "a/p", &[get("/")])]),
            ],
        ),
        // The same peer allowed at L3/L4 on the port: the empty HTTP rule
        // (match everything) is added to its rules.
        (
            format!("{client}\n{http_80}\n{client}\n  toPorts: [{{ports: [{{port: '80', protocol: TCP}}]}}]"),
            vec![port(
                80,
                0,
                vec![http(&[2001], "a/p", &[get("/"), HttpRule::default()])],
            )],
        ),
        // Everyone allowed on the port: an allow-all rule beside the L7 rule.
        (
            format!("{client}\n{http_80}\n- toPorts: [{{ports: [{{port: '80', protocol: TCP}}]}}]"),
            vec![port(
                80,
                0,
                vec![http(&[2001], "a/p", &[get("/")]), allow(&[], "a/p")],
            )],
        ),
    ];
    for (ingress, want) in table {
        let policy = cnp(
            "a",
            &format!("endpointSelector: {{matchLabels: {{app: web}}}}\ningress:\n{ingress}"),
        );
        let t = run(INV, &policy);
        assert_eq!(ep(&t, 1).ingress_per_port_policies, want, "{ingress}");
    }
}

#[test]
fn rules_from_several_policies_merge_per_port() {
    let one = cnp(
        "a",
        "endpointSelector: {matchLabels: {app: web}}\ningress:\n\
         - fromEndpoints: [{matchLabels: {app: client}}]\n  toPorts: [{ports: [{port: '80', protocol: TCP}]}]",
    );
    let two = one
        .replace("name: p", "name: q")
        .replace("app: client", "app: db");
    let three = one.replace("name: p", "name: r");
    let t = run(INV, &format!("{one}---\n{two}---\n{three}"));
    assert_eq!(
        ep(&t, 1).ingress_per_port_policies,
        vec![port(
            80,
            0,
            vec![allow(&[1002], "a/q"), allow(&[2001], "a/p,a/r")]
        )]
    );
}

#[test]
fn host_is_wildcarded_at_l7_on_ingress() {
    let policy = ccnp(
        "endpointSelector: {matchLabels: {app: db}}\ningress:\n- fromEntities: [all]\n  toPorts:\n  \
         - ports: [{port: '80', protocol: TCP}]\n    rules: {http: [{method: GET}]}",
    );
    let t = run(INV, &policy);
    let get_any = HttpRule {
        method: "GET".into(),
        ..Default::default()
    };
    assert_eq!(
        ep(&t, 2).ingress_per_port_policies,
        vec![port(
            80,
            0,
            vec![http(&[], "c", &[get_any]), allow(&[1], "c")]
        )]
    );
}

#[test]
fn header_matches_and_secrets() {
    let policy = cnp(
        "a",
        "endpointSelector: {matchLabels: {app: web}}\ningress:\n- toPorts:\n  \
         - ports: [{port: '80', protocol: TCP}]\n    rules:\n      http:\n      \
         - headerMatches:\n        - {name: x-token, secret: {name: tok}, mismatch: LOG}\n        \
         - {name: x-env, value: prod}",
    );
    let t = run(INV, &policy);
    let rule = &ep(&t, 1).ingress_per_port_policies[0].rules[0];
    let Some(L7::HttpRules(h)) = &rule.l7 else {
        panic!("no http rules")
    };
    assert_eq!(h.http_rules[0].headers[0].name, "x-env");
    assert_eq!(
        h.http_rules[0].header_matches[0].value_sds_secret,
        "cilium-secrets/a-tok"
    );
}

#[test]
fn identities_are_allocated_stably_by_labels() {
    let inv = r#"
endpoints:
  - {id: 7, ips: [10.0.1.7], labels: {app: a}}
  - {id: 8, ips: [10.0.1.8], labels: {app: a}}
  - {id: 9, ips: [10.0.1.9], labels: {app: b}}
  - {id: 10, ips: ["f00d::10"], labels: {app: c}}
identities:
  - {id: 20000, labels: {app: c}}
"#;
    let t = translate(&inventory(inv), &[]).unwrap();
    let ids = &t.endpoint_identities;
    assert_eq!(ids[&7], ids[&8]);
    assert_ne!(ids[&7], ids[&9]);
    assert_eq!(ids[&10], 20000);
    assert!((10_000..60_000).contains(&ids[&7]));
    let more = inv.replace(
        "identities:",
        "  - {id: 11, ips: [10.0.1.11], labels: {app: z}}\nidentities:",
    );
    let t2 = translate(&inventory(&more), &[]).unwrap();
    assert_eq!(t2.endpoint_identities[&7], ids[&7]);
    assert_eq!(t2.endpoint_identities[&9], ids[&9]);
    // Dual stack: the world identities own the default routes.
    assert!(t
        .hosts
        .iter()
        .any(|h| h.policy == 9 && h.host_addresses == ["0.0.0.0/0"]));
}

#[test]
fn output_does_not_depend_on_document_order() {
    let a = cnp(
        "a",
        "endpointSelector: {matchLabels: {app: web}}\ningress:\n- fromEndpoints: [{matchLabels: {app: client}}]\n  toPorts: [{ports: [{port: '80', protocol: TCP}]}]\negress:\n- toCIDR: [198.51.100.0/24]",
    );
    let b = ccnp(
        "endpointSelector: {}\ningressDeny:\n- fromEntities: [world]\negress:\n- toCIDRSet: [{cidr: 203.0.113.0/24}]\n- toEntities: [cluster]",
    );
    let ab = run(INV, &format!("{a}---\n{b}"));
    let ba = run(INV, &format!("{b}---\n{a}"));
    assert_eq!(ab, ba);
}
