//! Golden bytes written by hand from the field numbers of
//! `cilium/api/npds.proto`, `nphds.proto` and `accesslog.proto`, checked in
//! both directions.

use prost::Message;

use super::*;
use envoy_types::pb::envoy::config::route::v3::header_matcher::HeaderMatchSpecifier;
use envoy_types::pb::envoy::config::route::v3::HeaderMatcher;
use envoy_types::pb::envoy::r#type::matcher::v3::{
    string_matcher::MatchPattern, RegexMatcher, StringMatcher,
};

/// NetworkPolicy{endpoint_ips:["10.0.0.1"], endpoint_id:42, ingress:[
///   {port:80, end_port:90, rules:[{name:"allow-empire", remote_policies:[1001,16777217],
///     http_rules:{http_rules:[{headers:[{name:":path", string_match:{safe_regex:{regex:"/v1/.*"}}}]}]}}]}]}
#[rustfmt::skip]
const NETWORK_POLICY: &[u8] = &[
    0x0a, 0x08, b'1', b'0', b'.', b'0', b'.', b'0', b'.', b'1', // 1 endpoint_ips
    0x10, 0x2a,                                                 // 2 endpoint_id = 42
    0x1a, 0x36,                                                 // 3 ingress_per_port_policies, 54 bytes
      0x08, 0x50,                                               //   1 port = 80
      0x1a, 0x30,                                               //   3 rules, 48 bytes
        0x2a, 0x0c, b'a', b'l', b'l', b'o', b'w', b'-', b'e', b'm', b'p', b'i', b'r', b'e', // 5 name
        0x3a, 0x06, 0xe9, 0x07, 0x81, 0x80, 0x80, 0x08,         //     7 remote_policies (packed) 1001, 16777217
        0xa2, 0x06, 0x17,                                       //     100 http_rules, 23 bytes
          0x0a, 0x15,                                           //       1 http_rules[0], 21 bytes
            0x0a, 0x13,                                         //         1 headers[0] (HeaderMatcher), 19 bytes
              0x0a, 0x05, b':', b'p', b'a', b't', b'h',         //           1 name
              0x6a, 0x0a,                                       //           13 string_match
                0x2a, 0x08,                                     //             5 safe_regex
                  0x12, 0x06, b'/', b'v', b'1', b'/', b'.', b'*', // 2 regex
      0x20, 0x5a,                                               //   4 end_port = 90
];

fn expected_policy() -> NetworkPolicy {
    NetworkPolicy {
        endpoint_ips: vec!["10.0.0.1".into()],
        endpoint_id: 42,
        ingress_per_port_policies: vec![PortNetworkPolicy {
            port: 80,
            end_port: 90,
            protocol: Protocol::Tcp as i32,
            rules: vec![PortNetworkPolicyRule {
                name: "allow-empire".into(),
                remote_policies: vec![1001, 16777217],
                l7: Some(port_network_policy_rule::L7::HttpRules(
                    HttpNetworkPolicyRules {
                        http_rules: vec![HttpNetworkPolicyRule {
                            headers: vec![HeaderMatcher {
                                name: ":path".into(),
                                header_match_specifier: Some(HeaderMatchSpecifier::StringMatch(
                                    StringMatcher {
                                        match_pattern: Some(MatchPattern::SafeRegex(
                                            RegexMatcher {
                                                regex: "/v1/.*".into(),
                                                ..Default::default()
                                            },
                                        )),
                                        ..Default::default()
                                    },
                                )),
                                ..Default::default()
                            }],
                            header_matches: vec![],
                        }],
                    },
                )),
                ..Default::default()
            }],
        }],
        egress_per_port_policies: vec![],
    }
}

#[test]
fn network_policy_decodes_and_encodes_golden_bytes() {
    let decoded = NetworkPolicy::decode(NETWORK_POLICY).unwrap();
    assert_eq!(decoded, expected_policy());
    assert_eq!(expected_policy().encode_to_vec(), NETWORK_POLICY);
}

#[test]
fn reserved_field_5_and_unknown_fields_are_skipped() {
    let mut bytes = NETWORK_POLICY.to_vec();
    // 5: the retired conntrack_map_name, which agents still send.
    bytes.extend_from_slice(&[0x2a, 0x06, b'g', b'l', b'o', b'b', b'a', b'l']);
    // 99 (varint) and 200 (length-delimited): fields from some future agent.
    bytes.extend_from_slice(&[0x98, 0x06, 0x01]);
    bytes.extend_from_slice(&[0xc2, 0x0c, 0x02, 0xff, 0xff]);
    assert_eq!(
        NetworkPolicy::decode(bytes.as_slice()).unwrap(),
        expected_policy()
    );
}

#[test]
fn rule_field_1_is_pass_precedence_not_remote_policies() {
    // precedence (10) = 20, field 1 as varint 5 => pass to tier 5.
    let bytes = [0x50, 0x14, 0x08, 0x05];
    let rule = PortNetworkPolicyRule::decode(&bytes[..]).unwrap();
    assert_eq!(rule.precedence, 20);
    assert_eq!(
        rule.verdict,
        Some(port_network_policy_rule::Verdict::PassPrecedence(5))
    );
    assert!(rule.remote_policies.is_empty());
    // An old agent's packed `remote_policies = 1` (wire type 2) must not be
    // misread as anything: it fails to decode, and the update is NACKed.
    let old = [0x0a, 0x02, 0xe9, 0x07];
    assert!(PortNetworkPolicyRule::decode(&old[..]).is_err());
    // deny = 8.
    let deny = PortNetworkPolicyRule::decode(&[0x40, 0x01][..]).unwrap();
    assert_eq!(
        deny.verdict,
        Some(port_network_policy_rule::Verdict::Deny(true))
    );
}

#[test]
fn header_match_and_kafka_and_tls_fields() {
    // HeaderMatch{name:"x-a", value:"b", match_action:FAIL_ON_MATCH(1),
    //             mismatch_action:REPLACE_ON_MISMATCH(4), value_sds_secret:"s"}
    let hm = [
        0x0a, 0x03, b'x', b'-', b'a', 0x12, 0x01, b'b', 0x18, 0x01, 0x20, 0x04, 0x2a, 0x01, b's',
    ];
    let m = HeaderMatch::decode(&hm[..]).unwrap();
    assert_eq!(m.match_action(), header_match::MatchAction::FailOnMatch);
    assert_eq!(
        m.mismatch_action(),
        header_match::MismatchAction::ReplaceOnMismatch
    );
    assert_eq!(m.value_sds_secret, "s");
    assert_eq!(m.encode_to_vec(), hm);

    // KafkaNetworkPolicyRule{api_version:-1, api_keys:[0,3], client_id:"c", topic:"t"}
    let kr = [
        0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0x01, // 1 = -1 (int32, 10-byte varint)
        0x12, 0x02, 0x00, 0x03, // 2 packed [0, 3]
        0x1a, 0x01, b'c', 0x22, 0x01, b't',
    ];
    let k = KafkaNetworkPolicyRule::decode(&kr[..]).unwrap();
    assert_eq!(
        (
            k.api_version,
            k.api_keys.as_slice(),
            k.client_id.as_str(),
            k.topic.as_str()
        ),
        (-1, &[0, 3][..], "c", "t")
    );
    assert_eq!(k.encode_to_vec(), kr);

    // TLSContext{server_names:["a"], validation_context_sds_secret:"v", tls_sds_secret:"t", alpn_protocols:["h2"]}
    let tc = [
        0x22, 0x01, b'a', 0x2a, 0x01, b'v', 0x32, 0x01, b't', 0x3a, 0x02, b'h', b'2',
    ];
    let t = TlsContext::decode(&tc[..]).unwrap();
    assert_eq!(t.tls_sds_secret, "t");
    assert_eq!(t.validation_context_sds_secret, "v");
    assert_eq!(t.encode_to_vec(), tc);
}

#[test]
fn network_policy_hosts_golden_bytes() {
    // {policy: 16777217, host_addresses: ["10.0.0.0/8"]}
    let bytes = [
        0x08, 0x81, 0x80, 0x80, 0x08, 0x12, 0x0a, b'1', b'0', b'.', b'0', b'.', b'0', b'.', b'0',
        b'/', b'8',
    ];
    let h = NetworkPolicyHosts::decode(&bytes[..]).unwrap();
    assert_eq!(h.policy, 16777217);
    assert_eq!(h.host_addresses, ["10.0.0.0/8"]);
    assert_eq!(h.encode_to_vec(), bytes);
}

#[test]
fn log_entry_golden_bytes() {
    // {timestamp:7, entry_type:Denied, source_security_id:2, is_ingress:true,
    //  destination_security_id:3001, proxy_id:10080, http:{method:"PUT", status:403}}
    let bytes = [
        0x08, 0x07, // 1 timestamp
        0x18, 0x02, // 3 entry_type = Denied
        0x30, 0x02, // 6 source_security_id
        0x78, 0x01, // 15 is_ingress
        0x80, 0x01, 0xb9, 0x17, // 16 destination_security_id = 3001
        0x88, 0x01, 0xe0, 0x4e, // 17 proxy_id = 10080
        0xa2, 0x06, 0x08, // 100 http, 8 bytes
        0x2a, 0x03, b'P', b'U', b'T', // 5 method
        0x38, 0x93, 0x03, // 7 status = 403
    ];
    let e = LogEntry::decode(&bytes[..]).unwrap();
    assert_eq!(e.entry_type(), EntryType::Denied);
    assert!(e.is_ingress);
    assert_eq!(e.destination_security_id, 3001);
    assert_eq!(e.proxy_id, 10080);
    match &e.l7 {
        Some(log_entry::L7::Http(h)) => assert_eq!((h.method.as_str(), h.status), ("PUT", 403)),
        other => panic!("unexpected l7 {other:?}"),
    }
    assert_eq!(e.encode_to_vec(), bytes);
}
