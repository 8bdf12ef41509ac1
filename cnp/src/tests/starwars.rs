//! The Star Wars demo from the Cilium documentation ("Identity-Aware and
//! HTTP-Aware Policy Enforcement"), end to end.

use envoy_types::pb::envoy::config::route::v3::header_matcher::HeaderMatchSpecifier;
use envoy_types::pb::envoy::config::route::v3::HeaderMatcher;
use envoy_types::pb::envoy::r#type::matcher::v3::string_matcher::MatchPattern;
use envoy_types::pb::envoy::r#type::matcher::v3::{RegexMatcher, StringMatcher};
use npds::proto::port_network_policy_rule::L7;
use npds::proto::{
    HttpNetworkPolicyRule, HttpNetworkPolicyRules, NetworkPolicy, NetworkPolicyHosts,
    PortNetworkPolicy, PortNetworkPolicyRule, Protocol,
};

use super::{allow_all, run};

const INVENTORY: &str = r#"
endpoints:
  - id: 3001
    ips: [127.0.0.10]
    labels: {org: empire, class: deathstar}
    identity: 30001
identities:
  - id: 20002
    labels: {org: empire, class: tiefighter}
    cidrs: [127.0.0.2/32]
  - id: 20003
    labels: {org: alliance, class: xwing}
    cidrs: [127.0.0.3/32]
"#;

/// The policy the demo ships (Cilium's sw_l3_l4_l7_policy.yaml, unchanged),
/// so that the file a newcomer runs is the one this test translates.
const RULE1: &str = include_str!("../../../examples/starwars/policy.yaml");

fn regex(name: &str, re: &str) -> HeaderMatcher {
    HeaderMatcher {
        name: name.into(),
        header_match_specifier: Some(HeaderMatchSpecifier::StringMatch(StringMatcher {
            match_pattern: Some(MatchPattern::SafeRegex(RegexMatcher {
                regex: re.into(),
                ..Default::default()
            })),
            ..Default::default()
        })),
        ..Default::default()
    }
}

#[test]
fn deathstar_gets_the_documented_policy() {
    let t = run(INVENTORY, RULE1);
    let expected = NetworkPolicy {
        endpoint_ips: vec!["127.0.0.10".into()],
        endpoint_id: 3001,
        ingress_per_port_policies: vec![PortNetworkPolicy {
            port: 80,
            end_port: 0,
            protocol: Protocol::Tcp as i32,
            rules: vec![PortNetworkPolicyRule {
                // tiefighter, and the deathstar itself (it is org=empire too).
                remote_policies: vec![20002, 30001],
                name: "default/rule1".into(),
                l7: Some(L7::HttpRules(HttpNetworkPolicyRules {
                    http_rules: vec![HttpNetworkPolicyRule {
                        headers: vec![
                            regex(":method", "POST"),
                            regex(":path", "/v1/request-landing"),
                        ],
                        header_matches: vec![],
                    }],
                })),
                ..Default::default()
            }],
        }],
        egress_per_port_policies: allow_all(),
    };
    assert_eq!(t.network_policies, vec![expected]);
    assert_eq!(
        t.hosts,
        vec![
            NetworkPolicyHosts {
                policy: 20002,
                host_addresses: vec!["127.0.0.2/32".into()],
            },
            NetworkPolicyHosts {
                policy: 20003,
                host_addresses: vec!["127.0.0.3/32".into()],
            },
            NetworkPolicyHosts {
                policy: 30001,
                host_addresses: vec!["127.0.0.10/32".into()],
            },
        ]
    );
    assert_eq!(t.endpoint_identities.get(&3001), Some(&30001));
}

#[test]
fn ships_without_the_policy_are_unrestricted_and_xwing_is_never_allowed() {
    // The same demo with the ships as local endpoints too: the policy only
    // selects the deathstar; the xwing (org=alliance) is not a remote of it.
    let inv = r#"
endpoints:
  - id: 3001
    ips: [127.0.0.10]
    labels: {org: empire, class: deathstar}
  - id: 3002
    ips: [127.0.0.2]
    labels: {org: empire, class: tiefighter}
  - id: 3003
    ips: [127.0.0.3]
    labels: {org: alliance, class: xwing}
"#;
    let t = run(inv, RULE1);
    let ids = &t.endpoint_identities;
    let (deathstar, tiefighter, xwing) = (ids[&3001], ids[&3002], ids[&3003]);
    assert!((10_000..60_000).contains(&deathstar));
    assert_eq!(
        [deathstar, tiefighter, xwing]
            .iter()
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        3
    );
    let ds = &t.network_policies[0];
    let mut empire = vec![deathstar, tiefighter];
    empire.sort();
    assert_eq!(
        ds.ingress_per_port_policies[0].rules[0].remote_policies,
        empire
    );
    for np in &t.network_policies[1..] {
        assert_eq!(np.ingress_per_port_policies, allow_all());
        assert_eq!(np.egress_per_port_policies, allow_all());
    }
    // Same input, same output.
    assert_eq!(run(inv, RULE1), t);
}

#[test]
fn the_npds_compiler_accepts_the_translation() {
    // Everything this crate emits must be something the proxy's policy
    // compiler takes: deny rules, HTTP rules, CIDR identities, port ranges.
    let policy = format!(
        "{RULE1}---\n{}",
        r#"apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata: {name: outbound}
spec:
  endpointSelector: {}
  egress:
  - toCIDRSet: [{cidr: 10.0.0.0/8, except: [10.96.0.0/12]}]
    toPorts: [{ports: [{port: '8000', endPort: 8100, protocol: TCP}]}]
  - toEntities: [world]
    toPorts:
    - ports: [{port: '80', protocol: TCP}]
      rules: {http: [{method: GET, headers: ['X-Trace'], headerMatches: [{name: x-env, value: prod, mismatch: ADD}]}]}
  egressDeny:
  - toEntities: [kube-apiserver]
"#
    );
    let t = run(INVENTORY, &policy);
    npds::PolicySnapshot::compile("1", t.network_policies.clone(), None).expect("npds compiles");
    npds::IdentityTable::compile(&t.hosts).expect("nphds compiles");
}
