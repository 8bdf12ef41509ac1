//! NPDS / NPHDS protobuf decoding and the policy compiler.
//!
//! The input is decoded as a `cilium.NetworkPolicy`; if it decodes,
//! `PolicySnapshot::compile` must return (Ok or a `PolicyError`), never
//! panic. The same bytes are decoded as one `cilium.NetworkPolicyHosts`, and
//! as a sequence of length-delimited ones (so that two identities can claim
//! one prefix), and `IdentityTable::compile` must not panic either.

#![no_main]

use libfuzzer_sys::fuzz_target;
use npds::proto::{NetworkPolicy, NetworkPolicyHosts};
use npds::{IdentityTable, PolicySnapshot};
use prost::Message;

fuzz_target!(|data: &[u8]| {
    if let Ok(np) = NetworkPolicy::decode(data) {
        let first = PolicySnapshot::compile("1", vec![np.clone()], None);
        // Recompiling against the previous snapshot takes the reuse path.
        if let Ok(prev) = &first {
            let again = PolicySnapshot::compile("2", vec![np], Some(prev));
            assert!(
                again.is_ok(),
                "recompile of an accepted policy failed: {again:?}"
            );
        }
    }

    if let Ok(h) = NetworkPolicyHosts::decode(data) {
        let _ = IdentityTable::compile(&[h]);
    }

    let mut buf = data;
    let mut hosts = Vec::new();
    while !buf.is_empty() {
        match NetworkPolicyHosts::decode_length_delimited(&mut buf) {
            Ok(h) => hosts.push(h),
            Err(_) => break,
        }
    }
    if !hosts.is_empty() {
        let _ = IdentityTable::compile(&hosts);
    }
});
