//! Topics and partitions: TOPIC_AUTHORIZATION_FAILED per topic or
//! partition; config resources: the error of the resource's type.

use super::*;

/// Produce: each partition 29, with the broker's "no offset" values (base
/// offset, append time and log start offset -1). Topics echoed by name (v3–12)
/// or ID (v13); the encoder writes whichever the version carries.
impl Deny for ProduceRequest {
    fn deny(&self, _: i16, code: i16) -> (ProduceResponse, i16) {
        use produce_response::{PartitionProduceResponse, TopicProduceResponse};
        let mut failed = Failed::default();
        let resp = ProduceResponse::default().with_responses(each(&self.topic_data, |t| {
            TopicProduceResponse::default()
                .with_name(t.name.clone())
                .with_topic_id(t.topic_id)
                .with_partition_responses(failed.each(&t.partition_data, |p| {
                    PartitionProduceResponse::default()
                        .with_index(p.index)
                        .with_error_code(code)
                        .with_base_offset(-1)
                        .with_log_append_time_ms(-1)
                        .with_log_start_offset(-1)
                }))
        }));
        (resp, failed.code(code, 0))
    }
}

/// Fetch: each fetched partition 29 with high watermark, last stable offset
/// and log start offset -1 and empty records (`FetchResponse.partitionResponse`
/// in the broker). Top-level error 0 and session ID 0: no fetch session, so
/// the client's next fetch is a full one. Forgotten topics get no entry.
impl Deny for FetchRequest {
    fn deny(&self, _: i16, code: i16) -> (FetchResponse, i16) {
        use fetch_response::{FetchableTopicResponse, PartitionData};
        let mut failed = Failed::default();
        let resp = FetchResponse::default()
            .with_session_id(0)
            .with_responses(each(&self.topics, |t| {
                FetchableTopicResponse::default()
                    .with_topic(t.topic.clone())
                    .with_topic_id(t.topic_id)
                    .with_partitions(failed.each(&t.partitions, |p| {
                        PartitionData::default()
                            .with_partition_index(p.partition)
                            .with_error_code(code)
                            .with_high_watermark(-1)
                            .with_last_stable_offset(-1)
                            .with_log_start_offset(-1)
                            .with_aborted_transactions(None)
                            .with_records(Some(Bytes::new()))
                    }))
            }));
        (resp, failed.code(code, 0))
    }
}

/// ListOffsets: each partition 29, timestamp/offset/leader epoch -1.
impl Deny for ListOffsetsRequest {
    fn deny(&self, _: i16, code: i16) -> (ListOffsetsResponse, i16) {
        use list_offsets_response::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse};
        let mut failed = Failed::default();
        let resp = ListOffsetsResponse::default().with_topics(each(&self.topics, |t| {
            ListOffsetsTopicResponse::default()
                .with_name(t.name.clone())
                .with_partitions(failed.each(&t.partitions, |p| {
                    ListOffsetsPartitionResponse::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(code)
                        .with_timestamp(-1)
                        .with_offset(-1)
                        .with_leader_epoch(-1)
                }))
        }));
        (resp, failed.code(code, 0))
    }
}

/// Metadata: each requested topic 29, with no partitions, echoing the name
/// and topic ID the request used (a topic asked for by ID alone gets a null
/// name, v12+). No brokers, controller -1, null cluster ID: the proxy does
/// not know the cluster, and a client only needs the error. An all-topics
/// request (null list) gets an empty topic list — the broker's answer when
/// no topic is authorized; v13's top-level error stays 0 (the broker uses it
/// only for REBOOTSTRAP_REQUIRED). (The proxy answers a denied Metadata
/// with the broker's own response, scrubbed: [`crate::response`].)
impl Deny for MetadataRequest {
    fn deny(&self, v: i16, code: i16) -> (MetadataResponse, i16) {
        use metadata_response::MetadataResponseTopic;
        let mut failed = Failed::default();
        let resp = MetadataResponse::default().with_topics(failed.each(
            self.topics.iter().flatten(),
            |t| {
                // Topic names are nullable from v12 only.
                let name = match &t.name {
                    None if v < 12 => Some(TopicName::default()),
                    name => name.clone(),
                };
                MetadataResponseTopic::default()
                    .with_error_code(code)
                    .with_name(name)
                    .with_topic_id(t.topic_id)
            },
        ));
        (resp, failed.code(code, 0))
    }
}

/// OffsetCommit: each partition 29. The response has no group-level error
/// code, so a commit that names no topic gets an empty (error-free) answer,
/// as from the broker.
impl Deny for OffsetCommitRequest {
    fn deny(&self, _: i16, code: i16) -> (OffsetCommitResponse, i16) {
        use offset_commit_response::{OffsetCommitResponsePartition, OffsetCommitResponseTopic};
        let mut failed = Failed::default();
        let resp = OffsetCommitResponse::default().with_topics(each(&self.topics, |t| {
            OffsetCommitResponseTopic::default()
                .with_name(t.name.clone())
                .with_topic_id(t.topic_id)
                .with_partitions(failed.each(&t.partitions, |p| {
                    OffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(code)
                }))
        }));
        (resp, failed.code(code, 0))
    }
}

/// OffsetFetch: as the broker does, a group whose request names topics gets
/// each partition 29 (offset -1, no leader epoch, empty metadata) and a
/// group-level 0; a group asking for all its topics (null list) gets the
/// group-level GROUP_AUTHORIZATION_FAILED. v1–7 carry one group at the top
/// level (v1 has no top-level error code), v8+ a list of groups.
impl Deny for OffsetFetchRequest {
    fn deny(&self, v: i16, code: i16) -> (OffsetFetchResponse, i16) {
        use offset_fetch_response::{
            OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
            OffsetFetchResponseTopic, OffsetFetchResponseTopics,
        };
        let mut failed = Failed::default();
        if v < 8 {
            let topics = each(self.topics.iter().flatten(), |t| {
                OffsetFetchResponseTopic::default()
                    .with_name(t.name.clone())
                    .with_partitions(failed.each(&t.partition_indexes, |&i| {
                        OffsetFetchResponsePartition::default()
                            .with_partition_index(i)
                            .with_committed_offset(-1)
                            .with_committed_leader_epoch(-1)
                            .with_metadata(Some(StrBytes::default()))
                            .with_error_code(code)
                    }))
            });
            let error = if_none(&topics, GROUP);
            let resp = OffsetFetchResponse::default()
                .with_error_code(error)
                .with_topics(topics);
            return (resp, failed.code(code, error));
        }
        let mut group_error = 0;
        let resp = OffsetFetchResponse::default().with_groups(each(&self.groups, |g| {
            let topics = each(g.topics.iter().flatten(), |t| {
                OffsetFetchResponseTopics::default()
                    .with_name(t.name.clone())
                    .with_topic_id(t.topic_id)
                    .with_partitions(failed.each(&t.partition_indexes, |&i| {
                        OffsetFetchResponsePartitions::default()
                            .with_partition_index(i)
                            .with_committed_offset(-1)
                            .with_committed_leader_epoch(-1)
                            .with_metadata(Some(StrBytes::default()))
                            .with_error_code(code)
                    }))
            });
            let error = if_none(&topics, GROUP);
            group_error = group_error.max(error);
            OffsetFetchResponseGroup::default()
                .with_group_id(g.group_id.clone())
                .with_error_code(error)
                .with_topics(topics)
        }));
        (resp, failed.code(code, group_error))
    }
}

/// CreateTopics: each topic 29, partitions and replication factor -1, no
/// configs (null, v5+), nil topic ID (v7).
impl Deny for CreateTopicsRequest {
    fn deny(&self, _: i16, code: i16) -> (CreateTopicsResponse, i16) {
        use create_topics_response::CreatableTopicResult;
        let mut failed = Failed::default();
        let resp = CreateTopicsResponse::default().with_topics(failed.each(&self.topics, |t| {
            CreatableTopicResult::default()
                .with_name(t.name.clone())
                .with_error_code(code)
                .with_error_message(None)
                .with_num_partitions(-1)
                .with_replication_factor(-1)
                .with_configs(None)
        }));
        (resp, failed.code(code, 0))
    }
}

/// DeleteTopics: each topic 29; v1–5 by name, v6 by the name and/or ID the
/// request gave.
impl Deny for DeleteTopicsRequest {
    fn deny(&self, v: i16, code: i16) -> (DeleteTopicsResponse, i16) {
        use delete_topics_response::DeletableTopicResult;
        let result = |name: Option<TopicName>, id| {
            DeletableTopicResult::default()
                .with_name(name)
                .with_topic_id(id)
                .with_error_code(code)
                .with_error_message(None)
        };
        let mut failed = Failed::default();
        let responses = if v < 6 {
            failed.each(&self.topic_names, |n| {
                result(Some(n.clone()), uuid::Uuid::nil())
            })
        } else {
            failed.each(&self.topics, |t| result(t.name.clone(), t.topic_id))
        };
        let resp = DeleteTopicsResponse::default().with_responses(responses);
        (resp, failed.code(code, 0))
    }
}

/// DeleteRecords: each partition 29, low watermark -1.
impl Deny for DeleteRecordsRequest {
    fn deny(&self, _: i16, code: i16) -> (DeleteRecordsResponse, i16) {
        use delete_records_response::{DeleteRecordsPartitionResult, DeleteRecordsTopicResult};
        let mut failed = Failed::default();
        let resp = DeleteRecordsResponse::default().with_topics(each(&self.topics, |t| {
            DeleteRecordsTopicResult::default()
                .with_name(t.name.clone())
                .with_partitions(failed.each(&t.partitions, |p| {
                    DeleteRecordsPartitionResult::default()
                        .with_partition_index(p.partition_index)
                        .with_low_watermark(-1)
                        .with_error_code(code)
                }))
        }));
        (resp, failed.code(code, 0))
    }
}

/// OffsetForLeaderEpoch: each partition 29, leader epoch and end offset -1.
/// (A follower's request — replica ID ≥ 0 — would get CLUSTER_AUTHORIZATION_FAILED
/// from the broker for lacking CLUSTER_ACTION; the policy denies on topics,
/// so topics it is.)
impl Deny for OffsetForLeaderEpochRequest {
    fn deny(&self, _: i16, code: i16) -> (OffsetForLeaderEpochResponse, i16) {
        use offset_for_leader_epoch_response::{EpochEndOffset, OffsetForLeaderTopicResult};
        let mut failed = Failed::default();
        let resp = OffsetForLeaderEpochResponse::default().with_topics(each(&self.topics, |t| {
            OffsetForLeaderTopicResult::default()
                .with_topic(t.topic.clone())
                .with_partitions(failed.each(&t.partitions, |p| {
                    EpochEndOffset::default()
                        .with_partition(p.partition)
                        .with_error_code(code)
                        .with_leader_epoch(-1)
                        .with_end_offset(-1)
                }))
        }));
        (resp, failed.code(code, 0))
    }
}

/// AddPartitionsToTxn: each partition 29. v0–3 answer one transaction's
/// topics; v4+ (batched, broker-to-broker verification) one result per
/// transaction, with top-level error 0.
impl Deny for AddPartitionsToTxnRequest {
    fn deny(&self, v: i16, code: i16) -> (AddPartitionsToTxnResponse, i16) {
        use add_partitions_to_txn_request::AddPartitionsToTxnTopic;
        use add_partitions_to_txn_response::{
            AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult,
            AddPartitionsToTxnTopicResult,
        };
        let mut failed = Failed::default();
        let mut topic_results = |topics: &[AddPartitionsToTxnTopic]| -> Vec<_> {
            each(topics, |t| {
                AddPartitionsToTxnTopicResult::default()
                    .with_name(t.name.clone())
                    .with_results_by_partition(failed.each(&t.partitions, |&i| {
                        AddPartitionsToTxnPartitionResult::default()
                            .with_partition_index(i)
                            .with_partition_error_code(code)
                    }))
            })
        };
        let resp = if v < 4 {
            AddPartitionsToTxnResponse::default()
                .with_results_by_topic_v3_and_below(topic_results(&self.v3_and_below_topics))
        } else {
            AddPartitionsToTxnResponse::default().with_results_by_transaction(each(
                &self.transactions,
                |txn| {
                    AddPartitionsToTxnResult::default()
                        .with_transactional_id(txn.transactional_id.clone())
                        .with_topic_results(topic_results(&txn.topics))
                },
            ))
        };
        (resp, failed.code(code, 0))
    }
}

/// TxnOffsetCommit: each partition 29.
impl Deny for TxnOffsetCommitRequest {
    fn deny(&self, _: i16, code: i16) -> (TxnOffsetCommitResponse, i16) {
        use txn_offset_commit_response::{
            TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
        };
        let mut failed = Failed::default();
        let resp = TxnOffsetCommitResponse::default().with_topics(each(&self.topics, |t| {
            TxnOffsetCommitResponseTopic::default()
                .with_name(t.name.clone())
                .with_partitions(failed.each(&t.partitions, |p| {
                    TxnOffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(code)
                }))
        }));
        (resp, failed.code(code, 0))
    }
}

/// AlterReplicaLogDirs: each partition 29, one result per (log dir, topic)
/// entry of the request, as the broker's error response lists them.
impl Deny for AlterReplicaLogDirsRequest {
    fn deny(&self, _: i16, code: i16) -> (AlterReplicaLogDirsResponse, i16) {
        use alter_replica_log_dirs_response::{
            AlterReplicaLogDirPartitionResult, AlterReplicaLogDirTopicResult,
        };
        let mut failed = Failed::default();
        let topics = self.dirs.iter().flat_map(|d| &d.topics);
        let resp = AlterReplicaLogDirsResponse::default().with_results(each(topics, |t| {
            AlterReplicaLogDirTopicResult::default()
                .with_topic_name(t.name.clone())
                .with_partitions(failed.each(&t.partitions, |&i| {
                    AlterReplicaLogDirPartitionResult::default()
                        .with_partition_index(i)
                        .with_error_code(code)
                }))
        }));
        (resp, failed.code(code, 0))
    }
}

/// CreatePartitions: each topic 29.
impl Deny for CreatePartitionsRequest {
    fn deny(&self, _: i16, code: i16) -> (CreatePartitionsResponse, i16) {
        use create_partitions_response::CreatePartitionsTopicResult;
        let mut failed = Failed::default();
        let resp =
            CreatePartitionsResponse::default().with_results(failed.each(&self.topics, |t| {
                CreatePartitionsTopicResult::default()
                    .with_name(t.name.clone())
                    .with_error_code(code)
                    .with_error_message(None)
            }));
        (resp, failed.code(code, 0))
    }
}

/// ElectLeaders: each partition 29 with top-level 0 (v1+). An election for
/// every partition (null list) names no topic: top-level
/// CLUSTER_AUTHORIZATION_FAILED, the broker's answer without ALTER on the
/// cluster; v0 has no top-level code and gets an empty result.
impl Deny for ElectLeadersRequest {
    fn deny(&self, v: i16, code: i16) -> (ElectLeadersResponse, i16) {
        use elect_leaders_response::{PartitionResult, ReplicaElectionResult};
        let mut failed = Failed::default();
        let results = each(self.topic_partitions.iter().flatten(), |t| {
            ReplicaElectionResult::default()
                .with_topic(t.topic.clone())
                .with_partition_result(failed.each(&t.partitions, |&i| {
                    PartitionResult::default()
                        .with_partition_id(i)
                        .with_error_code(code)
                        .with_error_message(None)
                }))
        });
        let error = if v >= 1 {
            if_none(&results, CLUSTER)
        } else {
            0
        };
        let resp = ElectLeadersResponse::default()
            .with_error_code(error)
            .with_replica_election_results(results);
        (resp, failed.code(code, error))
    }
}

/// AlterPartitionReassignments: each partition 29, top-level 0; a request
/// with no topic gets top-level CLUSTER_AUTHORIZATION_FAILED.
impl Deny for AlterPartitionReassignmentsRequest {
    fn deny(&self, v: i16, code: i16) -> (AlterPartitionReassignmentsResponse, i16) {
        use alter_partition_reassignments_response::{
            ReassignablePartitionResponse, ReassignableTopicResponse,
        };
        let mut failed = Failed::default();
        let responses = each(&self.topics, |t| {
            ReassignableTopicResponse::default()
                .with_name(t.name.clone())
                .with_partitions(failed.each(&t.partitions, |p| {
                    ReassignablePartitionResponse::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(code)
                        .with_error_message(None)
                }))
        });
        let error = if_none(&responses, CLUSTER);
        let mut resp = AlterPartitionReassignmentsResponse::default()
            .with_error_code(error)
            .with_error_message(None)
            .with_responses(responses);
        if v >= 1 {
            resp.allow_replication_factor_change = self.allow_replication_factor_change;
        }
        (resp, failed.code(code, error))
    }
}

/// ListPartitionReassignments: the response has no per-topic error, so the
/// top-level code carries it: 29 when the request names topics, 31 for a
/// cluster-wide listing (null list).
impl Deny for ListPartitionReassignmentsRequest {
    fn deny(&self, _: i16, code: i16) -> (ListPartitionReassignmentsResponse, i16) {
        let names_topics = self.topics.as_ref().is_some_and(|t| !t.is_empty());
        let error = if names_topics { code } else { CLUSTER };
        let resp = ListPartitionReassignmentsResponse::default()
            .with_error_code(error)
            .with_error_message(None);
        (resp, error)
    }
}

/// OffsetDelete: each partition 29 and top-level 0; no topic → top-level
/// GROUP_AUTHORIZATION_FAILED.
impl Deny for OffsetDeleteRequest {
    fn deny(&self, _: i16, code: i16) -> (OffsetDeleteResponse, i16) {
        use offset_delete_response::{OffsetDeleteResponsePartition, OffsetDeleteResponseTopic};
        let mut failed = Failed::default();
        let topics = each(&self.topics, |t| {
            OffsetDeleteResponseTopic::default()
                .with_name(t.name.clone())
                .with_partitions(failed.each(&t.partitions, |p| {
                    OffsetDeleteResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(code)
                }))
        });
        let error = if_none(&topics, GROUP);
        let resp = OffsetDeleteResponse::default()
            .with_error_code(error)
            .with_topics(topics);
        (resp, failed.code(code, error))
    }
}

/// DescribeProducers: each partition 29, no producers.
impl Deny for DescribeProducersRequest {
    fn deny(&self, _: i16, code: i16) -> (DescribeProducersResponse, i16) {
        use describe_producers_response::{PartitionResponse, TopicResponse};
        let mut failed = Failed::default();
        let resp = DescribeProducersResponse::default().with_topics(each(&self.topics, |t| {
            TopicResponse::default()
                .with_name(t.name.clone())
                .with_partitions(failed.each(&t.partition_indexes, |&i| {
                    PartitionResponse::default()
                        .with_partition_index(i)
                        .with_error_code(code)
                        .with_error_message(None)
                }))
        }));
        (resp, failed.code(code, 0))
    }
}

/// DescribeTopicPartitions: each requested topic 29, by name, no partitions,
/// no cursor. A request for all topics (empty list) gets an empty list, as
/// from a broker that authorizes none.
impl Deny for DescribeTopicPartitionsRequest {
    fn deny(&self, _: i16, code: i16) -> (DescribeTopicPartitionsResponse, i16) {
        use describe_topic_partitions_response::DescribeTopicPartitionsResponseTopic;
        let mut failed = Failed::default();
        let resp = DescribeTopicPartitionsResponse::default().with_topics(failed.each(
            &self.topics,
            |t| {
                DescribeTopicPartitionsResponseTopic::default()
                    .with_error_code(code)
                    .with_name(Some(t.name.clone()))
            },
        ));
        (resp, failed.code(code, 0))
    }
}

/// ShareFetch: each partition 29 (and 29 as its acknowledgement error when
/// it carried acknowledgements), leader unknown, empty records; top-level 0.
/// A request with no topic (a session close or pure poll) gets top-level
/// GROUP_AUTHORIZATION_FAILED: the share group is what is left to deny.
impl Deny for ShareFetchRequest {
    fn deny(&self, _: i16, code: i16) -> (ShareFetchResponse, i16) {
        use share_fetch_response::{LeaderIdAndEpoch, PartitionData, ShareFetchableTopicResponse};
        let mut failed = Failed::default();
        let responses = each(&self.topics, |t| {
            ShareFetchableTopicResponse::default()
                .with_topic_id(t.topic_id)
                .with_partitions(failed.each(&t.partitions, |p| {
                    let acked = !p.acknowledgement_batches.is_empty();
                    PartitionData::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(code)
                        .with_error_message(None)
                        .with_acknowledge_error_code(if acked { code } else { 0 })
                        .with_acknowledge_error_message(None)
                        .with_current_leader(
                            LeaderIdAndEpoch::default()
                                .with_leader_id(-1)
                                .with_leader_epoch(-1),
                        )
                        .with_records(Some(Bytes::new()))
                }))
        });
        let error = if_none(&responses, GROUP);
        let resp = ShareFetchResponse::default()
            .with_error_code(error)
            .with_error_message(None)
            .with_responses(responses);
        (resp, failed.code(code, error))
    }
}

/// ShareAcknowledge: each partition 29, leader unknown; top-level 0, or
/// GROUP_AUTHORIZATION_FAILED when no topic is named.
impl Deny for ShareAcknowledgeRequest {
    fn deny(&self, _: i16, code: i16) -> (ShareAcknowledgeResponse, i16) {
        use share_acknowledge_response::{
            LeaderIdAndEpoch, PartitionData, ShareAcknowledgeTopicResponse,
        };
        let mut failed = Failed::default();
        let responses = each(&self.topics, |t| {
            ShareAcknowledgeTopicResponse::default()
                .with_topic_id(t.topic_id)
                .with_partitions(failed.each(&t.partitions, |p| {
                    PartitionData::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(code)
                        .with_error_message(None)
                        .with_current_leader(
                            LeaderIdAndEpoch::default()
                                .with_leader_id(-1)
                                .with_leader_epoch(-1),
                        )
                }))
        });
        let error = if_none(&responses, GROUP);
        let resp = ShareAcknowledgeResponse::default()
            .with_error_code(error)
            .with_error_message(None)
            .with_responses(responses);
        (resp, failed.code(code, error))
    }
}

/// DescribeShareGroupOffsets: like OffsetFetch v8+ — per group, the named
/// topics' partitions 29 (start offset and leader epoch -1) under a group
/// error of 0, or the group error 30 when the group asks for all topics.
impl Deny for DescribeShareGroupOffsetsRequest {
    fn deny(&self, _: i16, code: i16) -> (DescribeShareGroupOffsetsResponse, i16) {
        use describe_share_group_offsets_response::{
            DescribeShareGroupOffsetsResponseGroup, DescribeShareGroupOffsetsResponsePartition,
            DescribeShareGroupOffsetsResponseTopic,
        };
        let mut failed = Failed::default();
        let mut group_error = 0;
        let resp =
            DescribeShareGroupOffsetsResponse::default().with_groups(each(&self.groups, |g| {
                let topics = each(g.topics.iter().flatten(), |t| {
                    DescribeShareGroupOffsetsResponseTopic::default()
                        .with_topic_name(t.topic_name.clone())
                        .with_partitions(failed.each(&t.partitions, |&i| {
                            DescribeShareGroupOffsetsResponsePartition::default()
                                .with_partition_index(i)
                                .with_start_offset(-1)
                                .with_leader_epoch(-1)
                                .with_error_code(code)
                                .with_error_message(None)
                        }))
                });
                let error = if_none(&topics, GROUP);
                group_error = group_error.max(error);
                DescribeShareGroupOffsetsResponseGroup::default()
                    .with_group_id(g.group_id.clone())
                    .with_error_code(error)
                    .with_error_message(None)
                    .with_topics(topics)
            }));
        (resp, failed.code(code, group_error))
    }
}

/// AlterShareGroupOffsets: each partition 29, top-level 0; no topic →
/// top-level GROUP_AUTHORIZATION_FAILED.
impl Deny for AlterShareGroupOffsetsRequest {
    fn deny(&self, _: i16, code: i16) -> (AlterShareGroupOffsetsResponse, i16) {
        use alter_share_group_offsets_response::{
            AlterShareGroupOffsetsResponsePartition, AlterShareGroupOffsetsResponseTopic,
        };
        let mut failed = Failed::default();
        let responses = each(&self.topics, |t| {
            AlterShareGroupOffsetsResponseTopic::default()
                .with_topic_name(t.topic_name.clone())
                .with_partitions(failed.each(&t.partitions, |p| {
                    AlterShareGroupOffsetsResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(code)
                        .with_error_message(None)
                }))
        });
        let error = if_none(&responses, GROUP);
        let resp = AlterShareGroupOffsetsResponse::default()
            .with_error_code(error)
            .with_error_message(None)
            .with_responses(responses);
        (resp, failed.code(code, error))
    }
}

/// DeleteShareGroupOffsets: each topic 29, top-level 0; no topic →
/// top-level GROUP_AUTHORIZATION_FAILED.
impl Deny for DeleteShareGroupOffsetsRequest {
    fn deny(&self, _: i16, code: i16) -> (DeleteShareGroupOffsetsResponse, i16) {
        use delete_share_group_offsets_response::DeleteShareGroupOffsetsResponseTopic;
        let mut failed = Failed::default();
        let responses = failed.each(&self.topics, |t| {
            DeleteShareGroupOffsetsResponseTopic::default()
                .with_topic_name(t.topic_name.clone())
                .with_error_code(code)
                .with_error_message(None)
        });
        let error = if_none(&responses, GROUP);
        let resp = DeleteShareGroupOffsetsResponse::default()
            .with_error_code(error)
            .with_error_message(None)
            .with_responses(responses);
        (resp, failed.code(code, error))
    }
}

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

/// The config APIs: one result per resource, with its type's error (no
/// configs); the code reported is the first resource's.
macro_rules! deny_configs {
    ($( $req:ident, $module:ident::$result:ident, $with_results:ident; )*) => {$(
        impl Deny for $req {
            fn deny(&self, _: i16, _: i16) -> (Self::Response, i16) {
                let resp = Self::Response::default().$with_results(each(&self.resources, |res| {
                    $module::$result::default()
                        .with_error_code(config_resource_error(res.resource_type))
                        .with_error_message(None)
                        .with_resource_type(res.resource_type)
                        .with_resource_name(res.resource_name.clone())
                }));
                let code = self.resources.first().map_or(0, |r| config_resource_error(r.resource_type));
                (resp, code)
            }
        }
    )*};
}

deny_configs! {
    DescribeConfigsRequest, describe_configs_response::DescribeConfigsResult, with_results;
    AlterConfigsRequest, alter_configs_response::AlterConfigsResourceResponse, with_responses;
    IncrementalAlterConfigsRequest,
        incremental_alter_configs_response::AlterConfigsResourceResponse, with_responses;
}
