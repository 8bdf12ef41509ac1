//! LDS and CDS: the Envoy `Listener`s the Cilium agent pushes (the shape of
//! its `getListenerConf`) translated into what Portcullis needs to open a
//! listener ([`ProxyListener`]), and the filter for CDS ([`accept_cluster`]).
//!
//! The translation is pure and strict. Parts that do not change what
//! Portcullis does (stat prefixes, timeouts, retry policy, route matches,
//! access-log config beyond the socket path) are ignored; anything Portcullis
//! cannot honour is a [`ListenerError`] naming the listener, the part and the
//! reason, so that the update is NACKed instead of silently enforcing
//! something else. [`build_listener`] produces the agent's shape for the
//! in-process control plane, and `translate_listener(&build_listener(p)) == p`.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::core::v3::{
    address, socket_address, socket_option, transport_socket, Address, TransportSocket,
};
use envoy_types::pb::envoy::config::listener::v3::{filter, Filter, Listener};
use envoy_types::pb::envoy::extensions::transport_sockets::raw_buffer::v3::RawBuffer;
use envoy_types::pb::google::protobuf::Any;
use prost::{Message, Name};

use cilium_api::cilium::{DownstreamTlsWrapperContext, UpstreamTlsWrapperContext};

mod bpf;
mod build;
mod chains;
mod cluster;
mod error;
#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod tests;

pub use build::{agent_clusters, build_listener, build_original_dst_cluster, listener_resource};
pub use cluster::{accept_cluster, accept_clusters, ClusterKind, ClusterSummary};
pub use error::{ListenerError, Reason};

/// Extension names as they appear in the agent's resources.
pub mod names {
    pub const BPF_METADATA: &str = "cilium.bpf_metadata";
    pub const TLS_INSPECTOR: &str = "envoy.filters.listener.tls_inspector";
    pub const CILIUM_NETWORK: &str = "cilium.network";
    pub const HTTP_CONNECTION_MANAGER: &str = "envoy.filters.network.http_connection_manager";
    pub const TCP_PROXY: &str = "envoy.filters.network.tcp_proxy";
    pub const L7_POLICY: &str = "cilium.l7policy";
    pub const ROUTER: &str = "envoy.filters.http.router";
    pub const TLS_WRAPPER: &str = "cilium.tls_wrapper";
    pub const RAW_BUFFER: &str = "envoy.transport_sockets.raw_buffer";
}

/// `SOL_SOCKET` / `SO_MARK` on Linux, as Envoy's `SocketOption` spells them.
const SOL_SOCKET: i64 = 1;
const SO_MARK: i64 = 36;

/// What Portcullis needs to open one proxy listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyListener {
    pub name: String,
    /// `address` then `additional_addresses` (the agent: 127.0.0.1 and ::1).
    pub addresses: Vec<SocketAddr>,
    pub is_ingress: bool,
    /// `BpfMetadata.proxy_id` (the agent uses the proxy port); policy rules
    /// with a proxy_id apply only on the listener with the same id.
    pub proxy_id: u32,
    pub kind: ListenerKind,
    /// `Listener.transparent` only. Under an agent cilium-envoy also sets
    /// IP_TRANSPARENT from `cilium.bpf_metadata`; see [`Self::cilium_listen_mark`].
    pub transparent: bool,
    /// An explicit SO_MARK socket option on the listener, if any.
    pub mark: Option<u32>,
    pub bpf: BpfMetadataSummary,
    /// The agent's access-log socket, from `cilium.l7policy` or `cilium.network`.
    pub access_log_path: Option<String>,
    /// `L7Policy.denied_403_body`; `None` means "Access denied".
    pub denied_403_body: Option<String>,
    /// L7 network filters of application-protocol chains (the agent's
    /// `envoy.filters.network.mysql_proxy` / `mongo_proxy` chains). Envoy
    /// selects them only for a policy whose `l7_proto` names the filter;
    /// Portcullis does not run them, so such a policy must be refused.
    pub unsupported_l7_chains: Vec<String>,
}

impl ProxyListener {
    /// The mark `cilium.bpf_metadata` puts on the listening socket in
    /// cilium-envoy (0x0A00 ingress, 0x0B00 egress) unless an explicit
    /// SO_MARK was given: the datapath only looks at the direction bits.
    pub fn cilium_listen_mark(&self) -> u32 {
        self.mark
            .unwrap_or(if self.is_ingress { 0x0A00 } else { 0x0B00 })
    }
}

/// Which proxy runs behind the listener. `tls_variant`: the listener also
/// has the agent's TLS-interception chain (`transport_protocol: tls` with the
/// `cilium.tls_wrapper` transport socket) next to the plain one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerKind {
    /// cilium.network + HTTP connection manager with cilium.l7policy.
    Http { tls_variant: bool },
    /// cilium.network + tcp_proxy (Kafka and other parsers, or plain L4).
    Tcp { tls_variant: bool },
}

/// `cilium.bpf_metadata` with defaults resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BpfMetadataSummary {
    /// bpffs root; `None` when no BPF maps are to be used.
    pub bpf_root: Option<String>,
    /// ipcache pin name under `<bpf_root>/tc/globals/` (default `cilium_ipcache`).
    pub ipcache_name: String,
    pub use_original_source_address: bool,
    /// Identities come from NPHDS instead of the ipcache map.
    pub use_nphds: bool,
    pub is_l7lb: bool,
    pub enforce_policy_on_l7lb: bool,
    pub ipv4_source_address: Option<Ipv4Addr>,
    pub ipv6_source_address: Option<Ipv6Addr>,
    pub l7lb_policy_name: Option<String>,
    /// SO_LINGER seconds for original-source upstream sockets.
    pub original_source_so_linger: Option<u32>,
    /// ipcache result reuse (default 3 ms).
    pub cache_entry_ttl: Duration,
    /// ipcache cache GC period (default ten times the TTL).
    pub cache_gc_interval: Duration,
}

/// A listener from the agent that Portcullis deliberately does not open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnoredListener {
    pub name: String,
    pub reason: String,
}

/// The result of one LDS update.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListenerSet {
    pub listeners: Vec<ProxyListener>,
    /// The agent's own Envoy admin and metrics listeners; log at debug.
    pub ignored: Vec<IgnoredListener>,
}

/// A failure inside one resource, before it is named: (part, reason).
struct Fail(String, Reason);
type R<T> = Result<T, Fail>;

fn fail<T>(part: impl Into<String>, reason: Reason) -> R<T> {
    Err(Fail(part.into(), reason))
}

/// Attaches `part` to a reason-only error.
trait At<T> {
    fn at(self, part: impl FnOnce() -> String) -> R<T>;
}

impl<T> At<T> for Result<T, Reason> {
    fn at(self, part: impl FnOnce() -> String) -> R<T> {
        self.map_err(|reason| Fail(part(), reason))
    }
}

/// The ORIGINAL_DST cluster the agent routes a chain to.
pub fn original_dst_cluster_name(is_ingress: bool, tls: bool) -> &'static str {
    match (is_ingress, tls) {
        (true, false) => "ingress-cluster",
        (true, true) => "ingress-cluster-tls",
        (false, false) => "egress-cluster",
        (false, true) => "egress-cluster-tls",
    }
}

/// Translates one Listener.
pub fn translate_listener(l: &Listener) -> Result<ProxyListener, ListenerError> {
    translate(l).map_err(|Fail(part, reason)| ListenerError {
        kind: "listener",
        resource: l.name.clone(),
        part,
        reason: Box::new(reason),
    })
}

/// Translates a whole LDS update, all or nothing: one bad listener, or two
/// listeners on one address, rejects the update.
pub fn translate_listeners(resources: &[(String, Any)]) -> Result<ListenerSet, ListenerError> {
    let mut set = ListenerSet::default();
    let mut bound: Vec<(SocketAddr, String)> = Vec::new();
    let mut seen = HashSet::new();
    for (name, any) in resources {
        let l: Listener = decode_resource("listener", name, any)?;
        if !seen.insert(name.as_str()) {
            return Err(named("listener", name, "resource", Reason::SentTwice));
        }
        if let Some(reason) = chains::agent_service_listener(&l) {
            set.ignored.push(IgnoredListener {
                name: name.clone(),
                reason,
            });
            continue;
        }
        let p = translate_listener(&l)?;
        for (k, a) in p.addresses.iter().enumerate() {
            if let Some((_, other)) = bound.iter().find(|(b, _)| conflicts(a, b)) {
                let reason = Reason::AlsoBound {
                    addr: *a,
                    other: other.clone(),
                };
                return Err(named("listener", name, address_part(k), reason));
            }
        }
        bound.extend(p.addresses.iter().map(|a| (*a, name.clone())));
        set.listeners.push(p);
    }
    Ok(set)
}

fn named(kind: &'static str, name: &str, part: impl Into<String>, reason: Reason) -> ListenerError {
    ListenerError {
        kind,
        resource: name.to_string(),
        part: part.into(),
        reason: Box::new(reason),
    }
}

/// Decodes an LDS/CDS resource and checks that it carries the name it was
/// sent under (the caller keys its state by that name).
fn decode_resource<M: Message + Name + Default + HasName>(
    kind: &'static str,
    name: &str,
    any: &Any,
) -> Result<M, ListenerError> {
    if !holds::<M>(any) {
        let reason = Reason::ResourceType {
            got: any.type_url.clone(),
            want: M::type_url(),
        };
        return Err(named(kind, name, "resource", reason));
    }
    let m = M::decode(any.value.as_slice())
        .map_err(|e| named(kind, name, "resource", Reason::ResourceDecode(e)))?;
    if m.name() != name {
        let reason = Reason::NameMismatch {
            sent: name.to_string(),
            carried: m.name().to_string(),
        };
        return Err(named(kind, name, "name", reason));
    }
    Ok(m)
}

trait HasName {
    fn name(&self) -> &str;
}
impl HasName for Listener {
    fn name(&self) -> &str {
        &self.name
    }
}
impl HasName for Cluster {
    fn name(&self) -> &str {
        &self.name
    }
}

/// Whether `any` holds an `M`. The type is the text after the last `/`, as
/// protobuf defines it, so any URL host is accepted.
fn holds<M: Name>(any: &Any) -> bool {
    any.type_url.rsplit('/').next() == Some(M::full_name().as_str())
}

/// Decodes a filter's typed_config, which must hold `M`.
fn typed<M: Message + Name + Default>(any: Option<&Any>) -> Result<M, Reason> {
    let Some(any) = any else {
        return Err(Reason::Invalid("typed_config is missing"));
    };
    if !holds::<M>(any) {
        return Err(Reason::ConfigType {
            got: any.type_url.clone(),
            want: M::type_url(),
        });
    }
    M::decode(any.value.as_slice()).map_err(Reason::ConfigDecode)
}

/// The typed config of a network filter, if any.
fn filter_config(f: &Filter) -> Result<Option<&Any>, Reason> {
    match &f.config_type {
        Some(filter::ConfigType::TypedConfig(a)) => Ok(Some(a)),
        Some(filter::ConfigType::ConfigDiscovery(_)) => Err(ECDS),
        None => Ok(None),
    }
}

/// Extension config discovery, refused wherever a config can come from it.
const ECDS: Reason = Reason::Unsupported("config_discovery (ECDS) is not supported");

fn address_part(k: usize) -> String {
    match k {
        0 => "address".into(),
        k => format!("additional_addresses[{}].address", k - 1),
    }
}

/// Two listening sockets collide on the same port when their IPs are equal
/// or one is a wildcard covering the other. `[::]` covers IPv4 too: Linux
/// binds it dual-stack unless `net.ipv6.bindv6only` says otherwise.
fn conflicts(a: &SocketAddr, b: &SocketAddr) -> bool {
    let covers =
        |w: &SocketAddr, o: &SocketAddr| w.ip().is_unspecified() && (w.is_ipv6() || o.is_ipv4());
    a.port() == b.port() && (a.ip() == b.ip() || covers(a, b) || covers(b, a))
}

fn translate(l: &Listener) -> R<ProxyListener> {
    if l.name.is_empty() {
        return fail("name", Reason::Invalid("must not be empty"));
    }
    reject_unsupported(l)?;
    let addresses = addresses(l)?;
    let mark = socket_mark(l)?;
    let (is_ingress, proxy_id, bpf) = bpf::listener_filters(l)?;
    let c = chains::filter_chains(l, is_ingress)?;
    Ok(ProxyListener {
        name: l.name.clone(),
        addresses,
        is_ingress,
        proxy_id,
        kind: c.kind,
        transparent: l.transparent.is_some_and(|b| b.value),
        mark,
        bpf,
        access_log_path: c.access_log_path,
        denied_403_body: c.denied_403_body,
        unsupported_l7_chains: c.gated,
    })
}

/// Listener-level features Portcullis has no equivalent for.
fn reject_unsupported(l: &Listener) -> R<()> {
    let tcp_only =
        Reason::Unsupported("UDP listeners are not supported; Portcullis proxies TCP only");
    if l.udp_listener_config.is_some() {
        return fail("udp_listener_config", tcp_only);
    }
    if l.api_listener.is_some() {
        return fail(
            "api_listener",
            Reason::Unsupported("an API listener has no socket to open"),
        );
    }
    if l.listener_specifier.is_some() {
        return fail(
            "internal_listener",
            Reason::Unsupported("Envoy internal listeners are not supported"),
        );
    }
    if l.filter_chain_matcher.is_some() {
        return fail(
            "filter_chain_matcher",
            Reason::Unsupported("is not supported; chains are selected by transport protocol"),
        );
    }
    if l.default_filter_chain.is_some() {
        return fail(
            "default_filter_chain",
            Reason::Unsupported("is not supported; chains are selected by transport protocol"),
        );
    }
    if l.fcds_config.is_some() {
        return fail(
            "fcds_config",
            Reason::Unsupported("filter chain discovery is not supported"),
        );
    }
    if l.bind_to_port.is_some_and(|b| !b.value) {
        return fail(
            "bind_to_port",
            Reason::Unsupported("false is not supported; Portcullis binds every listener"),
        );
    }
    if l.freebind.is_some_and(|b| b.value) {
        return fail(
            "freebind",
            Reason::Unsupported("IP_FREEBIND is not supported"),
        );
    }
    Ok(())
}

fn addresses(l: &Listener) -> R<Vec<SocketAddr>> {
    let mut out = vec![socket_addr(l.address.as_ref(), "address")?];
    for (i, a) in l.additional_addresses.iter().enumerate() {
        let part = format!("additional_addresses[{i}]");
        if a.socket_options.is_some() || a.tcp_keepalive.is_some() {
            return fail(
                part.clone(),
                Reason::Unsupported("per-address socket options are not supported"),
            );
        }
        let addr = socket_addr(a.address.as_ref(), &format!("{part}.address"))?;
        if let Some(prev) = out.iter().find(|p| conflicts(p, &addr)) {
            let reason = Reason::Collides { addr, prev: *prev };
            return fail(format!("{part}.address"), reason);
        }
        out.push(addr);
    }
    Ok(out)
}

fn socket_addr(a: Option<&Address>, part: &str) -> R<SocketAddr> {
    let s = match a.and_then(|a| a.address.as_ref()) {
        None => {
            return fail(
                part,
                Reason::Invalid("missing; Portcullis needs an IP socket address"),
            )
        }
        Some(address::Address::Pipe(p)) => {
            return fail(part, Reason::Pipe(p.path.clone()));
        }
        Some(address::Address::EnvoyInternalAddress(_)) => {
            return fail(
                part,
                Reason::Unsupported(
                    "an Envoy internal address: Portcullis listens on TCP sockets only",
                ),
            )
        }
        Some(address::Address::SocketAddress(s)) => s,
    };
    if s.protocol != socket_address::Protocol::Tcp as i32 {
        return fail(
            format!("{part}.protocol"),
            Reason::Unsupported("UDP listeners are not supported; Portcullis proxies TCP only"),
        );
    }
    if !s.resolver_name.is_empty() || !s.network_namespace_filepath.is_empty() {
        return fail(
            part,
            Reason::Unsupported("custom resolvers and network namespaces are not supported"),
        );
    }
    let ip: IpAddr = s.address.parse().map_err(|_| {
        Fail(
            format!("{part}.address"),
            Reason::NotAnIp(s.address.clone()),
        )
    })?;
    let port = match &s.port_specifier {
        Some(socket_address::PortSpecifier::PortValue(p)) => *p,
        Some(socket_address::PortSpecifier::NamedPort(n)) => {
            return fail(format!("{part}.named_port"), Reason::NamedPort(n.clone()))
        }
        None => 0,
    };
    match u16::try_from(port) {
        Ok(p) if p != 0 => Ok(SocketAddr::new(ip, p)),
        _ => fail(format!("{part}.port_value"), Reason::NotAPort(port)),
    }
}

/// Only SO_MARK is understood; any other literal socket option would be
/// silently dropped, so it is refused.
fn socket_mark(l: &Listener) -> R<Option<u32>> {
    let mut mark = None;
    for (i, o) in l.socket_options.iter().enumerate() {
        let part = format!("socket_options[{i}]");
        if (o.level, o.name) != (SOL_SOCKET, SO_MARK) {
            let reason = Reason::SocketOption {
                level: o.level,
                name: o.name,
                description: o.description.clone(),
            };
            return fail(part, reason);
        }
        let v = match &o.value {
            Some(socket_option::Value::IntValue(v)) => {
                u32::try_from(*v).map_err(|_| Fail(part.clone(), Reason::MarkTooWide(*v)))?
            }
            _ => return fail(part, Reason::Invalid("SO_MARK needs an int_value")),
        };
        if mark.replace(v).is_some() {
            return fail(part, Reason::Invalid("SO_MARK is set twice"));
        }
    }
    Ok(mark)
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

/// `true` for `cilium.tls_wrapper`, `false` for raw buffer or
/// no transport socket; anything else cannot be honoured.
fn transport_socket_is_tls(ts: Option<&TransportSocket>, upstream: bool) -> Result<bool, Reason> {
    let Some(ts) = ts else { return Ok(false) };
    let any = ts
        .config_type
        .as_ref()
        .map(|transport_socket::ConfigType::TypedConfig(a)| a);
    match ts.name.as_str() {
        names::RAW_BUFFER => {
            if any.is_some() {
                typed::<RawBuffer>(any)?;
            }
            Ok(false)
        }
        // Old bootstraps name the wrapper without a typed_config.
        names::TLS_WRAPPER => {
            match (any.is_some(), upstream) {
                (false, _) => {}
                (true, true) => drop(typed::<UpstreamTlsWrapperContext>(any)?),
                (true, false) => drop(typed::<DownstreamTlsWrapperContext>(any)?),
            }
            Ok(true)
        }
        other => Err(Reason::TransportSocket(other.to_string())),
    }
}
