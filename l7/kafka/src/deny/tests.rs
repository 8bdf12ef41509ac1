//! Every API key at every version: a representative request, encoded and
//! decoded as a peer would send it, denied, and the response encoded and
//! decoded back. `sample_request` is shared with the `topics` tests.

use super::*;
use bytes::BytesMut;
use codes::{codes, error_codes, main_error};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

mod codes;

const TOKEN: i16 = Class::Token.code();
const UNSUPPORTED_SASL_MECHANISM: i16 = Class::SaslMechanism.code();
const SASL_AUTHENTICATION_FAILED: i16 = Class::SaslAuth.code();

pub(crate) const TOPIC_A: &str = "topic-a";
pub(crate) const TOPIC_B: &str = "topic-b";
pub(crate) const KRAFT_TOPIC: &str = "__cluster_metadata";
pub(crate) const ID_A: Uuid = Uuid::from_u128(0xaaaa_0000_0000_0000_0000_0000_0000_0001);
pub(crate) const ID_B: Uuid = Uuid::from_u128(0xbbbb_0000_0000_0000_0000_0000_0000_0002);

pub(crate) fn s(x: &'static str) -> StrBytes {
    StrBytes::from_static_str(x)
}
pub(crate) fn tn(x: &'static str) -> TopicName {
    TopicName(s(x))
}
fn group(x: &'static str) -> GroupId {
    GroupId(s(x))
}
fn txn_id() -> TransactionalId {
    TransactionalId(s("txn-1"))
}

/// Requests that kafka-protocol 0.18 cannot encode or decode at a version
/// `ApiKey::valid_versions` lists: the request structs stop one version
/// short of the response (OffsetCommit and OffsetFetch requests at 9,
/// InitProducerId at 5). A peer's request at these versions fails to
/// parse before policy; the deny response is still checked, built from
/// the un-round-tripped sample.
pub(crate) const UNENCODABLE: &[(ApiKey, i16)] = &[
    (ApiKey::OffsetCommit, 10),
    (ApiKey::OffsetFetch, 10),
    (ApiKey::InitProducerId, 6),
];

/// `body` encoded at `version` and decoded back: exactly what a peer's
/// request decodes to.
pub(crate) fn roundtrip_request(
    key: ApiKey,
    version: i16,
    body: &RequestKind,
) -> Result<RequestKind, String> {
    let mut buf = BytesMut::new();
    body.encode(&mut buf, version)
        .map_err(|e| format!("encode: {e}"))?;
    let mut bytes = buf.freeze();
    let decoded =
        RequestKind::decode(key, &mut bytes, version).map_err(|e| format!("decode: {e}"))?;
    if !bytes.is_empty() {
        return Err(format!("{} bytes left after decode", bytes.len()));
    }
    Ok(decoded)
}

/// The request a peer sends for `key` at `v`, or for the
/// [`UNENCODABLE`] pairs the sample itself.
pub(crate) fn peer_request(key: ApiKey, v: i16) -> RequestKind {
    let built = sample_request(key, v);
    match roundtrip_request(key, v, &built) {
        Ok(body) => {
            assert!(
                !UNENCODABLE.contains(&(key, v)),
                "{key:?} v{v} now round-trips: drop it from UNENCODABLE"
            );
            body
        }
        Err(e) => {
            assert!(UNENCODABLE.contains(&(key, v)), "{key:?} v{v}: {e}");
            built
        }
    }
}

/// A representative request for `key` at `v`: one or more topics (by
/// name, and by ID where the schema has IDs — fields a version does not
/// carry are dropped by the round trip), partitions, groups,
/// transactional IDs, resources or users wherever the message has them.
pub(crate) fn sample_request(key: ApiKey, v: i16) -> RequestKind {
    match key {
        ApiKey::Produce => {
            use produce_request::{PartitionProduceData, TopicProduceData};
            RequestKind::Produce(
                ProduceRequest::default()
                    .with_acks(-1)
                    .with_timeout_ms(1000)
                    .with_topic_data(vec![TopicProduceData::default()
                        .with_name(tn(TOPIC_A))
                        .with_topic_id(ID_A)
                        .with_partition_data(vec![
                            PartitionProduceData::default().with_index(0),
                            PartitionProduceData::default().with_index(1),
                        ])]),
            )
        }
        ApiKey::Fetch => {
            use fetch_request::{FetchPartition, FetchTopic, ForgottenTopic};
            let forgotten = if v >= 7 {
                vec![ForgottenTopic::default()
                    .with_topic(tn(TOPIC_B))
                    .with_topic_id(ID_B)
                    .with_partitions(vec![3])]
            } else {
                vec![]
            };
            RequestKind::Fetch(
                FetchRequest::default()
                    .with_max_wait_ms(500)
                    .with_topics(vec![FetchTopic::default()
                        .with_topic(tn(TOPIC_A))
                        .with_topic_id(ID_A)
                        .with_partitions(vec![
                            FetchPartition::default().with_partition(0),
                            FetchPartition::default().with_partition(1),
                        ])])
                    .with_forgotten_topics_data(forgotten),
            )
        }
        ApiKey::ListOffsets => {
            use list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
            RequestKind::ListOffsets(ListOffsetsRequest::default().with_topics(vec![
                ListOffsetsTopic::default().with_name(tn(TOPIC_A)).with_partitions(vec![
                    ListOffsetsPartition::default().with_partition_index(0),
                    ListOffsetsPartition::default().with_partition_index(1),
                ]),
            ]))
        }
        ApiKey::Metadata => {
            use metadata_request::MetadataRequestTopic;
            let mut topics = vec![MetadataRequestTopic::default().with_name(Some(tn(TOPIC_A)))];
            if v >= 12 {
                // By ID alone: the name is nullable from v12.
                topics.push(
                    MetadataRequestTopic::default()
                        .with_name(None)
                        .with_topic_id(ID_B),
                );
            }
            RequestKind::Metadata(MetadataRequest::default().with_topics(Some(topics)))
        }
        ApiKey::OffsetCommit => {
            use offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
            RequestKind::OffsetCommit(
                OffsetCommitRequest::default()
                    .with_group_id(group("group-1"))
                    .with_generation_id_or_member_epoch(1)
                    .with_member_id(s("member-1"))
                    .with_topics(vec![OffsetCommitRequestTopic::default()
                        .with_name(tn(TOPIC_A))
                        .with_topic_id(ID_A)
                        .with_partitions(vec![
                            OffsetCommitRequestPartition::default()
                                .with_partition_index(0)
                                .with_committed_offset(10),
                            OffsetCommitRequestPartition::default()
                                .with_partition_index(1)
                                .with_committed_offset(11),
                        ])]),
            )
        }
        ApiKey::OffsetFetch => {
            use offset_fetch_request::{
                OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
            };
            let r = if v < 8 {
                OffsetFetchRequest::default()
                    .with_group_id(group("group-1"))
                    .with_topics(Some(vec![OffsetFetchRequestTopic::default()
                        .with_name(tn(TOPIC_A))
                        .with_partition_indexes(vec![0, 1])]))
            } else {
                OffsetFetchRequest::default().with_groups(vec![OffsetFetchRequestGroup::default()
                    .with_group_id(group("group-1"))
                    .with_topics(Some(vec![OffsetFetchRequestTopics::default()
                        .with_name(tn(TOPIC_A))
                        .with_topic_id(ID_A)
                        .with_partition_indexes(vec![0, 1])]))])
            };
            RequestKind::OffsetFetch(r)
        }
        ApiKey::FindCoordinator => {
            let r = match v {
                0 => FindCoordinatorRequest::default().with_key(s("group-1")),
                1..=3 => FindCoordinatorRequest::default()
                    .with_key(s("group-1"))
                    .with_key_type(0),
                _ => FindCoordinatorRequest::default()
                    .with_key_type(0)
                    .with_coordinator_keys(vec![s("group-1"), s("group-2")]),
            };
            RequestKind::FindCoordinator(r)
        }
        ApiKey::JoinGroup => {
            use join_group_request::JoinGroupRequestProtocol;
            RequestKind::JoinGroup(
                JoinGroupRequest::default()
                    .with_group_id(group("group-1"))
                    .with_session_timeout_ms(10_000)
                    .with_member_id(s("member-1"))
                    .with_protocol_type(s("consumer"))
                    .with_protocols(vec![
                        JoinGroupRequestProtocol::default().with_name(s("range"))
                    ]),
            )
        }
        ApiKey::Heartbeat => RequestKind::Heartbeat(
            HeartbeatRequest::default()
                .with_group_id(group("group-1"))
                .with_generation_id(1)
                .with_member_id(s("member-1")),
        ),
        ApiKey::LeaveGroup => {
            use leave_group_request::MemberIdentity;
            let r = LeaveGroupRequest::default().with_group_id(group("group-1"));
            RequestKind::LeaveGroup(if v < 3 {
                r.with_member_id(s("member-1"))
            } else {
                r.with_members(vec![MemberIdentity::default().with_member_id(s("member-1"))])
            })
        }
        ApiKey::SyncGroup => RequestKind::SyncGroup(
            SyncGroupRequest::default()
                .with_group_id(group("group-1"))
                .with_generation_id(1)
                .with_member_id(s("member-1")),
        ),
        ApiKey::DescribeGroups => RequestKind::DescribeGroups(
            DescribeGroupsRequest::default().with_groups(vec![group("group-1"), group("group-2")]),
        ),
        ApiKey::ListGroups => RequestKind::ListGroups(ListGroupsRequest::default()),
        ApiKey::SaslHandshake => {
            RequestKind::SaslHandshake(SaslHandshakeRequest::default().with_mechanism(s("PLAIN")))
        }
        ApiKey::ApiVersions => RequestKind::ApiVersions(if v >= 3 {
            ApiVersionsRequest::default()
                .with_client_software_name(s("portcullis-test"))
                .with_client_software_version(s("1"))
        } else {
            ApiVersionsRequest::default()
        }),
        ApiKey::CreateTopics => {
            use create_topics_request::CreatableTopic;
            RequestKind::CreateTopics(CreateTopicsRequest::default().with_topics(vec![
                CreatableTopic::default()
                    .with_name(tn(TOPIC_A))
                    .with_num_partitions(2)
                    .with_replication_factor(1),
            ]))
        }
        ApiKey::DeleteTopics => {
            use delete_topics_request::DeleteTopicState;
            RequestKind::DeleteTopics(if v < 6 {
                DeleteTopicsRequest::default().with_topic_names(vec![tn(TOPIC_A)])
            } else {
                DeleteTopicsRequest::default().with_topics(vec![
                    DeleteTopicState::default().with_name(Some(tn(TOPIC_A))),
                    DeleteTopicState::default().with_topic_id(ID_B),
                ])
            })
        }
        ApiKey::DeleteRecords => {
            use delete_records_request::{DeleteRecordsPartition, DeleteRecordsTopic};
            RequestKind::DeleteRecords(DeleteRecordsRequest::default().with_topics(vec![
                DeleteRecordsTopic::default().with_name(tn(TOPIC_A)).with_partitions(vec![
                    DeleteRecordsPartition::default().with_partition_index(0).with_offset(5),
                    DeleteRecordsPartition::default().with_partition_index(1).with_offset(5),
                ]),
            ]))
        }
        ApiKey::InitProducerId => RequestKind::InitProducerId(
            InitProducerIdRequest::default()
                .with_transactional_id(Some(txn_id()))
                .with_transaction_timeout_ms(60_000),
        ),
        ApiKey::OffsetForLeaderEpoch => {
            use offset_for_leader_epoch_request::{OffsetForLeaderPartition, OffsetForLeaderTopic};
            RequestKind::OffsetForLeaderEpoch(OffsetForLeaderEpochRequest::default().with_topics(
                vec![
                    OffsetForLeaderTopic::default()
                        .with_topic(tn(TOPIC_A))
                        .with_partitions(vec![
                            OffsetForLeaderPartition::default()
                                .with_partition(0)
                                .with_leader_epoch(3),
                            OffsetForLeaderPartition::default()
                                .with_partition(1)
                                .with_leader_epoch(3),
                        ]),
                ],
            ))
        }
        ApiKey::AddPartitionsToTxn => {
            use add_partitions_to_txn_request::{
                AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
            };
            let topics = vec![AddPartitionsToTxnTopic::default()
                .with_name(tn(TOPIC_A))
                .with_partitions(vec![0, 1])];
            RequestKind::AddPartitionsToTxn(if v < 4 {
                AddPartitionsToTxnRequest::default()
                    .with_v3_and_below_transactional_id(txn_id())
                    .with_v3_and_below_producer_id(7.into())
                    .with_v3_and_below_topics(topics)
            } else {
                AddPartitionsToTxnRequest::default().with_transactions(vec![
                    AddPartitionsToTxnTransaction::default()
                        .with_transactional_id(txn_id())
                        .with_producer_id(7.into())
                        .with_topics(topics),
                ])
            })
        }
        ApiKey::AddOffsetsToTxn => RequestKind::AddOffsetsToTxn(
            AddOffsetsToTxnRequest::default()
                .with_transactional_id(txn_id())
                .with_producer_id(7.into())
                .with_group_id(group("group-1")),
        ),
        ApiKey::EndTxn => RequestKind::EndTxn(
            EndTxnRequest::default()
                .with_transactional_id(txn_id())
                .with_producer_id(7.into())
                .with_committed(true),
        ),
        ApiKey::WriteTxnMarkers => {
            use write_txn_markers_request::{WritableTxnMarker, WritableTxnMarkerTopic};
            RequestKind::WriteTxnMarkers(WriteTxnMarkersRequest::default().with_markers(vec![
                WritableTxnMarker::default()
                    .with_producer_id(7.into())
                    .with_transaction_result(true)
                    .with_topics(vec![WritableTxnMarkerTopic::default()
                        .with_name(tn(TOPIC_A))
                        .with_partition_indexes(vec![0, 1])]),
            ]))
        }
        ApiKey::TxnOffsetCommit => {
            use txn_offset_commit_request::{
                TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
            };
            RequestKind::TxnOffsetCommit(
                TxnOffsetCommitRequest::default()
                    .with_transactional_id(txn_id())
                    .with_group_id(group("group-1"))
                    .with_producer_id(7.into())
                    .with_topics(vec![TxnOffsetCommitRequestTopic::default()
                        .with_name(tn(TOPIC_A))
                        .with_partitions(vec![
                            TxnOffsetCommitRequestPartition::default()
                                .with_partition_index(0)
                                .with_committed_offset(5),
                            TxnOffsetCommitRequestPartition::default()
                                .with_partition_index(1)
                                .with_committed_offset(5),
                        ])]),
            )
        }
        ApiKey::DescribeAcls => RequestKind::DescribeAcls(
            DescribeAclsRequest::default()
                .with_resource_type_filter(2)
                .with_resource_name_filter(Some(s(TOPIC_A)))
                .with_pattern_type_filter(3)
                .with_operation(1)
                .with_permission_type(1),
        ),
        ApiKey::CreateAcls => {
            use create_acls_request::AclCreation;
            let acl = |resource_type: i8, name: &'static str| {
                AclCreation::default()
                    .with_resource_type(resource_type)
                    .with_resource_name(s(name))
                    .with_resource_pattern_type(3)
                    .with_principal(s("User:alice"))
                    .with_host(s("*"))
                    .with_operation(3)
                    .with_permission_type(3)
            };
            RequestKind::CreateAcls(
                CreateAclsRequest::default()
                    .with_creations(vec![acl(2, TOPIC_A), acl(3, "group-1")]),
            )
        }
        ApiKey::DeleteAcls => {
            use delete_acls_request::DeleteAclsFilter;
            let filter = |resource_type: i8, name: &'static str| {
                DeleteAclsFilter::default()
                    .with_resource_type_filter(resource_type)
                    .with_resource_name_filter(Some(s(name)))
                    .with_pattern_type_filter(1)
                    .with_operation(1)
                    .with_permission_type(1)
            };
            // ANY (1) covers topics; GROUP (3) does not.
            RequestKind::DeleteAcls(
                DeleteAclsRequest::default()
                    .with_filters(vec![filter(1, TOPIC_A), filter(3, "group-1")]),
            )
        }
        ApiKey::DescribeConfigs => {
            use describe_configs_request::DescribeConfigsResource;
            let res = |t: i8, name: &'static str| {
                DescribeConfigsResource::default()
                    .with_resource_type(t)
                    .with_resource_name(s(name))
            };
            RequestKind::DescribeConfigs(
                DescribeConfigsRequest::default()
                    .with_resources(vec![res(2, TOPIC_A), res(4, "1")]),
            )
        }
        ApiKey::AlterConfigs => {
            use alter_configs_request::{AlterConfigsResource, AlterableConfig};
            let res = |t: i8, name: &'static str| {
                AlterConfigsResource::default()
                    .with_resource_type(t)
                    .with_resource_name(s(name))
                    .with_configs(vec![AlterableConfig::default()
                        .with_name(s("retention.ms"))
                        .with_value(Some(s("1000")))])
            };
            RequestKind::AlterConfigs(
                AlterConfigsRequest::default().with_resources(vec![res(2, TOPIC_A), res(4, "1")]),
            )
        }
        ApiKey::AlterReplicaLogDirs => {
            use alter_replica_log_dirs_request::{AlterReplicaLogDir, AlterReplicaLogDirTopic};
            RequestKind::AlterReplicaLogDirs(AlterReplicaLogDirsRequest::default().with_dirs(
                vec![AlterReplicaLogDir::default().with_path(s("/data")).with_topics(vec![
                    AlterReplicaLogDirTopic::default()
                        .with_name(tn(TOPIC_A))
                        .with_partitions(vec![0, 1]),
                ])],
            ))
        }
        ApiKey::DescribeLogDirs => {
            use describe_log_dirs_request::DescribableLogDirTopic;
            RequestKind::DescribeLogDirs(DescribeLogDirsRequest::default().with_topics(Some(
                vec![DescribableLogDirTopic::default()
                    .with_topic(tn(TOPIC_A))
                    .with_partitions(vec![0])],
            )))
        }
        ApiKey::SaslAuthenticate => RequestKind::SaslAuthenticate(
            SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from_static(b"\0u\0p")),
        ),
        ApiKey::CreatePartitions => {
            use create_partitions_request::CreatePartitionsTopic;
            RequestKind::CreatePartitions(CreatePartitionsRequest::default().with_topics(vec![
                CreatePartitionsTopic::default().with_name(tn(TOPIC_A)).with_count(3),
            ]))
        }
        ApiKey::CreateDelegationToken => RequestKind::CreateDelegationToken(
            CreateDelegationTokenRequest::default().with_max_lifetime_ms(-1),
        ),
        ApiKey::RenewDelegationToken => RequestKind::RenewDelegationToken(
            RenewDelegationTokenRequest::default()
                .with_hmac(Bytes::from_static(b"hmac"))
                .with_renew_period_ms(1000),
        ),
        ApiKey::ExpireDelegationToken => RequestKind::ExpireDelegationToken(
            ExpireDelegationTokenRequest::default()
                .with_hmac(Bytes::from_static(b"hmac"))
                .with_expiry_time_period_ms(1000),
        ),
        ApiKey::DescribeDelegationToken => {
            RequestKind::DescribeDelegationToken(DescribeDelegationTokenRequest::default())
        }
        ApiKey::DeleteGroups => RequestKind::DeleteGroups(
            DeleteGroupsRequest::default()
                .with_groups_names(vec![group("group-1"), group("group-2")]),
        ),
        ApiKey::ElectLeaders => {
            use elect_leaders_request::TopicPartitions;
            RequestKind::ElectLeaders(ElectLeadersRequest::default().with_topic_partitions(Some(
                vec![TopicPartitions::default()
                    .with_topic(tn(TOPIC_A))
                    .with_partitions(vec![0, 1])],
            )))
        }
        ApiKey::IncrementalAlterConfigs => {
            use incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
            let res = |t: i8, name: &'static str| {
                AlterConfigsResource::default()
                    .with_resource_type(t)
                    .with_resource_name(s(name))
                    .with_configs(vec![AlterableConfig::default()
                        .with_name(s("retention.ms"))
                        .with_value(Some(s("1000")))])
            };
            RequestKind::IncrementalAlterConfigs(
                IncrementalAlterConfigsRequest::default()
                    .with_resources(vec![res(2, TOPIC_A), res(4, "1")]),
            )
        }
        ApiKey::AlterPartitionReassignments => {
            use alter_partition_reassignments_request::{ReassignablePartition, ReassignableTopic};
            RequestKind::AlterPartitionReassignments(
                AlterPartitionReassignmentsRequest::default().with_topics(vec![
                    ReassignableTopic::default()
                        .with_name(tn(TOPIC_A))
                        .with_partitions(vec![
                            ReassignablePartition::default()
                                .with_partition_index(0)
                                .with_replicas(Some(vec![1.into(), 2.into()])),
                            ReassignablePartition::default().with_partition_index(1),
                        ]),
                ]),
            )
        }
        ApiKey::ListPartitionReassignments => {
            use list_partition_reassignments_request::ListPartitionReassignmentsTopics;
            RequestKind::ListPartitionReassignments(
                ListPartitionReassignmentsRequest::default().with_topics(Some(vec![
                    ListPartitionReassignmentsTopics::default()
                        .with_name(tn(TOPIC_A))
                        .with_partition_indexes(vec![0, 1]),
                ])),
            )
        }
        ApiKey::OffsetDelete => {
            use offset_delete_request::{OffsetDeleteRequestPartition, OffsetDeleteRequestTopic};
            RequestKind::OffsetDelete(
                OffsetDeleteRequest::default()
                    .with_group_id(group("group-1"))
                    .with_topics(vec![OffsetDeleteRequestTopic::default()
                        .with_name(tn(TOPIC_A))
                        .with_partitions(vec![
                            OffsetDeleteRequestPartition::default().with_partition_index(0),
                            OffsetDeleteRequestPartition::default().with_partition_index(1),
                        ])]),
            )
        }
        ApiKey::DescribeClientQuotas => {
            use describe_client_quotas_request::ComponentData;
            RequestKind::DescribeClientQuotas(
                DescribeClientQuotasRequest::default().with_components(vec![
                    ComponentData::default()
                        .with_entity_type(s("user"))
                        .with_match(Some(s("alice"))),
                ]),
            )
        }
        ApiKey::AlterClientQuotas => {
            use alter_client_quotas_request::{EntityData, EntryData, OpData};
            RequestKind::AlterClientQuotas(AlterClientQuotasRequest::default().with_entries(
                vec![EntryData::default()
                    .with_entity(vec![EntityData::default()
                        .with_entity_type(s("user"))
                        .with_entity_name(Some(s("alice")))])
                    .with_ops(vec![OpData::default()
                        .with_key(s("producer_byte_rate"))
                        .with_value(1024.0)])],
            ))
        }
        ApiKey::DescribeUserScramCredentials => {
            use describe_user_scram_credentials_request::UserName;
            RequestKind::DescribeUserScramCredentials(
                DescribeUserScramCredentialsRequest::default()
                    .with_users(Some(vec![UserName::default().with_name(s("alice"))])),
            )
        }
        ApiKey::AlterUserScramCredentials => {
            use alter_user_scram_credentials_request::{
                ScramCredentialDeletion, ScramCredentialUpsertion,
            };
            let upsert = |name: &'static str| {
                ScramCredentialUpsertion::default()
                    .with_name(s(name))
                    .with_mechanism(1)
                    .with_iterations(4096)
            };
            RequestKind::AlterUserScramCredentials(
                AlterUserScramCredentialsRequest::default()
                    .with_deletions(vec![ScramCredentialDeletion::default()
                        .with_name(s("alice"))
                        .with_mechanism(2)])
                    .with_upsertions(vec![upsert("bob"), upsert("alice")]),
            )
        }
        ApiKey::Vote => {
            use vote_request::{PartitionData, TopicData};
            RequestKind::Vote(VoteRequest::default().with_topics(vec![TopicData::default()
                .with_topic_name(tn(KRAFT_TOPIC))
                .with_partitions(vec![PartitionData::default()])]))
        }
        ApiKey::BeginQuorumEpoch => {
            use begin_quorum_epoch_request::{PartitionData, TopicData};
            RequestKind::BeginQuorumEpoch(BeginQuorumEpochRequest::default().with_topics(
                vec![TopicData::default()
                    .with_topic_name(tn(KRAFT_TOPIC))
                    .with_partitions(vec![PartitionData::default()])],
            ))
        }
        ApiKey::EndQuorumEpoch => {
            use end_quorum_epoch_request::{PartitionData, TopicData};
            RequestKind::EndQuorumEpoch(EndQuorumEpochRequest::default().with_topics(vec![
                TopicData::default()
                    .with_topic_name(tn(KRAFT_TOPIC))
                    .with_partitions(vec![PartitionData::default()]),
            ]))
        }
        ApiKey::DescribeQuorum => {
            use describe_quorum_request::{PartitionData, TopicData};
            RequestKind::DescribeQuorum(DescribeQuorumRequest::default().with_topics(vec![
                TopicData::default()
                    .with_topic_name(tn(KRAFT_TOPIC))
                    .with_partitions(vec![PartitionData::default()]),
            ]))
        }
        ApiKey::AlterPartition => {
            use alter_partition_request::{PartitionData, TopicData};
            RequestKind::AlterPartition(
                AlterPartitionRequest::default()
                    .with_broker_id(1.into())
                    .with_topics(vec![TopicData::default()
                        .with_topic_id(ID_A)
                        .with_partitions(vec![PartitionData::default()])]),
            )
        }
        ApiKey::UpdateFeatures => {
            use update_features_request::FeatureUpdateKey;
            RequestKind::UpdateFeatures(UpdateFeaturesRequest::default().with_feature_updates(
                vec![FeatureUpdateKey::default()
                    .with_feature(s("metadata.version"))
                    .with_max_version_level(20)],
            ))
        }
        ApiKey::Envelope => RequestKind::Envelope(
            EnvelopeRequest::default()
                .with_request_data(Bytes::from_static(b"request"))
                .with_client_host_address(Bytes::from_static(&[127, 0, 0, 1])),
        ),
        ApiKey::FetchSnapshot => {
            use fetch_snapshot_request::{PartitionSnapshot, TopicSnapshot};
            RequestKind::FetchSnapshot(FetchSnapshotRequest::default().with_topics(vec![
                TopicSnapshot::default()
                    .with_name(tn(KRAFT_TOPIC))
                    .with_partitions(vec![PartitionSnapshot::default()]),
            ]))
        }
        ApiKey::DescribeCluster => RequestKind::DescribeCluster(DescribeClusterRequest::default()),
        ApiKey::DescribeProducers => {
            use describe_producers_request::TopicRequest;
            RequestKind::DescribeProducers(DescribeProducersRequest::default().with_topics(
                vec![TopicRequest::default()
                    .with_name(tn(TOPIC_A))
                    .with_partition_indexes(vec![0, 1])],
            ))
        }
        ApiKey::BrokerRegistration => {
            RequestKind::BrokerRegistration(BrokerRegistrationRequest::default())
        }
        ApiKey::BrokerHeartbeat => RequestKind::BrokerHeartbeat(BrokerHeartbeatRequest::default()),
        ApiKey::UnregisterBroker => {
            RequestKind::UnregisterBroker(UnregisterBrokerRequest::default())
        }
        ApiKey::DescribeTransactions => RequestKind::DescribeTransactions(
            DescribeTransactionsRequest::default().with_transactional_ids(vec![txn_id()]),
        ),
        ApiKey::ListTransactions => {
            RequestKind::ListTransactions(ListTransactionsRequest::default())
        }
        ApiKey::AllocateProducerIds => {
            RequestKind::AllocateProducerIds(AllocateProducerIdsRequest::default())
        }
        ApiKey::ConsumerGroupHeartbeat => {
            use consumer_group_heartbeat_request::TopicPartitions;
            RequestKind::ConsumerGroupHeartbeat(
                ConsumerGroupHeartbeatRequest::default()
                    .with_group_id(group("group-1"))
                    .with_member_id(s("member-1"))
                    .with_subscribed_topic_names(Some(vec![tn(TOPIC_A)]))
                    .with_topic_partitions(Some(vec![TopicPartitions::default()
                        .with_topic_id(ID_B)
                        .with_partitions(vec![0])])),
            )
        }
        ApiKey::ConsumerGroupDescribe => RequestKind::ConsumerGroupDescribe(
            ConsumerGroupDescribeRequest::default().with_group_ids(vec![group("group-1")]),
        ),
        ApiKey::ControllerRegistration => {
            RequestKind::ControllerRegistration(ControllerRegistrationRequest::default())
        }
        ApiKey::GetTelemetrySubscriptions => {
            RequestKind::GetTelemetrySubscriptions(GetTelemetrySubscriptionsRequest::default())
        }
        ApiKey::PushTelemetry => RequestKind::PushTelemetry(PushTelemetryRequest::default()),
        ApiKey::AssignReplicasToDirs => {
            use assign_replicas_to_dirs_request::{DirectoryData, PartitionData, TopicData};
            RequestKind::AssignReplicasToDirs(
                AssignReplicasToDirsRequest::default().with_directories(vec![
                    DirectoryData::default().with_topics(vec![TopicData::default()
                        .with_topic_id(ID_A)
                        .with_partitions(vec![PartitionData::default()])]),
                ]),
            )
        }
        ApiKey::ListConfigResources => {
            RequestKind::ListConfigResources(ListConfigResourcesRequest::default())
        }
        ApiKey::DescribeTopicPartitions => {
            use describe_topic_partitions_request::TopicRequest;
            RequestKind::DescribeTopicPartitions(
                DescribeTopicPartitionsRequest::default()
                    .with_topics(vec![TopicRequest::default().with_name(tn(TOPIC_A))])
                    .with_response_partition_limit(100),
            )
        }
        ApiKey::ShareGroupHeartbeat => RequestKind::ShareGroupHeartbeat(
            ShareGroupHeartbeatRequest::default()
                .with_group_id(group("share-1"))
                .with_member_id(s("member-1"))
                .with_subscribed_topic_names(Some(vec![tn(TOPIC_A)])),
        ),
        ApiKey::ShareGroupDescribe => RequestKind::ShareGroupDescribe(
            ShareGroupDescribeRequest::default().with_group_ids(vec![group("share-1")]),
        ),
        ApiKey::ShareFetch => {
            use share_fetch_request::{
                AcknowledgementBatch, FetchPartition, FetchTopic, ForgottenTopic,
            };
            RequestKind::ShareFetch(
                ShareFetchRequest::default()
                    .with_group_id(Some(group("share-1")))
                    .with_member_id(Some(s("member-1")))
                    .with_topics(vec![FetchTopic::default()
                        .with_topic_id(ID_A)
                        .with_partitions(vec![
                            FetchPartition::default()
                                .with_partition_index(0)
                                .with_acknowledgement_batches(vec![AcknowledgementBatch::default(
                                )
                                .with_first_offset(0)
                                .with_last_offset(1)
                                .with_acknowledge_types(vec![1])]),
                            FetchPartition::default().with_partition_index(1),
                        ])])
                    .with_forgotten_topics_data(vec![ForgottenTopic::default()
                        .with_topic_id(ID_B)
                        .with_partitions(vec![3])]),
            )
        }
        ApiKey::ShareAcknowledge => {
            use share_acknowledge_request::{
                AcknowledgePartition, AcknowledgeTopic, AcknowledgementBatch,
            };
            RequestKind::ShareAcknowledge(
                ShareAcknowledgeRequest::default()
                    .with_group_id(Some(group("share-1")))
                    .with_member_id(Some(s("member-1")))
                    .with_topics(vec![AcknowledgeTopic::default()
                        .with_topic_id(ID_A)
                        .with_partitions(vec![AcknowledgePartition::default()
                            .with_partition_index(0)
                            .with_acknowledgement_batches(vec![
                                AcknowledgementBatch::default()
                                    .with_first_offset(0)
                                    .with_last_offset(1)
                                    .with_acknowledge_types(vec![1]),
                            ])])]),
            )
        }
        ApiKey::AddRaftVoter => RequestKind::AddRaftVoter(AddRaftVoterRequest::default()),
        ApiKey::RemoveRaftVoter => RequestKind::RemoveRaftVoter(RemoveRaftVoterRequest::default()),
        ApiKey::UpdateRaftVoter => RequestKind::UpdateRaftVoter(UpdateRaftVoterRequest::default()),
        ApiKey::InitializeShareGroupState => {
            use initialize_share_group_state_request::{InitializeStateData, PartitionData};
            RequestKind::InitializeShareGroupState(
                InitializeShareGroupStateRequest::default()
                    .with_group_id(s("share-1"))
                    .with_topics(vec![InitializeStateData::default()
                        .with_topic_id(ID_A)
                        .with_partitions(vec![
                            PartitionData::default().with_partition(0),
                            PartitionData::default().with_partition(1),
                        ])]),
            )
        }
        ApiKey::ReadShareGroupState => {
            use read_share_group_state_request::{PartitionData, ReadStateData};
            RequestKind::ReadShareGroupState(
                ReadShareGroupStateRequest::default()
                    .with_group_id(s("share-1"))
                    .with_topics(vec![ReadStateData::default()
                        .with_topic_id(ID_A)
                        .with_partitions(vec![
                            PartitionData::default().with_partition(0),
                            PartitionData::default().with_partition(1),
                        ])]),
            )
        }
        ApiKey::WriteShareGroupState => {
            use write_share_group_state_request::{PartitionData, WriteStateData};
            RequestKind::WriteShareGroupState(
                WriteShareGroupStateRequest::default()
                    .with_group_id(s("share-1"))
                    .with_topics(vec![WriteStateData::default()
                        .with_topic_id(ID_A)
                        .with_partitions(vec![
                            PartitionData::default().with_partition(0),
                            PartitionData::default().with_partition(1),
                        ])]),
            )
        }
        ApiKey::DeleteShareGroupState => {
            use delete_share_group_state_request::{DeleteStateData, PartitionData};
            RequestKind::DeleteShareGroupState(
                DeleteShareGroupStateRequest::default()
                    .with_group_id(s("share-1"))
                    .with_topics(vec![DeleteStateData::default()
                        .with_topic_id(ID_A)
                        .with_partitions(vec![
                            PartitionData::default().with_partition(0),
                            PartitionData::default().with_partition(1),
                        ])]),
            )
        }
        ApiKey::ReadShareGroupStateSummary => {
            use read_share_group_state_summary_request::{PartitionData, ReadStateSummaryData};
            RequestKind::ReadShareGroupStateSummary(
                ReadShareGroupStateSummaryRequest::default()
                    .with_group_id(s("share-1"))
                    .with_topics(vec![ReadStateSummaryData::default()
                        .with_topic_id(ID_A)
                        .with_partitions(vec![
                            PartitionData::default().with_partition(0),
                            PartitionData::default().with_partition(1),
                        ])]),
            )
        }
        ApiKey::DescribeShareGroupOffsets => {
            use describe_share_group_offsets_request::{
                DescribeShareGroupOffsetsRequestGroup, DescribeShareGroupOffsetsRequestTopic,
            };
            RequestKind::DescribeShareGroupOffsets(
                DescribeShareGroupOffsetsRequest::default().with_groups(vec![
                    DescribeShareGroupOffsetsRequestGroup::default()
                        .with_group_id(group("share-1"))
                        .with_topics(Some(vec![DescribeShareGroupOffsetsRequestTopic::default()
                            .with_topic_name(tn(TOPIC_A))
                            .with_partitions(vec![0, 1])])),
                ]),
            )
        }
        ApiKey::AlterShareGroupOffsets => {
            use alter_share_group_offsets_request::{
                AlterShareGroupOffsetsRequestPartition, AlterShareGroupOffsetsRequestTopic,
            };
            RequestKind::AlterShareGroupOffsets(
                AlterShareGroupOffsetsRequest::default()
                    .with_group_id(group("share-1"))
                    .with_topics(vec![AlterShareGroupOffsetsRequestTopic::default()
                        .with_topic_name(tn(TOPIC_A))
                        .with_partitions(vec![
                            AlterShareGroupOffsetsRequestPartition::default()
                                .with_partition_index(0)
                                .with_start_offset(5),
                        ])]),
            )
        }
        ApiKey::DeleteShareGroupOffsets => {
            use delete_share_group_offsets_request::DeleteShareGroupOffsetsRequestTopic;
            RequestKind::DeleteShareGroupOffsets(
                DeleteShareGroupOffsetsRequest::default()
                    .with_group_id(group("share-1"))
                    .with_topics(vec![
                        DeleteShareGroupOffsetsRequestTopic::default().with_topic_name(tn(TOPIC_A))
                    ]),
            )
        }
    }
}

/// Every `…error_code: N` in the response's `Debug` text: a cross-check
/// that [`codes`] misses no error field, nested ones included.
fn debug_error_codes(resp: &ResponseKind) -> Vec<i16> {
    let text = format!("{resp:?}");
    text.split("error_code: ")
        .skip(1)
        .map(|rest| {
            let end = rest
                .find(|c: char| c != '-' && !c.is_ascii_digit())
                .unwrap_or(rest.len());
            rest[..end].parse().expect("error code")
        })
        .collect()
}

/// The error codes a denied sample request's response carries.
fn expected_errors(key: ApiKey) -> &'static [i16] {
    use ApiKey as K;
    match key {
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
        | K::TxnOffsetCommit
        | K::AlterReplicaLogDirs
        | K::CreatePartitions
        | K::ElectLeaders
        | K::AlterPartitionReassignments
        | K::ListPartitionReassignments
        | K::OffsetDelete
        | K::DescribeProducers
        | K::DescribeTopicPartitions
        | K::ConsumerGroupHeartbeat
        | K::ShareGroupHeartbeat
        | K::ShareFetch
        | K::ShareAcknowledge
        | K::DescribeShareGroupOffsets
        | K::AlterShareGroupOffsets
        | K::DeleteShareGroupOffsets => &[TOPIC],
        // The samples name a topic resource and a broker resource.
        K::DescribeConfigs | K::AlterConfigs | K::IncrementalAlterConfigs => &[TOPIC, CLUSTER],
        K::FindCoordinator
        | K::JoinGroup
        | K::Heartbeat
        | K::LeaveGroup
        | K::SyncGroup
        | K::DescribeGroups
        | K::DeleteGroups
        | K::ConsumerGroupDescribe
        | K::ShareGroupDescribe => &[GROUP],
        K::InitProducerId | K::AddOffsetsToTxn | K::EndTxn | K::DescribeTransactions => &[TXN],
        K::CreateDelegationToken
        | K::RenewDelegationToken
        | K::ExpireDelegationToken
        | K::DescribeDelegationToken => &[TOKEN],
        K::SaslHandshake => &[UNSUPPORTED_SASL_MECHANISM],
        K::SaslAuthenticate => &[SASL_AUTHENTICATION_FAILED],
        K::ListGroups
        | K::ApiVersions
        | K::WriteTxnMarkers
        | K::DescribeAcls
        | K::CreateAcls
        | K::DeleteAcls
        | K::DescribeLogDirs
        | K::DescribeClientQuotas
        | K::AlterClientQuotas
        | K::DescribeUserScramCredentials
        | K::AlterUserScramCredentials
        | K::Vote
        | K::BeginQuorumEpoch
        | K::EndQuorumEpoch
        | K::DescribeQuorum
        | K::AlterPartition
        | K::UpdateFeatures
        | K::Envelope
        | K::FetchSnapshot
        | K::DescribeCluster
        | K::BrokerRegistration
        | K::BrokerHeartbeat
        | K::UnregisterBroker
        | K::ListTransactions
        | K::AllocateProducerIds
        | K::ControllerRegistration
        | K::GetTelemetrySubscriptions
        | K::PushTelemetry
        | K::AssignReplicasToDirs
        | K::ListConfigResources
        | K::AddRaftVoter
        | K::RemoveRaftVoter
        | K::UpdateRaftVoter
        | K::InitializeShareGroupState
        | K::ReadShareGroupState
        | K::WriteShareGroupState
        | K::DeleteShareGroupState
        | K::ReadShareGroupStateSummary => &[CLUSTER],
    }
}

/// Topic APIs whose response has no per-topic slot: the error is the
/// top-level code.
const TOPIC_ERROR_AT_TOP: &[ApiKey] = &[
    ApiKey::ListPartitionReassignments,
    ApiKey::ConsumerGroupHeartbeat,
    ApiKey::ShareGroupHeartbeat,
];

/// `resp` encoded at `version` and decoded back, all bytes consumed.
pub(crate) fn roundtrip_response(key: ApiKey, version: i16, resp: &ResponseKind) -> ResponseKind {
    let mut buf = BytesMut::new();
    resp.encode(&mut buf, version)
        .unwrap_or_else(|e| panic!("{key:?} v{version}: encode deny response: {e}"));
    let mut bytes = buf.freeze();
    let decoded = ResponseKind::decode(key, &mut bytes, version)
        .unwrap_or_else(|e| panic!("{key:?} v{version}: decode deny response: {e}"));
    assert!(
        bytes.is_empty(),
        "{key:?} v{version}: {} bytes left after the deny response",
        bytes.len()
    );
    decoded
}

fn denied(key: ApiKey, v: i16, body: &RequestKind) -> ResponseKind {
    roundtrip_response(
        key,
        v,
        &deny(body, v)
            .expect("every known request kind has a denial")
            .response,
    )
}

#[test]
fn every_api_key_and_version_gets_a_decodable_authorization_error() {
    let mut checked = 0;
    for key in ApiKey::iter() {
        let range = key.valid_versions();
        let expected = expected_errors(key);
        for v in range.min..=range.max {
            let body = peer_request(key, v);
            let resp = denied(key, v, &body);
            let c = codes(&resp);
            let all = error_codes(&resp);
            let nonzero: Vec<i16> = all.iter().copied().filter(|&e| e != 0).collect();

            assert!(
                !nonzero.is_empty(),
                "{key:?} v{v}: no error code set: {resp:?}"
            );
            assert!(
                nonzero.iter().all(|e| expected.contains(e)),
                "{key:?} v{v}: codes {nonzero:?}, expected only {expected:?}"
            );
            assert!(
                c.items.iter().all(|&e| e != 0),
                "{key:?} v{v}: an item without an error: {resp:?}"
            );
            if expected.contains(&TOPIC) {
                if TOPIC_ERROR_AT_TOP.contains(&key) {
                    assert_eq!(c.outer, [TOPIC], "{key:?} v{v}");
                } else {
                    // Every topic/partition fails; the top level is fine.
                    assert!(!c.items.is_empty(), "{key:?} v{v}: no topic entries");
                    assert!(
                        c.items.iter().all(|e| expected.contains(e)),
                        "{key:?} v{v}: {:?}",
                        c.items
                    );
                    assert!(
                        c.items.contains(&TOPIC),
                        "{key:?} v{v}: no topic error in {:?}",
                        c.items
                    );
                    // ShareFetch's acknowledgement error is the only
                    // outer code a topic deny sets.
                    let outer_ok = |e: &i16| *e == 0 || key == ApiKey::ShareFetch;
                    assert!(c.outer.iter().all(outer_ok), "{key:?} v{v}: {:?}", c.outer);
                }
            }

            let mut from_debug: Vec<i16> = debug_error_codes(&resp)
                .into_iter()
                .filter(|&e| e != 0)
                .collect();
            let mut from_codes = nonzero.clone();
            from_debug.sort_unstable();
            from_codes.sort_unstable();
            assert_eq!(
                from_codes, from_debug,
                "{key:?} v{v}: error_codes misses a field"
            );
            checked += 1;
        }
    }
    // 87 keys with 290 versions between them in kafka-protocol 0.18.
    assert!(checked >= 290, "only {checked} key/version pairs checked");
}

/// The deny response of the un-round-tripped sample, for tests that look
/// at one response type.
fn deny_sample(key: ApiKey, v: i16) -> ResponseKind {
    denied(key, v, &peer_request(key, v))
}

#[test]
fn produce_echoes_topic_names_then_ids_and_partitions() {
    for (v, name, id) in [
        (3, tn(TOPIC_A), Uuid::nil()),
        (12, tn(TOPIC_A), Uuid::nil()),
        (13, TopicName::default(), ID_A),
    ] {
        let ResponseKind::Produce(r) = deny_sample(ApiKey::Produce, v) else {
            unreachable!()
        };
        assert_eq!(r.responses.len(), 1);
        let t = &r.responses[0];
        assert_eq!((&t.name, t.topic_id), (&name, id), "v{v}");
        let parts: Vec<_> = t
            .partition_responses
            .iter()
            .map(|p| (p.index, p.error_code, p.base_offset))
            .collect();
        assert_eq!(parts, [(0, TOPIC, -1), (1, TOPIC, -1)], "v{v}");
    }
}

#[test]
fn fetch_echoes_names_before_v13_and_ids_after() {
    for v in 4..=18 {
        let ResponseKind::Fetch(r) = deny_sample(ApiKey::Fetch, v) else {
            unreachable!()
        };
        assert_eq!(r.error_code, 0);
        assert_eq!(r.session_id, 0);
        // Forgotten topics get no entry.
        assert_eq!(r.responses.len(), 1, "v{v}");
        let t = &r.responses[0];
        if v < 13 {
            assert_eq!((&t.topic, t.topic_id), (&tn(TOPIC_A), Uuid::nil()));
        } else {
            assert_eq!((&t.topic, t.topic_id), (&TopicName::default(), ID_A));
        }
        let parts: Vec<_> = t
            .partitions
            .iter()
            .map(|p| (p.partition_index, p.error_code, p.high_watermark))
            .collect();
        assert_eq!(parts, [(0, TOPIC, -1), (1, TOPIC, -1)], "v{v}");
    }
}

#[test]
fn metadata_denies_each_topic_and_lists_no_brokers() {
    let ResponseKind::Metadata(r) = deny_sample(ApiKey::Metadata, 12) else {
        unreachable!()
    };
    assert!(r.brokers.is_empty());
    let topics: Vec<_> = r
        .topics
        .iter()
        .map(|t| (t.name.clone(), t.topic_id, t.error_code))
        .collect();
    assert_eq!(
        topics,
        [(Some(tn(TOPIC_A)), Uuid::nil(), TOPIC), (None, ID_B, TOPIC)]
    );

    // All topics (a null list): nothing authorized, nothing listed.
    let all = RequestKind::Metadata(MetadataRequest::default().with_topics(None));
    let ResponseKind::Metadata(r) = denied(ApiKey::Metadata, 12, &all) else {
        unreachable!()
    };
    assert!(r.topics.is_empty() && r.brokers.is_empty());
    assert_eq!(r.controller_id, -1);
}

#[test]
fn offset_fetch_fails_partitions_or_the_group() {
    let ResponseKind::OffsetFetch(r) = deny_sample(ApiKey::OffsetFetch, 7) else {
        unreachable!()
    };
    assert_eq!(r.error_code, 0);
    let parts: Vec<_> = r.topics[0]
        .partitions
        .iter()
        .map(|p| (p.partition_index, p.committed_offset, p.error_code))
        .collect();
    assert_eq!(parts, [(0, -1, TOPIC), (1, -1, TOPIC)]);

    let ResponseKind::OffsetFetch(r) = deny_sample(ApiKey::OffsetFetch, 9) else {
        unreachable!()
    };
    assert_eq!(r.groups.len(), 1);
    assert_eq!(r.groups[0].group_id, group("group-1"));
    assert_eq!(r.groups[0].error_code, 0);
    assert_eq!(r.groups[0].topics[0].name, tn(TOPIC_A));

    // All of a group's topics (null list): the group fails.
    use offset_fetch_request::OffsetFetchRequestGroup;
    let all = RequestKind::OffsetFetch(OffsetFetchRequest::default().with_groups(vec![
        OffsetFetchRequestGroup::default()
            .with_group_id(group("group-1"))
            .with_topics(None),
    ]));
    let ResponseKind::OffsetFetch(r) = denied(ApiKey::OffsetFetch, 9, &all) else {
        unreachable!()
    };
    assert_eq!(r.groups[0].error_code, GROUP);
    assert!(r.groups[0].topics.is_empty());

    let all = RequestKind::OffsetFetch(
        OffsetFetchRequest::default()
            .with_group_id(group("group-1"))
            .with_topics(None),
    );
    let ResponseKind::OffsetFetch(r) = denied(ApiKey::OffsetFetch, 7, &all) else {
        unreachable!()
    };
    assert_eq!(r.error_code, GROUP);
}

#[test]
fn delete_topics_echoes_names_and_ids() {
    let ResponseKind::DeleteTopics(r) = deny_sample(ApiKey::DeleteTopics, 5) else {
        unreachable!()
    };
    let got: Vec<_> = r
        .responses
        .iter()
        .map(|t| (t.name.clone(), t.error_code))
        .collect();
    assert_eq!(got, [(Some(tn(TOPIC_A)), TOPIC)]);

    let ResponseKind::DeleteTopics(r) = deny_sample(ApiKey::DeleteTopics, 6) else {
        unreachable!()
    };
    let got: Vec<_> = r
        .responses
        .iter()
        .map(|t| (t.name.clone(), t.topic_id, t.error_code))
        .collect();
    assert_eq!(
        got,
        [(Some(tn(TOPIC_A)), Uuid::nil(), TOPIC), (None, ID_B, TOPIC)]
    );
}

#[test]
fn find_coordinator_error_follows_the_key_type() {
    for v in 1..=3 {
        let req = RequestKind::FindCoordinator(
            FindCoordinatorRequest::default()
                .with_key(s("txn-1"))
                .with_key_type(1),
        );
        let ResponseKind::FindCoordinator(r) = denied(ApiKey::FindCoordinator, v, &req) else {
            unreachable!()
        };
        assert_eq!((r.error_code, r.node_id.0, r.port), (TXN, -1, -1), "v{v}");
    }
    for v in 4..=6 {
        let ResponseKind::FindCoordinator(r) = deny_sample(ApiKey::FindCoordinator, v) else {
            unreachable!()
        };
        let got: Vec<_> = r
            .coordinators
            .iter()
            .map(|c| (c.key.clone(), c.error_code, c.node_id.0))
            .collect();
        assert_eq!(got, [(s("group-1"), GROUP, -1), (s("group-2"), GROUP, -1)]);

        let req = RequestKind::FindCoordinator(
            FindCoordinatorRequest::default()
                .with_key_type(1)
                .with_coordinator_keys(vec![s("txn-1")]),
        );
        let ResponseKind::FindCoordinator(r) = denied(ApiKey::FindCoordinator, v, &req) else {
            unreachable!()
        };
        assert_eq!(r.coordinators[0].error_code, TXN);
    }
}

#[test]
fn add_partitions_to_txn_per_version_layout() {
    let ResponseKind::AddPartitionsToTxn(r) = deny_sample(ApiKey::AddPartitionsToTxn, 3) else {
        unreachable!()
    };
    assert_eq!(r.results_by_topic_v3_and_below[0].name, tn(TOPIC_A));
    assert!(r.results_by_transaction.is_empty());

    let ResponseKind::AddPartitionsToTxn(r) = deny_sample(ApiKey::AddPartitionsToTxn, 4) else {
        unreachable!()
    };
    assert_eq!(r.error_code, 0);
    assert_eq!(r.results_by_transaction[0].transactional_id, txn_id());
    let parts: Vec<_> = r.results_by_transaction[0].topic_results[0]
        .results_by_partition
        .iter()
        .map(|p| (p.partition_index, p.partition_error_code))
        .collect();
    assert_eq!(parts, [(0, TOPIC), (1, TOPIC)]);
}

#[test]
fn configs_fail_by_resource_type() {
    let ResponseKind::DescribeConfigs(r) = deny_sample(ApiKey::DescribeConfigs, 4) else {
        unreachable!()
    };
    let got: Vec<_> = r
        .results
        .iter()
        .map(|x| (x.resource_type, x.resource_name.clone(), x.error_code))
        .collect();
    assert_eq!(got, [(2, s(TOPIC_A), TOPIC), (4, s("1"), CLUSTER)]);
}

#[test]
fn idempotent_producer_and_groups_without_topics() {
    let idempotent =
        RequestKind::InitProducerId(InitProducerIdRequest::default().with_transactional_id(None));
    let ResponseKind::InitProducerId(r) = denied(ApiKey::InitProducerId, 4, &idempotent) else {
        unreachable!()
    };
    assert_eq!(
        (r.error_code, r.producer_id.0, r.producer_epoch),
        (CLUSTER, -1, -1)
    );

    let hb = RequestKind::ConsumerGroupHeartbeat(
        ConsumerGroupHeartbeatRequest::default().with_group_id(group("group-1")),
    );
    assert_eq!(
        error_codes(&denied(ApiKey::ConsumerGroupHeartbeat, 1, &hb)),
        [GROUP]
    );

    let delete =
        RequestKind::OffsetDelete(OffsetDeleteRequest::default().with_group_id(group("group-1")));
    assert_eq!(
        error_codes(&denied(ApiKey::OffsetDelete, 0, &delete)),
        [GROUP]
    );

    let elect =
        RequestKind::ElectLeaders(ElectLeadersRequest::default().with_topic_partitions(None));
    assert_eq!(
        error_codes(&denied(ApiKey::ElectLeaders, 2, &elect)),
        [CLUSTER]
    );
}

#[test]
fn describe_log_dirs_before_and_after_the_top_level_code() {
    let ResponseKind::DescribeLogDirs(r) = deny_sample(ApiKey::DescribeLogDirs, 2) else {
        unreachable!()
    };
    assert_eq!(r.results.len(), 1);
    assert_eq!(r.results[0].error_code, CLUSTER);
    let ResponseKind::DescribeLogDirs(r) = deny_sample(ApiKey::DescribeLogDirs, 3) else {
        unreachable!()
    };
    assert_eq!(r.error_code, CLUSTER);
    assert!(r.results.is_empty());
}

#[test]
fn denials_report_the_code_their_response_carries() {
    for key in ApiKey::iter() {
        let range = key.valid_versions();
        for v in range.min..=range.max {
            for body in [peer_request(key, v), crate::api::empty_request(key)] {
                let d = deny(&body, v).expect("every known request kind has a denial");
                assert_eq!(
                    d.error_code,
                    main_error(&d.response),
                    "{key:?} v{v}: {body:?}"
                );
            }
        }
    }
}
