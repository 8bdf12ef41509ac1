//! A well-formed authorization-error response for any request.
//!
//! [`deny_response`] answers a denied request the way a broker answers a
//! client that lacks the ACL for it, so that clients fail with the usual
//! `*AuthorizationException` instead of retrying or timing out:
//!
//! - APIs about topics: TOPIC_AUTHORIZATION_FAILED (29) on every topic or
//!   partition the response carries, echoing the request's topics (by name
//!   or by ID, as the request named them) and partition indexes; top-level
//!   error codes stay 0 as the broker leaves them when only topics fail.
//!   When such a request names no topic at all (an "every topic" form), the
//!   top-level code, if the response has one, carries the group or cluster
//!   error instead.
//! - Group APIs: GROUP_AUTHORIZATION_FAILED (30).
//! - Transactional-ID APIs: TRANSACTIONAL_ID_AUTHORIZATION_FAILED (53).
//! - Delegation tokens: DELEGATION_TOKEN_AUTHORIZATION_FAILED (65).
//! - Everything cluster-wide (ACLs, quotas, SCRAM credentials, features,
//!   listings, broker-to-broker, broker-to-controller and KRaft APIs, even
//!   when those carry topics): CLUSTER_AUTHORIZATION_FAILED (31).
//! - SASL: UNSUPPORTED_SASL_MECHANISM (33) for the handshake,
//!   SASL_AUTHENTICATION_FAILED (58) for the authentication step.
//!
//! Every response is built for the request's version: fields the version
//! does not carry are left at their defaults (the encoder rejects some that
//! are not), and nullable strings that are "no message" are null, not "".

use bytes::Bytes;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

/// TOPIC_AUTHORIZATION_FAILED (29).
const TOPIC: i16 = ResponseError::TopicAuthorizationFailed.code();
/// GROUP_AUTHORIZATION_FAILED (30).
const GROUP: i16 = ResponseError::GroupAuthorizationFailed.code();
/// CLUSTER_AUTHORIZATION_FAILED (31).
const CLUSTER: i16 = ResponseError::ClusterAuthorizationFailed.code();
/// TRANSACTIONAL_ID_AUTHORIZATION_FAILED (53).
const TXN: i16 = ResponseError::TransactionalIdAuthorizationFailed.code();
/// DELEGATION_TOKEN_AUTHORIZATION_FAILED (65).
const TOKEN: i16 = ResponseError::DelegationTokenAuthorizationFailed.code();
/// UNSUPPORTED_SASL_MECHANISM (33).
const UNSUPPORTED_SASL_MECHANISM: i16 = ResponseError::UnsupportedSaslMechanism.code();
/// SASL_AUTHENTICATION_FAILED (58).
const SASL_AUTHENTICATION_FAILED: i16 = ResponseError::SaslAuthenticationFailed.code();

/// `items` mapped through `f`: the shape of every echoed list below.
fn each<T, U>(items: &[T], f: impl FnMut(&T) -> U) -> Vec<U> {
    items.iter().map(f).collect()
}

/// The response a denied `body` (at `version`) gets: TOPIC_AUTHORIZATION_FAILED
/// on every topic or partition the response carries, and the fitting
/// authorization error elsewhere.
///
/// `None` only for a request kind this module does not know (one added by a
/// newer kafka-protocol): the caller closes that connection.
pub fn deny_response(body: &RequestKind, version: i16) -> Option<ResponseKind> {
    let v = version;
    Some(match body {
        // Topics and partitions.
        RequestKind::Produce(r) => ResponseKind::Produce(produce(r)),
        RequestKind::Fetch(r) => ResponseKind::Fetch(fetch(r)),
        RequestKind::ListOffsets(r) => ResponseKind::ListOffsets(list_offsets(r)),
        RequestKind::Metadata(r) => ResponseKind::Metadata(metadata(r, v)),
        RequestKind::OffsetCommit(r) => ResponseKind::OffsetCommit(offset_commit(r)),
        RequestKind::OffsetFetch(r) => ResponseKind::OffsetFetch(offset_fetch(r, v)),
        RequestKind::CreateTopics(r) => ResponseKind::CreateTopics(create_topics(r)),
        RequestKind::DeleteTopics(r) => ResponseKind::DeleteTopics(delete_topics(r, v)),
        RequestKind::DeleteRecords(r) => ResponseKind::DeleteRecords(delete_records(r)),
        RequestKind::OffsetForLeaderEpoch(r) => {
            ResponseKind::OffsetForLeaderEpoch(offset_for_leader_epoch(r))
        }
        RequestKind::AddPartitionsToTxn(r) => {
            ResponseKind::AddPartitionsToTxn(add_partitions_to_txn(r, v))
        }
        RequestKind::TxnOffsetCommit(r) => ResponseKind::TxnOffsetCommit(txn_offset_commit(r)),
        RequestKind::AlterReplicaLogDirs(r) => {
            ResponseKind::AlterReplicaLogDirs(alter_replica_log_dirs(r))
        }
        RequestKind::CreatePartitions(r) => ResponseKind::CreatePartitions(create_partitions(r)),
        RequestKind::ElectLeaders(r) => ResponseKind::ElectLeaders(elect_leaders(r, v)),
        RequestKind::AlterPartitionReassignments(r) => {
            ResponseKind::AlterPartitionReassignments(alter_partition_reassignments(r, v))
        }
        RequestKind::ListPartitionReassignments(r) => {
            ResponseKind::ListPartitionReassignments(list_partition_reassignments(r))
        }
        RequestKind::OffsetDelete(r) => ResponseKind::OffsetDelete(offset_delete(r)),
        RequestKind::DescribeProducers(r) => ResponseKind::DescribeProducers(describe_producers(r)),
        RequestKind::DescribeTopicPartitions(r) => {
            ResponseKind::DescribeTopicPartitions(describe_topic_partitions(r))
        }
        RequestKind::ShareFetch(r) => ResponseKind::ShareFetch(share_fetch(r)),
        RequestKind::ShareAcknowledge(r) => ResponseKind::ShareAcknowledge(share_acknowledge(r)),
        RequestKind::DescribeShareGroupOffsets(r) => {
            ResponseKind::DescribeShareGroupOffsets(describe_share_group_offsets(r))
        }
        RequestKind::AlterShareGroupOffsets(r) => {
            ResponseKind::AlterShareGroupOffsets(alter_share_group_offsets(r))
        }
        RequestKind::DeleteShareGroupOffsets(r) => {
            ResponseKind::DeleteShareGroupOffsets(delete_share_group_offsets(r))
        }

        // Config resources.
        RequestKind::DescribeConfigs(r) => ResponseKind::DescribeConfigs(describe_configs(r)),
        RequestKind::AlterConfigs(r) => ResponseKind::AlterConfigs(alter_configs(r)),
        RequestKind::IncrementalAlterConfigs(r) => {
            ResponseKind::IncrementalAlterConfigs(incremental_alter_configs(r))
        }

        // Groups.
        RequestKind::FindCoordinator(r) => ResponseKind::FindCoordinator(find_coordinator(r, v)),
        RequestKind::JoinGroup(_) => ResponseKind::JoinGroup(join_group(v)),
        RequestKind::Heartbeat(_) => {
            ResponseKind::Heartbeat(HeartbeatResponse::default().with_error_code(GROUP))
        }
        RequestKind::LeaveGroup(_) => {
            ResponseKind::LeaveGroup(LeaveGroupResponse::default().with_error_code(GROUP))
        }
        RequestKind::SyncGroup(_) => ResponseKind::SyncGroup(
            SyncGroupResponse::default()
                .with_error_code(GROUP)
                .with_protocol_type(None)
                .with_protocol_name(None),
        ),
        RequestKind::DescribeGroups(r) => ResponseKind::DescribeGroups(describe_groups(r)),
        RequestKind::DeleteGroups(r) => ResponseKind::DeleteGroups(delete_groups(r)),
        RequestKind::ConsumerGroupHeartbeat(r) => {
            ResponseKind::ConsumerGroupHeartbeat(consumer_group_heartbeat(r))
        }
        RequestKind::ConsumerGroupDescribe(r) => {
            ResponseKind::ConsumerGroupDescribe(consumer_group_describe(r))
        }
        RequestKind::ShareGroupHeartbeat(r) => {
            ResponseKind::ShareGroupHeartbeat(share_group_heartbeat(r))
        }
        RequestKind::ShareGroupDescribe(r) => {
            ResponseKind::ShareGroupDescribe(share_group_describe(r))
        }

        // Transactional IDs.
        RequestKind::InitProducerId(r) => ResponseKind::InitProducerId(init_producer_id(r)),
        RequestKind::AddOffsetsToTxn(_) => {
            ResponseKind::AddOffsetsToTxn(AddOffsetsToTxnResponse::default().with_error_code(TXN))
        }
        RequestKind::EndTxn(_) => ResponseKind::EndTxn(
            EndTxnResponse::default()
                .with_error_code(TXN)
                .with_producer_id((-1).into())
                .with_producer_epoch(-1),
        ),
        RequestKind::DescribeTransactions(r) => {
            ResponseKind::DescribeTransactions(describe_transactions(r))
        }

        // Delegation tokens.
        RequestKind::CreateDelegationToken(_) => ResponseKind::CreateDelegationToken(
            CreateDelegationTokenResponse::default()
                .with_error_code(TOKEN)
                .with_issue_timestamp_ms(-1)
                .with_expiry_timestamp_ms(-1)
                .with_max_timestamp_ms(-1),
        ),
        RequestKind::RenewDelegationToken(_) => ResponseKind::RenewDelegationToken(
            RenewDelegationTokenResponse::default()
                .with_error_code(TOKEN)
                .with_expiry_timestamp_ms(-1),
        ),
        RequestKind::ExpireDelegationToken(_) => ResponseKind::ExpireDelegationToken(
            ExpireDelegationTokenResponse::default()
                .with_error_code(TOKEN)
                .with_expiry_timestamp_ms(-1),
        ),
        RequestKind::DescribeDelegationToken(_) => ResponseKind::DescribeDelegationToken(
            DescribeDelegationTokenResponse::default().with_error_code(TOKEN),
        ),

        // Connection set-up.
        RequestKind::SaslHandshake(_) => ResponseKind::SaslHandshake(sasl_handshake()),
        RequestKind::SaslAuthenticate(_) => ResponseKind::SaslAuthenticate(sasl_authenticate()),
        RequestKind::ApiVersions(_) => ResponseKind::ApiVersions(api_versions()),

        // Cluster: ACLs, quotas, credentials, listings, features.
        RequestKind::DescribeAcls(_) => ResponseKind::DescribeAcls(
            DescribeAclsResponse::default()
                .with_error_code(CLUSTER)
                .with_error_message(None),
        ),
        RequestKind::CreateAcls(r) => ResponseKind::CreateAcls(create_acls(r)),
        RequestKind::DeleteAcls(r) => ResponseKind::DeleteAcls(delete_acls(r)),
        RequestKind::DescribeLogDirs(_) => ResponseKind::DescribeLogDirs(describe_log_dirs(v)),
        RequestKind::DescribeClientQuotas(_) => ResponseKind::DescribeClientQuotas(
            DescribeClientQuotasResponse::default()
                .with_error_code(CLUSTER)
                .with_error_message(None)
                .with_entries(None),
        ),
        RequestKind::AlterClientQuotas(r) => {
            ResponseKind::AlterClientQuotas(alter_client_quotas(r))
        }
        RequestKind::DescribeUserScramCredentials(_) => ResponseKind::DescribeUserScramCredentials(
            DescribeUserScramCredentialsResponse::default()
                .with_error_code(CLUSTER)
                .with_error_message(None),
        ),
        RequestKind::AlterUserScramCredentials(r) => {
            ResponseKind::AlterUserScramCredentials(alter_user_scram_credentials(r))
        }
        RequestKind::UpdateFeatures(_) => ResponseKind::UpdateFeatures(
            UpdateFeaturesResponse::default()
                .with_error_code(CLUSTER)
                .with_error_message(None),
        ),
        RequestKind::DescribeCluster(r) => ResponseKind::DescribeCluster(describe_cluster(r, v)),
        RequestKind::ListGroups(_) => {
            ResponseKind::ListGroups(ListGroupsResponse::default().with_error_code(CLUSTER))
        }
        RequestKind::ListTransactions(_) => ResponseKind::ListTransactions(
            ListTransactionsResponse::default().with_error_code(CLUSTER),
        ),
        RequestKind::ListConfigResources(_) => ResponseKind::ListConfigResources(
            ListConfigResourcesResponse::default().with_error_code(CLUSTER),
        ),
        RequestKind::GetTelemetrySubscriptions(_) => ResponseKind::GetTelemetrySubscriptions(
            GetTelemetrySubscriptionsResponse::default().with_error_code(CLUSTER),
        ),
        RequestKind::PushTelemetry(_) => {
            ResponseKind::PushTelemetry(PushTelemetryResponse::default().with_error_code(CLUSTER))
        }

        // Broker-to-broker, broker-to-controller and KRaft.
        RequestKind::WriteTxnMarkers(r) => ResponseKind::WriteTxnMarkers(write_txn_markers(r)),
        RequestKind::Vote(_) => {
            ResponseKind::Vote(VoteResponse::default().with_error_code(CLUSTER))
        }
        RequestKind::BeginQuorumEpoch(_) => ResponseKind::BeginQuorumEpoch(
            BeginQuorumEpochResponse::default().with_error_code(CLUSTER),
        ),
        RequestKind::EndQuorumEpoch(_) => {
            ResponseKind::EndQuorumEpoch(EndQuorumEpochResponse::default().with_error_code(CLUSTER))
        }
        RequestKind::DescribeQuorum(_) => ResponseKind::DescribeQuorum(
            DescribeQuorumResponse::default()
                .with_error_code(CLUSTER)
                .with_error_message(None),
        ),
        RequestKind::AlterPartition(_) => {
            ResponseKind::AlterPartition(AlterPartitionResponse::default().with_error_code(CLUSTER))
        }
        RequestKind::Envelope(_) => ResponseKind::Envelope(
            EnvelopeResponse::default()
                .with_error_code(CLUSTER)
                .with_response_data(None),
        ),
        RequestKind::FetchSnapshot(_) => {
            ResponseKind::FetchSnapshot(FetchSnapshotResponse::default().with_error_code(CLUSTER))
        }
        RequestKind::BrokerRegistration(_) => ResponseKind::BrokerRegistration(
            BrokerRegistrationResponse::default().with_error_code(CLUSTER),
        ),
        RequestKind::BrokerHeartbeat(_) => ResponseKind::BrokerHeartbeat(
            BrokerHeartbeatResponse::default().with_error_code(CLUSTER),
        ),
        RequestKind::UnregisterBroker(_) => ResponseKind::UnregisterBroker(
            UnregisterBrokerResponse::default()
                .with_error_code(CLUSTER)
                .with_error_message(None),
        ),
        RequestKind::AllocateProducerIds(_) => ResponseKind::AllocateProducerIds(
            AllocateProducerIdsResponse::default().with_error_code(CLUSTER),
        ),
        RequestKind::ControllerRegistration(_) => ResponseKind::ControllerRegistration(
            ControllerRegistrationResponse::default()
                .with_error_code(CLUSTER)
                .with_error_message(None),
        ),
        RequestKind::AssignReplicasToDirs(_) => ResponseKind::AssignReplicasToDirs(
            AssignReplicasToDirsResponse::default().with_error_code(CLUSTER),
        ),
        RequestKind::AddRaftVoter(_) => ResponseKind::AddRaftVoter(
            AddRaftVoterResponse::default()
                .with_error_code(CLUSTER)
                .with_error_message(None),
        ),
        RequestKind::RemoveRaftVoter(_) => ResponseKind::RemoveRaftVoter(
            RemoveRaftVoterResponse::default()
                .with_error_code(CLUSTER)
                .with_error_message(None),
        ),
        RequestKind::UpdateRaftVoter(_) => ResponseKind::UpdateRaftVoter(
            UpdateRaftVoterResponse::default().with_error_code(CLUSTER),
        ),
        RequestKind::InitializeShareGroupState(r) => {
            ResponseKind::InitializeShareGroupState(initialize_share_group_state(r))
        }
        RequestKind::ReadShareGroupState(r) => {
            ResponseKind::ReadShareGroupState(read_share_group_state(r))
        }
        RequestKind::WriteShareGroupState(r) => {
            ResponseKind::WriteShareGroupState(write_share_group_state(r))
        }
        RequestKind::DeleteShareGroupState(r) => {
            ResponseKind::DeleteShareGroupState(delete_share_group_state(r))
        }
        RequestKind::ReadShareGroupStateSummary(r) => {
            ResponseKind::ReadShareGroupStateSummary(read_share_group_state_summary(r))
        }

        // `RequestKind` is `#[non_exhaustive]`. Every variant of the vendored
        // kafka-protocol is listed above; one added by an upgrade fails the
        // every-API-key test below.
        _ => return None,
    })
}

// ---------------------------------------------------------------------------
// Topics and partitions: TOPIC_AUTHORIZATION_FAILED per topic or partition.
// ---------------------------------------------------------------------------

/// Produce: each partition 29, with the broker's "no offset" values (base
/// offset, append time and log start offset -1). Topics echoed by name (v3–12)
/// or ID (v13); the encoder writes whichever the version carries.
fn produce(r: &ProduceRequest) -> ProduceResponse {
    use produce_response::{PartitionProduceResponse, TopicProduceResponse};
    ProduceResponse::default().with_responses(each(&r.topic_data, |t| {
        TopicProduceResponse::default()
            .with_name(t.name.clone())
            .with_topic_id(t.topic_id)
            .with_partition_responses(each(&t.partition_data, |p| {
                PartitionProduceResponse::default()
                    .with_index(p.index)
                    .with_error_code(TOPIC)
                    .with_base_offset(-1)
                    .with_log_append_time_ms(-1)
                    .with_log_start_offset(-1)
            }))
    }))
}

/// Fetch: each fetched partition 29 with high watermark, last stable offset
/// and log start offset -1 and empty records (`FetchResponse.partitionResponse`
/// in the broker). Top-level error 0 and session ID 0: no fetch session, so
/// the client's next fetch is a full one. Forgotten topics get no entry.
fn fetch(r: &FetchRequest) -> FetchResponse {
    use fetch_response::{FetchableTopicResponse, PartitionData};
    FetchResponse::default()
        .with_session_id(0)
        .with_responses(each(&r.topics, |t| {
            FetchableTopicResponse::default()
                .with_topic(t.topic.clone())
                .with_topic_id(t.topic_id)
                .with_partitions(each(&t.partitions, |p| {
                    PartitionData::default()
                        .with_partition_index(p.partition)
                        .with_error_code(TOPIC)
                        .with_high_watermark(-1)
                        .with_last_stable_offset(-1)
                        .with_log_start_offset(-1)
                        .with_aborted_transactions(None)
                        .with_records(Some(Bytes::new()))
                }))
        }))
}

/// ListOffsets: each partition 29, timestamp/offset/leader epoch -1.
fn list_offsets(r: &ListOffsetsRequest) -> ListOffsetsResponse {
    use list_offsets_response::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse};
    ListOffsetsResponse::default().with_topics(each(&r.topics, |t| {
        ListOffsetsTopicResponse::default()
            .with_name(t.name.clone())
            .with_partitions(each(&t.partitions, |p| {
                ListOffsetsPartitionResponse::default()
                    .with_partition_index(p.partition_index)
                    .with_error_code(TOPIC)
                    .with_timestamp(-1)
                    .with_offset(-1)
                    .with_leader_epoch(-1)
            }))
    }))
}

/// Metadata: each requested topic 29, with no partitions, echoing the name
/// and topic ID the request used (a topic asked for by ID alone gets a null
/// name, v12+). No brokers, controller -1, null cluster ID: the proxy does
/// not know the cluster, and a client only needs the error. An all-topics
/// request (null list) gets an empty topic list — the broker's answer when
/// no topic is authorized; v13's top-level error stays 0 (the broker uses it
/// only for REBOOTSTRAP_REQUIRED).
fn metadata(r: &MetadataRequest, v: i16) -> MetadataResponse {
    use metadata_response::MetadataResponseTopic;
    MetadataResponse::default().with_topics(
        r.topics
            .iter()
            .flatten()
            .map(|t| {
                // Topic names are nullable from v12 only.
                let name = match &t.name {
                    None if v < 12 => Some(TopicName::default()),
                    name => name.clone(),
                };
                MetadataResponseTopic::default()
                    .with_error_code(TOPIC)
                    .with_name(name)
                    .with_topic_id(t.topic_id)
            })
            .collect(),
    )
}

/// OffsetCommit: each partition 29. The response has no group-level error
/// code, so a commit that names no topic gets an empty (error-free) answer,
/// as from the broker.
fn offset_commit(r: &OffsetCommitRequest) -> OffsetCommitResponse {
    use offset_commit_response::{OffsetCommitResponsePartition, OffsetCommitResponseTopic};
    OffsetCommitResponse::default().with_topics(each(&r.topics, |t| {
        OffsetCommitResponseTopic::default()
            .with_name(t.name.clone())
            .with_topic_id(t.topic_id)
            .with_partitions(each(&t.partitions, |p| {
                OffsetCommitResponsePartition::default()
                    .with_partition_index(p.partition_index)
                    .with_error_code(TOPIC)
            }))
    }))
}

/// OffsetFetch: as the broker does, a group whose request names topics gets
/// each partition 29 (offset -1, no leader epoch, empty metadata) and a
/// group-level 0; a group asking for all its topics (null list) gets the
/// group-level GROUP_AUTHORIZATION_FAILED. v1–7 carry one group at the top
/// level (v1 has no top-level error code), v8+ a list of groups.
fn offset_fetch(r: &OffsetFetchRequest, v: i16) -> OffsetFetchResponse {
    use offset_fetch_response::{
        OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
        OffsetFetchResponseTopic, OffsetFetchResponseTopics,
    };
    if v < 8 {
        let topics: Vec<_> = r
            .topics
            .iter()
            .flatten()
            .map(|t| {
                OffsetFetchResponseTopic::default()
                    .with_name(t.name.clone())
                    .with_partitions(each(&t.partition_indexes, |&i| {
                        OffsetFetchResponsePartition::default()
                            .with_partition_index(i)
                            .with_committed_offset(-1)
                            .with_committed_leader_epoch(-1)
                            .with_metadata(Some(StrBytes::default()))
                            .with_error_code(TOPIC)
                    }))
            })
            .collect();
        let error = if topics.is_empty() { GROUP } else { 0 };
        return OffsetFetchResponse::default()
            .with_error_code(error)
            .with_topics(topics);
    }
    OffsetFetchResponse::default().with_groups(each(&r.groups, |g| {
        let topics: Vec<_> = g
            .topics
            .iter()
            .flatten()
            .map(|t| {
                OffsetFetchResponseTopics::default()
                    .with_name(t.name.clone())
                    .with_topic_id(t.topic_id)
                    .with_partitions(each(&t.partition_indexes, |&i| {
                        OffsetFetchResponsePartitions::default()
                            .with_partition_index(i)
                            .with_committed_offset(-1)
                            .with_committed_leader_epoch(-1)
                            .with_metadata(Some(StrBytes::default()))
                            .with_error_code(TOPIC)
                    }))
            })
            .collect();
        let error = if topics.is_empty() { GROUP } else { 0 };
        OffsetFetchResponseGroup::default()
            .with_group_id(g.group_id.clone())
            .with_error_code(error)
            .with_topics(topics)
    }))
}

/// CreateTopics: each topic 29, partitions and replication factor -1, no
/// configs (null, v5+), nil topic ID (v7).
fn create_topics(r: &CreateTopicsRequest) -> CreateTopicsResponse {
    use create_topics_response::CreatableTopicResult;
    CreateTopicsResponse::default().with_topics(each(&r.topics, |t| {
        CreatableTopicResult::default()
            .with_name(t.name.clone())
            .with_error_code(TOPIC)
            .with_error_message(None)
            .with_num_partitions(-1)
            .with_replication_factor(-1)
            .with_configs(None)
    }))
}

/// DeleteTopics: each topic 29; v1–5 by name, v6 by the name and/or ID the
/// request gave.
fn delete_topics(r: &DeleteTopicsRequest, v: i16) -> DeleteTopicsResponse {
    use delete_topics_response::DeletableTopicResult;
    let result = |name: Option<TopicName>, id| {
        DeletableTopicResult::default()
            .with_name(name)
            .with_topic_id(id)
            .with_error_code(TOPIC)
            .with_error_message(None)
    };
    let responses = if v < 6 {
        each(&r.topic_names, |n| {
            result(Some(n.clone()), uuid::Uuid::nil())
        })
    } else {
        each(&r.topics, |t| result(t.name.clone(), t.topic_id))
    };
    DeleteTopicsResponse::default().with_responses(responses)
}

/// DeleteRecords: each partition 29, low watermark -1.
fn delete_records(r: &DeleteRecordsRequest) -> DeleteRecordsResponse {
    use delete_records_response::{DeleteRecordsPartitionResult, DeleteRecordsTopicResult};
    DeleteRecordsResponse::default().with_topics(each(&r.topics, |t| {
        DeleteRecordsTopicResult::default()
            .with_name(t.name.clone())
            .with_partitions(each(&t.partitions, |p| {
                DeleteRecordsPartitionResult::default()
                    .with_partition_index(p.partition_index)
                    .with_low_watermark(-1)
                    .with_error_code(TOPIC)
            }))
    }))
}

/// OffsetForLeaderEpoch: each partition 29, leader epoch and end offset -1.
/// (A follower's request — replica ID ≥ 0 — would get CLUSTER_AUTHORIZATION_FAILED
/// from the broker for lacking CLUSTER_ACTION; the policy denies on topics,
/// so topics it is.)
fn offset_for_leader_epoch(r: &OffsetForLeaderEpochRequest) -> OffsetForLeaderEpochResponse {
    use offset_for_leader_epoch_response::{EpochEndOffset, OffsetForLeaderTopicResult};
    OffsetForLeaderEpochResponse::default().with_topics(each(&r.topics, |t| {
        OffsetForLeaderTopicResult::default()
            .with_topic(t.topic.clone())
            .with_partitions(each(&t.partitions, |p| {
                EpochEndOffset::default()
                    .with_partition(p.partition)
                    .with_error_code(TOPIC)
                    .with_leader_epoch(-1)
                    .with_end_offset(-1)
            }))
    }))
}

/// AddPartitionsToTxn: each partition 29. v0–3 answer one transaction's
/// topics; v4+ (batched, broker-to-broker verification) one result per
/// transaction, with top-level error 0.
fn add_partitions_to_txn(r: &AddPartitionsToTxnRequest, v: i16) -> AddPartitionsToTxnResponse {
    use add_partitions_to_txn_request::AddPartitionsToTxnTopic;
    use add_partitions_to_txn_response::{
        AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
    };
    let topic_results = |topics: &[AddPartitionsToTxnTopic]| -> Vec<_> {
        each(topics, |t| {
            AddPartitionsToTxnTopicResult::default()
                .with_name(t.name.clone())
                .with_results_by_partition(each(&t.partitions, |&i| {
                    AddPartitionsToTxnPartitionResult::default()
                        .with_partition_index(i)
                        .with_partition_error_code(TOPIC)
                }))
        })
    };
    if v < 4 {
        AddPartitionsToTxnResponse::default()
            .with_results_by_topic_v3_and_below(topic_results(&r.v3_and_below_topics))
    } else {
        AddPartitionsToTxnResponse::default().with_results_by_transaction(each(
            &r.transactions,
            |txn| {
                AddPartitionsToTxnResult::default()
                    .with_transactional_id(txn.transactional_id.clone())
                    .with_topic_results(topic_results(&txn.topics))
            },
        ))
    }
}

/// TxnOffsetCommit: each partition 29.
fn txn_offset_commit(r: &TxnOffsetCommitRequest) -> TxnOffsetCommitResponse {
    use txn_offset_commit_response::{
        TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
    };
    TxnOffsetCommitResponse::default().with_topics(each(&r.topics, |t| {
        TxnOffsetCommitResponseTopic::default()
            .with_name(t.name.clone())
            .with_partitions(each(&t.partitions, |p| {
                TxnOffsetCommitResponsePartition::default()
                    .with_partition_index(p.partition_index)
                    .with_error_code(TOPIC)
            }))
    }))
}

/// AlterReplicaLogDirs: each partition 29, one result per (log dir, topic)
/// entry of the request, as the broker's error response lists them.
fn alter_replica_log_dirs(r: &AlterReplicaLogDirsRequest) -> AlterReplicaLogDirsResponse {
    use alter_replica_log_dirs_response::{
        AlterReplicaLogDirPartitionResult, AlterReplicaLogDirTopicResult,
    };
    AlterReplicaLogDirsResponse::default().with_results(
        r.dirs
            .iter()
            .flat_map(|d| &d.topics)
            .map(|t| {
                AlterReplicaLogDirTopicResult::default()
                    .with_topic_name(t.name.clone())
                    .with_partitions(each(&t.partitions, |&i| {
                        AlterReplicaLogDirPartitionResult::default()
                            .with_partition_index(i)
                            .with_error_code(TOPIC)
                    }))
            })
            .collect(),
    )
}

/// CreatePartitions: each topic 29.
fn create_partitions(r: &CreatePartitionsRequest) -> CreatePartitionsResponse {
    use create_partitions_response::CreatePartitionsTopicResult;
    CreatePartitionsResponse::default().with_results(each(&r.topics, |t| {
        CreatePartitionsTopicResult::default()
            .with_name(t.name.clone())
            .with_error_code(TOPIC)
            .with_error_message(None)
    }))
}

/// ElectLeaders: each partition 29 with top-level 0 (v1+). An election for
/// every partition (null list) names no topic: top-level
/// CLUSTER_AUTHORIZATION_FAILED, the broker's answer without ALTER on the
/// cluster; v0 has no top-level code and gets an empty result.
fn elect_leaders(r: &ElectLeadersRequest, v: i16) -> ElectLeadersResponse {
    use elect_leaders_response::{PartitionResult, ReplicaElectionResult};
    let results: Vec<_> = r
        .topic_partitions
        .iter()
        .flatten()
        .map(|t| {
            ReplicaElectionResult::default()
                .with_topic(t.topic.clone())
                .with_partition_result(each(&t.partitions, |&i| {
                    PartitionResult::default()
                        .with_partition_id(i)
                        .with_error_code(TOPIC)
                        .with_error_message(None)
                }))
        })
        .collect();
    let error = if results.is_empty() && v >= 1 {
        CLUSTER
    } else {
        0
    };
    ElectLeadersResponse::default()
        .with_error_code(error)
        .with_replica_election_results(results)
}

/// AlterPartitionReassignments: each partition 29, top-level 0; a request
/// with no topic gets top-level CLUSTER_AUTHORIZATION_FAILED.
fn alter_partition_reassignments(
    r: &AlterPartitionReassignmentsRequest,
    v: i16,
) -> AlterPartitionReassignmentsResponse {
    use alter_partition_reassignments_response::{
        ReassignablePartitionResponse, ReassignableTopicResponse,
    };
    let responses: Vec<_> = each(&r.topics, |t| {
        ReassignableTopicResponse::default()
            .with_name(t.name.clone())
            .with_partitions(each(&t.partitions, |p| {
                ReassignablePartitionResponse::default()
                    .with_partition_index(p.partition_index)
                    .with_error_code(TOPIC)
                    .with_error_message(None)
            }))
    });
    let error = if responses.is_empty() { CLUSTER } else { 0 };
    let mut resp = AlterPartitionReassignmentsResponse::default()
        .with_error_code(error)
        .with_error_message(None)
        .with_responses(responses);
    if v >= 1 {
        resp.allow_replication_factor_change = r.allow_replication_factor_change;
    }
    resp
}

/// ListPartitionReassignments: the response has no per-topic error, so the
/// top-level code carries it: 29 when the request names topics, 31 for a
/// cluster-wide listing (null list).
fn list_partition_reassignments(
    r: &ListPartitionReassignmentsRequest,
) -> ListPartitionReassignmentsResponse {
    let names_topics = r.topics.as_ref().is_some_and(|t| !t.is_empty());
    ListPartitionReassignmentsResponse::default()
        .with_error_code(if names_topics { TOPIC } else { CLUSTER })
        .with_error_message(None)
}

/// OffsetDelete: each partition 29 and top-level 0; no topic → top-level
/// GROUP_AUTHORIZATION_FAILED.
fn offset_delete(r: &OffsetDeleteRequest) -> OffsetDeleteResponse {
    use offset_delete_response::{OffsetDeleteResponsePartition, OffsetDeleteResponseTopic};
    let topics: Vec<_> = each(&r.topics, |t| {
        OffsetDeleteResponseTopic::default()
            .with_name(t.name.clone())
            .with_partitions(each(&t.partitions, |p| {
                OffsetDeleteResponsePartition::default()
                    .with_partition_index(p.partition_index)
                    .with_error_code(TOPIC)
            }))
    });
    let error = if topics.is_empty() { GROUP } else { 0 };
    OffsetDeleteResponse::default()
        .with_error_code(error)
        .with_topics(topics)
}

/// DescribeProducers: each partition 29, no producers.
fn describe_producers(r: &DescribeProducersRequest) -> DescribeProducersResponse {
    use describe_producers_response::{PartitionResponse, TopicResponse};
    DescribeProducersResponse::default().with_topics(each(&r.topics, |t| {
        TopicResponse::default()
            .with_name(t.name.clone())
            .with_partitions(each(&t.partition_indexes, |&i| {
                PartitionResponse::default()
                    .with_partition_index(i)
                    .with_error_code(TOPIC)
                    .with_error_message(None)
            }))
    }))
}

/// DescribeTopicPartitions: each requested topic 29, by name, no partitions,
/// no cursor. A request for all topics (empty list) gets an empty list, as
/// from a broker that authorizes none.
fn describe_topic_partitions(
    r: &DescribeTopicPartitionsRequest,
) -> DescribeTopicPartitionsResponse {
    use describe_topic_partitions_response::DescribeTopicPartitionsResponseTopic;
    DescribeTopicPartitionsResponse::default().with_topics(each(&r.topics, |t| {
        DescribeTopicPartitionsResponseTopic::default()
            .with_error_code(TOPIC)
            .with_name(Some(t.name.clone()))
    }))
}

/// ShareFetch: each partition 29 (and 29 as its acknowledgement error when
/// it carried acknowledgements), leader unknown, empty records; top-level 0.
/// A request with no topic (a session close or pure poll) gets top-level
/// GROUP_AUTHORIZATION_FAILED: the share group is what is left to deny.
fn share_fetch(r: &ShareFetchRequest) -> ShareFetchResponse {
    use share_fetch_response::{LeaderIdAndEpoch, PartitionData, ShareFetchableTopicResponse};
    let responses: Vec<_> = each(&r.topics, |t| {
        ShareFetchableTopicResponse::default()
            .with_topic_id(t.topic_id)
            .with_partitions(each(&t.partitions, |p| {
                let acked = !p.acknowledgement_batches.is_empty();
                PartitionData::default()
                    .with_partition_index(p.partition_index)
                    .with_error_code(TOPIC)
                    .with_error_message(None)
                    .with_acknowledge_error_code(if acked { TOPIC } else { 0 })
                    .with_acknowledge_error_message(None)
                    .with_current_leader(
                        LeaderIdAndEpoch::default()
                            .with_leader_id(-1)
                            .with_leader_epoch(-1),
                    )
                    .with_records(Some(Bytes::new()))
            }))
    });
    let error = if responses.is_empty() { GROUP } else { 0 };
    ShareFetchResponse::default()
        .with_error_code(error)
        .with_error_message(None)
        .with_responses(responses)
}

/// ShareAcknowledge: each partition 29, leader unknown; top-level 0, or
/// GROUP_AUTHORIZATION_FAILED when no topic is named.
fn share_acknowledge(r: &ShareAcknowledgeRequest) -> ShareAcknowledgeResponse {
    use share_acknowledge_response::{
        LeaderIdAndEpoch, PartitionData, ShareAcknowledgeTopicResponse,
    };
    let responses: Vec<_> = each(&r.topics, |t| {
        ShareAcknowledgeTopicResponse::default()
            .with_topic_id(t.topic_id)
            .with_partitions(each(&t.partitions, |p| {
                PartitionData::default()
                    .with_partition_index(p.partition_index)
                    .with_error_code(TOPIC)
                    .with_error_message(None)
                    .with_current_leader(
                        LeaderIdAndEpoch::default()
                            .with_leader_id(-1)
                            .with_leader_epoch(-1),
                    )
            }))
    });
    let error = if responses.is_empty() { GROUP } else { 0 };
    ShareAcknowledgeResponse::default()
        .with_error_code(error)
        .with_error_message(None)
        .with_responses(responses)
}

/// DescribeShareGroupOffsets: like OffsetFetch v8+ — per group, the named
/// topics' partitions 29 (start offset and leader epoch -1) under a group
/// error of 0, or the group error 30 when the group asks for all topics.
fn describe_share_group_offsets(
    r: &DescribeShareGroupOffsetsRequest,
) -> DescribeShareGroupOffsetsResponse {
    use describe_share_group_offsets_response::{
        DescribeShareGroupOffsetsResponseGroup, DescribeShareGroupOffsetsResponsePartition,
        DescribeShareGroupOffsetsResponseTopic,
    };
    DescribeShareGroupOffsetsResponse::default().with_groups(each(&r.groups, |g| {
        let topics: Vec<_> = g
            .topics
            .iter()
            .flatten()
            .map(|t| {
                DescribeShareGroupOffsetsResponseTopic::default()
                    .with_topic_name(t.topic_name.clone())
                    .with_partitions(each(&t.partitions, |&i| {
                        DescribeShareGroupOffsetsResponsePartition::default()
                            .with_partition_index(i)
                            .with_start_offset(-1)
                            .with_leader_epoch(-1)
                            .with_error_code(TOPIC)
                            .with_error_message(None)
                    }))
            })
            .collect();
        let error = if topics.is_empty() { GROUP } else { 0 };
        DescribeShareGroupOffsetsResponseGroup::default()
            .with_group_id(g.group_id.clone())
            .with_error_code(error)
            .with_error_message(None)
            .with_topics(topics)
    }))
}

/// AlterShareGroupOffsets: each partition 29, top-level 0; no topic →
/// top-level GROUP_AUTHORIZATION_FAILED.
fn alter_share_group_offsets(r: &AlterShareGroupOffsetsRequest) -> AlterShareGroupOffsetsResponse {
    use alter_share_group_offsets_response::{
        AlterShareGroupOffsetsResponsePartition, AlterShareGroupOffsetsResponseTopic,
    };
    let responses: Vec<_> = each(&r.topics, |t| {
        AlterShareGroupOffsetsResponseTopic::default()
            .with_topic_name(t.topic_name.clone())
            .with_partitions(each(&t.partitions, |p| {
                AlterShareGroupOffsetsResponsePartition::default()
                    .with_partition_index(p.partition_index)
                    .with_error_code(TOPIC)
                    .with_error_message(None)
            }))
    });
    let error = if responses.is_empty() { GROUP } else { 0 };
    AlterShareGroupOffsetsResponse::default()
        .with_error_code(error)
        .with_error_message(None)
        .with_responses(responses)
}

/// DeleteShareGroupOffsets: each topic 29, top-level 0; no topic →
/// top-level GROUP_AUTHORIZATION_FAILED.
fn delete_share_group_offsets(
    r: &DeleteShareGroupOffsetsRequest,
) -> DeleteShareGroupOffsetsResponse {
    use delete_share_group_offsets_response::DeleteShareGroupOffsetsResponseTopic;
    let responses: Vec<_> = each(&r.topics, |t| {
        DeleteShareGroupOffsetsResponseTopic::default()
            .with_topic_name(t.topic_name.clone())
            .with_error_code(TOPIC)
            .with_error_message(None)
    });
    let error = if responses.is_empty() { GROUP } else { 0 };
    DeleteShareGroupOffsetsResponse::default()
        .with_error_code(error)
        .with_error_message(None)
        .with_responses(responses)
}

// ---------------------------------------------------------------------------
// Config resources: the error of the resource's type.
// ---------------------------------------------------------------------------

/// The broker's error for a config resource it may not describe or alter:
/// a topic (`ConfigResource.Type` 2) → 29, a group (32) → 30, anything else
/// (broker 4, broker logger 8, client metrics 16, unknown) → 31.
fn config_resource_error(resource_type: i8) -> i16 {
    match resource_type {
        2 => TOPIC,
        32 => GROUP,
        _ => CLUSTER,
    }
}

/// DescribeConfigs: one result per resource, with its type's error and no
/// configs.
fn describe_configs(r: &DescribeConfigsRequest) -> DescribeConfigsResponse {
    use describe_configs_response::DescribeConfigsResult;
    DescribeConfigsResponse::default().with_results(each(&r.resources, |res| {
        DescribeConfigsResult::default()
            .with_error_code(config_resource_error(res.resource_type))
            .with_error_message(None)
            .with_resource_type(res.resource_type)
            .with_resource_name(res.resource_name.clone())
    }))
}

/// AlterConfigs: one response per resource, with its type's error.
fn alter_configs(r: &AlterConfigsRequest) -> AlterConfigsResponse {
    use alter_configs_response::AlterConfigsResourceResponse;
    AlterConfigsResponse::default().with_responses(each(&r.resources, |res| {
        AlterConfigsResourceResponse::default()
            .with_error_code(config_resource_error(res.resource_type))
            .with_error_message(None)
            .with_resource_type(res.resource_type)
            .with_resource_name(res.resource_name.clone())
    }))
}

/// IncrementalAlterConfigs: one response per resource, with its type's
/// error.
fn incremental_alter_configs(
    r: &IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    use incremental_alter_configs_response::AlterConfigsResourceResponse;
    IncrementalAlterConfigsResponse::default().with_responses(each(&r.resources, |res| {
        AlterConfigsResourceResponse::default()
            .with_error_code(config_resource_error(res.resource_type))
            .with_error_message(None)
            .with_resource_type(res.resource_type)
            .with_resource_name(res.resource_name.clone())
    }))
}

// ---------------------------------------------------------------------------
// Groups: GROUP_AUTHORIZATION_FAILED.
// ---------------------------------------------------------------------------

/// FindCoordinator: the error of the key type — group (0) → 30, transaction
/// (1) → 53, share-group state key (2, asked by brokers, CLUSTER_ACTION) →
/// 31, anything else → 30 — with no coordinator (node -1, empty host, port
/// -1). v0–3 answer the one key at the top level (v0 has no key type: a
/// group), v4+ one coordinator entry per key.
fn find_coordinator(r: &FindCoordinatorRequest, v: i16) -> FindCoordinatorResponse {
    use find_coordinator_response::Coordinator;
    let error = match r.key_type {
        _ if v < 1 => GROUP,
        1 => TXN,
        2 => CLUSTER,
        _ => GROUP,
    };
    if v < 4 {
        return FindCoordinatorResponse::default()
            .with_error_code(error)
            .with_error_message(None)
            .with_node_id((-1).into())
            .with_port(-1);
    }
    FindCoordinatorResponse::default().with_coordinators(each(&r.coordinator_keys, |k| {
        Coordinator::default()
            .with_key(k.clone())
            .with_node_id((-1).into())
            .with_port(-1)
            .with_error_code(error)
            .with_error_message(None)
    }))
}

/// JoinGroup: 30 as `JoinGroupRequest.getErrorResponse` builds it:
/// generation -1, no protocol (null from v7, where the field becomes
/// nullable; empty before), unknown (empty) member ID and leader, no members.
fn join_group(v: i16) -> JoinGroupResponse {
    JoinGroupResponse::default()
        .with_error_code(GROUP)
        .with_generation_id(-1)
        .with_protocol_type(None)
        .with_protocol_name(if v >= 7 {
            None
        } else {
            Some(StrBytes::default())
        })
}

/// DescribeGroups: each group 30, empty state/protocol, no members.
fn describe_groups(r: &DescribeGroupsRequest) -> DescribeGroupsResponse {
    use describe_groups_response::DescribedGroup;
    DescribeGroupsResponse::default().with_groups(each(&r.groups, |g| {
        DescribedGroup::default()
            .with_error_code(GROUP)
            .with_error_message(None)
            .with_group_id(g.clone())
    }))
}

/// DeleteGroups: each group 30.
fn delete_groups(r: &DeleteGroupsRequest) -> DeleteGroupsResponse {
    use delete_groups_response::DeletableGroupResult;
    DeleteGroupsResponse::default().with_results(each(&r.groups_names, |g| {
        DeletableGroupResult::default()
            .with_group_id(g.clone())
            .with_error_code(GROUP)
    }))
}

/// ConsumerGroupHeartbeat: a heartbeat that subscribes to or owns topics
/// gets 29 — the broker checks DESCRIBE on subscribed topics after READ on
/// the group, and the policy denies on topics — any other gets 30. No member
/// ID, epoch or assignment.
fn consumer_group_heartbeat(r: &ConsumerGroupHeartbeatRequest) -> ConsumerGroupHeartbeatResponse {
    let names_topics = r
        .subscribed_topic_names
        .as_ref()
        .is_some_and(|t| !t.is_empty())
        || r.topic_partitions.as_ref().is_some_and(|t| !t.is_empty());
    ConsumerGroupHeartbeatResponse::default()
        .with_error_code(if names_topics { TOPIC } else { GROUP })
        .with_error_message(None)
}

/// ConsumerGroupDescribe: each group 30.
fn consumer_group_describe(r: &ConsumerGroupDescribeRequest) -> ConsumerGroupDescribeResponse {
    use consumer_group_describe_response::DescribedGroup;
    ConsumerGroupDescribeResponse::default().with_groups(each(&r.group_ids, |g| {
        DescribedGroup::default()
            .with_error_code(GROUP)
            .with_error_message(None)
            .with_group_id(g.clone())
    }))
}

/// ShareGroupHeartbeat: as ConsumerGroupHeartbeat — 29 when it subscribes
/// to topics, else 30.
fn share_group_heartbeat(r: &ShareGroupHeartbeatRequest) -> ShareGroupHeartbeatResponse {
    let names_topics = r
        .subscribed_topic_names
        .as_ref()
        .is_some_and(|t| !t.is_empty());
    ShareGroupHeartbeatResponse::default()
        .with_error_code(if names_topics { TOPIC } else { GROUP })
        .with_error_message(None)
}

/// ShareGroupDescribe: each group 30.
fn share_group_describe(r: &ShareGroupDescribeRequest) -> ShareGroupDescribeResponse {
    use share_group_describe_response::DescribedGroup;
    ShareGroupDescribeResponse::default().with_groups(each(&r.group_ids, |g| {
        DescribedGroup::default()
            .with_error_code(GROUP)
            .with_error_message(None)
            .with_group_id(g.clone())
    }))
}

// ---------------------------------------------------------------------------
// Transactional IDs: TRANSACTIONAL_ID_AUTHORIZATION_FAILED.
// ---------------------------------------------------------------------------

/// InitProducerId: 53 for a transactional producer; an idempotent one (null
/// transactional ID) is authorized on the cluster (IDEMPOTENT_WRITE), so 31.
/// No producer ID or epoch (-1).
fn init_producer_id(r: &InitProducerIdRequest) -> InitProducerIdResponse {
    let error = if r.transactional_id.is_some() {
        TXN
    } else {
        CLUSTER
    };
    InitProducerIdResponse::default()
        .with_error_code(error)
        .with_producer_id((-1).into())
        .with_producer_epoch(-1)
}

/// DescribeTransactions: each transactional ID 53, no state.
fn describe_transactions(r: &DescribeTransactionsRequest) -> DescribeTransactionsResponse {
    use describe_transactions_response::TransactionState;
    DescribeTransactionsResponse::default().with_transaction_states(each(
        &r.transactional_ids,
        |id| {
            TransactionState::default()
                .with_error_code(TXN)
                .with_transactional_id(id.clone())
                .with_transaction_start_time_ms(-1)
                .with_producer_id((-1).into())
                .with_producer_epoch(-1)
        },
    ))
}

// ---------------------------------------------------------------------------
// Connection set-up.
// ---------------------------------------------------------------------------

/// SaslHandshake: UNSUPPORTED_SASL_MECHANISM with no enabled mechanisms —
/// the broker's answer for a mechanism it will not do; the client fails
/// with `UnsupportedSaslMechanismException` rather than retrying.
fn sasl_handshake() -> SaslHandshakeResponse {
    SaslHandshakeResponse::default().with_error_code(UNSUPPORTED_SASL_MECHANISM)
}

/// SaslAuthenticate: SASL_AUTHENTICATION_FAILED, the broker's answer to
/// failed authentication, with a message (clients show it), no auth bytes
/// and no session lifetime.
fn sasl_authenticate() -> SaslAuthenticateResponse {
    SaslAuthenticateResponse::default()
        .with_error_code(SASL_AUTHENTICATION_FAILED)
        .with_error_message(Some(StrBytes::from_static_str(
            "Authentication denied by proxy policy",
        )))
}

/// ApiVersions: no error code fits exactly (the broker never denies it);
/// CLUSTER_AUTHORIZATION_FAILED with no API keys makes the client give up on
/// the connection instead of downgrading, which UNSUPPORTED_VERSION would.
fn api_versions() -> ApiVersionsResponse {
    ApiVersionsResponse::default().with_error_code(CLUSTER)
}

// ---------------------------------------------------------------------------
// Cluster: CLUSTER_AUTHORIZATION_FAILED.
// ---------------------------------------------------------------------------

/// CreateAcls: each creation 31 (ALTER on the cluster).
fn create_acls(r: &CreateAclsRequest) -> CreateAclsResponse {
    use create_acls_response::AclCreationResult;
    CreateAclsResponse::default().with_results(each(&r.creations, |_| {
        AclCreationResult::default()
            .with_error_code(CLUSTER)
            .with_error_message(None)
    }))
}

/// DeleteAcls: each filter 31, nothing matched.
fn delete_acls(r: &DeleteAclsRequest) -> DeleteAclsResponse {
    use delete_acls_response::DeleteAclsFilterResult;
    DeleteAclsResponse::default().with_filter_results(each(&r.filters, |_| {
        DeleteAclsFilterResult::default()
            .with_error_code(CLUSTER)
            .with_error_message(None)
    }))
}

/// DescribeLogDirs: DESCRIBE on the cluster. v3+ carry a top-level code: 31
/// and no log dirs (the broker's answer). v1–2 have only a per-log-dir code,
/// and the broker answers an empty list, which a client cannot tell from a
/// broker with no log dirs; one result for an unnamed log dir carrying 31
/// makes the denial visible instead.
fn describe_log_dirs(v: i16) -> DescribeLogDirsResponse {
    use describe_log_dirs_response::DescribeLogDirsResult;
    if v >= 3 {
        return DescribeLogDirsResponse::default().with_error_code(CLUSTER);
    }
    DescribeLogDirsResponse::default().with_results(vec![
        DescribeLogDirsResult::default().with_error_code(CLUSTER)
    ])
}

/// AlterClientQuotas: each entry 31, echoing its entity.
fn alter_client_quotas(r: &AlterClientQuotasRequest) -> AlterClientQuotasResponse {
    use alter_client_quotas_response::{EntityData, EntryData};
    AlterClientQuotasResponse::default().with_entries(each(&r.entries, |e| {
        EntryData::default()
            .with_error_code(CLUSTER)
            .with_error_message(None)
            .with_entity(each(&e.entity, |x| {
                EntityData::default()
                    .with_entity_type(x.entity_type.clone())
                    .with_entity_name(x.entity_name.clone())
            }))
    }))
}

/// AlterUserScramCredentials: one result per user named in the deletions
/// and upsertions (each user once, as the broker reports them), 31.
fn alter_user_scram_credentials(
    r: &AlterUserScramCredentialsRequest,
) -> AlterUserScramCredentialsResponse {
    use alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
    let mut users: Vec<&StrBytes> = Vec::new();
    let named = r.deletions.iter().map(|d| &d.name);
    for user in named.chain(r.upsertions.iter().map(|u| &u.name)) {
        if !users.contains(&user) {
            users.push(user);
        }
    }
    AlterUserScramCredentialsResponse::default().with_results(
        users
            .into_iter()
            .map(|u| {
                AlterUserScramCredentialsResult::default()
                    .with_user(u.clone())
                    .with_error_code(CLUSTER)
                    .with_error_message(None)
            })
            .collect(),
    )
}

/// DescribeCluster: 31, no brokers, controller -1; the endpoint type echoed
/// (v1+).
fn describe_cluster(r: &DescribeClusterRequest, v: i16) -> DescribeClusterResponse {
    let mut resp = DescribeClusterResponse::default()
        .with_error_code(CLUSTER)
        .with_error_message(None);
    if v >= 1 {
        resp.endpoint_type = r.endpoint_type;
    }
    resp
}

/// WriteTxnMarkers: broker-to-broker (CLUSTER_ACTION): every partition 31,
/// per marker, as the broker's error response fills them.
fn write_txn_markers(r: &WriteTxnMarkersRequest) -> WriteTxnMarkersResponse {
    use write_txn_markers_response::{
        WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
    };
    WriteTxnMarkersResponse::default().with_markers(each(&r.markers, |m| {
        WritableTxnMarkerResult::default()
            .with_producer_id(m.producer_id)
            .with_topics(each(&m.topics, |t| {
                WritableTxnMarkerTopicResult::default()
                    .with_name(t.name.clone())
                    .with_partitions(each(&t.partition_indexes, |&i| {
                        WritableTxnMarkerPartitionResult::default()
                            .with_partition_index(i)
                            .with_error_code(CLUSTER)
                    }))
            }))
    }))
}

/// The share-group state APIs (broker to share coordinator, CLUSTER_ACTION)
/// have no top-level error code: every partition 31. One macro for the five
/// of them, whose result types differ only by name.
macro_rules! share_group_state_deny {
    ($fn:ident, $req:ty, $resp:ty, $module:ident, $result:ident) => {
        fn $fn(r: &$req) -> $resp {
            use $module::{$result, PartitionResult};
            <$resp>::default().with_results(each(&r.topics, |t| {
                $result::default()
                    .with_topic_id(t.topic_id)
                    .with_partitions(each(&t.partitions, |p| {
                        PartitionResult::default()
                            .with_partition(p.partition)
                            .with_error_code(CLUSTER)
                            .with_error_message(None)
                    }))
            }))
        }
    };
}

share_group_state_deny!(
    initialize_share_group_state,
    InitializeShareGroupStateRequest,
    InitializeShareGroupStateResponse,
    initialize_share_group_state_response,
    InitializeStateResult
);
share_group_state_deny!(
    read_share_group_state,
    ReadShareGroupStateRequest,
    ReadShareGroupStateResponse,
    read_share_group_state_response,
    ReadStateResult
);
share_group_state_deny!(
    write_share_group_state,
    WriteShareGroupStateRequest,
    WriteShareGroupStateResponse,
    write_share_group_state_response,
    WriteStateResult
);
share_group_state_deny!(
    delete_share_group_state,
    DeleteShareGroupStateRequest,
    DeleteShareGroupStateResponse,
    delete_share_group_state_response,
    DeleteStateResult
);
share_group_state_deny!(
    read_share_group_state_summary,
    ReadShareGroupStateSummaryRequest,
    ReadShareGroupStateSummaryResponse,
    read_share_group_state_summary_response,
    ReadStateSummaryResult
);

/// The error codes of a response: `outer` for codes on containers
/// (top level, group level) and secondary codes, which may be 0; `items`
/// for one code per thing the request asked about (partition, topic,
/// group, resource, key, user...), every one of which a deny must fail.
#[derive(Debug, Default)]
struct Codes {
    outer: Vec<i16>,
    items: Vec<i16>,
}

/// Every error code in `resp`, top level first, then nested.
pub fn error_codes(resp: &ResponseKind) -> Vec<i16> {
    let c = codes(resp);
    c.outer.into_iter().chain(c.items).collect()
}

/// The error codes of every response type, by where they sit.
fn codes(resp: &ResponseKind) -> Codes {
    fn top(codes: &[i16]) -> Codes {
        Codes {
            outer: codes.to_vec(),
            items: vec![],
        }
    }
    fn items(codes: Vec<i16>) -> Codes {
        Codes {
            outer: vec![],
            items: codes,
        }
    }
    fn both(outer: Vec<i16>, items: Vec<i16>) -> Codes {
        Codes { outer, items }
    }
    use ResponseKind as R;
    match resp {
        R::Produce(r) => items(
            r.responses
                .iter()
                .flat_map(|t| t.partition_responses.iter().map(|p| p.error_code))
                .collect(),
        ),
        R::Fetch(r) => both(
            vec![r.error_code],
            r.responses
                .iter()
                .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
                .collect(),
        ),
        R::ListOffsets(r) => items(
            r.topics
                .iter()
                .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
                .collect(),
        ),
        R::Metadata(r) => both(
            std::iter::once(r.error_code)
                .chain(
                    r.topics
                        .iter()
                        .flat_map(|t| t.partitions.iter().map(|p| p.error_code)),
                )
                .collect(),
            r.topics.iter().map(|t| t.error_code).collect(),
        ),
        R::OffsetCommit(r) => items(
            r.topics
                .iter()
                .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
                .collect(),
        ),
        R::OffsetFetch(r) => both(
            std::iter::once(r.error_code)
                .chain(r.groups.iter().map(|g| g.error_code))
                .collect(),
            r.topics
                .iter()
                .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
                .chain(r.groups.iter().flat_map(|g| {
                    g.topics
                        .iter()
                        .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
                }))
                .collect(),
        ),
        R::FindCoordinator(r) => both(
            vec![r.error_code],
            r.coordinators.iter().map(|c| c.error_code).collect(),
        ),
        R::JoinGroup(r) => top(&[r.error_code]),
        R::Heartbeat(r) => top(&[r.error_code]),
        R::LeaveGroup(r) => both(
            vec![r.error_code],
            r.members.iter().map(|m| m.error_code).collect(),
        ),
        R::SyncGroup(r) => top(&[r.error_code]),
        R::DescribeGroups(r) => items(r.groups.iter().map(|g| g.error_code).collect()),
        R::ListGroups(r) => top(&[r.error_code]),
        R::SaslHandshake(r) => top(&[r.error_code]),
        R::ApiVersions(r) => top(&[r.error_code]),
        R::CreateTopics(r) => both(
            r.topics.iter().map(|t| t.topic_config_error_code).collect(),
            r.topics.iter().map(|t| t.error_code).collect(),
        ),
        R::DeleteTopics(r) => items(r.responses.iter().map(|t| t.error_code).collect()),
        R::DeleteRecords(r) => items(
            r.topics
                .iter()
                .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
                .collect(),
        ),
        R::InitProducerId(r) => top(&[r.error_code]),
        R::OffsetForLeaderEpoch(r) => items(
            r.topics
                .iter()
                .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
                .collect(),
        ),
        R::AddPartitionsToTxn(r) => {
            let topic_codes =
                |t: &add_partitions_to_txn_response::AddPartitionsToTxnTopicResult| {
                    t.results_by_partition
                        .iter()
                        .map(|p| p.partition_error_code)
                        .collect::<Vec<_>>()
                };
            both(
                vec![r.error_code],
                r.results_by_topic_v3_and_below
                    .iter()
                    .flat_map(topic_codes)
                    .chain(
                        r.results_by_transaction
                            .iter()
                            .flat_map(|x| x.topic_results.iter().flat_map(topic_codes)),
                    )
                    .collect(),
            )
        }
        R::AddOffsetsToTxn(r) => top(&[r.error_code]),
        R::EndTxn(r) => top(&[r.error_code]),
        R::WriteTxnMarkers(r) => items(
            r.markers
                .iter()
                .flat_map(|m| &m.topics)
                .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
                .collect(),
        ),
        R::TxnOffsetCommit(r) => items(
            r.topics
                .iter()
                .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
                .collect(),
        ),
        R::DescribeAcls(r) => top(&[r.error_code]),
        R::CreateAcls(r) => items(r.results.iter().map(|x| x.error_code).collect()),
        R::DeleteAcls(r) => both(
            r.filter_results
                .iter()
                .flat_map(|f| f.matching_acls.iter().map(|m| m.error_code))
                .collect(),
            r.filter_results.iter().map(|f| f.error_code).collect(),
        ),
        R::DescribeConfigs(r) => items(r.results.iter().map(|x| x.error_code).collect()),
        R::AlterConfigs(r) => items(r.responses.iter().map(|x| x.error_code).collect()),
        R::AlterReplicaLogDirs(r) => items(
            r.results
                .iter()
                .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
                .collect(),
        ),
        R::DescribeLogDirs(r) => both(
            vec![r.error_code],
            r.results.iter().map(|x| x.error_code).collect(),
        ),
        R::SaslAuthenticate(r) => top(&[r.error_code]),
        R::CreatePartitions(r) => items(r.results.iter().map(|x| x.error_code).collect()),
        R::CreateDelegationToken(r) => top(&[r.error_code]),
        R::RenewDelegationToken(r) => top(&[r.error_code]),
        R::ExpireDelegationToken(r) => top(&[r.error_code]),
        R::DescribeDelegationToken(r) => top(&[r.error_code]),
        R::DeleteGroups(r) => items(r.results.iter().map(|x| x.error_code).collect()),
        R::ElectLeaders(r) => both(
            vec![r.error_code],
            r.replica_election_results
                .iter()
                .flat_map(|t| t.partition_result.iter().map(|p| p.error_code))
                .collect(),
        ),
        R::IncrementalAlterConfigs(r) => items(r.responses.iter().map(|x| x.error_code).collect()),
        R::AlterPartitionReassignments(r) => both(
            vec![r.error_code],
            r.responses
                .iter()
                .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
                .collect(),
        ),
        R::ListPartitionReassignments(r) => top(&[r.error_code]),
        R::OffsetDelete(r) => both(
            vec![r.error_code],
            r.topics
                .iter()
                .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
                .collect(),
        ),
        R::DescribeClientQuotas(r) => top(&[r.error_code]),
        R::AlterClientQuotas(r) => items(r.entries.iter().map(|x| x.error_code).collect()),
        R::DescribeUserScramCredentials(r) => both(
            vec![r.error_code],
            r.results.iter().map(|x| x.error_code).collect(),
        ),
        R::AlterUserScramCredentials(r) => items(r.results.iter().map(|x| x.error_code).collect()),
        R::Vote(r) => both(
            vec![r.error_code],
            r.topics
                .iter()
                .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
                .collect(),
        ),
        R::BeginQuorumEpoch(r) => both(
            vec![r.error_code],
            r.topics
                .iter()
                .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
                .collect(),
        ),
        R::EndQuorumEpoch(r) => both(
            vec![r.error_code],
            r.topics
                .iter()
                .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
                .collect(),
        ),
        R::DescribeQuorum(r) => both(
            vec![r.error_code],
            r.topics
                .iter()
                .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
                .collect(),
        ),
        R::AlterPartition(r) => both(
            vec![r.error_code],
            r.topics
                .iter()
                .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
                .collect(),
        ),
        R::UpdateFeatures(r) => both(
            vec![r.error_code],
            r.results.iter().map(|x| x.error_code).collect(),
        ),
        R::Envelope(r) => top(&[r.error_code]),
        R::FetchSnapshot(r) => both(
            vec![r.error_code],
            r.topics
                .iter()
                .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
                .collect(),
        ),
        R::DescribeCluster(r) => top(&[r.error_code]),
        R::DescribeProducers(r) => items(
            r.topics
                .iter()
                .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
                .collect(),
        ),
        R::BrokerRegistration(r) => top(&[r.error_code]),
        R::BrokerHeartbeat(r) => top(&[r.error_code]),
        R::UnregisterBroker(r) => top(&[r.error_code]),
        R::DescribeTransactions(r) => {
            items(r.transaction_states.iter().map(|x| x.error_code).collect())
        }
        R::ListTransactions(r) => top(&[r.error_code]),
        R::AllocateProducerIds(r) => top(&[r.error_code]),
        R::ConsumerGroupHeartbeat(r) => top(&[r.error_code]),
        R::ConsumerGroupDescribe(r) => items(r.groups.iter().map(|g| g.error_code).collect()),
        R::ControllerRegistration(r) => top(&[r.error_code]),
        R::GetTelemetrySubscriptions(r) => top(&[r.error_code]),
        R::PushTelemetry(r) => top(&[r.error_code]),
        R::AssignReplicasToDirs(r) => both(
            vec![r.error_code],
            r.directories
                .iter()
                .flat_map(|d| &d.topics)
                .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
                .collect(),
        ),
        R::ListConfigResources(r) => top(&[r.error_code]),
        R::DescribeTopicPartitions(r) => both(
            r.topics
                .iter()
                .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
                .collect(),
            r.topics.iter().map(|t| t.error_code).collect(),
        ),
        R::ShareGroupHeartbeat(r) => top(&[r.error_code]),
        R::ShareGroupDescribe(r) => items(r.groups.iter().map(|g| g.error_code).collect()),
        R::ShareFetch(r) => both(
            std::iter::once(r.error_code)
                .chain(
                    r.responses
                        .iter()
                        .flat_map(|t| t.partitions.iter().map(|p| p.acknowledge_error_code)),
                )
                .collect(),
            r.responses
                .iter()
                .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
                .collect(),
        ),
        R::ShareAcknowledge(r) => both(
            vec![r.error_code],
            r.responses
                .iter()
                .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
                .collect(),
        ),
        R::AddRaftVoter(r) => top(&[r.error_code]),
        R::RemoveRaftVoter(r) => top(&[r.error_code]),
        R::UpdateRaftVoter(r) => top(&[r.error_code]),
        R::InitializeShareGroupState(r) => items(
            r.results
                .iter()
                .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
                .collect(),
        ),
        R::ReadShareGroupState(r) => items(
            r.results
                .iter()
                .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
                .collect(),
        ),
        R::WriteShareGroupState(r) => items(
            r.results
                .iter()
                .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
                .collect(),
        ),
        R::DeleteShareGroupState(r) => items(
            r.results
                .iter()
                .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
                .collect(),
        ),
        R::ReadShareGroupStateSummary(r) => items(
            r.results
                .iter()
                .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
                .collect(),
        ),
        R::DescribeShareGroupOffsets(r) => both(
            r.groups.iter().map(|g| g.error_code).collect(),
            r.groups
                .iter()
                .flat_map(|g| &g.topics)
                .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
                .collect(),
        ),
        R::AlterShareGroupOffsets(r) => both(
            vec![r.error_code],
            r.responses
                .iter()
                .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
                .collect(),
        ),
        R::DeleteShareGroupOffsets(r) => both(
            vec![r.error_code],
            r.responses.iter().map(|t| t.error_code).collect(),
        ),
        // `ResponseKind` is non-exhaustive: a variant from a newer crate has
        // no known error fields.
        _ => Codes::default(),
    }
}

/// The code a denial answers with, for logs: the first non-zero code on an
/// item the request asked about, else on the response itself.
pub fn main_error(resp: &ResponseKind) -> i16 {
    let c = codes(resp);
    c.items
        .into_iter()
        .chain(c.outer)
        .find(|c| *c != 0)
        .unwrap_or(0)
}

#[cfg(test)]
pub(crate) mod tests;
