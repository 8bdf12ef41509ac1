//! Why an LDS or CDS resource was refused: [`ListenerError`] names the
//! resource and the part, [`Reason`] says what is wrong with it. The text is
//! the NACK's `error_detail.message`, so it stays as the agent's operators
//! have read it.

use std::net::SocketAddr;

use super::names;

/// Why an LDS or CDS resource was refused. Reads
/// `listener "<name>": <part>: <reason>`, e.g. `listener "ingress-proxy-10001":
/// listener_filters[1] cilium.bpf_metadata: typed_config does not decode: ...`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} \"{resource}\": {part}: {reason}")]
pub struct ListenerError {
    /// `listener` or `cluster`.
    pub kind: &'static str,
    pub resource: String,
    /// Dotted path of the offending part, proto field names.
    pub part: String,
    /// Boxed: a `Reason` is large and a refusal is rare.
    pub reason: Box<Reason>,
}

/// What is wrong with one part of a Listener or Cluster.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Reason {
    /// Valid for Envoy, but Portcullis cannot honour it; the text names it.
    #[error("{0}")]
    Unsupported(&'static str),
    /// Missing, contradictory, or not the agent's shape; the text says how.
    #[error("{0}")]
    Invalid(&'static str),

    // The resource as a whole.
    #[error("sent twice in one update")]
    SentTwice,
    #[error("type_url {got:?} is not {want}")]
    ResourceType { got: String, want: String },
    #[error("does not decode: {0}")]
    ResourceDecode(prost::DecodeError),
    #[error("the resource is named \"{sent}\" but carries \"{carried}\"")]
    NameMismatch { sent: String, carried: String },

    // A filter's or transport socket's typed_config.
    #[error("typed_config is {got:?}, expected {want}")]
    ConfigType { got: String, want: String },
    #[error("typed_config does not decode: {0}")]
    ConfigDecode(prost::DecodeError),
    #[error(
        "{0:?} is not supported; only {raw} and {wrapper}",
        raw = names::RAW_BUFFER,
        wrapper = names::TLS_WRAPPER
    )]
    TransportSocket(String),

    // Addresses and socket options.
    #[error("{addr} is also bound by listener \"{other}\"")]
    AlsoBound { addr: SocketAddr, other: String },
    #[error("{addr} collides with {prev} on the same listener")]
    Collides { addr: SocketAddr, prev: SocketAddr },
    #[error("pipe {0:?}: Portcullis listens on TCP sockets only")]
    Pipe(String),
    #[error("{0:?} is not an IP address")]
    NotAnIp(String),
    #[error("{0:?}: named ports are not supported")]
    NamedPort(String),
    #[error("{0} is not a TCP port (1-65535)")]
    NotAPort(u32),
    #[error(
        "level {level} name {name} ({description:?}) is not supported; only SO_MARK (level 1, name 36)"
    )]
    SocketOption {
        level: i64,
        name: i64,
        description: String,
    },
    #[error("SO_MARK {0} does not fit 32 bits")]
    MarkTooWide(i64),

    // cilium.bpf_metadata.
    #[error("proxy_id {0} is above 65535")]
    ProxyIdRange(u32),
    #[error("bpf_root {0:?} is not an absolute path")]
    BpfRootRelative(String),
    #[error("ipcache_name {0:?} is not a file name")]
    IpcacheName(String),
    #[error("{field} {value:?} is not an address of that family")]
    AddressFamily { field: &'static str, value: String },
    #[error("{0} is not a valid non-negative duration")]
    Duration(&'static str),

    // Filter chains.
    #[error("a second {which} chain (the first is filter_chains[{first}])")]
    SecondChain { which: &'static str, first: usize },
    #[error("a second chain for application protocol {0:?}")]
    SecondGatedChain(String),
    #[error("the TLS chain runs {tls} but the plain-text chain runs {plain}")]
    ChainKinds {
        tls: &'static str,
        plain: &'static str,
    },
    #[error("{field} {tls:?} differs from the plain-text chain's {plain:?}")]
    ChainsDiffer {
        field: &'static str,
        tls: String,
        plain: String,
    },
    #[error("{0:?} is not supported; only raw_buffer and tls")]
    TransportProtocol(String),
    #[error(
        "[{}] is neither {net} + {hcm} nor {net} + {tcp}",
        .0.join(", "),
        net = names::CILIUM_NETWORK,
        hcm = names::HTTP_CONNECTION_MANAGER,
        tcp = names::TCP_PROXY
    )]
    NetworkFilters(Vec<String>),
    #[error("an application-protocol chain must start with the filter it names ({0:?})")]
    GatedFirstFilter(String),

    // The HTTP connection manager and tcp_proxy.
    #[error(
        "http_filters [{}] are not {l7} then {router}",
        .0.join(", "),
        l7 = names::L7_POLICY,
        router = names::ROUTER
    )]
    HttpFilters(Vec<String>),
    #[error("http_filters[{index}] {name}: {reason}")]
    InHttpFilter {
        index: usize,
        name: &'static str,
        reason: Box<Reason>,
    },
    #[error("{at}: only forwarding routes are supported (no redirect or direct response)")]
    RouteAction { at: String },
    #[error(
        "{at} targets cluster \"{got}\"; Portcullis forwards only to the original destination (\"{want}\")"
    )]
    RouteCluster {
        at: String,
        got: String,
        want: String,
    },
    #[error("{at}: only a single named cluster is supported")]
    RouteClusterKind { at: String },
    #[error(
        "targets cluster \"{got}\"; Portcullis forwards only to the original destination (\"{want}\")"
    )]
    ProxyCluster { got: String, want: String },

    // Clusters.
    #[error("{0} is not a discovery type")]
    DiscoveryType(i32),
    #[error("{0}: an ORIGINAL_DST cluster needs CLUSTER_PROVIDED")]
    LbPolicy(String),
}
