//! The filter chains of an agent listener: which proxy runs behind it (HTTP
//! or TCP), whether the TLS-interception variant is there, and the cilium
//! filter configs that matter (access-log socket, 403 body).

use envoy_types::pb::envoy::config::listener::v3::{FilterChain, FilterChainMatch, Listener};
use envoy_types::pb::envoy::config::route::v3::{route, route_action, RouteConfiguration};
use envoy_types::pb::envoy::extensions::filters::http::router::v3::Router;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    http_connection_manager::RouteSpecifier, http_filter, HttpConnectionManager, HttpFilter,
};
use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::{tcp_proxy, TcpProxy};
use envoy_types::pb::google::protobuf::Any;

use super::{
    fail, filter_config, names, non_empty, original_dst_cluster_name, transport_socket_is_tls,
    typed, At, ListenerKind, Reason, ECDS, R,
};
use cilium_api::cilium::{L7Policy, NetworkFilter};

/// The cluster the agent's own admin and metrics listeners route to.
const ADMIN_CLUSTER: &str = "/envoy-admin";

/// What the chains of one listener add up to.
pub(super) struct Chains {
    pub kind: ListenerKind,
    pub access_log_path: Option<String>,
    pub denied_403_body: Option<String>,
    pub gated: Vec<String>,
}

/// One plain-text or TLS chain running cilium.network + HCM or tcp_proxy.
struct ChainInfo {
    http: bool,
    access_log_path: Option<String>,
    denied_403_body: Option<String>,
}

enum Chain {
    Primary {
        tls: bool,
        info: ChainInfo,
    },
    /// Selected only by an application protocol (an L7 filter name).
    Gated(String),
}

pub(super) fn filter_chains(l: &Listener, is_ingress: bool) -> R<Chains> {
    if l.filter_chains.is_empty() {
        return fail(
            "filter_chains",
            Reason::Invalid("none; Portcullis needs the plain-text chain"),
        );
    }
    // [plain-text, TLS]: Envoy picks one chain per transport protocol, so a
    // second chain for the same one could never be selected.
    let mut slots: [Option<(usize, ChainInfo)>; 2] = [None, None];
    let mut gated: Vec<String> = Vec::new();
    for (i, c) in l.filter_chains.iter().enumerate() {
        match chain(c, i, is_ingress)? {
            Chain::Primary { tls, info } => {
                if let Some((j, _)) = &slots[usize::from(tls)] {
                    let which = if tls { "TLS" } else { "plain-text" };
                    let reason = Reason::SecondChain { which, first: *j };
                    return fail(format!("filter_chains[{i}]"), reason);
                }
                slots[usize::from(tls)] = Some((i, info));
            }
            Chain::Gated(name) if gated.contains(&name) => {
                return fail(
                    format!("filter_chains[{i}]"),
                    Reason::SecondGatedChain(name),
                );
            }
            Chain::Gated(name) => gated.push(name),
        }
    }
    let [plain, tls] = slots;
    let Some((_, p)) = plain else {
        return fail(
            "filter_chains",
            Reason::Invalid("no plain-text chain (transport_protocol raw_buffer or unset)"),
        );
    };
    let (mut access_log_path, mut denied_403_body) = (p.access_log_path, p.denied_403_body);
    if let Some((j, t)) = &tls {
        let part = format!("filter_chains[{j}]");
        if t.http != p.http {
            let reason = Reason::ChainKinds {
                tls: kind_name(t.http),
                plain: kind_name(p.http),
            };
            return fail(part, reason);
        }
        merge(
            &mut access_log_path,
            &t.access_log_path,
            &part,
            "access_log_path",
        )?;
        merge(
            &mut denied_403_body,
            &t.denied_403_body,
            &part,
            "denied_403_body",
        )?;
    }
    let tls_variant = tls.is_some();
    Ok(Chains {
        kind: if p.http {
            ListenerKind::Http { tls_variant }
        } else {
            ListenerKind::Tcp { tls_variant }
        },
        access_log_path,
        denied_403_body,
        gated,
    })
}

fn kind_name(http: bool) -> &'static str {
    if http {
        "HTTP"
    } else {
        "TCP"
    }
}

/// One listener has one access-log socket and one 403 body; chains that
/// disagree would need per-chain state Portcullis does not keep.
fn merge(
    into: &mut Option<String>,
    other: &Option<String>,
    part: &str,
    field: &'static str,
) -> R<()> {
    match (into.as_ref(), other) {
        (Some(a), Some(b)) if a != b => fail(
            part,
            Reason::ChainsDiffer {
                field,
                tls: b.clone(),
                plain: a.clone(),
            },
        ),
        (None, Some(b)) => {
            *into = Some(b.clone());
            Ok(())
        }
        _ => Ok(()),
    }
}

fn chain(c: &FilterChain, i: usize, is_ingress: bool) -> R<Chain> {
    let part = format!("filter_chains[{i}]");
    let default = FilterChainMatch::default();
    let m = c.filter_chain_match.as_ref().unwrap_or(&default);
    if let Some(field) = unsupported_match_field(m) {
        let reason = Reason::Unsupported(
            "is not supported; Portcullis selects a chain by transport protocol only",
        );
        return fail(format!("{part}.filter_chain_match.{field}"), reason);
    }
    let tls = match m.transport_protocol.as_str() {
        "" | "raw_buffer" => false,
        "tls" => true,
        other => {
            let reason = Reason::TransportProtocol(other.to_string());
            return fail(
                format!("{part}.filter_chain_match.transport_protocol"),
                reason,
            );
        }
    };
    let ts_part = || format!("{part}.transport_socket");
    let wrapped = transport_socket_is_tls(c.transport_socket.as_ref(), false).at(ts_part)?;
    match (tls, wrapped) {
        (true, false) => {
            let reason = Reason::Unsupported(
                "transport_protocol tls without cilium.tls_wrapper: TLS passthrough is not supported",
            );
            return fail(ts_part(), reason);
        }
        (false, true) => {
            return fail(
                ts_part(),
                Reason::Invalid(
                    "cilium.tls_wrapper on a chain that does not match transport_protocol tls",
                ),
            )
        }
        _ => {}
    }
    // Deprecated in Envoy, but still honoured there, so still refused here.
    #[allow(deprecated)]
    if c.use_proxy_proto.is_some_and(|b| b.value) {
        return fail(
            format!("{part}.use_proxy_proto"),
            Reason::Unsupported("the PROXY protocol is not supported"),
        );
    }
    if !m.application_protocols.is_empty() {
        return gated(c, m, &part).map(Chain::Gated);
    }

    let got: Vec<&str> = c.filters.iter().map(|f| f.name.as_str()).collect();
    let http = match got.as_slice() {
        [names::CILIUM_NETWORK, names::HTTP_CONNECTION_MANAGER] => true,
        [names::CILIUM_NETWORK, names::TCP_PROXY] => false,
        _ => {
            let reason = Reason::NetworkFilters(got.iter().map(|f| f.to_string()).collect());
            return fail(format!("{part}.filters"), reason);
        }
    };
    let part = part.as_str();
    let fpart = |k: usize| move || format!("{part}.filters[{k}] {}", c.filters[k].name);
    let network: NetworkFilter = filter_config(&c.filters[0]).and_then(typed).at(fpart(0))?;
    let expected = original_dst_cluster_name(is_ingress, tls);
    let any = filter_config(&c.filters[1]).at(fpart(1))?;
    let mut info = ChainInfo {
        http,
        access_log_path: network_access_log(&network),
        denied_403_body: None,
    };
    if http {
        let hcm: HttpConnectionManager = typed(any).at(fpart(1))?;
        let l7 = check_hcm(&hcm, expected).at(fpart(1))?;
        // cilium.network is empty on the agent's HTTP chains; the HTTP
        // filter's path is the one that logs requests.
        info.access_log_path = non_empty(&l7.access_log_path).or(info.access_log_path);
        info.denied_403_body = non_empty(&l7.denied_403_body);
    } else {
        let tp: TcpProxy = typed(any).at(fpart(1))?;
        tcp_proxy_cluster(&tp, expected).at(fpart(1))?;
    }
    Ok(Chain::Primary { tls, info })
}

/// The agent's `mysql_proxy` / `mongo_proxy` chains: `[<filter>,
/// cilium.network, tcp_proxy]`, selected only when policy names `<filter>`
/// as its L7 protocol. Portcullis never selects them, so their insides are
/// not checked further; the caller refuses a policy that needs one.
fn gated(c: &FilterChain, m: &FilterChainMatch, part: &str) -> R<String> {
    let [proto] = m.application_protocols.as_slice() else {
        let reason = Reason::Unsupported("more than one application protocol is not supported");
        return fail(
            format!("{part}.filter_chain_match.application_protocols"),
            reason,
        );
    };
    match c.filters.first() {
        Some(f) if f.name == *proto => Ok(proto.clone()),
        _ => fail(
            format!("{part}.filters"),
            Reason::GatedFirstFilter(proto.clone()),
        ),
    }
}

fn http_filter_config(f: &HttpFilter) -> Result<Option<&Any>, Reason> {
    match &f.config_type {
        Some(http_filter::ConfigType::TypedConfig(a)) => Ok(Some(a)),
        Some(http_filter::ConfigType::ConfigDiscovery(_)) => Err(ECDS),
        None => Ok(None),
    }
}

/// The HCM must run exactly cilium.l7policy then the router, with inline
/// routes that all go to the chain's ORIGINAL_DST cluster.
fn check_hcm(hcm: &HttpConnectionManager, expected: &str) -> Result<L7Policy, Reason> {
    let rc = match &hcm.route_specifier {
        Some(RouteSpecifier::RouteConfig(rc)) => rc,
        Some(RouteSpecifier::Rds(_)) => {
            return Err(Reason::Unsupported(
                "rds: routes from RDS are not supported; the agent sends them inline",
            ))
        }
        Some(RouteSpecifier::ScopedRoutes(_)) => {
            return Err(Reason::Unsupported("scoped_routes are not supported"))
        }
        None => return Err(Reason::Invalid("no route_config")),
    };
    routes_target(rc, expected)?;
    let got: Vec<&str> = hcm.http_filters.iter().map(|f| f.name.as_str()).collect();
    if got != [names::L7_POLICY, names::ROUTER] {
        return Err(Reason::HttpFilters(
            got.iter().map(|f| f.to_string()).collect(),
        ));
    }
    // Envoy would skip a disabled filter; enforcing policy is not optional.
    if hcm.http_filters.iter().any(|f| f.disabled) {
        return Err(Reason::Unsupported(
            "a disabled HTTP filter is not supported",
        ));
    }
    let in_filter = |index, name| {
        move |r| Reason::InHttpFilter {
            index,
            name,
            reason: Box::new(r),
        }
    };
    let l7 = http_filter_config(&hcm.http_filters[0])
        .and_then(typed::<L7Policy>)
        .map_err(in_filter(0, names::L7_POLICY))?;
    let router = http_filter_config(&hcm.http_filters[1])
        .and_then(|a| a.map_or(Ok(()), |a| typed::<Router>(Some(a)).map(drop)));
    router.map_err(in_filter(1, names::ROUTER))?;
    Ok(l7)
}

/// Every route must forward to `cluster`; route matches, timeouts and
/// retries are ignored (Portcullis forwards each allowed request as is).
fn routes_target(rc: &RouteConfiguration, cluster: &str) -> Result<(), Reason> {
    let mut routes = 0;
    for (i, vh) in rc.virtual_hosts.iter().enumerate() {
        for (j, r) in vh.routes.iter().enumerate() {
            let at = format!("route_config.virtual_hosts[{i}].routes[{j}]");
            let Some(route::Action::Route(ra)) = &r.action else {
                return Err(Reason::RouteAction { at });
            };
            match &ra.cluster_specifier {
                Some(route_action::ClusterSpecifier::Cluster(c)) if c == cluster => routes += 1,
                Some(route_action::ClusterSpecifier::Cluster(c)) => {
                    return Err(Reason::RouteCluster {
                        at,
                        got: c.clone(),
                        want: cluster.to_string(),
                    })
                }
                _ => return Err(Reason::RouteClusterKind { at }),
            }
        }
    }
    if routes == 0 {
        return Err(Reason::Invalid("route_config has no route; Portcullis forwards every request to the original destination"));
    }
    Ok(())
}

/// The agent's own Envoy admin and Prometheus listeners (pushed over LDS in
/// embedded mode): no listener filters, and every chain only an HCM with
/// the router to `/envoy-admin`. Anything else under these names is
/// translated, and fails, like any listener.
pub(super) fn agent_service_listener(l: &Listener) -> Option<String> {
    let what = match l.name.as_str() {
        "envoy-admin-listener" => "the agent's Envoy admin listener",
        "envoy-prometheus-metrics-listener" => "the agent's Envoy Prometheus listener",
        _ => return None,
    };
    if !l.listener_filters.is_empty() || l.filter_chains.is_empty() {
        return None;
    }
    let admin_only = l.filter_chains.iter().all(|c| match c.filters.as_slice() {
        [f] if f.name == names::HTTP_CONNECTION_MANAGER => filter_config(f)
            .and_then(typed::<HttpConnectionManager>)
            .is_ok_and(|h| {
                h.http_filters.iter().all(|hf| hf.name == names::ROUTER)
                    && matches!(&h.route_specifier,
                        Some(RouteSpecifier::RouteConfig(rc)) if routes_target(rc, ADMIN_CLUSTER).is_ok())
            }),
        _ => false,
    });
    admin_only.then(|| format!("{what}: Portcullis serves its own admin and metrics endpoints"))
}

/// The filter_chain_match fields Portcullis cannot select on.
fn unsupported_match_field(m: &FilterChainMatch) -> Option<&'static str> {
    [
        ("destination_port", m.destination_port.is_some()),
        ("prefix_ranges", !m.prefix_ranges.is_empty()),
        (
            "address_suffix",
            !m.address_suffix.is_empty() || m.suffix_len.is_some(),
        ),
        (
            "direct_source_prefix_ranges",
            !m.direct_source_prefix_ranges.is_empty(),
        ),
        ("source_type", m.source_type != 0),
        ("source_prefix_ranges", !m.source_prefix_ranges.is_empty()),
        ("source_ports", !m.source_ports.is_empty()),
        ("server_names", !m.server_names.is_empty()),
    ]
    .into_iter()
    .find_map(|(name, set)| set.then_some(name))
}

/// The cluster a tcp_proxy forwards to, checked against the agent's choice.
fn tcp_proxy_cluster(tp: &TcpProxy, expected: &str) -> Result<(), Reason> {
    if tp.tunneling_config.is_some() {
        return Err(Reason::Unsupported("tunneling_config is not supported"));
    }
    match &tp.cluster_specifier {
        Some(tcp_proxy::ClusterSpecifier::Cluster(c)) if c == expected => Ok(()),
        Some(tcp_proxy::ClusterSpecifier::Cluster(c)) => Err(Reason::ProxyCluster {
            got: c.clone(),
            want: expected.to_string(),
        }),
        Some(tcp_proxy::ClusterSpecifier::WeightedClusters(_)) => {
            Err(Reason::Unsupported("weighted_clusters are not supported"))
        }
        None => Err(Reason::Invalid("no cluster")),
    }
}

/// `cilium.network`'s access-log path: the field, or the proxylib parameter
/// older agents used.
fn network_access_log(n: &NetworkFilter) -> Option<String> {
    non_empty(&n.access_log_path).or_else(|| n.proxylib_params.get("access-log-path").cloned())
}
