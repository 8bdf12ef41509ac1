//! The agent's LDS/CDS shapes built from a [`ProxyListener`]: what the
//! in-process control plane serves in standalone mode and what the tests
//! feed back through [`super::translate_listener`]. The values that do not
//! matter to Portcullis (timeouts, retries) are the agent's defaults, so the
//! resources also work for a real cilium-envoy.

use std::net::SocketAddr;

use envoy_types::pb::envoy::config::cluster::v3::{cluster, Cluster};
use envoy_types::pb::envoy::config::core::v3::{
    address, socket_address, socket_option, transport_socket, Address, CidrRange, SocketAddress,
    SocketOption, TransportSocket,
};
use envoy_types::pb::envoy::config::listener::v3::{
    filter, listener_filter, AdditionalAddress, Filter, FilterChain, FilterChainMatch, Listener,
    ListenerFilter,
};
use envoy_types::pb::envoy::config::route::v3::{
    route, route_action, route_match, RetryPolicy, Route, RouteAction, RouteConfiguration,
    RouteMatch, VirtualHost,
};
use envoy_types::pb::envoy::extensions::filters::http::router::v3::Router;
use envoy_types::pb::envoy::extensions::filters::listener::tls_inspector::v3::TlsInspector;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    http_connection_manager::{InternalAddressConfig, RouteSpecifier, UpgradeConfig},
    http_filter, HttpConnectionManager, HttpFilter,
};
use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::{tcp_proxy, TcpProxy};
use envoy_types::pb::google::protobuf::{Any, BoolValue, Duration, UInt32Value};
use envoy_types::util::pack_any;

use super::{names, original_dst_cluster_name, ListenerKind, ProxyListener, SOL_SOCKET, SO_MARK};
use cilium_api::cilium::{
    BpfMetadata, DownstreamTlsWrapperContext, L7Policy, NetworkFilter, UpstreamTlsWrapperContext,
};

/// The agent's defaults for `--http-request-timeout` (s) and `--http-retry-count`.
const REQUEST_TIMEOUT_S: i64 = 3600;
const RETRY_COUNT: u32 = 3;

/// The Listener the agent would push for `spec` (`getListenerConf`), plus
/// `transparent` and an SO_MARK socket option when the spec asks for them.
pub fn build_listener(spec: &ProxyListener) -> Listener {
    let (tls_variant, http) = match spec.kind {
        ListenerKind::Http { tls_variant } => (tls_variant, true),
        ListenerKind::Tcp { tls_variant } => (tls_variant, false),
    };
    let mut chains = Vec::new();
    for tls in [false, true] {
        if tls && !tls_variant {
            continue;
        }
        let cluster = original_dst_cluster_name(spec.is_ingress, tls);
        chains.push(if http {
            http_chain(spec, cluster, tls)
        } else {
            tcp_chain(spec, cluster, tls, None)
        });
    }
    let plain = original_dst_cluster_name(spec.is_ingress, false);
    for l7 in &spec.unsupported_l7_chains {
        chains.push(tcp_chain(spec, plain, false, Some(l7)));
    }
    Listener {
        name: spec.name.clone(),
        address: spec.addresses.first().map(socket_address),
        additional_addresses: spec
            .addresses
            .iter()
            .skip(1)
            .map(|a| AdditionalAddress {
                address: Some(socket_address(a)),
                ..Default::default()
            })
            .collect(),
        listener_filters: vec![
            listener_filter(names::TLS_INSPECTOR, pack_any(TlsInspector::default())),
            listener_filter(names::BPF_METADATA, pack_any(bpf_metadata(spec))),
        ],
        filter_chains: chains,
        transparent: spec.transparent.then_some(BoolValue { value: true }),
        socket_options: spec.mark.map_or_else(Vec::new, |m| vec![so_mark(m)]),
        ..Default::default()
    }
}

/// `(name, Any)` as an LDS response carries it.
pub fn listener_resource(spec: &ProxyListener) -> (String, Any) {
    (spec.name.clone(), pack_any(build_listener(spec)))
}

/// One of the agent's ORIGINAL_DST clusters (`egress-cluster`,
/// `ingress-cluster-tls`, ...); `tls` adds the cilium.tls_wrapper socket.
pub fn build_original_dst_cluster(name: &str, tls: bool) -> Cluster {
    Cluster {
        name: name.to_string(),
        cluster_discovery_type: Some(cluster::ClusterDiscoveryType::Type(
            cluster::DiscoveryType::OriginalDst as i32,
        )),
        connect_timeout: Some(seconds(2)),
        cleanup_interval: Some(Duration {
            seconds: 2,
            nanos: 500_000_000,
        }),
        lb_policy: cluster::LbPolicy::ClusterProvided as i32,
        transport_socket: tls.then(|| TransportSocket {
            name: names::TLS_WRAPPER.into(),
            config_type: Some(transport_socket::ConfigType::TypedConfig(pack_any(
                UpstreamTlsWrapperContext {},
            ))),
        }),
        ..Default::default()
    }
}

/// The four clusters every agent listener routes to.
pub fn agent_clusters() -> Vec<Cluster> {
    [(true, false), (true, true), (false, false), (false, true)]
        .into_iter()
        .map(|(ingress, tls)| {
            build_original_dst_cluster(original_dst_cluster_name(ingress, tls), tls)
        })
        .collect()
}

fn socket_address(a: &SocketAddr) -> Address {
    Address {
        address: Some(address::Address::SocketAddress(SocketAddress {
            protocol: socket_address::Protocol::Tcp as i32,
            address: a.ip().to_string(),
            port_specifier: Some(socket_address::PortSpecifier::PortValue(u32::from(
                a.port(),
            ))),
            ..Default::default()
        })),
    }
}

fn so_mark(mark: u32) -> SocketOption {
    SocketOption {
        description: "SO_MARK".into(),
        level: SOL_SOCKET,
        name: SO_MARK,
        value: Some(socket_option::Value::IntValue(i64::from(mark))),
        state: socket_option::SocketState::StatePrebind as i32,
        ..Default::default()
    }
}

fn listener_filter(name: &str, config: Any) -> ListenerFilter {
    ListenerFilter {
        name: name.into(),
        config_type: Some(listener_filter::ConfigType::TypedConfig(config)),
        filter_disabled: None,
    }
}

fn network_filter(name: &str, config: Any) -> Filter {
    Filter {
        name: name.into(),
        config_type: Some(filter::ConfigType::TypedConfig(config)),
    }
}

/// Defaults are left unset, as the agent leaves them, so that a summary
/// translated from the agent's message builds back the same bytes.
fn bpf_metadata(spec: &ProxyListener) -> BpfMetadata {
    let b = &spec.bpf;
    let ttl = (b.cache_entry_ttl != std::time::Duration::from_millis(3))
        .then(|| pb_duration(b.cache_entry_ttl));
    let gc =
        (b.cache_gc_interval != b.cache_entry_ttl * 10).then(|| pb_duration(b.cache_gc_interval));
    BpfMetadata {
        bpf_root: b.bpf_root.clone().unwrap_or_default(),
        is_ingress: spec.is_ingress,
        use_original_source_address: b.use_original_source_address,
        is_l7lb: b.is_l7lb,
        ipv4_source_address: b
            .ipv4_source_address
            .map(|a| a.to_string())
            .unwrap_or_default(),
        ipv6_source_address: b
            .ipv6_source_address
            .map(|a| a.to_string())
            .unwrap_or_default(),
        enforce_policy_on_l7lb: b.enforce_policy_on_l7lb,
        proxy_id: spec.proxy_id,
        policy_update_warning_limit: None,
        l7lb_policy_name: b.l7lb_policy_name.clone().unwrap_or_default(),
        original_source_so_linger_time: b.original_source_so_linger,
        ipcache_name: b.ipcache_name.clone(),
        use_nphds: b.use_nphds,
        cache_entry_ttl: ttl,
        cache_gc_interval: gc,
        cilium_config_source: None,
    }
}

fn pb_duration(d: std::time::Duration) -> Duration {
    Duration {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(d.subsec_nanos()).unwrap_or_default(),
    }
}

fn seconds(s: i64) -> Duration {
    Duration {
        seconds: s,
        nanos: 0,
    }
}

/// The agent's TLS variant: selected by the TLS inspector, terminated and
/// re-originated by cilium.tls_wrapper.
fn tls_wrap(chain: &mut FilterChain) {
    chain
        .filter_chain_match
        .get_or_insert_with(Default::default)
        .transport_protocol = "tls".into();
    chain.transport_socket = Some(TransportSocket {
        name: names::TLS_WRAPPER.into(),
        config_type: Some(transport_socket::ConfigType::TypedConfig(pack_any(
            DownstreamTlsWrapperContext {},
        ))),
    });
}

fn http_chain(spec: &ProxyListener, cluster: &str, tls: bool) -> FilterChain {
    let mut chain = FilterChain {
        filters: vec![
            network_filter(names::CILIUM_NETWORK, pack_any(NetworkFilter::default())),
            network_filter(names::HTTP_CONNECTION_MANAGER, pack_any(hcm(spec, cluster))),
        ],
        ..Default::default()
    };
    if tls {
        tls_wrap(&mut chain);
    }
    chain
}

/// `l7`: the agent's application-protocol chain for that L7 filter.
fn tcp_chain(spec: &ProxyListener, cluster: &str, tls: bool, l7: Option<&str>) -> FilterChain {
    let mut filters: Vec<Filter> = l7
        .map(|name| Filter {
            name: name.into(),
            config_type: None,
        })
        .into_iter()
        .collect();
    let network = NetworkFilter {
        access_log_path: spec.access_log_path.clone().unwrap_or_default(),
        ..Default::default()
    };
    let tcp = TcpProxy {
        stat_prefix: "tcp_proxy".into(),
        cluster_specifier: Some(tcp_proxy::ClusterSpecifier::Cluster(cluster.into())),
        ..Default::default()
    };
    filters.push(network_filter(names::CILIUM_NETWORK, pack_any(network)));
    filters.push(network_filter(names::TCP_PROXY, pack_any(tcp)));
    let mut chain = FilterChain {
        // The agent always names raw_buffer on TCP chains, or Envoy would
        // insert a TLS inspector of its own.
        filter_chain_match: Some(FilterChainMatch {
            transport_protocol: "raw_buffer".into(),
            application_protocols: l7.map(String::from).into_iter().collect(),
            ..Default::default()
        }),
        filters,
        ..Default::default()
    };
    if tls {
        tls_wrap(&mut chain);
    }
    chain
}

fn hcm(spec: &ProxyListener, cluster: &str) -> HttpConnectionManager {
    let l7policy = L7Policy {
        access_log_path: spec.access_log_path.clone().unwrap_or_default(),
        denied_403_body: spec.denied_403_body.clone().unwrap_or_default(),
    };
    let http_filter = |name: &str, config: Any| HttpFilter {
        name: name.into(),
        config_type: Some(http_filter::ConfigType::TypedConfig(config)),
        ..Default::default()
    };
    let cidr = |prefix: &str, len: u32| CidrRange {
        address_prefix: prefix.into(),
        prefix_len: Some(UInt32Value { value: len }),
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
            http_filter(names::L7_POLICY, pack_any(l7policy)),
            http_filter(names::ROUTER, pack_any(Router::default())),
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
        stream_idle_timeout: Some(seconds(0)),
        route_specifier: Some(RouteSpecifier::RouteConfig(RouteConfiguration {
            virtual_hosts: vec![VirtualHost {
                name: "default_route".into(),
                domains: vec!["*".into()],
                routes: vec![forward(cluster, true), forward(cluster, false)],
                ..Default::default()
            }],
            ..Default::default()
        })),
        ..Default::default()
    }
}

/// A catch-all route to `cluster`; `grpc` is the agent's first route, which
/// matches gRPC requests and honours `grpc-timeout`.
fn forward(cluster: &str, grpc: bool) -> Route {
    Route {
        r#match: Some(RouteMatch {
            path_specifier: Some(route_match::PathSpecifier::Prefix("/".into())),
            grpc: grpc.then(Default::default),
            ..Default::default()
        }),
        action: Some(route::Action::Route(RouteAction {
            cluster_specifier: Some(route_action::ClusterSpecifier::Cluster(cluster.into())),
            timeout: Some(seconds(REQUEST_TIMEOUT_S)),
            max_stream_duration: grpc.then(|| route_action::MaxStreamDuration {
                grpc_timeout_header_max: Some(seconds(0)),
                ..Default::default()
            }),
            retry_policy: Some(RetryPolicy {
                retry_on: "5xx".into(),
                num_retries: Some(UInt32Value { value: RETRY_COUNT }),
                per_try_timeout: Some(seconds(0)),
                ..Default::default()
            }),
            ..Default::default()
        })),
        ..Default::default()
    }
}
