//! The response side: the frames made here (a denial, a broker's Metadata
//! response scrubbed of what a denied request may not see), and what the
//! proxy reads in the broker's: the correlation ID that keeps responses in
//! request order, and the bodies that teach topic IDs
//! ([`crate::topics::TopicIds`]).

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::{Decodable, Encodable};
use kafka_protocol::ResponseError as E;

use crate::Request;

#[derive(Debug, thiserror::Error)]
pub enum ResponseError {
    #[error("broker answered correlation ID {got} where {want} was next")]
    OutOfOrder { got: i32, want: i32 },
    #[error("broker response of {0} bytes has no correlation ID")]
    Short(usize),
    #[error("broker response for {key:?} v{version} does not parse: {reason}")]
    Parse {
        key: ApiKey,
        version: i16,
        reason: String,
    },
    #[error("could not build a response for {key:?} v{version}: {reason}")]
    Encode {
        key: ApiKey,
        version: i16,
        reason: String,
    },
}

/// The answer to `req` made here, as a whole frame: length prefix, the
/// response header, and `body` at the request's response version.
pub fn encode_response(req: &Request, body: &ResponseKind) -> Result<Bytes, ResponseError> {
    encode_frame(
        req.api_key,
        req.response_version(),
        req.correlation_id,
        body,
    )
}

/// A whole response frame: length prefix, the header for `key` at
/// `version`, and `body`.
pub fn encode_frame(
    key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &ResponseKind,
) -> Result<Bytes, ResponseError> {
    let fail = |reason: String| ResponseError::Encode {
        key,
        version,
        reason,
    };
    let mut out = BytesMut::with_capacity(64);
    out.extend_from_slice(&[0; 4]);
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(&mut out, key.response_header_version(version))
        .and_then(|()| body.encode(&mut out, version))
        .map_err(|e| fail(format!("{e:#}")))?;
    let len = i32::try_from(out.len() - 4).map_err(|_| fail("response over 2 GiB".into()))?;
    out[..4].copy_from_slice(&len.to_be_bytes());
    Ok(out.freeze())
}

/// The body of a whole response frame (length prefix included), decoded
/// after its header.
pub fn decode_body(
    frame: &Bytes,
    key: ApiKey,
    version: i16,
) -> Result<ResponseKind, ResponseError> {
    let parse = |e| ResponseError::Parse {
        key,
        version,
        reason: format!("{e:#}"),
    };
    let mut buf = frame.slice(4.min(frame.len())..);
    ResponseHeader::decode(&mut buf, key.response_header_version(version)).map_err(parse)?;
    ResponseKind::decode(key, &mut buf, version).map_err(parse)
}

/// That the response `frame` starts (length prefix included) answers
/// `want`: the broker answers in request order.
pub fn check_correlation(frame: &[u8], want: i32) -> Result<(), ResponseError> {
    let id = frame.get(4..8).ok_or(ResponseError::Short(frame.len()))?;
    let got = i32::from_be_bytes([id[0], id[1], id[2], id[3]]);
    if got == want {
        Ok(())
    } else {
        Err(ResponseError::OutOfOrder { got, want })
    }
}

/// Responses whose topic IDs are worth learning: these are read whole and
/// decoded; all others pass through undecoded.
pub fn teaches_topic_ids(key: ApiKey) -> bool {
    matches!(
        key,
        ApiKey::Metadata | ApiKey::CreateTopics | ApiKey::DescribeTopicPartitions
    )
}

/// The broker's Metadata response `frame` (at `version`) with every topic
/// refused: error 29, no partitions, no topic ID, no authorized operations.
/// A denied Metadata request is answered so, rather than with
/// [`crate::deny`]'s response, because clients need the real broker list
/// and controller even when a topic is refused (librdkafka drops its group
/// coordinator on a metadata answer without brokers).
pub fn scrub_metadata(
    frame: &Bytes,
    correlation_id: i32,
    version: i16,
) -> Result<Bytes, ResponseError> {
    let key = ApiKey::Metadata;
    let mut body = decode_body(frame, key, version)?;
    if let ResponseKind::Metadata(m) = &mut body {
        for t in &mut m.topics {
            t.error_code = E::TopicAuthorizationFailed.code();
            t.partitions.clear();
            t.topic_id = uuid::Uuid::nil();
            t.topic_authorized_operations = i32::MIN;
        }
    }
    encode_frame(key, version, correlation_id, &body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deny::tests::{s, tn, ID_A, TOPIC_A, TOPIC_B};
    use kafka_protocol::messages::metadata_response::{
        MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
    };
    use kafka_protocol::messages::MetadataResponse;

    fn metadata(version: i16) -> Bytes {
        let body = ResponseKind::Metadata(
            MetadataResponse::default()
                .with_brokers(vec![MetadataResponseBroker::default()
                    .with_node_id(1.into())
                    .with_host(s("broker-1"))
                    .with_port(9092)])
                .with_controller_id(1.into())
                .with_topics(vec![
                    MetadataResponseTopic::default()
                        .with_name(Some(tn(TOPIC_A)))
                        .with_topic_id(ID_A)
                        .with_topic_authorized_operations(8)
                        .with_partitions(vec![MetadataResponsePartition::default()]),
                    MetadataResponseTopic::default().with_name(Some(tn(TOPIC_B))),
                ]),
        );
        encode_frame(ApiKey::Metadata, version, 7, &body).unwrap()
    }

    #[test]
    fn frames_round_trip_and_keep_request_order() {
        let frame = metadata(12);
        let len = i32::from_be_bytes(frame[..4].try_into().unwrap());
        assert_eq!(len as usize, frame.len() - 4);
        check_correlation(&frame, 7).unwrap();
        let e = check_correlation(&frame, 8).unwrap_err();
        assert_eq!(
            e.to_string(),
            "broker answered correlation ID 7 where 8 was next"
        );
        assert!(matches!(
            check_correlation(&frame[..6], 7),
            Err(ResponseError::Short(6))
        ));
        let ResponseKind::Metadata(m) = decode_body(&frame, ApiKey::Metadata, 12).unwrap() else {
            panic!()
        };
        assert_eq!(m.topics.len(), 2);
        let e = decode_body(&frame.slice(..frame.len() - 3), ApiKey::Metadata, 12).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("broker response for Metadata v12 does not parse"),
            "{e}"
        );
    }

    #[test]
    fn scrubbed_metadata_refuses_every_topic_and_keeps_the_brokers() {
        for version in [10, 12, 13] {
            let scrubbed = scrub_metadata(&metadata(version), 9, version).unwrap();
            check_correlation(&scrubbed, 9).unwrap();
            let ResponseKind::Metadata(m) =
                decode_body(&scrubbed, ApiKey::Metadata, version).unwrap()
            else {
                panic!()
            };
            assert_eq!(m.brokers.len(), 1, "v{version}");
            assert_eq!(m.controller_id, 1);
            for t in &m.topics {
                assert_eq!(t.error_code, 29);
                assert!(t.partitions.is_empty() && t.topic_id.is_nil());
            }
            assert_eq!(m.topics.len(), 2);
        }
    }

    #[test]
    fn only_topic_id_responses_are_decoded() {
        assert!(teaches_topic_ids(ApiKey::Metadata));
        assert!(teaches_topic_ids(ApiKey::DescribeTopicPartitions));
        assert!(!teaches_topic_ids(ApiKey::Fetch));
    }
}
