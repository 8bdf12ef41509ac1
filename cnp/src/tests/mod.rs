//! Crate tests: whole documents in, NPDS messages out.

mod dns;
mod errors;
mod fuzz_findings;
mod kafka;
mod semantics;
mod starwars;

use std::path::Path;

use npds::proto::port_network_policy_rule::{Verdict, L7};
use npds::proto::{NetworkPolicy, PortNetworkPolicy, PortNetworkPolicyRule, Protocol};

use crate::http::http_rules;
use crate::spec::HttpRule;
use crate::{parse_file, translate, Inventory, PolicyDoc, Translation};

pub(super) fn inventory(yaml: &str) -> Inventory {
    serde_yaml_ng::from_str(yaml).expect("test inventory")
}

pub(super) fn docs(yaml: &str) -> Vec<PolicyDoc> {
    parse_file(Path::new("test.yaml"), yaml).expect("test policy")
}

pub(super) fn run(inv: &str, policy: &str) -> Translation {
    translate(&inventory(inv), &docs(policy)).expect("translation")
}

pub(super) fn cnp(ns: &str, spec: &str) -> String {
    format!(
        "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {{name: p, namespace: {ns}}}\nspec:\n{}",
        indent(spec)
    )
}

pub(super) fn ccnp(spec: &str) -> String {
    format!(
        "apiVersion: cilium.io/v2\nkind: CiliumClusterwideNetworkPolicy\nmetadata: {{name: c}}\nspec:\n{}",
        indent(spec)
    )
}

pub(super) fn indent(s: &str) -> String {
    s.lines().map(|l| format!("  {l}\n")).collect()
}

pub(super) fn ep(t: &Translation, id: u64) -> &NetworkPolicy {
    t.network_policies
        .iter()
        .find(|n| n.endpoint_id == id)
        .expect("endpoint")
}

pub(super) fn port(
    port: u32,
    end_port: u32,
    rules: Vec<PortNetworkPolicyRule>,
) -> PortNetworkPolicy {
    PortNetworkPolicy {
        port,
        end_port,
        protocol: Protocol::Tcp as i32,
        rules,
    }
}

pub(super) fn allow(remotes: &[u32], name: &str) -> PortNetworkPolicyRule {
    PortNetworkPolicyRule {
        remote_policies: remotes.to_vec(),
        name: name.into(),
        ..Default::default()
    }
}

pub(super) fn deny(remotes: &[u32], name: &str) -> PortNetworkPolicyRule {
    PortNetworkPolicyRule {
        verdict: Some(Verdict::Deny(true)),
        ..allow(remotes, name)
    }
}

pub(super) fn http(remotes: &[u32], name: &str, rules: &[HttpRule]) -> PortNetworkPolicyRule {
    PortNetworkPolicyRule {
        l7: Some(L7::HttpRules(http_rules(rules))),
        ..allow(remotes, name)
    }
}

pub(super) fn get(path: &str) -> HttpRule {
    HttpRule {
        method: "GET".into(),
        path: path.into(),
        ..Default::default()
    }
}

pub(super) fn allow_all() -> Vec<PortNetworkPolicy> {
    vec![port(0, 0, vec![])]
}
