//! One Kafka request, decoded with `kafka-protocol` for policy and kept as
//! the original bytes for forwarding.

use bytes::{Buf, Bytes};
use kafka_protocol::messages::produce_request::TopicProduceData;
use kafka_protocol::messages::{ApiKey, ProduceRequest, RequestHeader, RequestKind, TopicName};
use kafka_protocol::protocol::{Decodable, StrBytes};

use crate::topics::{self, TopicRef};

/// The few field decoders the Produce head needs. kafka-protocol has them
/// all, but crate-private.
mod wire {
    use bytes::{Buf, Bytes};
    use kafka_protocol::protocol::StrBytes;

    /// Kafka's unsigned varint (at most 5 bytes for a `u32`).
    fn uvarint(b: &mut Bytes) -> Option<u32> {
        let mut value = 0u32;
        for i in 0..5 {
            let byte = b.try_get_u8().ok()?;
            value |= u32::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }

    /// A nullable string: `INT16` length, or in flexible versions the
    /// length plus one as an unsigned varint; a negative length (0 in a
    /// compact string) is null.
    pub fn string(b: &mut Bytes, flexible: bool) -> Option<Option<StrBytes>> {
        let len = if flexible {
            i64::from(uvarint(b)?) - 1
        } else {
            i64::from(b.try_get_i16().ok()?)
        };
        let Ok(len) = usize::try_from(len) else {
            return Some(None);
        };
        if b.remaining() < len {
            return None;
        }
        StrBytes::try_from(b.split_to(len)).ok().map(Some)
    }

    /// An array's element count: `INT32`, or in flexible versions the count
    /// plus one as an unsigned varint (0 is null, returned as -1).
    pub fn array_len(b: &mut Bytes, flexible: bool) -> Option<i64> {
        if flexible {
            Some(i64::from(uvarint(b)?) - 1)
        } else {
            b.try_get_i32().ok().map(i64::from)
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("frame of {0} bytes is too short for a request header")]
    Short(usize),
    #[error("unknown API key {0}")]
    UnknownApiKey(i16),
    #[error("{key:?} (API key {code}) version {version} is not one this proxy understands ({min}..={max})")]
    UnknownVersion {
        key: ApiKey,
        code: i16,
        version: i16,
        min: i16,
        max: i16,
    },
    #[error("{key:?} v{version} request header: {reason}")]
    Header {
        key: ApiKey,
        version: i16,
        reason: String,
    },
    #[error("{key:?} v{version} request body: {reason}")]
    Body {
        key: ApiKey,
        version: i16,
        reason: String,
    },
}

/// A decoded request. `frame` holds the bytes exactly as the client sent
/// them, length prefix included: an allowed request is forwarded as is.
#[derive(Debug)]
pub struct Request {
    pub frame: Bytes,
    pub api_key: ApiKey,
    pub api_version: i16,
    pub correlation_id: i32,
    pub client_id: Option<StrBytes>,
    pub body: RequestKind,
}

impl Request {
    /// Decodes a whole frame (length prefix included, as
    /// [`crate::frame::Frame::Whole`] holds it).
    pub fn parse(frame: Bytes) -> Result<Request, ParseError> {
        if frame.len() < 4 + 8 {
            return Err(ParseError::Short(frame.len().saturating_sub(4)));
        }
        let code = i16::from_be_bytes([frame[4], frame[5]]);
        let version = i16::from_be_bytes([frame[6], frame[7]]);
        let key = ApiKey::try_from(code).map_err(|_| ParseError::UnknownApiKey(code))?;
        let range = key.valid_versions();
        if key == ApiKey::ApiVersions && version > range.max {
            return Self::newer_api_versions(frame, version);
        }
        if version < range.min || version > range.max {
            return Err(ParseError::UnknownVersion {
                key,
                code,
                version,
                min: range.min,
                max: range.max,
            });
        }
        let mut buf = frame.slice(4..);
        let header = decode_header(&mut buf, key, version, key.request_header_version(version))?;
        let body = RequestKind::decode(key, &mut buf, version).map_err(|e| ParseError::Body {
            key,
            version,
            reason: format!("{e:#}"),
        })?;
        // Bytes after the body are left alone, as brokers leave them
        // (librdkafka's Metadata v12 carries three); the broker reads the
        // same schema from the same bytes, so both sides see one request.
        Ok(Request {
            frame,
            api_key: key,
            api_version: version,
            correlation_id: header.correlation_id,
            client_id: header.client_id,
            body,
        })
    }

    /// A Produce request naming exactly one topic, judged from the first
    /// bytes of its frame: the header, `transactional_id`, `acks`,
    /// `timeout_ms` and the one topic's name (or, from v13, ID). Everything
    /// after it is that topic's partitions and record batches, which policy
    /// never looks at, so an allowed request's remaining bytes can go to the
    /// broker without passing through this process (see the proxy's Kafka
    /// relay). The broker reads the same topic count and topic from the
    /// same bytes, so both sides see one request.
    ///
    /// `head` is the start of the frame, length prefix included. The result
    /// keeps `head` as its `frame` and has a body whose one topic carries no
    /// partitions: good for judging and logging, not for answering (a
    /// denial needs the partitions, so the caller reads the whole frame).
    /// `None` when the bytes are not such a request or do not hold its head
    /// yet; the caller then parses the whole frame, which reports any error.
    ///
    /// Decoded field by field with kafka-protocol's own types because its
    /// `ProduceRequest` decoder needs the whole frame in memory.
    pub fn parse_produce_head(head: Bytes) -> Option<Request> {
        if head.len() < 4 + 8 {
            return None;
        }
        let code = i16::from_be_bytes([head[4], head[5]]);
        let version = i16::from_be_bytes([head[6], head[7]]);
        let key = ApiKey::Produce;
        let range = key.valid_versions();
        if code != key as i16 || version < range.min || version > range.max {
            return None;
        }
        let flexible = version >= 9;
        let mut buf = head.slice(4..);
        let header =
            decode_header(&mut buf, key, version, key.request_header_version(version)).ok()?;
        let transactional_id = wire::string(&mut buf, flexible)?;
        let acks = buf.try_get_i16().ok()?;
        let timeout_ms = buf.try_get_i32().ok()?;
        if wire::array_len(&mut buf, flexible)? != 1 {
            return None;
        }
        let mut topic = TopicProduceData::default();
        if version <= 12 {
            topic.name = TopicName(wire::string(&mut buf, flexible)??);
        } else {
            let id = buf.get(..16)?;
            topic.topic_id = uuid::Uuid::from_slice(id).ok()?;
        }
        let body = ProduceRequest::default()
            .with_transactional_id(transactional_id.map(Into::into))
            .with_acks(acks)
            .with_timeout_ms(timeout_ms)
            .with_topic_data(vec![topic]);
        Some(Request {
            frame: head,
            api_key: key,
            api_version: version,
            correlation_id: header.correlation_id,
            client_id: header.client_id,
            body: RequestKind::Produce(body),
        })
    }

    /// ApiVersions newer than this proxy knows: Kafka's version negotiation
    /// depends on it getting through (a broker answers a version it does not
    /// know with a v0 response listing what it supports, and the client
    /// retries). Its header is v2 as in every flexible ApiVersions; its body
    /// is not needed for policy and is forwarded untouched.
    fn newer_api_versions(frame: Bytes, version: i16) -> Result<Request, ParseError> {
        let key = ApiKey::ApiVersions;
        let mut buf = frame.slice(4..);
        let header = decode_header(&mut buf, key, version, 2)?;
        Ok(Request {
            frame,
            api_key: key,
            api_version: version,
            correlation_id: header.correlation_id,
            client_id: header.client_id,
            body: RequestKind::ApiVersions(Default::default()),
        })
    }

    /// The version a response made here uses: the request's own, except for
    /// an ApiVersions newer than this proxy knows, answered in v0 as a
    /// broker would.
    pub fn response_version(&self) -> i16 {
        if self.api_key == ApiKey::ApiVersions
            && self.api_version > ApiKey::ApiVersions.valid_versions().max
        {
            0
        } else {
            self.api_version
        }
    }

    /// Produce with `acks=0` gets no response from the broker, and must get
    /// none from us either.
    pub fn expects_response(&self) -> bool {
        !matches!(&self.body, RequestKind::Produce(p) if p.acks == 0)
    }

    /// Every topic the request names.
    pub fn topics(&self) -> Vec<TopicRef> {
        topics::request_topics(&self.body)
    }

    pub fn client_id(&self) -> &str {
        self.client_id.as_deref().unwrap_or("")
    }
}

/// A request header in `header_version`, a decoding error named for the
/// request's key and version.
fn decode_header(
    buf: &mut Bytes,
    key: ApiKey,
    version: i16,
    header_version: i16,
) -> Result<RequestHeader, ParseError> {
    RequestHeader::decode(buf, header_version).map_err(|e| ParseError::Header {
        key,
        version,
        reason: format!("{e:#}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::messages::{MetadataRequest, RequestHeader};
    use kafka_protocol::protocol::Encodable;

    pub(crate) fn frame(
        key: ApiKey,
        version: i16,
        client: Option<&'static str>,
        body: &RequestKind,
    ) -> Bytes {
        let mut b = BytesMut::new();
        b.extend_from_slice(&[0; 4]);
        RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(7)
            .with_client_id(client.map(StrBytes::from_static_str))
            .encode(&mut b, key.request_header_version(version))
            .unwrap();
        body.encode(&mut b, version).unwrap();
        let len = (b.len() - 4) as i32;
        b[..4].copy_from_slice(&len.to_be_bytes());
        b.freeze()
    }

    #[test]
    fn parses_header_body_and_keeps_bytes() {
        let body = RequestKind::Metadata(MetadataRequest::default());
        for v in [0i16, 4, 9, 12] {
            let f = frame(ApiKey::Metadata, v, Some("cli"), &body);
            let r = Request::parse(f.clone()).unwrap();
            assert_eq!(r.frame, f);
            assert_eq!(
                (r.api_key, r.api_version, r.correlation_id),
                (ApiKey::Metadata, v, 7)
            );
            assert_eq!(r.client_id(), "cli");
        }
    }

    #[test]
    fn acks_zero_expects_no_response() {
        let body = RequestKind::Produce(ProduceRequest::default().with_acks(0));
        let r = Request::parse(frame(ApiKey::Produce, 9, None, &body)).unwrap();
        assert!(!r.expects_response());
        let body = RequestKind::Produce(ProduceRequest::default().with_acks(-1));
        let r = Request::parse(frame(ApiKey::Produce, 9, None, &body)).unwrap();
        assert!(r.expects_response());
    }

    #[test]
    fn bad_input_is_an_error() {
        let ok = frame(
            ApiKey::Metadata,
            9,
            Some("c"),
            &RequestKind::Metadata(MetadataRequest::default()),
        );
        // Unknown key, unknown version, truncated header, truncated body,
        // and an array count far beyond the frame.
        let mut unknown = ok.to_vec();
        unknown[4..6].copy_from_slice(&999i16.to_be_bytes());
        assert!(matches!(
            Request::parse(unknown.into()),
            Err(ParseError::UnknownApiKey(999))
        ));
        let mut badv = ok.to_vec();
        badv[6..8].copy_from_slice(&99i16.to_be_bytes());
        assert!(matches!(
            Request::parse(badv.into()),
            Err(ParseError::UnknownVersion { .. })
        ));
        assert!(matches!(
            Request::parse(ok.slice(..10)),
            Err(ParseError::Short(6))
        ));
        assert!(Request::parse(ok.slice(..ok.len() - 1)).is_err());
        // Metadata v0 with a topic count of 54 million in 8 bytes: an error,
        // not a 3.6 GiB allocation.
        let mut hostile = vec![0, 0, 0, 0];
        hostile.extend_from_slice(&3i16.to_be_bytes());
        hostile.extend_from_slice(&0i16.to_be_bytes());
        hostile.extend_from_slice(&1i32.to_be_bytes());
        hostile.extend_from_slice(&(-1i16).to_be_bytes());
        hostile.extend_from_slice(&0x033c_0c00i32.to_be_bytes());
        let len = (hostile.len() - 4) as i32;
        hostile[..4].copy_from_slice(&len.to_be_bytes());
        let e = Request::parse(hostile.into()).unwrap_err();
        assert!(e.to_string().contains("exceeds"), "{e}");
    }

    fn produce(version: i16, topics: &[&'static str], txn: Option<&'static str>) -> Bytes {
        use kafka_protocol::messages::produce_request::PartitionProduceData;
        let topic_data = topics
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let mut t = TopicProduceData::default().with_partition_data(
                    (0..2)
                        .map(|p| {
                            PartitionProduceData::default()
                                .with_index(p)
                                .with_records(Some(Bytes::from(vec![b'r'; 300 + i])))
                        })
                        .collect(),
                );
                if version <= 12 {
                    t.name = TopicName(StrBytes::from_static_str(name));
                } else {
                    t.topic_id = uuid::Uuid::from_u128(0x1234 + i as u128);
                }
                t
            })
            .collect();
        let body = ProduceRequest::default()
            .with_transactional_id(txn.map(|t| StrBytes::from_static_str(t).into()))
            .with_acks(-1)
            .with_timeout_ms(1500)
            .with_topic_data(topic_data);
        frame(
            ApiKey::Produce,
            version,
            Some("producer-1"),
            &RequestKind::Produce(body),
        )
    }

    #[test]
    fn produce_head_names_the_one_topic_once_its_bytes_are_there() {
        for version in 3..=13i16 {
            for txn in [None, Some("txn-7")] {
                let f = produce(version, &["deathstar-plans"], txn);
                let full = Request::parse(f.clone()).unwrap();
                let mut complete_at = None;
                for cut in 0..=f.len() {
                    match Request::parse_produce_head(f.slice(..cut)) {
                        None => assert!(complete_at.is_none(), "v{version}: head lost at {cut}"),
                        Some(head) => {
                            complete_at.get_or_insert(cut);
                            assert_eq!(head.frame, f.slice(..cut));
                            assert_eq!(head.topics(), full.topics(), "v{version}");
                            assert_eq!(
                                (head.correlation_id, head.client_id(), head.api_version),
                                (7, "producer-1", version)
                            );
                            assert!(head.expects_response());
                            let RequestKind::Produce(p) = &head.body else {
                                panic!()
                            };
                            assert_eq!((p.acks, p.timeout_ms), (-1, 1500));
                            assert_eq!(p.transactional_id.as_ref().map(|t| &*t.0), txn);
                        }
                    }
                }
                // Judged before the first record batch.
                let at = complete_at.unwrap();
                assert!(
                    at < f.len() - 600,
                    "v{version}: head complete only at {at} of {}",
                    f.len()
                );
            }
            // Not one topic, or not Produce: the whole frame is needed.
            for topics in [&[][..], &["a", "b"][..]] {
                let f = produce(version, topics, None);
                assert!(
                    (0..=f.len()).all(|cut| Request::parse_produce_head(f.slice(..cut)).is_none()),
                    "v{version} with {} topics",
                    topics.len()
                );
            }
        }
        let metadata = frame(
            ApiKey::Metadata,
            9,
            None,
            &RequestKind::Metadata(MetadataRequest::default()),
        );
        assert!(Request::parse_produce_head(metadata).is_none());
        let mut future = produce(9, &["t"], None).to_vec();
        future[6..8].copy_from_slice(&99i16.to_be_bytes());
        assert!(Request::parse_produce_head(future.into()).is_none());
    }

    #[test]
    fn newer_api_versions_passes_for_negotiation() {
        let body = RequestKind::ApiVersions(Default::default());
        let mut f = frame(ApiKey::ApiVersions, 3, Some("cli"), &body).to_vec();
        f[6..8].copy_from_slice(&9i16.to_be_bytes());
        let r = Request::parse(f.into()).unwrap();
        assert_eq!((r.api_version, r.response_version()), (9, 0));
        assert_eq!(r.client_id(), "cli");
        assert_eq!(r.correlation_id, 7);
    }
}
