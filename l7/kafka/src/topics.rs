//! The topics a request names, the topic IDs a response teaches, and the
//! table of topic IDs learned.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind, TopicName};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

pub use crate::refs::TopicRef;
use crate::refs::Topics;
use crate::response::{decode_body, ResponseError};

/// Every topic `body` names, in request order, duplicates included.
///
/// Names where the request carries names, topic IDs where it carries IDs
/// (Fetch v13+, Produce v13, the share-group APIs, the KRaft/broker APIs
/// that use IDs). Requests that stand for "every topic" (Metadata with a
/// null topic list, OffsetFetch with null topics, DescribeLogDirs or
/// ListPartitionReassignments with a null list, ElectLeaders with null
/// partitions) name none and give an empty list, as do the APIs that carry
/// no topic at all. Where each request keeps its topics is the topics
/// column of [`crate::api`]'s table.
pub fn request_topics(body: &RequestKind) -> Vec<TopicRef> {
    let mut t = Topics::default();
    crate::api::collect_topics(body, &mut t);
    t.0
}

/// The (topic ID, name) pairs a response carries.
///
/// Only entries that carry both a non-empty name and a non-nil ID:
/// Metadata (v10+), CreateTopics (v7+), DeleteTopics (v6+),
/// DescribeTopicPartitions, the assignments in ConsumerGroupDescribe and
/// ShareGroupDescribe, and the share-group offset APIs.
pub fn response_topic_ids(body: &ResponseKind) -> Vec<(Uuid, StrBytes)> {
    let mut out = Vec::new();
    let mut pair = |id: Uuid, name: Option<&TopicName>| {
        if let Some(name) = name {
            if !id.is_nil() && !name.0.is_empty() {
                out.push((id, name.0.clone()));
            }
        }
    };
    match body {
        ResponseKind::Metadata(r) => {
            for topic in &r.topics {
                pair(topic.topic_id, topic.name.as_ref());
            }
        }
        ResponseKind::CreateTopics(r) => {
            for topic in &r.topics {
                pair(topic.topic_id, Some(&topic.name));
            }
        }
        ResponseKind::DeleteTopics(r) => {
            for topic in &r.responses {
                pair(topic.topic_id, topic.name.as_ref());
            }
        }
        ResponseKind::DescribeTopicPartitions(r) => {
            for topic in &r.topics {
                pair(topic.topic_id, topic.name.as_ref());
            }
        }
        ResponseKind::ConsumerGroupDescribe(r) => {
            for member in r.groups.iter().flat_map(|g| &g.members) {
                for a in [&member.assignment, &member.target_assignment] {
                    for tp in &a.topic_partitions {
                        pair(tp.topic_id, Some(&tp.topic_name));
                    }
                }
            }
        }
        ResponseKind::ShareGroupDescribe(r) => {
            for member in r.groups.iter().flat_map(|g| &g.members) {
                for tp in &member.assignment.topic_partitions {
                    pair(tp.topic_id, Some(&tp.topic_name));
                }
            }
        }
        ResponseKind::DescribeShareGroupOffsets(r) => {
            for topic in r.groups.iter().flat_map(|g| &g.topics) {
                pair(topic.topic_id, Some(&topic.topic_name));
            }
        }
        ResponseKind::AlterShareGroupOffsets(r) => {
            for topic in &r.responses {
                pair(topic.topic_id, Some(&topic.topic_name));
            }
        }
        ResponseKind::DeleteShareGroupOffsets(r) => {
            for topic in &r.responses {
                pair(topic.topic_id, Some(&topic.topic_name));
            }
        }
        // Every other response carries names only, IDs only, or no topics.
        _ => {}
    }
    out
}

/// Topic ID → name, learned from responses, per broker identity: what
/// lets a rule naming a topic judge a request naming its ID.
#[derive(Debug, Default)]
pub struct TopicIds {
    map: Mutex<HashMap<(u32, Uuid), Arc<str>>>,
}

/// Learned topic IDs kept; the table starts over when full and is relearned
/// from the next metadata response.
const MAX_TOPIC_IDS: usize = 100_000;

impl TopicIds {
    /// The names of `topics` as `broker` taught them: a name as is, an ID
    /// by what was learned (`None` while unknown).
    pub fn resolve(&self, broker: u32, topics: &[TopicRef]) -> Vec<Option<Arc<str>>> {
        let mut map = None;
        topics
            .iter()
            .map(|t| match t {
                TopicRef::Name(n) => Some(Arc::from(n.as_str())),
                TopicRef::Id(id) => map
                    .get_or_insert_with(|| self.map.lock().unwrap_or_else(|e| e.into_inner()))
                    .get(&(broker, *id))
                    .cloned(),
            })
            .collect()
    }

    /// Learns the topic IDs in `broker`'s response `frame` (length prefix
    /// included) to a `key` request at `version`.
    pub fn learn(
        &self,
        broker: u32,
        frame: &Bytes,
        key: ApiKey,
        version: i16,
    ) -> Result<(), ResponseError> {
        let pairs = response_topic_ids(&decode_body(frame, key, version)?);
        if pairs.is_empty() {
            return Ok(());
        }
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() + pairs.len() > MAX_TOPIC_IDS {
            map.clear();
        }
        for (id, name) in pairs {
            map.insert((broker, id), Arc::from(name.as_str()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deny::tests::{
        peer_request, roundtrip_response, s, tn, ID_A, ID_B, KRAFT_TOPIC, TOPIC_A, TOPIC_B,
    };
    use kafka_protocol::messages::*;

    fn name(x: &'static str) -> TopicRef {
        TopicRef::Name(s(x))
    }

    /// The topics of `crate::deny::tests::sample_request(key, v)` as a peer
    /// sends it.
    fn expected_topics(key: ApiKey, v: i16) -> Vec<TopicRef> {
        use ApiKey as K;
        use TopicRef::Id;
        match key {
            K::Produce if v >= 13 => vec![Id(ID_A)],
            K::Fetch if v >= 13 => vec![Id(ID_A), Id(ID_B)],
            K::Fetch if v >= 7 => vec![name(TOPIC_A), name(TOPIC_B)],
            K::Metadata if v >= 12 => vec![name(TOPIC_A), Id(ID_B)],
            K::DeleteTopics if v >= 6 => vec![name(TOPIC_A), Id(ID_B)],
            // OffsetCommit v10 / OffsetFetch v10 requests do not round-trip
            // (see UNENCODABLE): the sample carries both name and ID.
            K::OffsetCommit | K::OffsetFetch if v >= 10 => vec![name(TOPIC_A), Id(ID_A)],
            K::Produce
            | K::Fetch
            | K::ListOffsets
            | K::Metadata
            | K::OffsetCommit
            | K::OffsetFetch
            | K::CreateTopics
            | K::DeleteTopics
            | K::DeleteRecords
            | K::OffsetForLeaderEpoch
            | K::AddPartitionsToTxn
            | K::WriteTxnMarkers
            | K::TxnOffsetCommit
            | K::DescribeAcls
            | K::CreateAcls
            | K::DeleteAcls
            | K::DescribeConfigs
            | K::AlterConfigs
            | K::IncrementalAlterConfigs
            | K::AlterReplicaLogDirs
            | K::DescribeLogDirs
            | K::CreatePartitions
            | K::ElectLeaders
            | K::AlterPartitionReassignments
            | K::ListPartitionReassignments
            | K::OffsetDelete
            | K::DescribeProducers
            | K::DescribeTopicPartitions
            | K::ShareGroupHeartbeat
            | K::DescribeShareGroupOffsets
            | K::AlterShareGroupOffsets
            | K::DeleteShareGroupOffsets => vec![name(TOPIC_A)],
            K::ConsumerGroupHeartbeat => vec![name(TOPIC_A), Id(ID_B)],
            K::ShareFetch => vec![Id(ID_A), Id(ID_B)],
            K::AlterPartition
            | K::AssignReplicasToDirs
            | K::ShareAcknowledge
            | K::InitializeShareGroupState
            | K::ReadShareGroupState
            | K::WriteShareGroupState
            | K::DeleteShareGroupState
            | K::ReadShareGroupStateSummary => vec![Id(ID_A)],
            K::Vote
            | K::BeginQuorumEpoch
            | K::EndQuorumEpoch
            | K::DescribeQuorum
            | K::FetchSnapshot => {
                vec![name(KRAFT_TOPIC)]
            }
            K::FindCoordinator
            | K::JoinGroup
            | K::Heartbeat
            | K::LeaveGroup
            | K::SyncGroup
            | K::DescribeGroups
            | K::ListGroups
            | K::SaslHandshake
            | K::ApiVersions
            | K::InitProducerId
            | K::AddOffsetsToTxn
            | K::EndTxn
            | K::SaslAuthenticate
            | K::CreateDelegationToken
            | K::RenewDelegationToken
            | K::ExpireDelegationToken
            | K::DescribeDelegationToken
            | K::DeleteGroups
            | K::DescribeClientQuotas
            | K::AlterClientQuotas
            | K::DescribeUserScramCredentials
            | K::AlterUserScramCredentials
            | K::UpdateFeatures
            | K::Envelope
            | K::DescribeCluster
            | K::BrokerRegistration
            | K::BrokerHeartbeat
            | K::UnregisterBroker
            | K::DescribeTransactions
            | K::ListTransactions
            | K::AllocateProducerIds
            | K::ConsumerGroupDescribe
            | K::ControllerRegistration
            | K::GetTelemetrySubscriptions
            | K::PushTelemetry
            | K::ListConfigResources
            | K::ShareGroupDescribe
            | K::AddRaftVoter
            | K::RemoveRaftVoter
            | K::UpdateRaftVoter => vec![],
        }
    }

    #[test]
    fn every_sample_request_names_its_topics() {
        for key in ApiKey::iter() {
            let range = key.valid_versions();
            for v in range.min..=range.max {
                assert_eq!(
                    request_topics(&peer_request(key, v)),
                    expected_topics(key, v),
                    "{key:?} v{v}"
                );
            }
        }
    }

    #[test]
    fn fetch_names_topics_up_to_v12_and_ids_from_v13() {
        let ids = |v| request_topics(&peer_request(ApiKey::Fetch, v));
        assert_eq!(ids(12), [name(TOPIC_A), name(TOPIC_B)]);
        for v in 13..=18 {
            assert_eq!(ids(v), [TopicRef::Id(ID_A), TopicRef::Id(ID_B)], "v{v}");
        }
    }

    #[test]
    fn all_topics_requests_name_none() {
        let all = RequestKind::Metadata(MetadataRequest::default().with_topics(None));
        assert!(request_topics(&all).is_empty());
        let empty = RequestKind::Metadata(MetadataRequest::default().with_topics(Some(vec![])));
        assert!(request_topics(&empty).is_empty());
        let all = RequestKind::OffsetFetch(OffsetFetchRequest::default().with_topics(None));
        assert!(request_topics(&all).is_empty());
    }

    #[test]
    fn entries_with_both_or_neither_name_and_id() {
        use metadata_request::MetadataRequestTopic;
        let req = RequestKind::Metadata(MetadataRequest::default().with_topics(Some(vec![
            MetadataRequestTopic::default()
                .with_name(Some(tn(TOPIC_A)))
                .with_topic_id(ID_A),
            MetadataRequestTopic::default().with_name(None),
        ])));
        assert_eq!(
            request_topics(&req),
            [name(TOPIC_A), TopicRef::Id(ID_A), name("")]
        );

        use produce_request::TopicProduceData;
        let req = RequestKind::Produce(
            ProduceRequest::default().with_topic_data(vec![TopicProduceData::default()]),
        );
        assert_eq!(request_topics(&req), [name("")]);
    }

    #[test]
    fn acl_and_config_resources_count_only_when_they_are_topics() {
        use describe_configs_request::DescribeConfigsResource;
        let req =
            RequestKind::DescribeConfigs(DescribeConfigsRequest::default().with_resources(vec![
            DescribeConfigsResource::default()
                .with_resource_type(4)
                .with_resource_name(s("1")),
            DescribeConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(s(TOPIC_B)),
        ]));
        assert_eq!(request_topics(&req), [name(TOPIC_B)]);

        // An ACL filter without a name names no topic.
        let req = RequestKind::DescribeAcls(
            DescribeAclsRequest::default()
                .with_resource_type_filter(2)
                .with_resource_name_filter(None),
        );
        assert!(request_topics(&req).is_empty());
        let req = RequestKind::DescribeAcls(
            DescribeAclsRequest::default()
                .with_resource_type_filter(3)
                .with_resource_name_filter(Some(s("group-1"))),
        );
        assert!(request_topics(&req).is_empty());
    }

    fn metadata_response() -> ResponseKind {
        use metadata_response::MetadataResponseTopic;
        ResponseKind::Metadata(MetadataResponse::default().with_topics(vec![
            MetadataResponseTopic::default()
                .with_name(Some(tn(TOPIC_A)))
                .with_topic_id(ID_A),
            MetadataResponseTopic::default()
                .with_name(Some(tn(TOPIC_B)))
                .with_topic_id(ID_B),
            // Unknown topic: no ID to learn.
            MetadataResponseTopic::default()
                .with_error_code(3)
                .with_name(Some(tn("missing"))),
        ]))
    }

    #[test]
    fn metadata_responses_teach_topic_ids_from_v10() {
        for v in 0..=13 {
            let got = response_topic_ids(&roundtrip_response(
                ApiKey::Metadata,
                v,
                &metadata_response(),
            ));
            if v >= 10 {
                assert_eq!(got, [(ID_A, s(TOPIC_A)), (ID_B, s(TOPIC_B))], "v{v}");
            } else {
                assert!(got.is_empty(), "v{v}: {got:?}");
            }
        }
    }

    #[test]
    fn create_topics_responses_teach_topic_ids_from_v7() {
        use create_topics_response::CreatableTopicResult;
        let resp = ResponseKind::CreateTopics(CreateTopicsResponse::default().with_topics(vec![
            CreatableTopicResult::default()
                .with_name(tn(TOPIC_A))
                .with_topic_id(ID_A),
        ]));
        for v in 2..=7 {
            let got = response_topic_ids(&roundtrip_response(ApiKey::CreateTopics, v, &resp));
            if v >= 7 {
                assert_eq!(got, [(ID_A, s(TOPIC_A))], "v{v}");
            } else {
                assert!(got.is_empty(), "v{v}: {got:?}");
            }
        }
    }

    #[test]
    fn describe_topic_partitions_and_delete_topics_teach_topic_ids() {
        use delete_topics_response::DeletableTopicResult;
        use describe_topic_partitions_response::DescribeTopicPartitionsResponseTopic;
        let resp = ResponseKind::DescribeTopicPartitions(
            DescribeTopicPartitionsResponse::default().with_topics(vec![
                DescribeTopicPartitionsResponseTopic::default()
                    .with_name(Some(tn(TOPIC_A)))
                    .with_topic_id(ID_A),
            ]),
        );
        let got = response_topic_ids(&roundtrip_response(
            ApiKey::DescribeTopicPartitions,
            0,
            &resp,
        ));
        assert_eq!(got, [(ID_A, s(TOPIC_A))]);

        let resp =
            ResponseKind::DeleteTopics(DeleteTopicsResponse::default().with_responses(vec![
            DeletableTopicResult::default()
                .with_name(Some(tn(TOPIC_B)))
                .with_topic_id(ID_B),
        ]));
        let got = response_topic_ids(&roundtrip_response(ApiKey::DeleteTopics, 6, &resp));
        assert_eq!(got, [(ID_B, s(TOPIC_B))]);
        let got = response_topic_ids(&roundtrip_response(ApiKey::DeleteTopics, 5, &resp));
        assert!(got.is_empty());
    }

    #[test]
    fn other_responses_teach_nothing() {
        for key in [ApiKey::Produce, ApiKey::Fetch, ApiKey::ApiVersions] {
            let v = key.valid_versions().max;
            let resp = crate::deny::deny(&peer_request(key, v), v)
                .unwrap()
                .response;
            assert!(response_topic_ids(&resp).is_empty(), "{key:?}");
        }
    }

    #[test]
    fn topic_ids_are_learned_per_broker_and_resolved() {
        let frame =
            crate::response::encode_frame(ApiKey::Metadata, 12, 1, &metadata_response()).unwrap();
        let ids = TopicIds::default();
        let refs = [name(TOPIC_A), TopicRef::Id(ID_A), TopicRef::Id(ID_B)];
        assert_eq!(ids.resolve(7, &refs), [Some(TOPIC_A.into()), None, None]);
        ids.learn(7, &frame, ApiKey::Metadata, 12).unwrap();
        assert_eq!(
            ids.resolve(7, &refs),
            [
                Some(TOPIC_A.into()),
                Some(TOPIC_A.into()),
                Some(TOPIC_B.into())
            ]
        );
        // Another broker identity taught nothing.
        assert_eq!(ids.resolve(8, &refs[1..]), [None, None]);
        assert!(ids
            .learn(7, &frame.slice(..9), ApiKey::Metadata, 12)
            .is_err());
    }
}
