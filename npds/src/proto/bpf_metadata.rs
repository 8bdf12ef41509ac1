//! The `cilium.*` configuration messages that ride inside the Envoy
//! `Listener`s the agent pushes over LDS: the listener filter
//! `cilium.bpf_metadata` ([`BpfMetadata`]), the HTTP filter `cilium.l7policy`
//! ([`L7Policy`]), the network filter `cilium.network` ([`NetworkFilter`]) and
//! the transport socket `cilium.tls_wrapper` ([`DownstreamTlsWrapperContext`],
//! [`UpstreamTlsWrapperContext`]).
//!
//! Declared by hand, like the rest of [`crate::proto`]; every field number and
//! type follows `cilium/api/bpf_metadata.proto`, `l7policy.proto`,
//! `network_filter.proto` and `tls_wrapper.proto` (package `cilium`). The tests
//! at the bottom hold golden bytes written from those numbers.

use envoy_types::pb::envoy::config::core::v3::ConfigSource;
use envoy_types::pb::google::protobuf::Duration;

/// Configuration of the `cilium.bpf_metadata` listener filter: how the proxy
/// learns the direction, proxy id and identity sources of a listener.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct BpfMetadata {
    /// bpffs root (`/sys/fs/bpf`); empty means no BPF maps are used.
    #[prost(string, tag = "1")]
    pub bpf_root: String,
    #[prost(bool, tag = "2")]
    pub is_ingress: bool,
    #[prost(bool, tag = "3")]
    pub use_original_source_address: bool,
    /// The listener is an L7 load balancer (egress only).
    #[prost(bool, tag = "4")]
    pub is_l7lb: bool,
    #[prost(string, tag = "5")]
    pub ipv4_source_address: String,
    #[prost(string, tag = "6")]
    pub ipv6_source_address: String,
    #[prost(bool, tag = "7")]
    pub enforce_policy_on_l7lb: bool,
    /// Policy rules with a `proxy_id` apply only on the listener with this
    /// id; the agent sets it to the proxy port. At most 65535.
    #[prost(uint32, tag = "8")]
    pub proxy_id: u32,
    /// Deprecated upstream; has no effect. Kept so that it round-trips.
    #[prost(message, optional, tag = "9")]
    pub policy_update_warning_limit: Option<Duration>,
    #[prost(string, tag = "10")]
    pub l7lb_policy_name: String,
    /// `optional` in the .proto: an explicit 0 (reset on close) differs from
    /// unset (no SO_LINGER), so prost must track presence.
    #[prost(uint32, optional, tag = "11")]
    pub original_source_so_linger_time: Option<u32>,
    /// Pin name under `<bpf_root>/tc/globals/`; empty means `cilium_ipcache`.
    #[prost(string, tag = "12")]
    pub ipcache_name: String,
    #[prost(bool, tag = "13")]
    pub use_nphds: bool,
    /// Unset means 3 ms.
    #[prost(message, optional, tag = "14")]
    pub cache_entry_ttl: Option<Duration>,
    /// Unset means ten times the TTL.
    #[prost(message, optional, tag = "15")]
    pub cache_gc_interval: Option<Duration>,
    /// Where NPDS comes from (ADS or a gRPC source).
    #[prost(message, optional, tag = "16")]
    pub cilium_config_source: Option<ConfigSource>,
}

/// Configuration of the `cilium.l7policy` HTTP filter.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct L7Policy {
    /// The agent's access-log socket.
    #[prost(string, tag = "1")]
    pub access_log_path: String,
    // Field 2 is not used by the .proto.
    /// Body of a 403; empty means "Access denied".
    #[prost(string, tag = "3")]
    pub denied_403_body: String,
}

/// Configuration of the `cilium.network` network filter.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct NetworkFilter {
    /// Path of the proxylib shared object (`libcilium.so` in older agents).
    #[prost(string, tag = "1")]
    pub proxylib: String,
    /// Opaque proxylib parameters; older agents put `access-log-path` and
    /// `xds-path` here. A BTreeMap keeps the encoding deterministic.
    #[prost(btree_map = "string, string", tag = "2")]
    pub proxylib_params: std::collections::BTreeMap<String, String>,
    /// Deprecated upstream.
    #[prost(string, tag = "3")]
    pub l7_proto: String,
    /// Deprecated upstream.
    #[prost(string, tag = "4")]
    pub policy_name: String,
    #[prost(string, tag = "5")]
    pub access_log_path: String,
}

/// Empty: selects the `cilium.tls_wrapper` transport socket on a cluster.
#[derive(Clone, Copy, PartialEq, Eq, ::prost::Message)]
pub struct UpstreamTlsWrapperContext {}

/// Empty: selects the `cilium.tls_wrapper` transport socket on a filter chain.
#[derive(Clone, Copy, PartialEq, Eq, ::prost::Message)]
pub struct DownstreamTlsWrapperContext {}

/// `prost::Name` with the `type.googleapis.com/` prefix that the agent's
/// `anypb.New` writes (prost's default type URL has no host), so that
/// `envoy_types::util::pack_any` packs these exactly as the agent does.
macro_rules! cilium_name {
    ($($ty:ident),*) => {$(
        impl ::prost::Name for $ty {
            const NAME: &'static str = stringify!($ty);
            const PACKAGE: &'static str = "cilium";
            fn full_name() -> String {
                concat!("cilium.", stringify!($ty)).into()
            }
            fn type_url() -> String {
                concat!("type.googleapis.com/cilium.", stringify!($ty)).into()
            }
        }
    )*};
}

cilium_name!(
    BpfMetadata,
    L7Policy,
    NetworkFilter,
    UpstreamTlsWrapperContext,
    DownstreamTlsWrapperContext
);

#[cfg(test)]
mod tests {
    use super::*;
    use envoy_types::pb::envoy::config::core::v3::{config_source, AggregatedConfigSource};
    use prost::{Message, Name};

    /// Every one of the 16 fields set, in field-number order.
    #[rustfmt::skip]
    const BPF_METADATA: &[u8] = &[
        0x0a, 0x0b, b'/', b's', b'y', b's', b'/', b'f', b's', b'/', b'b', b'p', b'f', // 1 bpf_root
        0x10, 0x01,                                 // 2 is_ingress
        0x18, 0x01,                                 // 3 use_original_source_address
        0x20, 0x01,                                 // 4 is_l7lb
        0x2a, 0x08, b'1', b'0', b'.', b'0', b'.', b'0', b'.', b'9', // 5 ipv4_source_address
        0x32, 0x03, b'f', b'd', b'1',               // 6 ipv6_source_address (not validated here)
        0x38, 0x01,                                 // 7 enforce_policy_on_l7lb
        0x40, 0x91, 0x4e,                           // 8 proxy_id = 10001
        0x4a, 0x02, 0x08, 0x01,                     // 9 policy_update_warning_limit {seconds: 1}
        0x52, 0x02, b'l', b'b',                     // 10 l7lb_policy_name
        0x58, 0x00,                                 // 11 original_source_so_linger_time = 0 (present)
        0x62, 0x11, b'c', b'i', b'l', b'i', b'u', b'm', b'_', b'i', b'p', b'c', b'a', b'c',
              b'h', b'e', b'_', b'v', b'2',         // 12 ipcache_name
        0x68, 0x01,                                 // 13 use_nphds
        0x72, 0x05, 0x10, 0xc0, 0x8d, 0xb7, 0x01,   // 14 cache_entry_ttl {nanos: 3_000_000}
        0x7a, 0x05, 0x10, 0x80, 0x87, 0xa7, 0x0e,   // 15 cache_gc_interval {nanos: 30_000_000}
        0x82, 0x01, 0x02, 0x1a, 0x00,               // 16 cilium_config_source {ads: {}}
    ];

    fn nanos(n: i32) -> Option<Duration> {
        Some(Duration {
            seconds: 0,
            nanos: n,
        })
    }

    fn expected_bpf_metadata() -> BpfMetadata {
        BpfMetadata {
            bpf_root: "/sys/fs/bpf".into(),
            is_ingress: true,
            use_original_source_address: true,
            is_l7lb: true,
            ipv4_source_address: "10.0.0.9".into(),
            ipv6_source_address: "fd1".into(),
            enforce_policy_on_l7lb: true,
            proxy_id: 10001,
            policy_update_warning_limit: Some(Duration {
                seconds: 1,
                nanos: 0,
            }),
            l7lb_policy_name: "lb".into(),
            original_source_so_linger_time: Some(0),
            ipcache_name: "cilium_ipcache_v2".into(),
            use_nphds: true,
            cache_entry_ttl: nanos(3_000_000),
            cache_gc_interval: nanos(30_000_000),
            cilium_config_source: Some(ConfigSource {
                config_source_specifier: Some(config_source::ConfigSourceSpecifier::Ads(
                    AggregatedConfigSource {},
                )),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn bpf_metadata_golden_bytes_both_ways() {
        assert_eq!(
            BpfMetadata::decode(BPF_METADATA).unwrap(),
            expected_bpf_metadata()
        );
        assert_eq!(expected_bpf_metadata().encode_to_vec(), BPF_METADATA);
    }

    #[test]
    fn so_linger_presence_is_tracked() {
        // Unset stays unset; an explicit 0 is on the wire (see field 11 above).
        let unset = BpfMetadata {
            proxy_id: 1,
            ..Default::default()
        };
        assert_eq!(unset.encode_to_vec(), [0x40, 0x01]);
        assert_eq!(
            BpfMetadata::decode(&[0x40, 0x01][..])
                .unwrap()
                .original_source_so_linger_time,
            None
        );
    }

    #[test]
    fn l7policy_and_network_filter_golden_bytes() {
        // L7Policy{access_log_path:"/a", denied_403_body:"no"}: field 3, not 2.
        let l7 = [0x0a, 0x02, b'/', b'a', 0x1a, 0x02, b'n', b'o'];
        let p = L7Policy::decode(&l7[..]).unwrap();
        assert_eq!(
            (p.access_log_path.as_str(), p.denied_403_body.as_str()),
            ("/a", "no")
        );
        assert_eq!(p.encode_to_vec(), l7);

        // NetworkFilter{proxylib:"l.so", proxylib_params:{"k":"v"}, l7_proto:"r",
        //               policy_name:"p", access_log_path:"/a"}
        #[rustfmt::skip]
        let nf = [
            0x0a, 0x04, b'l', b'.', b's', b'o',                   // 1 proxylib
            0x12, 0x06, 0x0a, 0x01, b'k', 0x12, 0x01, b'v',       // 2 map entry {1:"k", 2:"v"}
            0x1a, 0x01, b'r',                                     // 3 l7_proto
            0x22, 0x01, b'p',                                     // 4 policy_name
            0x2a, 0x02, b'/', b'a',                               // 5 access_log_path
        ];
        let n = NetworkFilter::decode(&nf[..]).unwrap();
        assert_eq!(n.proxylib, "l.so");
        assert_eq!(n.proxylib_params.get("k").map(String::as_str), Some("v"));
        assert_eq!((n.l7_proto.as_str(), n.policy_name.as_str()), ("r", "p"));
        assert_eq!(n.access_log_path, "/a");
        assert_eq!(n.encode_to_vec(), nf);
    }

    #[test]
    fn tls_wrapper_contexts_are_empty_and_skip_unknown_fields() {
        assert!(DownstreamTlsWrapperContext {}.encode_to_vec().is_empty());
        assert!(UpstreamTlsWrapperContext {}.encode_to_vec().is_empty());
        // A future field must not make the transport socket config fail.
        assert!(DownstreamTlsWrapperContext::decode(&[0x08, 0x01][..]).is_ok());
    }

    #[test]
    fn type_urls_match_the_agents_anypb() {
        assert_eq!(
            BpfMetadata::type_url(),
            "type.googleapis.com/cilium.BpfMetadata"
        );
        assert_eq!(L7Policy::type_url(), "type.googleapis.com/cilium.L7Policy");
        assert_eq!(NetworkFilter::full_name(), "cilium.NetworkFilter");
        assert_eq!(
            DownstreamTlsWrapperContext::type_url(),
            "type.googleapis.com/cilium.DownstreamTlsWrapperContext"
        );
        assert_eq!(
            UpstreamTlsWrapperContext::type_url(),
            "type.googleapis.com/cilium.UpstreamTlsWrapperContext"
        );
    }
}
