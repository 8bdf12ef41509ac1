//! `rules.dns` and `toFQDNs`: Cilium's DNS demo policy, how DNS rules merge
//! into the DNS proxy's policy, the FQDN identities, and every error.

use super::*;
use crate::{DnsServer, EndpointDnsRules, FqdnSelector, FIRST_CIDR_IDENTITY};

const INVENTORY: &str = r#"
endpoints:
  - {id: 5001, ips: [10.0.0.5], labels: {org: empire, class: mediabot}}
  - {id: 5002, ips: [10.0.0.6], labels: {org: empire, class: tiefighter}}
identities:
  - {id: 21000, namespace: kube-system, labels: {k8s-app: kube-dns}, cidrs: [10.96.0.10/32]}
  - {id: 21001, namespace: kube-system, labels: {k8s-app: node-local-dns}, cidrs: [169.254.20.10/32]}
"#;

/// The policy of Cilium's "DNS-based policies" demo (`dns-matchname.yaml`).
const DEMO: &str = r#"
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: fqdn
spec:
  endpointSelector:
    matchLabels:
      org: empire
      class: mediabot
  egress:
  - toEndpoints:
    - matchLabels:
        "k8s:io.kubernetes.pod.namespace": kube-system
        "k8s:k8s-app": kube-dns
    toPorts:
    - ports:
      - port: "53"
        protocol: ANY
      rules:
        dns:
        - matchName: "api.github.com"
  - toFQDNs:
    - matchName: "api.github.com"
    toPorts:
    - ports:
      - port: "443"
        protocol: TCP
"#;

const KUBE_DNS: &str = "toEndpoints: [{matchLabels: {k8s:io.kubernetes.pod.namespace: kube-system, k8s:k8s-app: kube-dns}}]";

fn servers(identity: u32, port: u16, protos: &[u8]) -> Vec<DnsServer> {
    protos
        .iter()
        .map(|&proto| DnsServer {
            identity,
            port,
            proto,
        })
        .collect()
}

fn strings(s: &[&str]) -> Vec<String> {
    s.iter().map(|s| s.to_string()).collect()
}

/// A CNP in `default` selecting the mediabot with these egress rules.
fn mediabot(egress: &str) -> String {
    cnp(
        "default",
        &format!("endpointSelector: {{matchLabels: {{class: mediabot}}}}\negress:\n{egress}"),
    )
}

#[test]
fn dns_demo_translates_like_the_agent() {
    let t = run(INVENTORY, DEMO);
    let fqdn_id = FIRST_CIDR_IDENTITY;
    assert_eq!(
        t.fqdn_selectors,
        vec![FqdnSelector {
            match_name: "api.github.com".into(),
            match_pattern: String::new(),
            identity: fqdn_id,
        }]
    );
    // ANY expands to TCP, UDP and SCTP; the DNS proxy gets all three.
    assert_eq!(
        t.dns_rules,
        vec![EndpointDnsRules {
            endpoint_id: 5001,
            patterns: strings(&["api.github.com"]),
            servers: servers(21000, 53, &[6, 17, 132]),
        }]
    );
    // Envoy gets plain allows: 53/TCP to kube-dns (UDP is not sent, the DNS
    // rules are not Envoy's), 443 to the FQDN identity.
    let np = ep(&t, 5001);
    assert_eq!(
        np.egress_per_port_policies,
        vec![
            port(53, 0, vec![allow(&[21000], "default/fqdn")]),
            port(443, 0, vec![allow(&[fqdn_id], "default/fqdn")]),
        ]
    );
    assert_eq!(np.ingress_per_port_policies, allow_all());
    // The tiefighter is not selected.
    assert_eq!(ep(&t, 5002).egress_per_port_policies, allow_all());
    // The FQDN identity owns no addresses yet.
    assert!(t.hosts.iter().all(|h| h.policy != u64::from(fqdn_id)));
    npds::PolicySnapshot::compile("1", t.network_policies.clone(), None).unwrap();
}

#[test]
fn dns_rules_merge_per_endpoint_port_and_server() {
    let table: Vec<(String, Vec<EndpointDnsRules>)> = vec![
        // Two rules for the same peer and port: patterns unioned, sorted.
        (
            format!(
                "- {KUBE_DNS}\n  toPorts: [{{ports: [{{port: '53', protocol: UDP}}], rules: {{dns: [{{matchPattern: '*.github.com'}}]}}}}]\n\
                 - {KUBE_DNS}\n  toPorts: [{{ports: [{{port: '53', protocol: UDP}}], rules: {{dns: [{{matchName: api.github.com}}, {{matchPattern: '*.github.com'}}]}}}}]"
            ),
            vec![EndpointDnsRules {
                endpoint_id: 5001,
                patterns: strings(&["*.github.com", "api.github.com"]),
                servers: servers(21000, 53, &[17]),
            }],
        ),
        // An L3/L4 allow for the same peer and port allows every name.
        (
            format!(
                "- {KUBE_DNS}\n  toPorts: [{{ports: [{{port: '53', protocol: UDP}}], rules: {{dns: [{{matchName: api.github.com}}]}}}}]\n\
                 - {KUBE_DNS}\n  toPorts: [{{ports: [{{port: '53', protocol: UDP}}]}}]"
            ),
            vec![EndpointDnsRules {
                endpoint_id: 5001,
                patterns: strings(&["*", "api.github.com"]),
                servers: servers(21000, 53, &[17]),
            }],
        ),
        // Two peers with the same patterns share a policy; other patterns
        // make another one.
        (
            "- toEndpoints: [{matchLabels: {k8s:io.kubernetes.pod.namespace: kube-system}}]\n  \
             toPorts: [{ports: [{port: '53', protocol: TCP}], rules: {dns: [{matchName: a.com}]}}]\n\
             - toEndpoints: [{matchLabels: {k8s:io.kubernetes.pod.namespace: kube-system, k8s:k8s-app: kube-dns}}]\n  \
             toPorts: [{ports: [{port: '5353', protocol: UDP}], rules: {dns: [{matchName: b.com}]}}]"
                .to_string(),
            vec![
                EndpointDnsRules {
                    endpoint_id: 5001,
                    patterns: strings(&["a.com"]),
                    servers: [servers(21000, 53, &[6]), servers(21001, 53, &[6])].concat(),
                },
                EndpointDnsRules {
                    endpoint_id: 5001,
                    patterns: strings(&["b.com"]),
                    servers: servers(21000, 5353, &[17]),
                },
            ],
        ),
        // No peer selector: any server (identity 0).
        (
            "- toPorts: [{ports: [{port: '53'}], rules: {dns: [{matchPattern: '*'}]}}]".to_string(),
            vec![EndpointDnsRules {
                endpoint_id: 5001,
                patterns: strings(&["*"]),
                servers: servers(0, 53, &[6, 17, 132]),
            }],
        ),
        // A peer selector that selects nothing: no server, no policy.
        (
            "- toEndpoints: [{matchLabels: {app: nobody}}]\n  toPorts: [{ports: [{port: '53', protocol: UDP}], rules: {dns: [{matchName: a.com}]}}]"
                .to_string(),
            vec![],
        ),
    ];
    for (egress, want) in table {
        let t = run(INVENTORY, &mediabot(&egress));
        assert_eq!(t.dns_rules, want, "{egress}");
    }
}

#[test]
fn a_dns_rule_for_every_peer_is_an_allow_all_for_envoy() {
    let t = run(
        INVENTORY,
        &mediabot("- toPorts: [{ports: [{port: '53'}], rules: {dns: [{matchPattern: '*'}]}}]"),
    );
    assert_eq!(
        ep(&t, 5001).egress_per_port_policies,
        vec![port(53, 0, vec![])]
    );
}

#[test]
fn default_allow_policies_allow_every_name() {
    // The agent's `ensureWildcard`: without egress default deny, DNS rules
    // must not deny other names.
    let spec = format!(
        "endpointSelector: {{matchLabels: {{class: mediabot}}}}\nenableDefaultDeny: {{egress: false}}\negress:\n\
         - {KUBE_DNS}\n  toPorts: [{{ports: [{{port: '53', protocol: UDP}}], rules: {{dns: [{{matchName: api.github.com}}]}}}}]"
    );
    let t = run(INVENTORY, &cnp("default", &spec));
    assert_eq!(
        t.dns_rules,
        vec![EndpointDnsRules {
            endpoint_id: 5001,
            patterns: strings(&["*", "api.github.com"]),
            servers: servers(21000, 53, &[17]),
        }]
    );
}

#[test]
fn fqdn_selectors_get_local_identities() {
    let egress = "- toFQDNs: [{matchName: API.GitHub.com.}, {matchPattern: '*.cilium.io'}]\n\
                  - toFQDNs: [{matchName: api.github.com}]\n  toPorts: [{ports: [{port: '443', protocol: TCP}]}]\n\
                  - toCIDR: [192.0.2.0/24]\n\
                  - toEntities: [world]\n  toPorts: [{ports: [{port: '80', protocol: TCP}]}]";
    let t = run(INVENTORY, &mediabot(egress));
    // Equal selectors share one identity; identities follow the CIDR ones.
    let (cidr, github, cilium) = (
        FIRST_CIDR_IDENTITY,
        FIRST_CIDR_IDENTITY + 1,
        FIRST_CIDR_IDENTITY + 2,
    );
    assert_eq!(
        t.fqdn_selectors,
        vec![
            FqdnSelector {
                match_name: "api.github.com".into(),
                match_pattern: String::new(),
                identity: github,
            },
            FqdnSelector {
                match_name: String::new(),
                match_pattern: "*.cilium.io".into(),
                identity: cilium,
            },
        ]
    );
    assert!(t.hosts.iter().any(|h| h.policy == u64::from(cidr)));
    assert!(t.dns_rules.is_empty());
    // FQDN identities carry the world label: `world` selects them.
    assert_eq!(
        ep(&t, 5001).egress_per_port_policies,
        vec![
            port(0, 0, vec![allow(&[cidr, github, cilium], "default/p")]),
            port(
                80,
                0,
                vec![
                    allow(&[9], "default/p"),
                    allow(&[10], "default/p"),
                    allow(&[2, cidr, github, cilium], "default/p"),
                ]
            ),
            port(443, 0, vec![allow(&[github], "default/p")]),
        ]
    );
}

#[test]
fn http_rules_to_fqdns_name_the_fqdn_identity() {
    let t = run(
        INVENTORY,
        &mediabot(
            "- toFQDNs: [{matchPattern: '*.github.com'}]\n  toPorts: [{ports: [{port: '80', protocol: TCP}], rules: {http: [{method: GET, path: /}]}}]",
        ),
    );
    assert_eq!(
        ep(&t, 5001).egress_per_port_policies,
        vec![port(
            80,
            0,
            vec![http(&[FIRST_CIDR_IDENTITY], "default/p", &[get("/")])]
        )]
    );
}

#[test]
fn dns_errors_name_file_document_and_field() {
    const P: &str = "d.yaml: CiliumNetworkPolicy \"p\": ";
    let dns_port = |ports: &str, rules: &str| {
        format!("- {KUBE_DNS}\n  toPorts:\n  - ports: [{ports}]\n    rules: {{{rules}}}")
    };
    let dns = |rules: &str| dns_port("{port: '53', protocol: UDP}", &format!("dns: [{rules}]"));
    let table: Vec<(String, &str)> = vec![
        (
            dns("{matchPattern: 'api.git hub.com'}"),
            "spec.egress[0].toPorts[0].rules.dns[0].matchPattern: invalid character ' ' in matchPattern \"api.git hub.com\": only [-a-zA-Z0-9_.*] are allowed",
        ),
        (
            "- toFQDNs: [{matchName: '*.github.com'}]".into(),
            "spec.egress[0].toFQDNs[0].matchName: invalid character '*' in matchName \"*.github.com\": only [-a-zA-Z0-9_.] are allowed",
        ),
        (
            "- toFQDNs: [{matchName: api.github.com, matchPattern: '*.github.com'}]".into(),
            "spec.egress[0].toFQDNs[0].matchPattern: matchName and matchPattern cannot both be set; use one entry for each",
        ),
        (
            dns("{matchName: a.com, matchPattern: '*.a.com'}"),
            "spec.egress[0].toPorts[0].rules.dns[0].matchPattern: matchName and matchPattern cannot both be set; use one entry for each",
        ),
        (
            dns("{matchNames: a.com}"),
            "spec.egress[0].toPorts[0].rules.dns[0].matchNames: unknown field",
        ),
        (
            "- toFQDNs: [{matchname: a.com}]".into(),
            "spec.egress[0].toFQDNs[0].matchname: unknown field",
        ),
        (dns("{}"), "spec.egress[0].toPorts[0].rules.dns[0]: one of matchName or matchPattern is required"),
        (
            dns(&format!("{{matchName: {}}}", "a".repeat(256))),
            "spec.egress[0].toPorts[0].rules.dns[0].matchName: 256 characters long; at most 255 are allowed",
        ),
        (
            dns_port("{port: '53', protocol: UDP}", "dns: []"),
            "spec.egress[0].toPorts[0].rules.dns: empty list; omit `dns`, or use [{matchPattern: \"*\"}] to allow every name",
        ),
        (
            dns_port("{port: '53', protocol: TCP}", "http: [{path: /}], dns: [{matchName: a.com}]"),
            "spec.egress[0].toPorts[0].rules.dns: multiple L7 protocol rule types (http and dns) in one toPorts entry",
        ),
        (
            dns_port("{port: '53', protocol: TCP}", "kafka: [{topic: t}], dns: [{matchName: a.com}]"),
            "spec.egress[0].toPorts[0].rules.dns: multiple L7 protocol rule types (kafka and dns) in one toPorts entry",
        ),
        (
            dns_port("{port: '0', protocol: UDP}", "dns: [{matchName: a.com}]"),
            "spec.egress[0].toPorts[0].ports[0]: L7 rules can not be used when a port is 0",
        ),
        (
            dns_port("{port: '53', endPort: 54, protocol: UDP}", "dns: [{matchName: a.com}]"),
            "spec.egress[0].toPorts[0].ports[0]: DNS rules do not support port ranges",
        ),
        (
            dns_port("{port: '53', protocol: SCTP}", "dns: [{matchName: a.com}]"),
            "spec.egress[0].toPorts[0].ports[0]: DNS rules apply to UDP, TCP or ANY (not SCTP): the DNS proxy serves UDP and TCP",
        ),
        (
            dns_port("{port: dns, protocol: UDP}", "dns: [{matchName: a.com}]"),
            "spec.egress[0].toPorts[0].ports[0]: not supported yet (named ports with DNS rules; give the port number)",
        ),
        (
            format!("- {KUBE_DNS}\n  toFQDNs: [{{matchName: a.com}}]"),
            "spec.egress[0]: combining toEndpoints and toFQDNs is not supported",
        ),
        (
            "- toFQDNs: [{matchName: a.com}]\n  toCIDR: [10.0.0.0/8]".into(),
            "spec.egress[0]: combining toCIDR and toFQDNs is not supported",
        ),
        (
            "- toFQDNs: []\n  toPorts: [{ports: [{port: '443'}]}]".into(),
            "spec.egress[0].toFQDNs: empty list; omit the field",
        ),
    ];
    for (egress, want) in table {
        let e = parse_file(Path::new("d.yaml"), &mediabot(&egress))
            .expect_err(&egress)
            .to_string();
        assert_eq!(e, format!("{P}{want}"), "{egress}");
    }
    // Deny rules carry no L7 rules, and have no toFQDNs.
    let deny = |rule: &str| {
        cnp(
            "default",
            &format!("endpointSelector: {{}}\negressDeny:\n- {rule}"),
        )
    };
    let table = [
        (
            deny("toPorts:\n  - ports: [{port: '53', protocol: UDP}]\n    rules: {dns: [{matchName: a.com}]}"),
            "spec.egressDeny[0].toPorts[0].rules: deny rules cannot carry L7 rules",
        ),
        (
            deny("toFQDNs: [{matchName: a.com}]"),
            "spec.egressDeny[0].toFQDNs: not allowed in egressDeny (the agent's deny rules have no toFQDNs)",
        ),
    ];
    for (policy, want) in table {
        let e = parse_file(Path::new("d.yaml"), &policy)
            .unwrap_err()
            .to_string();
        assert_eq!(e, format!("{P}{want}"));
    }
    // HTTP and DNS rules for the same peers on one port, from two rules.
    let both = mediabot(&format!(
        "- {KUBE_DNS}\n  toPorts: [{{ports: [{{port: '53', protocol: TCP}}], rules: {{dns: [{{matchName: a.com}}]}}}}]\n\
         - {KUBE_DNS}\n  toPorts: [{{ports: [{{port: '53', protocol: TCP}}], rules: {{http: [{{path: /}}]}}}}]"
    ));
    let e = translate(&inventory(INVENTORY), &docs(&both))
        .unwrap_err()
        .to_string();
    assert!(e.contains("one L7 parser per port"), "{e}");
    assert!(e.contains("spec.egress[0].toPorts[0].ports[0]"), "{e}");
}
