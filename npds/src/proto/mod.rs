//! Cilium's own protobuf messages (package `cilium`), declared by hand with
//! `prost` derives so that Envoy's messages come straight from `envoy-types`
//! and no `protoc` or vendored `.proto` tree is needed to build.
//!
//! Every field number and type follows `cilium/api/npds.proto`,
//! `nphds.proto` and `accesslog.proto` exactly; `tests` below holds golden
//! bytes written from those numbers.

use envoy_types::pb::envoy::config::route::v3::HeaderMatcher;
use envoy_types::pb::envoy::r#type::matcher::v3::MetadataMatcher;

/// Type URL of an Any-packed [`NetworkPolicy`].
pub const NETWORK_POLICY_TYPE_URL: &str = "type.googleapis.com/cilium.NetworkPolicy";
/// Type URL of an Any-packed [`NetworkPolicyHosts`].
pub const NETWORK_POLICY_HOSTS_TYPE_URL: &str = "type.googleapis.com/cilium.NetworkPolicyHosts";

/// `envoy.config.core.v3.SocketAddress.Protocol`, re-exported for callers.
pub use envoy_types::pb::envoy::config::core::v3::socket_address::Protocol;

#[derive(Clone, PartialEq, ::prost::Message)]
pub struct NetworkPolicy {
    #[prost(string, repeated, tag = "1")]
    pub endpoint_ips: Vec<String>,
    #[prost(uint64, tag = "2")]
    pub endpoint_id: u64,
    #[prost(message, repeated, tag = "3")]
    pub ingress_per_port_policies: Vec<PortNetworkPolicy>,
    #[prost(message, repeated, tag = "4")]
    pub egress_per_port_policies: Vec<PortNetworkPolicy>,
    // Field 5 is reserved (the old `conntrack_map_name`); agents still send
    // it and prost skips it as an unknown field.
}

#[derive(Clone, PartialEq, ::prost::Message)]
pub struct PortNetworkPolicy {
    #[prost(uint32, tag = "1")]
    pub port: u32,
    #[prost(uint32, tag = "4")]
    pub end_port: u32,
    #[prost(enumeration = "Protocol", tag = "2")]
    pub protocol: i32,
    #[prost(message, repeated, tag = "3")]
    pub rules: Vec<PortNetworkPolicyRule>,
}

#[derive(Clone, PartialEq, ::prost::Message)]
pub struct TlsContext {
    #[prost(string, tag = "1")]
    pub trusted_ca: String,
    #[prost(string, tag = "2")]
    pub certificate_chain: String,
    #[prost(string, tag = "3")]
    pub private_key: String,
    #[prost(string, repeated, tag = "4")]
    pub server_names: Vec<String>,
    #[prost(string, tag = "5")]
    pub validation_context_sds_secret: String,
    #[prost(string, tag = "6")]
    pub tls_sds_secret: String,
    #[prost(string, repeated, tag = "7")]
    pub alpn_protocols: Vec<String>,
}

#[derive(Clone, PartialEq, ::prost::Message)]
pub struct PortNetworkPolicyRule {
    #[prost(uint32, tag = "10")]
    pub precedence: u32,
    #[prost(oneof = "port_network_policy_rule::Verdict", tags = "1, 8")]
    pub verdict: Option<port_network_policy_rule::Verdict>,
    #[prost(uint32, tag = "9")]
    pub proxy_id: u32,
    #[prost(string, tag = "5")]
    pub name: String,
    #[prost(uint32, repeated, tag = "7")]
    pub remote_policies: Vec<u32>,
    #[prost(message, optional, tag = "3")]
    pub downstream_tls_context: Option<TlsContext>,
    #[prost(message, optional, tag = "4")]
    pub upstream_tls_context: Option<TlsContext>,
    #[prost(string, repeated, tag = "6")]
    pub server_names: Vec<String>,
    #[prost(string, tag = "2")]
    pub l7_proto: String,
    #[prost(oneof = "port_network_policy_rule::L7", tags = "100, 101, 102")]
    pub l7: Option<port_network_policy_rule::L7>,
}

pub mod port_network_policy_rule {
    #[derive(Clone, PartialEq, ::prost::Oneof)]
    pub enum Verdict {
        /// Field 1: evaluation continues at this lower precedence tier.
        /// (Field 1 is *not* the old `remote_policies`; see the tests.)
        #[prost(uint32, tag = "1")]
        PassPrecedence(u32),
        #[prost(bool, tag = "8")]
        Deny(bool),
    }

    #[derive(Clone, PartialEq, ::prost::Oneof)]
    pub enum L7 {
        #[prost(message, tag = "100")]
        HttpRules(super::HttpNetworkPolicyRules),
        #[prost(message, tag = "101")]
        KafkaRules(super::KafkaNetworkPolicyRules),
        #[prost(message, tag = "102")]
        L7Rules(super::L7NetworkPolicyRules),
    }
}

#[derive(Clone, PartialEq, ::prost::Message)]
pub struct HttpNetworkPolicyRules {
    #[prost(message, repeated, tag = "1")]
    pub http_rules: Vec<HttpNetworkPolicyRule>,
}

#[derive(Clone, PartialEq, ::prost::Message)]
pub struct HeaderMatch {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub value: String,
    #[prost(enumeration = "header_match::MatchAction", tag = "3")]
    pub match_action: i32,
    #[prost(enumeration = "header_match::MismatchAction", tag = "4")]
    pub mismatch_action: i32,
    #[prost(string, tag = "5")]
    pub value_sds_secret: String,
}

pub mod header_match {
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, ::prost::Enumeration)]
    #[repr(i32)]
    pub enum MatchAction {
        ContinueOnMatch = 0,
        FailOnMatch = 1,
        DeleteOnMatch = 2,
    }

    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, ::prost::Enumeration)]
    #[repr(i32)]
    pub enum MismatchAction {
        FailOnMismatch = 0,
        ContinueOnMismatch = 1,
        AddOnMismatch = 2,
        DeleteOnMismatch = 3,
        ReplaceOnMismatch = 4,
    }
}

#[derive(Clone, PartialEq, ::prost::Message)]
pub struct HttpNetworkPolicyRule {
    #[prost(message, repeated, tag = "1")]
    pub headers: Vec<HeaderMatcher>,
    #[prost(message, repeated, tag = "2")]
    pub header_matches: Vec<HeaderMatch>,
}

#[derive(Clone, PartialEq, ::prost::Message)]
pub struct KafkaNetworkPolicyRules {
    #[prost(message, repeated, tag = "1")]
    pub kafka_rules: Vec<KafkaNetworkPolicyRule>,
}

#[derive(Clone, PartialEq, ::prost::Message)]
pub struct KafkaNetworkPolicyRule {
    #[prost(int32, tag = "1")]
    pub api_version: i32,
    #[prost(int32, repeated, tag = "2")]
    pub api_keys: Vec<i32>,
    #[prost(string, tag = "3")]
    pub client_id: String,
    #[prost(string, tag = "4")]
    pub topic: String,
}

#[derive(Clone, PartialEq, ::prost::Message)]
pub struct L7NetworkPolicyRules {
    #[prost(message, repeated, tag = "1")]
    pub l7_allow_rules: Vec<L7NetworkPolicyRule>,
    #[prost(message, repeated, tag = "2")]
    pub l7_deny_rules: Vec<L7NetworkPolicyRule>,
}

#[derive(Clone, PartialEq, ::prost::Message)]
pub struct L7NetworkPolicyRule {
    #[prost(string, tag = "3")]
    pub name: String,
    #[prost(btree_map = "string, string", tag = "1")]
    pub rule: std::collections::BTreeMap<String, String>,
    #[prost(message, repeated, tag = "2")]
    pub metadata_rule: Vec<MetadataMatcher>,
}

#[derive(Clone, PartialEq, ::prost::Message)]
pub struct NetworkPoliciesConfigDump {
    #[prost(message, repeated, tag = "1")]
    pub networkpolicies: Vec<NetworkPolicy>,
}

/// NPHDS resource: the addresses of one security identity.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct NetworkPolicyHosts {
    #[prost(uint64, tag = "1")]
    pub policy: u64,
    #[prost(string, repeated, tag = "2")]
    pub host_addresses: Vec<String>,
}

// ---- accesslog.proto ----

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, ::prost::Enumeration)]
#[repr(i32)]
pub enum HttpProtocol {
    Http10 = 0,
    Http11 = 1,
    Http2 = 2,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, ::prost::Enumeration)]
#[repr(i32)]
pub enum EntryType {
    Request = 0,
    Response = 1,
    Denied = 2,
}

#[derive(Clone, PartialEq, ::prost::Message)]
pub struct KeyValue {
    #[prost(string, tag = "1")]
    pub key: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

#[derive(Clone, PartialEq, ::prost::Message)]
pub struct HttpLogEntry {
    #[prost(enumeration = "HttpProtocol", tag = "1")]
    pub http_protocol: i32,
    #[prost(string, tag = "2")]
    pub scheme: String,
    #[prost(string, tag = "3")]
    pub host: String,
    #[prost(string, tag = "4")]
    pub path: String,
    #[prost(string, tag = "5")]
    pub method: String,
    #[prost(message, repeated, tag = "6")]
    pub headers: Vec<KeyValue>,
    #[prost(uint32, tag = "7")]
    pub status: u32,
    #[prost(message, repeated, tag = "8")]
    pub missing_headers: Vec<KeyValue>,
    #[prost(message, repeated, tag = "9")]
    pub rejected_headers: Vec<KeyValue>,
}

#[derive(Clone, PartialEq, ::prost::Message)]
pub struct KafkaLogEntry {
    #[prost(int32, tag = "1")]
    pub correlation_id: i32,
    #[prost(int32, tag = "2")]
    pub error_code: i32,
    #[prost(int32, tag = "3")]
    pub api_version: i32,
    #[prost(int32, tag = "4")]
    pub api_key: i32,
    #[prost(string, repeated, tag = "5")]
    pub topics: Vec<String>,
}

#[derive(Clone, PartialEq, ::prost::Message)]
pub struct L7LogEntry {
    #[prost(string, tag = "1")]
    pub proto: String,
    #[prost(btree_map = "string, string", tag = "2")]
    pub fields: std::collections::BTreeMap<String, String>,
}

#[derive(Clone, PartialEq, ::prost::Message)]
pub struct LogEntry {
    #[prost(uint64, tag = "1")]
    pub timestamp: u64,
    #[prost(bool, tag = "15")]
    pub is_ingress: bool,
    #[prost(enumeration = "EntryType", tag = "3")]
    pub entry_type: i32,
    #[prost(string, tag = "4")]
    pub policy_name: String,
    #[prost(uint32, tag = "17")]
    pub proxy_id: u32,
    #[prost(string, tag = "5")]
    pub cilium_rule_ref: String,
    #[prost(uint32, tag = "6")]
    pub source_security_id: u32,
    #[prost(uint32, tag = "16")]
    pub destination_security_id: u32,
    #[prost(string, tag = "7")]
    pub source_address: String,
    #[prost(string, tag = "8")]
    pub destination_address: String,
    #[prost(oneof = "log_entry::L7", tags = "100, 101, 102")]
    pub l7: Option<log_entry::L7>,
}

pub mod log_entry {
    #[derive(Clone, PartialEq, ::prost::Oneof)]
    pub enum L7 {
        #[prost(message, tag = "100")]
        Http(super::HttpLogEntry),
        #[prost(message, tag = "101")]
        Kafka(super::KafkaLogEntry),
        #[prost(message, tag = "102")]
        GenericL7(super::L7LogEntry),
    }
}

pub mod bpf_metadata;

#[cfg(test)]
mod tests;
