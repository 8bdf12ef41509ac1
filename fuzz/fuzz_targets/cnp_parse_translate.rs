//! CiliumNetworkPolicy YAML → NPDS resources → the npds compiler.
//!
//! Arbitrary UTF-8 is parsed as one policy file; if it parses, it is
//! translated against a small fixed inventory (two local endpoints, one
//! remote identity). Neither step may panic. If the translation succeeds,
//! its output MUST compile: the translator must never emit resources that
//! the snapshot compiler (the same code path agent updates take) rejects.

#![no_main]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;

use cnp::{Endpoint, Identity, Inventory};
use libfuzzer_sys::fuzz_target;
use npds::{IdentityTable, PolicySnapshot};

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The Star Wars deathstar plus a second, dual-stack endpoint whose identity
/// is allocated, and the tiefighter as the one remote identity.
fn inventory() -> &'static Inventory {
    static INV: OnceLock<Inventory> = OnceLock::new();
    INV.get_or_init(|| Inventory {
        endpoints: vec![
            Endpoint {
                id: 3001,
                ips: vec!["127.0.0.10".parse().unwrap()],
                namespace: "default".into(),
                labels: labels(&[("org", "empire"), ("class", "deathstar")]),
                identity: Some(30001),
                named_ports: BTreeMap::from([("http".to_string(), 80)]),
            },
            Endpoint {
                id: 3002,
                ips: vec!["10.0.0.2".parse().unwrap(), "fd00::2".parse().unwrap()],
                namespace: "a".into(),
                labels: labels(&[("app", "web")]),
                identity: None,
                named_ports: BTreeMap::from([("http".to_string(), 8080)]),
            },
        ],
        identities: vec![Identity {
            id: 20002,
            labels: labels(&[("org", "empire"), ("class", "tiefighter")]),
            namespace: "default".into(),
            cidrs: vec!["127.0.0.2/32".parse().unwrap()],
        }],
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(docs) = cnp::parse_file(Path::new("f.yaml"), text) else {
        return;
    };
    let Ok(t) = cnp::translate(inventory(), &docs) else {
        return;
    };
    if let Err(e) = PolicySnapshot::compile("1", t.network_policies.clone(), None) {
        panic!("translated policy rejected by the compiler: {e}\ninput: {text:?}\noutput: {t:#?}");
    }
    if let Err(e) = IdentityTable::compile(&t.hosts) {
        panic!(
            "translated hosts rejected by the compiler: {e}\ninput: {text:?}\nhosts: {:#?}",
            t.hosts
        );
    }
});
