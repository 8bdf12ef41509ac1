//! Cilium's standalone DNS proxy messages (package `standalonednsproxy`),
//! declared by hand with `prost` derives: there is no `protoc` in the build.
//!
//! Every field number and type follows Cilium's
//! `api/v1/standalone-dns-proxy/standalone-dns-proxy.proto` exactly; `tests`
//! below holds golden bytes written from those numbers. The service itself
//! (`standalonednsproxy.FQDNData`) is in [`crate::fqdn_data`].
//!
//! Addresses travel as raw bytes: an IP is Go's `netip.Addr.AsSlice()` (4 or
//! 16 bytes, see [`ip_from_bytes`]) and a prefix is
//! `netip.Prefix.MarshalBinary()` (the address, then one byte of prefix
//! length, see [`prefix_from_bytes`]).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

/// Response code of both RPCs (ACKs on the policy stream, answers to
/// mapping updates).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, ::prost::Enumeration)]
#[repr(i32)]
pub enum ResponseCode {
    Unspecified = 0,
    NoError = 1,
    FormatError = 2,
    ServerFailure = 3,
    NotImplemented = 4,
    /// Invalid argument passed to the RPC method.
    ErrorInvalidArgument = 6,
    /// Endpoint not found for the given IP.
    ErrorEndpointNotFound = 5,
    Refused = 7,
}

impl ResponseCode {
    /// The name in the `.proto` file, as `prost-build` would give it.
    pub fn as_str_name(&self) -> &'static str {
        match self {
            ResponseCode::Unspecified => "RESPONSE_CODE_UNSPECIFIED",
            ResponseCode::NoError => "RESPONSE_CODE_NO_ERROR",
            ResponseCode::FormatError => "RESPONSE_CODE_FORMAT_ERROR",
            ResponseCode::ServerFailure => "RESPONSE_CODE_SERVER_FAILURE",
            ResponseCode::NotImplemented => "RESPONSE_CODE_NOT_IMPLEMENTED",
            ResponseCode::ErrorInvalidArgument => "RESPONSE_CODE_ERROR_INVALID_ARGUMENT",
            ResponseCode::ErrorEndpointNotFound => "RESPONSE_CODE_ERROR_ENDPOINT_NOT_FOUND",
            ResponseCode::Refused => "RESPONSE_CODE_REFUSED",
        }
    }

    /// The value named `value` in the `.proto` file.
    pub fn from_str_name(value: &str) -> Option<Self> {
        Some(match value {
            "RESPONSE_CODE_UNSPECIFIED" => ResponseCode::Unspecified,
            "RESPONSE_CODE_NO_ERROR" => ResponseCode::NoError,
            "RESPONSE_CODE_FORMAT_ERROR" => ResponseCode::FormatError,
            "RESPONSE_CODE_SERVER_FAILURE" => ResponseCode::ServerFailure,
            "RESPONSE_CODE_NOT_IMPLEMENTED" => ResponseCode::NotImplemented,
            "RESPONSE_CODE_ERROR_INVALID_ARGUMENT" => ResponseCode::ErrorInvalidArgument,
            "RESPONSE_CODE_ERROR_ENDPOINT_NOT_FOUND" => ResponseCode::ErrorEndpointNotFound,
            "RESPONSE_CODE_REFUSED" => ResponseCode::Refused,
            _ => return None,
        })
    }
}

/// ACK sent by the proxy to the agent once it has applied a [`PolicyState`].
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct PolicyStateResponse {
    #[prost(enumeration = "ResponseCode", tag = "1")]
    pub response: i32,
    /// The [`PolicyState::request_id`] this ACK answers.
    #[prost(string, tag = "2")]
    pub request_id: String,
}

/// An FQDN-to-IP mapping the proxy reports to the agent after an allowed
/// answer (or a denied / failed query, for access logging).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct FqdnMapping {
    /// The DNS name.
    #[prost(string, tag = "1")]
    pub fqdn: String,
    /// The addresses of the name, 4 or 16 bytes each.
    #[prost(bytes = "vec", repeated, tag = "2")]
    pub record_ip: Vec<Vec<u8>>,
    /// TTL of the records, in seconds.
    #[prost(uint32, tag = "3")]
    pub ttl: u32,
    /// Security identity of the client that asked.
    #[prost(uint32, tag = "4")]
    pub source_identity: u32,
    /// Address of the client that asked, 4 or 16 bytes.
    #[prost(bytes = "vec", tag = "5")]
    pub source_ip: Vec<u8>,
    /// The DNS RCODE of the answer.
    #[prost(uint32, tag = "6")]
    pub response_code: u32,
    #[prost(message, optional, tag = "7")]
    pub metrics_data: Option<MetricsData>,
}

/// Flow context and timings the agent needs for proxy metrics and access
/// log records of a DNS event.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct MetricsData {
    #[prost(message, optional, tag = "1")]
    pub processing_stats: Option<ProcessingStats>,
    #[prost(message, optional, tag = "2")]
    pub dns_response_data: Option<DnsResponseData>,
    /// Source port of the endpoint that asked.
    #[prost(uint32, tag = "3")]
    pub source_port: u32,
    /// The DNS server, as `"ip:port"`.
    #[prost(string, tag = "4")]
    pub server_addr: String,
    /// Security identity of the DNS server.
    #[prost(uint32, tag = "5")]
    pub server_identity: u32,
    /// `"udp"` or `"tcp"`.
    #[prost(string, tag = "6")]
    pub protocol: String,
    /// Whether policy allowed the query.
    #[prost(bool, tag = "7")]
    pub allowed: bool,
    /// Empty when there was no error.
    #[prost(string, tag = "8")]
    pub error_message: String,
    /// Whether the error was a network timeout.
    #[prost(bool, tag = "9")]
    pub is_timeout: bool,
}

/// Request timings of the proxy, all in nanoseconds.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct ProcessingStats {
    #[prost(int64, tag = "1")]
    pub total_time_ns: i64,
    #[prost(int64, tag = "2")]
    pub processing_time_ns: i64,
    #[prost(int64, tag = "3")]
    pub upstream_time_ns: i64,
    #[prost(int64, tag = "4")]
    pub semaphore_acquire_time_ns: i64,
    #[prost(int64, tag = "5")]
    pub policy_check_time_ns: i64,
    #[prost(int64, tag = "6")]
    pub policy_generation_time_ns: i64,
    #[prost(int64, tag = "7")]
    pub dataplane_time_ns: i64,
    #[prost(int64, tag = "8")]
    pub qname_lock_time_ns: i64,
    #[prost(int64, tag = "9")]
    pub update_ep_cache_time_ns: i64,
    #[prost(int64, tag = "10")]
    pub update_nm_cache_time_ns: i64,
}

/// DNS message details the agent logs.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct DnsResponseData {
    /// A response (true) or a request (false).
    #[prost(bool, tag = "1")]
    pub is_response: bool,
    #[prost(string, repeated, tag = "2")]
    pub cnames: Vec<String>,
    #[prost(uint32, repeated, tag = "3")]
    pub qtypes: Vec<u32>,
    #[prost(uint32, repeated, tag = "4")]
    pub answer_types: Vec<u32>,
}

/// The agent's answer to an [`FqdnMapping`].
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct UpdateMappingResponse {
    #[prost(enumeration = "ResponseCode", tag = "1")]
    pub response: i32,
}

/// A DNS server a [`DnsPolicy`] allows queries to.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct DnsServer {
    /// Security identity of the server.
    #[prost(uint32, tag = "1")]
    pub dns_server_identity: u32,
    #[prost(uint32, tag = "2")]
    pub dns_server_port: u32,
    /// IP protocol number (6 TCP, 17 UDP).
    #[prost(uint32, tag = "3")]
    pub dns_server_proto: u32,
}

/// The L7 DNS rules of one local endpoint.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct DnsPolicy {
    #[prost(uint32, tag = "1")]
    pub source_endpoint_id: u32,
    /// `matchName` / `matchPattern` patterns the endpoint may resolve.
    #[prost(string, repeated, tag = "2")]
    pub dns_pattern: Vec<String>,
    #[prost(message, repeated, tag = "3")]
    pub dns_servers: Vec<DnsServer>,
}

/// A full snapshot of the DNS policy of every local endpoint, with the
/// identity-to-address mappings the proxy needs to apply it.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct PolicyState {
    #[prost(message, repeated, tag = "1")]
    pub egress_l7_dns_policy: Vec<DnsPolicy>,
    /// Echoed back in the [`PolicyStateResponse`] ACK.
    #[prost(string, tag = "2")]
    pub request_id: String,
    #[prost(message, repeated, tag = "3")]
    pub identity_to_endpoint_mapping: Vec<IdentityToEndpointMapping>,
    #[prost(message, repeated, tag = "4")]
    pub identity_to_prefix_mapping: Vec<IdentityToPrefixMapping>,
}

/// The local endpoints of one security identity.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct IdentityToEndpointMapping {
    #[prost(uint32, tag = "1")]
    pub identity: u32,
    #[prost(message, repeated, tag = "2")]
    pub endpoint_info: Vec<EndpointInfo>,
}

/// One endpoint: its ID and addresses (4 or 16 bytes each, see
/// [`ip_from_bytes`]).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct EndpointInfo {
    #[prost(uint64, tag = "1")]
    pub id: u64,
    #[prost(bytes = "vec", repeated, tag = "2")]
    pub ip: Vec<Vec<u8>>,
}

/// The prefixes of one security identity (see [`prefix_from_bytes`]).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct IdentityToPrefixMapping {
    #[prost(uint32, tag = "1")]
    pub identity: u32,
    #[prost(bytes = "vec", repeated, tag = "2")]
    pub prefix: Vec<Vec<u8>>,
}

/// An address as Go's `netip.Addr.AsSlice()` writes it: 4 bytes for IPv4,
/// 16 for IPv6 (an IPv4-mapped IPv6 address stays IPv6, as in Go). Any
/// other length is `None`.
pub fn ip_from_bytes(b: &[u8]) -> Option<IpAddr> {
    if let Ok(v4) = <[u8; 4]>::try_from(b) {
        Some(IpAddr::V4(Ipv4Addr::from(v4)))
    } else if let Ok(v6) = <[u8; 16]>::try_from(b) {
        Some(IpAddr::V6(Ipv6Addr::from(v6)))
    } else {
        None
    }
}

/// The inverse of [`ip_from_bytes`]: 4 or 16 bytes.
pub fn ip_to_bytes(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    }
}

/// A prefix as the agent sends it: Go's `netip.Prefix.MarshalBinary()`,
/// which is the address (4 or 16 bytes) followed by one byte of prefix
/// length, so 5 or 17 bytes. A bare address (4 or 16 bytes) is taken as a
/// host prefix (/32, /128). A length beyond the family's bits, or any other
/// size (Go's invalid zero `Prefix` marshals as the one byte `0xff`), is
/// `None`.
///
/// Host bits are kept as sent, as Go's `PrefixFrom` keeps them; use
/// [`IpNet::trunc`] for the network.
pub fn prefix_from_bytes(b: &[u8]) -> Option<IpNet> {
    let (addr, len) = match b {
        [_, _, _, _] => (b, 32),
        [addr @ .., len] if addr.len() == 4 => (addr, *len),
        _ if b.len() == 16 => (b, 128),
        [addr @ .., len] if addr.len() == 16 => (addr, *len),
        _ => return None,
    };
    IpNet::new(ip_from_bytes(addr)?, len).ok()
}

/// The inverse of [`prefix_from_bytes`]: Go's `netip.Prefix.MarshalBinary()`
/// layout, 5 or 17 bytes.
pub fn prefix_to_bytes(prefix: IpNet) -> Vec<u8> {
    let mut b = ip_to_bytes(prefix.addr());
    b.push(prefix.prefix_len());
    b
}

#[cfg(test)]
mod tests {
    //! Golden bytes written by hand from the field numbers of
    //! `standalone-dns-proxy.proto`, checked in both directions.

    use super::*;
    use prost::Message;

    /// PolicyState{egress_l7_dns_policy:[{source_endpoint_id:7, dns_pattern:["*.a.io"],
    ///   dns_servers:[{identity:1, port:53, proto:17}]}], request_id:"r1",
    ///   identity_to_endpoint_mapping:[{identity:300, endpoint_info:[{id:7, ip:[10.0.0.1]}]}],
    ///   identity_to_prefix_mapping:[{identity:2, prefix:[10.0.0.0/8, fd00::/64]}]}
    #[rustfmt::skip]
    const POLICY_STATE: &[u8] = &[
        0x0a, 0x12,                                         // 1 egress_l7_dns_policy[0], 18 bytes
          0x08, 0x07,                                       //   1 source_endpoint_id = 7
          0x12, 0x06, b'*', b'.', b'a', b'.', b'i', b'o',   //   2 dns_pattern[0]
          0x1a, 0x06,                                       //   3 dns_servers[0], 6 bytes
            0x08, 0x01,                                     //     1 dns_server_identity = 1
            0x10, 0x35,                                     //     2 dns_server_port = 53
            0x18, 0x11,                                     //     3 dns_server_proto = 17
        0x12, 0x02, b'r', b'1',                             // 2 request_id
        0x1a, 0x0d,                                         // 3 identity_to_endpoint_mapping[0], 13 bytes
          0x08, 0xac, 0x02,                                 //   1 identity = 300
          0x12, 0x08,                                       //   2 endpoint_info[0], 8 bytes
            0x08, 0x07,                                     //     1 id = 7
            0x12, 0x04, 10, 0, 0, 1,                        //     2 ip[0]
        0x22, 0x1c,                                         // 4 identity_to_prefix_mapping[0], 28 bytes
          0x08, 0x02,                                       //   1 identity = 2
          0x12, 0x05, 10, 0, 0, 0, 8,                       //   2 prefix[0] 10.0.0.0/8
          0x12, 0x11, 0xfd, 0, 0, 0, 0, 0, 0, 0,            //   2 prefix[1] fd00::/64
                      0, 0, 0, 0, 0, 0, 0, 0, 64,
    ];

    /// [`POLICY_STATE`] with fields a newer agent might add: varint 15 and
    /// fixed32 20 at the top, length-delimited 99 inside the DNS server.
    #[rustfmt::skip]
    const POLICY_STATE_UNKNOWN: &[u8] = &[
        0x78, 0x01,                                         // 15 (unknown varint)
        0x0a, 0x16,                                         // 1 egress_l7_dns_policy[0], 22 bytes
          0x08, 0x07,
          0x12, 0x06, b'*', b'.', b'a', b'.', b'i', b'o',
          0x1a, 0x0a,                                       //   3 dns_servers[0], 10 bytes
            0x08, 0x01,
            0x9a, 0x06, 0x01, b'x',                         //     99 (unknown bytes)
            0x10, 0x35,
            0x18, 0x11,
        0x12, 0x02, b'r', b'1',
        0xa5, 0x01, 1, 2, 3, 4,                             // 20 (unknown fixed32)
        0x1a, 0x0d,
          0x08, 0xac, 0x02,
          0x12, 0x08,
            0x08, 0x07,
            0x12, 0x04, 10, 0, 0, 1,
        0x22, 0x1c,
          0x08, 0x02,
          0x12, 0x05, 10, 0, 0, 0, 8,
          0x12, 0x11, 0xfd, 0, 0, 0, 0, 0, 0, 0,
                      0, 0, 0, 0, 0, 0, 0, 0, 64,
    ];

    fn expected_state() -> PolicyState {
        PolicyState {
            egress_l7_dns_policy: vec![DnsPolicy {
                source_endpoint_id: 7,
                dns_pattern: vec!["*.a.io".into()],
                dns_servers: vec![DnsServer {
                    dns_server_identity: 1,
                    dns_server_port: 53,
                    dns_server_proto: 17,
                }],
            }],
            request_id: "r1".into(),
            identity_to_endpoint_mapping: vec![IdentityToEndpointMapping {
                identity: 300,
                endpoint_info: vec![EndpointInfo {
                    id: 7,
                    ip: vec![vec![10, 0, 0, 1]],
                }],
            }],
            identity_to_prefix_mapping: vec![IdentityToPrefixMapping {
                identity: 2,
                prefix: vec![
                    prefix_to_bytes("10.0.0.0/8".parse().unwrap()),
                    prefix_to_bytes("fd00::/64".parse().unwrap()),
                ],
            }],
        }
    }

    #[test]
    fn policy_state_golden() {
        let state = expected_state();
        assert_eq!(PolicyState::decode(POLICY_STATE).unwrap(), state);
        assert_eq!(state.encode_to_vec(), POLICY_STATE);
        assert_eq!(PolicyState::decode(POLICY_STATE_UNKNOWN).unwrap(), state);

        let prefixes: Vec<IpNet> = state.identity_to_prefix_mapping[0]
            .prefix
            .iter()
            .map(|b| prefix_from_bytes(b).unwrap())
            .collect();
        assert_eq!(
            prefixes,
            ["10.0.0.0/8".parse().unwrap(), "fd00::/64".parse().unwrap()]
        );
        let ep = &state.identity_to_endpoint_mapping[0].endpoint_info[0];
        assert_eq!(ip_from_bytes(&ep.ip[0]), Some("10.0.0.1".parse().unwrap()));
    }

    /// FQDNMapping{fqdn:"a.io.", record_ip:[1.2.3.4, 2001:db8::1], ttl:60,
    ///   source_identity:256, source_ip:10.0.0.9, response_code:3,
    ///   metrics_data:{processing_stats:{total:1000, upstream:-1, dataplane:5, update_nm_cache:9},
    ///     dns_response_data:{is_response:true, cnames:["b.io."], qtypes:[1,28], answer_types:[5,1]},
    ///     source_port:40000, server_addr:"8.8.8.8:53", server_identity:2, protocol:"udp",
    ///     allowed:true, is_timeout:true}}
    #[rustfmt::skip]
    const FQDN_MAPPING: &[u8] = &[
        0x0a, 0x05, b'a', b'.', b'i', b'o', b'.',           // 1 fqdn
        0x12, 0x04, 1, 2, 3, 4,                             // 2 record_ip[0]
        0x12, 0x10, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0,     // 2 record_ip[1]
                    0, 0, 0, 0, 0, 0, 0, 1,
        0x18, 0x3c,                                         // 3 ttl = 60
        0x20, 0x80, 0x02,                                   // 4 source_identity = 256
        0x2a, 0x04, 10, 0, 0, 9,                            // 5 source_ip
        0x30, 0x03,                                         // 6 response_code = 3 (NXDOMAIN)
        0x3a, 0x42,                                         // 7 metrics_data, 66 bytes
          0x0a, 0x12,                                       //   1 processing_stats, 18 bytes
            0x08, 0xe8, 0x07,                               //     1 total_time_ns = 1000
            0x18, 0xff, 0xff, 0xff, 0xff, 0xff,             //     3 upstream_time_ns = -1
                  0xff, 0xff, 0xff, 0xff, 0x01,
            0x38, 0x05,                                     //     7 dataplane_time_ns = 5
            0x50, 0x09,                                     //     10 update_nm_cache_time_ns = 9
          0x12, 0x11,                                       //   2 dns_response_data, 17 bytes
            0x08, 0x01,                                     //     1 is_response
            0x12, 0x05, b'b', b'.', b'i', b'o', b'.',       //     2 cnames[0]
            0x1a, 0x02, 0x01, 0x1c,                         //     3 qtypes (packed) 1, 28
            0x22, 0x02, 0x05, 0x01,                         //     4 answer_types (packed) 5, 1
          0x18, 0xc0, 0xb8, 0x02,                           //   3 source_port = 40000
          0x22, 0x0a, b'8', b'.', b'8', b'.', b'8', b'.',   //   4 server_addr
                      b'8', b':', b'5', b'3',
          0x28, 0x02,                                       //   5 server_identity = 2
          0x32, 0x03, b'u', b'd', b'p',                     //   6 protocol
          0x38, 0x01,                                       //   7 allowed
          0x48, 0x01,                                       //   9 is_timeout
    ];

    fn expected_mapping() -> FqdnMapping {
        FqdnMapping {
            fqdn: "a.io.".into(),
            record_ip: vec![
                ip_to_bytes("1.2.3.4".parse().unwrap()),
                ip_to_bytes("2001:db8::1".parse().unwrap()),
            ],
            ttl: 60,
            source_identity: 256,
            source_ip: vec![10, 0, 0, 9],
            response_code: 3,
            metrics_data: Some(MetricsData {
                processing_stats: Some(ProcessingStats {
                    total_time_ns: 1000,
                    upstream_time_ns: -1,
                    dataplane_time_ns: 5,
                    update_nm_cache_time_ns: 9,
                    ..Default::default()
                }),
                dns_response_data: Some(DnsResponseData {
                    is_response: true,
                    cnames: vec!["b.io.".into()],
                    qtypes: vec![1, 28],
                    answer_types: vec![5, 1],
                }),
                source_port: 40000,
                server_addr: "8.8.8.8:53".into(),
                server_identity: 2,
                protocol: "udp".into(),
                allowed: true,
                error_message: String::new(),
                is_timeout: true,
            }),
        }
    }

    #[test]
    fn fqdn_mapping_golden() {
        let m = expected_mapping();
        assert_eq!(FqdnMapping::decode(FQDN_MAPPING).unwrap(), m);
        assert_eq!(m.encode_to_vec(), FQDN_MAPPING);

        // Unknown fields anywhere are skipped: a varint 31 at the top and a
        // length-delimited 12 after the whole message.
        let mut with_unknown = vec![0xf8, 0x01, 0x07];
        with_unknown.extend_from_slice(FQDN_MAPPING);
        with_unknown.extend_from_slice(&[0x62, 0x02, b'h', b'i']);
        assert_eq!(FqdnMapping::decode(&with_unknown[..]).unwrap(), m);

        let ips: Vec<IpAddr> = m
            .record_ip
            .iter()
            .map(|b| ip_from_bytes(b).unwrap())
            .collect();
        assert_eq!(
            ips,
            [
                "1.2.3.4".parse::<IpAddr>().unwrap(),
                "2001:db8::1".parse().unwrap()
            ]
        );
    }

    #[test]
    fn repeated_scalars_decode_unpacked_too() {
        // qtypes 1, 28 and answer_types 5 as separate varint fields.
        let unpacked = [0x18, 0x01, 0x18, 0x1c, 0x20, 0x05];
        let d = DnsResponseData::decode(&unpacked[..]).unwrap();
        assert_eq!(d.qtypes, [1, 28]);
        assert_eq!(d.answer_types, [5]);
    }

    #[test]
    fn acks_and_response_codes() {
        #[rustfmt::skip]
        const ACK: &[u8] = &[
            0x08, 0x01,                 // 1 response = NO_ERROR
            0x12, 0x02, b'r', b'1',     // 2 request_id
        ];
        let ack = PolicyStateResponse {
            response: ResponseCode::NoError.into(),
            request_id: "r1".into(),
        };
        assert_eq!(ack.encode_to_vec(), ACK);
        assert_eq!(PolicyStateResponse::decode(ACK).unwrap(), ack);
        assert_eq!(ack.response(), ResponseCode::NoError);

        // The proto lists 6 before 5; the numbers are what count.
        let r = UpdateMappingResponse::decode(&[0x08, 0x05][..]).unwrap();
        assert_eq!(r.response(), ResponseCode::ErrorEndpointNotFound);
        let r = UpdateMappingResponse::decode(&[0x08, 0x06][..]).unwrap();
        assert_eq!(r.response(), ResponseCode::ErrorInvalidArgument);
        // An unknown code is kept raw and reads as the default.
        let r = UpdateMappingResponse::decode(&[0x08, 0x2a][..]).unwrap();
        assert_eq!(r.response, 42);
        assert_eq!(r.response(), ResponseCode::Unspecified);
        // proto3 defaults are not written.
        assert!(UpdateMappingResponse::default().encode_to_vec().is_empty());

        for (n, code) in [
            (0, ResponseCode::Unspecified),
            (1, ResponseCode::NoError),
            (2, ResponseCode::FormatError),
            (3, ResponseCode::ServerFailure),
            (4, ResponseCode::NotImplemented),
            (5, ResponseCode::ErrorEndpointNotFound),
            (6, ResponseCode::ErrorInvalidArgument),
            (7, ResponseCode::Refused),
        ] {
            assert_eq!(ResponseCode::try_from(n), Ok(code));
            assert_eq!(i32::from(code), n);
            assert_eq!(ResponseCode::from_str_name(code.as_str_name()), Some(code));
        }
        assert!(ResponseCode::try_from(8).is_err());
        assert_eq!(ResponseCode::from_str_name("NO_ERROR"), None);
    }

    #[test]
    fn addresses() {
        assert_eq!(
            ip_from_bytes(&[10, 0, 0, 1]),
            Some("10.0.0.1".parse().unwrap())
        );
        let mapped = "::ffff:1.2.3.4".parse::<IpAddr>().unwrap();
        assert_eq!(ip_from_bytes(&ip_to_bytes(mapped)), Some(mapped));
        for bad in [&[][..], &[1, 2, 3], &[1, 2, 3, 4, 5], &[0; 15], &[0; 17]] {
            assert_eq!(ip_from_bytes(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn prefixes() {
        let p = |s: &str| s.parse::<IpNet>().unwrap();
        // netip.MustParsePrefix(..).MarshalBinary()
        assert_eq!(prefix_from_bytes(&[10, 0, 0, 0, 8]), Some(p("10.0.0.0/8")));
        assert_eq!(prefix_from_bytes(&[0, 0, 0, 0, 0]), Some(p("0.0.0.0/0")));
        let mut v6 = vec![0x20, 0x01, 0x0d, 0xb8];
        v6.extend([0; 12]);
        v6.push(32);
        assert_eq!(prefix_from_bytes(&v6), Some(p("2001:db8::/32")));
        // Host bits are kept, as Go's PrefixFrom keeps them.
        let host_bits = prefix_from_bytes(&[192, 168, 1, 1, 24]).unwrap();
        assert_eq!(host_bits, p("192.168.1.1/24"));
        assert_eq!(host_bits.trunc(), p("192.168.1.0/24"));
        // Bare addresses are host prefixes.
        assert_eq!(prefix_from_bytes(&[10, 0, 0, 1]), Some(p("10.0.0.1/32")));
        assert_eq!(prefix_from_bytes(&[0; 16]), Some(p("::/128")));
        // Too long a prefix, Go's invalid Prefix (one 0xff byte), odd sizes.
        assert_eq!(prefix_from_bytes(&[10, 0, 0, 0, 33]), None);
        let mut too_long = vec![0; 16];
        too_long.push(129);
        assert_eq!(prefix_from_bytes(&too_long), None);
        for bad in [&[][..], &[0xff], &[1, 2, 3], &[0; 6], &[0; 15], &[0; 18]] {
            assert_eq!(prefix_from_bytes(bad), None, "{bad:?}");
        }
        for s in ["10.0.0.0/8", "1.2.3.4/32", "fd00::/64", "::/0"] {
            assert_eq!(prefix_from_bytes(&prefix_to_bytes(p(s))), Some(p(s)));
        }
        assert_eq!(prefix_to_bytes(p("10.0.0.0/8")), [10, 0, 0, 0, 8]);
    }
}
