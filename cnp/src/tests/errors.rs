//! Every error path, with the exact text an operator sees.

use std::path::Path;

use super::{docs, inventory};
use crate::{parse_file, translate};

const HEAD: &str = "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: rule1}\n";

/// A CNP whose spec is `spec` (indented under `spec:`).
fn with_spec(spec: &str) -> String {
    let body: String = spec.lines().map(|l| format!("  {l}\n")).collect();
    format!("{HEAD}spec:\n{body}")
}

fn parse_err(yaml: &str) -> String {
    parse_file(Path::new("policies/sw.yaml"), yaml)
        .expect_err("should fail")
        .to_string()
}

const P: &str = "policies/sw.yaml: CiliumNetworkPolicy \"rule1\": ";

#[test]
fn field_errors_name_file_document_and_path() {
    let sel = "endpointSelector: {matchLabels: {org: empire}}";
    let ing = |rule: &str| format!("{sel}\ningress:\n- {rule}");
    let http_rule = |rule: &str| {
        ing(&format!(
            "toPorts:\n  - ports: [{{port: '80', protocol: TCP}}]\n    rules: {{http: [{rule}]}}"
        ))
    };
    let port = |p: &str| ing(&format!("toPorts: [{{ports: [{p}]}}]"));
    let table: Vec<(String, &str)> = vec![
        (
            http_rule("{methd: POST}"),
            "spec.ingress[0].toPorts[0].rules.http[0].methd: unknown field",
        ),
        (ing("fromEndpointz: [{}]"), "spec.ingress[0].fromEndpointz: unknown field"),
        (format!("{sel}\ningres: []"), "spec.ingres: unknown field"),
        (
            format!("{sel}\negressDeny:\n- toFQDNs: [{{matchName: cilium.io}}]"),
            "spec.egressDeny[0].toFQDNs: not allowed in egressDeny (the agent's deny rules have no toFQDNs)",
        ),
        (
            format!("{sel}\negress:\n- toServices: [{{k8sService: {{serviceName: x}}}}]"),
            "spec.egress[0].toServices: not supported yet",
        ),
        (
            format!("{sel}\negress:\n- toGroups: [{{aws: {{}}}}]"),
            "spec.egress[0].toGroups: not supported yet",
        ),
        (ing("fromRequires: [{}]"), "spec.ingress[0].fromRequires: not supported yet"),
        (ing("fromNodes: [{}]"), "spec.ingress[0].fromNodes: not supported yet"),
        (ing("icmps: [{fields: [{type: 8}]}]"), "spec.ingress[0].icmps: not supported yet"),
        (
            ing("authentication: {mode: required}"),
            "spec.ingress[0].authentication: not supported yet",
        ),
        (
            ing("toPorts:\n  - ports: [{port: '53', protocol: UDP}]\n    rules: {dns: [{matchPattern: '*'}]}"),
            "spec.ingress[0].toPorts[0].rules.dns: DNS rules are not allowed on ingress",
        ),
        (
            ing("toPorts:\n  - ports: [{port: '80', protocol: TCP}]\n    rules: {l7proto: r2d2}"),
            "spec.ingress[0].toPorts[0].rules.l7proto: not supported yet",
        ),
        (
            ing("toPorts:\n  - ports: [{port: '443', protocol: TCP}]\n    terminatingTLS: {secret: {name: s}}"),
            "spec.ingress[0].toPorts[0].terminatingTLS: not supported yet",
        ),
        (
            format!("{sel}\negress:\n- toPorts:\n  - ports: [{{port: '443', protocol: TCP}}]\n    originatingTLS: {{secret: {{name: s}}}}"),
            "spec.egress[0].toPorts[0].originatingTLS: not supported yet",
        ),
        (
            ing("toPorts:\n  - ports: [{port: '443', protocol: TCP}]\n    serverNames: [a.b]"),
            "spec.ingress[0].toPorts[0].serverNames: not supported yet",
        ),
        (
            "nodeSelector: {}\ningress: [{}]".to_string(),
            "spec.nodeSelector: not supported yet",
        ),
        (
            ing("fromCIDRSet: [{cidrGroupRef: g}]"),
            "spec.ingress[0].fromCIDRSet[0].cidrGroupRef: not supported yet",
        ),
        (
            port("{port: '70000', protocol: TCP}"),
            "spec.ingress[0].toPorts[0].ports[0].port: port 70000 out of range (0-65535)",
        ),
        (
            port("{port: '90', endPort: 80, protocol: TCP}"),
            "spec.ingress[0].toPorts[0].ports[0].endPort: endPort 80 is less than port 90",
        ),
        (
            port("{port: '80', endPort: 70000, protocol: TCP}"),
            "spec.ingress[0].toPorts[0].ports[0].endPort: port 70000 out of range (0-65535)",
        ),
        (
            port("{port: '80', protocol: ICMP}"),
            "spec.ingress[0].toPorts[0].ports[0].protocol: invalid protocol \"ICMP\" (TCP, UDP, SCTP or ANY)",
        ),
        (
            port("{port: '80', protocol: VRRP}"),
            "spec.ingress[0].toPorts[0].ports[0].protocol: not supported yet (VRRP)",
        ),
        (
            port("{protocol: TCP}"),
            "spec.ingress[0].toPorts[0].ports[0].port: missing required field",
        ),
        (
            http_rule("{path: '/v1/('}"),
            "spec.ingress[0].toPorts[0].rules.http[0].path: invalid regular expression \"/v1/(\": unclosed group",
        ),
        (
            http_rule("{method: 'GET|('}"),
            "spec.ingress[0].toPorts[0].rules.http[0].method: invalid regular expression \"GET|(\": unclosed group",
        ),
        (
            http_rule("{host: '[a-'}"),
            "spec.ingress[0].toPorts[0].rules.http[0].host: invalid regular expression \"[a-\": unclosed character class",
        ),
        (
            http_rule("{headerMatches: [{name: x, mismatch: DROP}]}"),
            "spec.ingress[0].toPorts[0].rules.http[0].headerMatches[0].mismatch: invalid header action \"DROP\" (LOG, ADD, DELETE or REPLACE)",
        ),
        (
            ing("toPorts:\n  - ports: [{port: '80', protocol: UDP}]\n    rules: {http: [{}]}"),
            "spec.ingress[0].toPorts[0].ports[0]: L7 rules can only apply to TCP (not UDP)",
        ),
        (
            ing("toPorts:\n  - ports: [{port: '80'}]\n    rules: {http: [{}]}"),
            "spec.ingress[0].toPorts[0].ports[0]: L7 rules can only apply to TCP (not ANY)",
        ),
        (
            format!("{sel}\ningressDeny:\n- toPorts:\n  - ports: [{{port: '80', protocol: TCP}}]\n    rules: {{http: [{{}}]}}"),
            "spec.ingressDeny[0].toPorts[0].rules: deny rules cannot carry L7 rules",
        ),
        (
            ing("fromCIDR: [10.0.0.0/33]"),
            "spec.ingress[0].fromCIDR[0]: invalid CIDR \"10.0.0.0/33\"",
        ),
        (
            ing("fromCIDRSet: [{cidr: 10.0.0.0/8, except: [11.0.0.0/16]}]"),
            "spec.ingress[0].fromCIDRSet[0].except[0]: 11.0.0.0/16 is not contained in cidr 10.0.0.0/8",
        ),
        (ing("fromEntities: [galaxy]"), "spec.ingress[0].fromEntities[0]: unknown entity \"galaxy\""),
        (
            ing("fromEndpoints: [{}]\n  fromCIDR: [10.0.0.0/8]"),
            "spec.ingress[0]: combining fromEndpoints and fromCIDR is not supported",
        ),
        (
            ing("fromEndpoints: []\n  toPorts: [{ports: [{port: '80'}]}]"),
            "spec.ingress[0].fromEndpoints: empty list; omit the field, or use [{}] to select all",
        ),
        (ing("toPorts: []"), "spec.ingress[0].toPorts: empty list; omit the field"),
        (
            ing("toPorts: [{ports: []}]"),
            "spec.ingress[0].toPorts[0].ports: empty list allows nothing",
        ),
        (
            ing("fromEndpoints: [{matchExpressions: [{key: a, operator: Is}]}]"),
            "spec.ingress[0].fromEndpoints[0].matchExpressions[0].operator: unknown operator \"Is\" (In, NotIn, Exists, DoesNotExist)",
        ),
        (
            ing("fromEndpoints: [{matchExpressions: [{key: a, operator: In}]}]"),
            "spec.ingress[0].fromEndpoints[0].matchExpressions[0].values: values must be non-empty for In and NotIn",
        ),
        (
            ing("fromEndpoints: [{matchLabels: {container:app: x}}]"),
            "spec.ingress[0].fromEndpoints[0].matchLabels.container:app: not supported yet (label source \"container\"; use k8s, any or reserved)",
        ),
        (
            format!("{sel}\ningress: []"),
            "spec: rule must have at least one of ingress, ingressDeny, egress, egressDeny",
        ),
        ("ingress: [{}]".to_string(), "spec.endpointSelector: missing required field"),
        (
            "endpointSelector: {matchLabels: {io.kubernetes.pod.namespace: other}}\ningress: [{}]".to_string(),
            "spec.endpointSelector: selects namespace \"other\", but the policy is in namespace \"default\"",
        ),
        (format!("{sel}\nlog: {{value: x}}"), "spec.log: not supported yet"),
    ];
    for (spec, want) in table {
        assert_eq!(parse_err(&with_spec(&spec)), format!("{P}{want}"), "{spec}");
    }
}

#[test]
fn document_errors() {
    let table: &[(&str, &str)] = &[
        (
            "apiVersion: cilium.io/v2\nkind: NetworkPolicy\nmetadata: {name: x}\nspec: {}",
            "policies/sw.yaml: document #1: kind: expected CiliumNetworkPolicy or CiliumClusterwideNetworkPolicy, found \"NetworkPolicy\"",
        ),
        (
            "apiVersion: cilium.io/v1\nkind: CiliumNetworkPolicy\nmetadata: {name: x}\nspec: {}",
            "policies/sw.yaml: CiliumNetworkPolicy \"x\": apiVersion: expected \"cilium.io/v2\", found \"cilium.io/v1\"",
        ),
        (
            "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {}\nspec: {}",
            "policies/sw.yaml: document #1: metadata.name: missing required field",
        ),
        (
            "apiVersion: cilium.io/v2\nkind: CiliumClusterwideNetworkPolicy\nmetadata: {name: c, namespace: a}\nspec: {}",
            "policies/sw.yaml: CiliumClusterwideNetworkPolicy \"c\": metadata.namespace: not allowed on a CiliumClusterwideNetworkPolicy",
        ),
        (
            "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: x}",
            "policies/sw.yaml: CiliumNetworkPolicy \"x\": spec: missing required field",
        ),
        (
            "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: x}\nspec: {}\nextra: 1",
            "policies/sw.yaml: CiliumNetworkPolicy \"x\": extra: unknown field",
        ),
        (
            "---\n---\nkind: [",
            "policies/sw.yaml: document #2: did not find expected node content at line 4 column 1, while parsing a flow node",
        ),
        (
            "- a\n- b",
            "policies/sw.yaml: document #1: expected a mapping, found a list",
        ),
    ];
    for (yaml, want) in table {
        assert_eq!(parse_err(yaml), *want, "{yaml}");
    }
}

#[test]
fn multi_document_files() {
    let one = "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: a, namespace: ns}\n\
               specs:\n- endpointSelector: {}\n  ingress: [{}]\n- endpointSelector: {}\n  egress: [{}]\n";
    let two =
        "apiVersion: cilium.io/v2\nkind: CiliumClusterwideNetworkPolicy\nmetadata: {name: b}\n\
               spec: {endpointSelector: {}, ingress: [{}]}\n";
    let text = format!("---\n{one}---\n# only a comment\n---\n{two}");
    let d = docs(&text);
    assert_eq!(d.len(), 2);
    assert_eq!(
        (d[0].index, d[0].name.as_str(), d[0].namespace.as_deref()),
        (0, "a", Some("ns"))
    );
    assert_eq!(d[0].rules.len(), 2);
    assert_eq!(
        (d[1].index, d[1].name.as_str(), d[1].namespace.as_deref()),
        (2, "b", None)
    );
    assert_eq!(d[1].kind(), "CiliumClusterwideNetworkPolicy");
    assert_eq!(d[0].rule_ref(), "ns/a");
    assert!(docs("").is_empty());
}

#[test]
fn translation_and_inventory_errors() {
    let policy = "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: rule1}\n\
                  spec:\n  endpointSelector: {}\n  ingress:\n  - toPorts: [{ports: [{port: grpc, protocol: TCP}]}]\n";
    let inv = "endpoints: [{id: 1, ips: [10.0.0.1], namedPorts: {http: 80}}]";
    let err = translate(&inventory(inv), &docs(policy))
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "test.yaml: CiliumNetworkPolicy \"rule1\": spec.ingress[0].toPorts[0].ports[0]: \
         named port \"grpc\" is not defined on endpoint 1"
    );

    // Egress to a named port: the name must exist on some selected peer.
    let egress = policy.replace(
        "ingress:\n  - toPorts",
        "egress:\n  - toEndpoints: [{}]\n    toPorts",
    );
    let inv = "endpoints:\n- {id: 1, ips: [10.0.0.1], namedPorts: {http: 80}}\n- {id: 2, ips: [10.0.0.2], labels: {a: b}}";
    let err = translate(&inventory(inv), &docs(&egress))
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "test.yaml: CiliumNetworkPolicy \"rule1\": spec.egress[0].toPorts[0].ports[0]: \
         named port \"grpc\" is not defined on any peer endpoint selected for endpoint 1"
    );

    let table: &[(&str, &str)] = &[
        (
            "endpoints: [{id: 1, ips: [10.0.0.1]}, {id: 1, ips: [10.0.0.2]}]",
            "inventory: endpoints[1].id: duplicate endpoint id 1",
        ),
        (
            "endpoints: [{id: 1, ips: []}]",
            "inventory: endpoints[0].ips: at least one address is required",
        ),
        (
            "endpoints: [{id: 1, ips: [10.0.0.1], identity: 2}]",
            "inventory: endpoints[0].identity: identity 2 is reserved (1-10 are the agent's reserved identities)",
        ),
        (
            "identities: [{id: 16777300}]",
            "inventory: identities[0].id: identity 16777300 is in the local (CIDR) scope, which starts at 16777216",
        ),
        (
            "identities: [{id: 500}, {id: 500, labels: {a: b}}]",
            "inventory: identities[1].id: duplicate identity 500",
        ),
        (
            "endpoints: [{id: 1, ips: [10.0.0.1], identity: 500}]\nidentities: [{id: 500, labels: {a: b}}]",
            "inventory: endpoints[0]: identity 500 is also given to identities[0], with another namespace or labels",
        ),
        (
            "endpoints: [{id: 1, ips: [10.0.0.1]}]\nidentities: [{id: 500, labels: {a: b}, cidrs: [10.0.0.1/32]}]",
            "inventory: endpoints[0].ips[0]: 10.0.0.1/32 is also the address of identities[0].cidrs[0] (identity 500)",
        ),
        (
            "endpoints: [{id: 1, ips: [10.0.0.1], labels: {k8s:app: x}}]",
            "inventory: endpoints[0].labels.k8s:app: label keys must be plain pod label keys",
        ),
        (
            "endpoints: [{id: 1, ips: [10.0.0.1], namedPorts: {web_80: 80}}]",
            "inventory: endpoints[0].namedPorts.web_80: not a port name (IANA service name)",
        ),
    ];
    for (inv, want) in table {
        let err = translate(&inventory(inv), &[]).unwrap_err().to_string();
        assert_eq!(err, *want, "{inv}");
    }
}
