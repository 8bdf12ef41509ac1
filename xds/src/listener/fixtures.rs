//! The agent's listener shapes written out by hand, as `getListenerConf`,
//! `getHttpFilterChainProto` and `getTcpFilterChainProto` build them.

// Re-exported so that the tests get the whole vocabulary with one glob.
pub(super) use super::*;
pub(super) use cilium_api::cilium::{
    BpfMetadata, DownstreamTlsWrapperContext, L7Policy, NetworkFilter,
};
pub(super) use envoy_types::pb::envoy::config::core::v3::{
    CidrRange, Pipe, SocketAddress, SocketOption,
};
pub(super) use envoy_types::pb::envoy::config::listener::v3::{
    listener_filter, AdditionalAddress, FilterChain, FilterChainMatch, ListenerFilter,
    UdpListenerConfig,
};
pub(super) use envoy_types::pb::envoy::config::route::v3::{
    route, route_action, route_match, RetryPolicy, Route, RouteAction, RouteConfiguration,
    RouteMatch, VirtualHost,
};
pub(super) use envoy_types::pb::envoy::extensions::filters::http::router::v3::Router;
pub(super) use envoy_types::pb::envoy::extensions::filters::listener::tls_inspector::v3::TlsInspector;
pub(super) use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    http_connection_manager::{InternalAddressConfig, RouteSpecifier, UpgradeConfig},
    http_filter, HttpConnectionManager, HttpFilter, Rds,
};
pub(super) use envoy_types::pb::envoy::extensions::filters::network::mongo_proxy::v3::MongoProxy;
pub(super) use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::{
    tcp_proxy, TcpProxy,
};
pub(super) use envoy_types::pb::google::protobuf::{self as pb, BoolValue, UInt32Value};
pub(super) use envoy_types::util::pack_any;
pub(super) use std::time::Duration;

pub(super) const LOG: &str = "/var/run/cilium/envoy/sockets/access_log.sock";
pub(super) const NAME: &str = "ingress-proxy-10001";

pub(super) fn sock(ip: &str, port: u32) -> Address {
    Address {
        address: Some(address::Address::SocketAddress(SocketAddress {
            address: ip.into(),
            port_specifier: Some(socket_address::PortSpecifier::PortValue(port)),
            ..Default::default()
        })),
    }
}

pub(super) fn nf(name: &str, any: Any) -> Filter {
    Filter {
        name: name.into(),
        config_type: Some(filter::ConfigType::TypedConfig(any)),
    }
}

pub(super) fn lf(name: &str, any: Any) -> ListenerFilter {
    ListenerFilter {
        name: name.into(),
        config_type: Some(listener_filter::ConfigType::TypedConfig(any)),
        filter_disabled: None,
    }
}

pub(super) fn hf(name: &str, any: Any) -> HttpFilter {
    HttpFilter {
        name: name.into(),
        config_type: Some(http_filter::ConfigType::TypedConfig(any)),
        ..Default::default()
    }
}

pub(super) fn secs(seconds: i64) -> Option<pb::Duration> {
    Some(pb::Duration { seconds, nanos: 0 })
}

/// Listener, addresses and listener filters as `getListenerConf` sets them.
pub(super) fn agent_listener(
    name: &str,
    port: u32,
    ingress: bool,
    linger: Option<u32>,
) -> Listener {
    let bpf = BpfMetadata {
        bpf_root: "/sys/fs/bpf".into(),
        is_ingress: ingress,
        use_original_source_address: true,
        proxy_id: port,
        ipcache_name: "cilium_ipcache_v2".into(),
        original_source_so_linger_time: linger,
        ..Default::default()
    };
    Listener {
        name: name.into(),
        address: Some(sock("127.0.0.1", port)),
        additional_addresses: vec![AdditionalAddress {
            address: Some(sock("::1", port)),
            ..Default::default()
        }],
        listener_filters: vec![
            lf(names::TLS_INSPECTOR, pack_any(TlsInspector::default())),
            lf(names::BPF_METADATA, pack_any(bpf)),
        ],
        ..Default::default()
    }
}

pub(super) fn agent_route(cluster: &str, grpc: bool) -> Route {
    let mut action = RouteAction {
        cluster_specifier: Some(route_action::ClusterSpecifier::Cluster(cluster.into())),
        timeout: secs(3600),
        retry_policy: Some(RetryPolicy {
            retry_on: "5xx".into(),
            num_retries: Some(UInt32Value { value: 3 }),
            per_try_timeout: secs(0),
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut m = RouteMatch {
        path_specifier: Some(route_match::PathSpecifier::Prefix("/".into())),
        ..Default::default()
    };
    if grpc {
        m.grpc = Some(Default::default());
        action.max_stream_duration = Some(route_action::MaxStreamDuration {
            grpc_timeout_header_max: secs(0),
            ..Default::default()
        });
    }
    Route {
        r#match: Some(m),
        action: Some(route::Action::Route(action)),
        ..Default::default()
    }
}

pub(super) fn agent_hcm(cluster: &str) -> HttpConnectionManager {
    let cidr = |p: &str, len| CidrRange {
        address_prefix: p.into(),
        prefix_len: Some(UInt32Value { value: len }),
    };
    let l7 = L7Policy {
        access_log_path: LOG.into(),
        denied_403_body: String::new(),
    };
    HttpConnectionManager {
        stat_prefix: "proxy".into(),
        upgrade_configs: vec![UpgradeConfig {
            upgrade_type: "websocket".into(),
            ..Default::default()
        }],
        use_remote_address: Some(BoolValue { value: true }),
        skip_xff_append: true,
        http_filters: vec![
            hf(names::L7_POLICY, pack_any(l7)),
            hf(names::ROUTER, pack_any(Router::default())),
        ],
        internal_address_config: Some(InternalAddressConfig {
            unix_sockets: false,
            cidr_ranges: vec![
                cidr("10.0.0.0", 8),
                cidr("172.16.0.0", 12),
                cidr("192.168.0.0", 16),
                cidr("127.0.0.1", 32),
                cidr("::1", 128),
            ],
        }),
        stream_idle_timeout: secs(0),
        route_specifier: Some(RouteSpecifier::RouteConfig(RouteConfiguration {
            virtual_hosts: vec![VirtualHost {
                name: "default_route".into(),
                domains: vec!["*".into()],
                routes: vec![agent_route(cluster, true), agent_route(cluster, false)],
                ..Default::default()
            }],
            ..Default::default()
        })),
        ..Default::default()
    }
}

pub(super) fn tls_variant(mut c: FilterChain) -> FilterChain {
    c.filter_chain_match
        .get_or_insert_with(Default::default)
        .transport_protocol = "tls".into();
    c.transport_socket = Some(TransportSocket {
        name: names::TLS_WRAPPER.into(),
        config_type: Some(transport_socket::ConfigType::TypedConfig(pack_any(
            DownstreamTlsWrapperContext {},
        ))),
    });
    c
}

pub(super) fn agent_http_listener() -> Listener {
    let chain = |cluster: &str| FilterChain {
        filters: vec![
            nf(names::CILIUM_NETWORK, pack_any(NetworkFilter::default())),
            nf(names::HTTP_CONNECTION_MANAGER, pack_any(agent_hcm(cluster))),
        ],
        ..Default::default()
    };
    Listener {
        filter_chains: vec![
            chain("ingress-cluster"),
            tls_variant(chain("ingress-cluster-tls")),
        ],
        ..agent_listener(NAME, 10001, true, None)
    }
}

pub(super) fn tcp_chain(
    cluster: &str,
    network: NetworkFilter,
    l7: Option<(&str, Any)>,
) -> FilterChain {
    let tcp = TcpProxy {
        stat_prefix: "tcp_proxy".into(),
        cluster_specifier: Some(tcp_proxy::ClusterSpecifier::Cluster(cluster.into())),
        ..Default::default()
    };
    let mut filters = vec![
        nf(names::CILIUM_NETWORK, pack_any(network)),
        nf(names::TCP_PROXY, pack_any(tcp)),
    ];
    let mut m = FilterChainMatch {
        transport_protocol: "raw_buffer".into(),
        ..Default::default()
    };
    if let Some((name, config)) = l7 {
        filters.insert(0, nf(name, config));
        m.application_protocols = vec![name.into()];
    }
    FilterChain {
        filter_chain_match: Some(m),
        filters,
        ..Default::default()
    }
}

/// Egress TCP listener of a current agent: plain, TLS, MySQL and MongoDB chains.
pub(super) fn agent_tcp_listener() -> Listener {
    let net = || NetworkFilter {
        access_log_path: LOG.into(),
        ..Default::default()
    };
    let mysql = Any {
        type_url: "type.googleapis.com/envoy.extensions.filters.network.mysql_proxy.v3.MySQLProxy"
            .into(),
        value: [&[0x0a, 0x05][..], b"mysql"].concat(), // 1 stat_prefix
    };
    let mongo = pack_any(MongoProxy {
        stat_prefix: "mongo".into(),
        emit_dynamic_metadata: true,
        ..Default::default()
    });
    let tls = tls_variant(tcp_chain("egress-cluster-tls", net(), None));
    Listener {
        filter_chains: vec![
            tcp_chain("egress-cluster", net(), None),
            tls,
            tcp_chain(
                "egress-cluster",
                net(),
                Some(("envoy.filters.network.mysql_proxy", mysql)),
            ),
            tcp_chain(
                "egress-cluster",
                net(),
                Some(("envoy.filters.network.mongo_proxy", mongo)),
            ),
        ],
        ..agent_listener("egress-proxy-10002", 10002, false, None)
    }
}

pub(super) fn agent_bpf_summary() -> BpfMetadataSummary {
    BpfMetadataSummary {
        bpf_root: Some("/sys/fs/bpf".into()),
        ipcache_name: "cilium_ipcache_v2".into(),
        use_original_source_address: true,
        use_nphds: false,
        is_l7lb: false,
        enforce_policy_on_l7lb: false,
        ipv4_source_address: None,
        ipv6_source_address: None,
        l7lb_policy_name: None,
        original_source_so_linger: None,
        cache_entry_ttl: Duration::from_millis(3),
        cache_gc_interval: Duration::from_millis(30),
    }
}

pub(super) fn expected_http() -> ProxyListener {
    ProxyListener {
        name: NAME.into(),
        addresses: vec![
            "127.0.0.1:10001".parse().unwrap(),
            "[::1]:10001".parse().unwrap(),
        ],
        is_ingress: true,
        proxy_id: 10001,
        kind: ListenerKind::Http { tls_variant: true },
        transparent: false,
        mark: None,
        bpf: agent_bpf_summary(),
        access_log_path: Some(LOG.into()),
        denied_403_body: None,
        unsupported_l7_chains: vec![],
    }
}
