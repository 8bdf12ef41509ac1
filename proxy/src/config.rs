//! The standalone configuration file (`portcullis run --config FILE`).
//! See docs/config.md. Every struct denies unknown fields: a misspelled key
//! is an error naming it, never silently ignored.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use npds::Direction;

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Config {
    #[serde(default = "default_admin")]
    pub admin: SocketAddr,
    #[serde(default)]
    pub listeners: Vec<ListenerConfig>,
    #[serde(default)]
    pub endpoints: Vec<cnp::Endpoint>,
    #[serde(default)]
    pub identities: Vec<cnp::Identity>,
    #[serde(default)]
    pub policies: Vec<PathBuf>,
    /// Downstream connections open at once, over all listeners; beyond it a
    /// new connection is reset at accept (`portcullis_connections_overflow_total`).
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Where access-log JSON lines go: a file path, `-` for stdout (the
    /// default), or `off`.
    #[serde(default)]
    pub access_log: Option<PathBuf>,
    #[serde(default)]
    pub http: HttpConfig,
    #[serde(default)]
    pub kafka: KafkaConfig,
    #[serde(default)]
    pub dns: DnsConfig,
}

/// HTTP listeners' limits and the upgrades they relay.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpConfig {
    /// A client has this long to send a complete request head, from accept
    /// (or, on a kept-alive connection, from the end of the previous
    /// exchange); a connection that sends nothing is closed when it ends.
    #[serde(default = "default_http_header_timeout")]
    pub header_timeout_ms: u64,
    /// A request's body must have arrived this long after its head (the
    /// agent's `--http-request-timeout`, 3600 s); a trickling body is cut
    /// with 408. 0 means no limit.
    #[serde(default = "default_http_request_timeout")]
    pub request_timeout_ms: u64,
    /// `Upgrade` protocols relayed (Envoy's `upgrade_configs`; Cilium
    /// configures `websocket`). Any other `Upgrade` is removed from the
    /// request, and a 101 the proxy did not ask for is an upstream error.
    #[serde(default = "default_http_upgrades")]
    pub upgrades: Vec<String>,
}

fn default_http_header_timeout() -> u64 {
    30_000
}

fn default_http_request_timeout() -> u64 {
    3_600_000
}

fn default_http_upgrades() -> Vec<String> {
    vec!["websocket".into()]
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            header_timeout_ms: default_http_header_timeout(),
            request_timeout_ms: default_http_request_timeout(),
            upgrades: default_http_upgrades(),
        }
    }
}

/// How a denied DNS query is answered (`--tofqdns-dns-reject-response-code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RejectCode {
    #[default]
    Refused,
    NameError,
}

/// What a client hears when the upstream server does not answer in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TimeoutResponse {
    /// SERVFAIL, so the client retries or fails at once.
    #[default]
    Servfail,
    /// No reply, as the agent's DNS proxy does.
    None,
}

/// The DNS proxy and the FQDN cache (the agent's `--tofqdns-*` flags).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DnsConfig {
    #[serde(default)]
    pub reject_response_code: RejectCode,
    /// How long a forwarded query waits for its answer.
    #[serde(default = "default_dns_timeout")]
    pub upstream_timeout_ms: u64,
    #[serde(default)]
    pub timeout_response: TimeoutResponse,
    /// `--tofqdns-min-ttl`.
    #[serde(default)]
    pub min_ttl: u32,
    /// `--tofqdns-endpoint-max-ip-per-hostname`.
    #[serde(default = "default_max_ips_per_hostname")]
    pub max_ips_per_hostname: usize,
    /// Cached (endpoint, name) entries over all endpoints.
    #[serde(default = "default_max_names")]
    pub max_names: usize,
    /// Queries one worker may have waiting for upstream answers; beyond
    /// it a query is REFUSED (the agent's `dnsproxy-concurrency-limit`).
    #[serde(default = "default_dns_in_flight")]
    pub max_in_flight: usize,
    /// How long an answer may wait for its addresses to reach policy
    /// (`tofqdns-proxy-response-max-delay`).
    #[serde(default = "default_response_max_delay")]
    pub response_max_delay_ms: u64,
    /// Where the FQDN cache is saved and restored from at start.
    #[serde(default)]
    pub cache_file: Option<PathBuf>,
    /// The agent's `standalonednsproxy.FQDNData` server
    /// (`http://127.0.0.1:40045`): DNS policy comes from it and every new
    /// mapping goes to it. Without it, DNS rules come from the policy files.
    #[serde(default)]
    pub fqdn_data: Option<String>,
}

fn default_dns_timeout() -> u64 {
    10_000
}

fn default_max_ips_per_hostname() -> usize {
    1000
}

fn default_max_names() -> usize {
    65_536
}

fn default_dns_in_flight() -> usize {
    16_384
}

fn default_response_max_delay() -> u64 {
    100
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            reject_response_code: RejectCode::default(),
            upstream_timeout_ms: default_dns_timeout(),
            timeout_response: TimeoutResponse::default(),
            min_ttl: 0,
            max_ips_per_hostname: default_max_ips_per_hostname(),
            max_names: default_max_names(),
            max_in_flight: default_dns_in_flight(),
            response_max_delay_ms: default_response_max_delay(),
            cache_file: None,
            fqdn_data: None,
        }
    }
}

/// Limits of Kafka connections.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KafkaConfig {
    /// The largest request (and buffered response) accepted; a bigger frame
    /// closes the connection.
    #[serde(default = "default_kafka_max_frame")]
    pub max_frame_bytes: usize,
    /// Requests one connection may have waiting for responses before
    /// Portcullis stops reading from it.
    #[serde(default = "default_kafka_max_in_flight")]
    pub max_in_flight: usize,
    /// An allowed Produce request of at least this many bytes naming one
    /// topic is judged from its head and its record batches are spliced to
    /// the broker, never copied through Portcullis; 0 (the default) turns
    /// this off. 131072 is a good value where it pays (see
    /// `DEFAULT_SPLICE_MIN`).
    #[serde(default = "default_kafka_splice_min")]
    pub splice_min_bytes: usize,
}

/// Kafka's own `max.request.size` is 1 MiB and librdkafka's
/// `message.max.bytes` about 1 MB: 16 MiB leaves room for large batches.
pub const DEFAULT_MAX_FRAME: usize = 16 * 1024 * 1024;
/// librdkafka keeps at most 1,000,000 requests in flight per broker; Java
/// clients 5. 1024 pipelined requests is plenty and bounds the queue.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 1024;
/// `kafka.spliceMinBytes`: a Produce frame at least this large, naming one
/// topic, is judged from its head, and when allowed its record batches go
/// from the client's socket to the broker's with `splice(2)`, never copied
/// through this process. Off (0) by default: splicing cuts this process'
/// CPU per GB by a quarter to 40 %, but a broker on the same kernel
/// (loopback, or a veth on an ingress redirect) then receives page
/// fragments it cannot coalesce, is woken twice as often and mostly spends
/// more CPU than the proxy saved; in bench/kafka.sh end-to-end produce
/// throughput was equal or better with copying. Worth turning on where the
/// proxy's CPU is the limit and the broker is on another host.
pub const DEFAULT_SPLICE_MIN: usize = 0;

fn default_kafka_max_frame() -> usize {
    DEFAULT_MAX_FRAME
}

fn default_kafka_max_in_flight() -> usize {
    DEFAULT_MAX_IN_FLIGHT
}

fn default_kafka_splice_min() -> usize {
    DEFAULT_SPLICE_MIN
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            max_frame_bytes: default_kafka_max_frame(),
            max_in_flight: default_kafka_max_in_flight(),
            splice_min_bytes: default_kafka_splice_min(),
        }
    }
}

fn default_max_connections() -> usize {
    50_000
}

impl Default for Config {
    fn default() -> Self {
        Config {
            admin: default_admin(),
            max_connections: default_max_connections(),
            listeners: Vec::new(),
            endpoints: Vec::new(),
            identities: Vec::new(),
            policies: Vec::new(),
            access_log: None,
            http: HttpConfig::default(),
            kafka: KafkaConfig::default(),
            dns: DnsConfig::default(),
        }
    }
}

fn default_admin() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 9901))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DirectionConfig {
    Ingress,
    Egress,
}

impl From<DirectionConfig> for Direction {
    fn from(d: DirectionConfig) -> Self {
        match d {
            DirectionConfig::Ingress => Direction::Ingress,
            DirectionConfig::Egress => Direction::Egress,
        }
    }
}

/// What a listener parses. See proxy/src/parser.rs for which parser each
/// serves a port with, and docs/config.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ListenerProtocol {
    /// The parser the port's L7 rules name, per connection: HTTP rules →
    /// HTTP, Kafka rules → Kafka, none → a plain relay.
    #[default]
    Auto,
    /// HTTP on every port, with or without HTTP rules.
    Http,
    /// Kafka on every port, with or without Kafka rules.
    Kafka,
    /// A relay, or Kafka where the port has Kafka rules: the agent's
    /// `cilium.network` + `tcp_proxy` listener.
    Tcp,
    /// DNS over UDP and TCP on the same port.
    Dns,
}

impl ListenerProtocol {
    pub fn as_str(self) -> &'static str {
        match self {
            ListenerProtocol::Auto => "auto",
            ListenerProtocol::Http => "http",
            ListenerProtocol::Kafka => "kafka",
            ListenerProtocol::Tcp => "tcp",
            ListenerProtocol::Dns => "dns",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListenerConfig {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default = "default_listen_ip")]
    pub address: IpAddr,
    pub port: u16,
    pub direction: DirectionConfig,
    #[serde(default)]
    pub protocol: ListenerProtocol,
    /// A fixed original destination, for running without redirection.
    #[serde(default)]
    pub upstream: Option<SocketAddr>,
    /// IP_TRANSPARENT on the listening socket, for TPROXY / `bpf_sk_assign`
    /// redirection (needs CAP_NET_ADMIN).
    #[serde(default)]
    pub transparent: bool,
}

fn default_listen_ip() -> IpAddr {
    IpAddr::V4(Ipv4Addr::LOCALHOST)
}

impl ListenerConfig {
    pub fn name(&self) -> String {
        self.name.clone().unwrap_or_else(|| {
            format!("{}-{}", Direction::from(self.direction).as_str(), self.port)
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Parse {
        path: PathBuf,
        source: serde_yaml_ng::Error,
    },
    #[error("{path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
}

impl Config {
    /// Reads and validates the file; relative policy paths are resolved
    /// against the file's directory.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut config: Config =
            serde_yaml_ng::from_str(&text).map_err(|source| ConfigError::Parse {
                path: path.to_path_buf(),
                source,
            })?;
        let base = path.parent().unwrap_or(Path::new("."));
        for p in &mut config.policies {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        if let Some(file) = &mut config.dns.cache_file {
            if file.is_relative() {
                *file = base.join(&*file);
            }
        }
        if let Some(log) = &mut config.access_log {
            if log.as_os_str() != "-" && log.as_os_str() != "off" && log.is_relative() {
                *log = base.join(&*log);
            }
        }
        config.validate().map_err(|reason| ConfigError::Invalid {
            path: path.to_path_buf(),
            reason,
        })?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), String> {
        let mut seen = std::collections::HashSet::new();
        for (i, l) in self.listeners.iter().enumerate() {
            if !seen.insert((l.address, l.port)) {
                return Err(format!(
                    "listeners[{i}]: {}:{} is used twice",
                    l.address, l.port
                ));
            }
            if l.port == 0 {
                return Err(format!("listeners[{i}].port: must not be 0"));
            }
            if l.protocol == ListenerProtocol::Dns && l.upstream.is_none() {
                return Err(format!(
                    "listeners[{i}].upstream: a dns listener needs its upstream server \
                     (transparent DNS redirection is not implemented)"
                ));
            }
        }
        if self.http.header_timeout_ms == 0 {
            return Err("http.headerTimeoutMs: must be above 0".into());
        }
        for (i, u) in self.http.upgrades.iter().enumerate() {
            if u.is_empty()
                || !u
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~/".contains(&b))
            {
                return Err(format!("http.upgrades[{i}]: {u:?} is not a protocol token"));
            }
            if u.eq_ignore_ascii_case("h2c") {
                // After a 101 the bytes are relayed, not parsed: an h2c
                // session would carry every later request unjudged.
                return Err(format!(
                    "http.upgrades[{i}]: h2c cannot be relayed, the HTTP/2 requests after the upgrade would not be judged"
                ));
            }
        }
        let mut ids = std::collections::HashSet::new();
        for (i, e) in self.endpoints.iter().enumerate() {
            if !ids.insert(e.id) {
                return Err(format!(
                    "endpoints[{i}].id: endpoint id {} is used twice",
                    e.id
                ));
            }
            if e.ips.is_empty() || e.ips.len() > 2 {
                return Err(format!("endpoints[{i}].ips: must hold 1 or 2 addresses"));
            }
        }
        Ok(())
    }

    pub fn inventory(&self) -> cnp::Inventory {
        cnp::Inventory {
            endpoints: self.endpoints.clone(),
            identities: self.identities.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn misspelled_keys_are_errors() {
        let e = serde_yaml_ng::from_str::<Config>(
            "listeners:\n- port: 1\n  direction: ingress\n  upstrem: 1.2.3.4:5\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("unknown field `upstrem`"), "{e}");
        let e = serde_yaml_ng::from_str::<Config>("listeners:\n- port: 1\n  direction: sideways\n")
            .unwrap_err();
        assert!(e.to_string().contains("unknown variant `sideways`"), "{e}");
    }

    #[test]
    fn every_listener_protocol_is_spelled_as_its_name() {
        for p in [
            ListenerProtocol::Auto,
            ListenerProtocol::Http,
            ListenerProtocol::Kafka,
            ListenerProtocol::Tcp,
            ListenerProtocol::Dns,
        ] {
            let yaml = format!("port: 1\ndirection: ingress\nprotocol: {}\n", p.as_str());
            let l: ListenerConfig = serde_yaml_ng::from_str(&yaml).unwrap();
            assert_eq!(l.protocol, p);
        }
    }

    #[test]
    fn defaults() {
        let c: Config =
            serde_yaml_ng::from_str("listeners:\n- port: 10080\n  direction: ingress\n").unwrap();
        assert_eq!(c.admin, "127.0.0.1:9901".parse().unwrap());
        assert_eq!(c.listeners[0].protocol, ListenerProtocol::Auto);
        assert_eq!(c.listeners[0].name(), "ingress-10080");
        assert!(c.validate().is_ok());
    }
}
