//! The error codes of every response type, by where they sit: the checker
//! the deny tests hold each denial to. It was the production `codes()`;
//! a denial now reports its code itself ([`super::super::Denial`]), and
//! `denials_report_the_code_their_response_carries` holds it to this.

use kafka_protocol::messages::*;

/// The error codes of a response: `outer` for codes on containers
/// (top level, group level) and secondary codes, which may be 0; `items`
/// for one code per thing the request asked about (partition, topic,
/// group, resource, key, user...), every one of which a deny must fail.
#[derive(Debug, Default)]
pub(crate) struct Codes {
    pub outer: Vec<i16>,
    pub items: Vec<i16>,
}

/// Every error code in `resp`, top level first, then nested.
pub(crate) fn error_codes(resp: &ResponseKind) -> Vec<i16> {
    let c = codes(resp);
    c.outer.into_iter().chain(c.items).collect()
}

/// The error codes of every response type, by where they sit.
pub(crate) fn codes(resp: &ResponseKind) -> Codes {
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
pub(crate) fn main_error(resp: &ResponseKind) -> i16 {
    let c = codes(resp);
    c.items
        .into_iter()
        .chain(c.outer)
        .find(|c| *c != 0)
        .unwrap_or(0)
}
