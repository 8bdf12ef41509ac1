//! Cluster-wide APIs that echo what they name: CLUSTER_AUTHORIZATION_FAILED
//! on each entry.

use super::*;

/// CreateAcls: each creation 31 (ALTER on the cluster).
impl Deny for CreateAclsRequest {
    fn deny(&self, _: i16, code: i16) -> (CreateAclsResponse, i16) {
        use create_acls_response::AclCreationResult;
        let mut failed = Failed::default();
        let resp = CreateAclsResponse::default().with_results(failed.each(&self.creations, |_| {
            AclCreationResult::default()
                .with_error_code(code)
                .with_error_message(None)
        }));
        (resp, failed.code(code, 0))
    }
}

/// DeleteAcls: each filter 31, nothing matched.
impl Deny for DeleteAclsRequest {
    fn deny(&self, _: i16, code: i16) -> (DeleteAclsResponse, i16) {
        use delete_acls_response::DeleteAclsFilterResult;
        let mut failed = Failed::default();
        let resp =
            DeleteAclsResponse::default().with_filter_results(failed.each(&self.filters, |_| {
                DeleteAclsFilterResult::default()
                    .with_error_code(code)
                    .with_error_message(None)
            }));
        (resp, failed.code(code, 0))
    }
}

/// DescribeLogDirs: DESCRIBE on the cluster. v3+ carry a top-level code: 31
/// and no log dirs (the broker's answer). v1–2 have only a per-log-dir code,
/// and the broker answers an empty list, which a client cannot tell from a
/// broker with no log dirs; one result for an unnamed log dir carrying 31
/// makes the denial visible instead.
impl Deny for DescribeLogDirsRequest {
    fn deny(&self, v: i16, code: i16) -> (DescribeLogDirsResponse, i16) {
        use describe_log_dirs_response::DescribeLogDirsResult;
        let resp = if v >= 3 {
            DescribeLogDirsResponse::default().with_error_code(code)
        } else {
            DescribeLogDirsResponse::default()
                .with_results(vec![DescribeLogDirsResult::default().with_error_code(code)])
        };
        (resp, code)
    }
}

/// AlterClientQuotas: each entry 31, echoing its entity.
impl Deny for AlterClientQuotasRequest {
    fn deny(&self, _: i16, code: i16) -> (AlterClientQuotasResponse, i16) {
        use alter_client_quotas_response::{EntityData, EntryData};
        let mut failed = Failed::default();
        let resp =
            AlterClientQuotasResponse::default().with_entries(failed.each(&self.entries, |e| {
                EntryData::default()
                    .with_error_code(code)
                    .with_error_message(None)
                    .with_entity(each(&e.entity, |x| {
                        EntityData::default()
                            .with_entity_type(x.entity_type.clone())
                            .with_entity_name(x.entity_name.clone())
                    }))
            }));
        (resp, failed.code(code, 0))
    }
}

/// AlterUserScramCredentials: one result per user named in the deletions
/// and upsertions (each user once, as the broker reports them), 31.
impl Deny for AlterUserScramCredentialsRequest {
    fn deny(&self, _: i16, code: i16) -> (AlterUserScramCredentialsResponse, i16) {
        use alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
        let mut users: Vec<&StrBytes> = Vec::new();
        let deleted = self.deletions.iter().map(|d| &d.name);
        for user in deleted.chain(self.upsertions.iter().map(|u| &u.name)) {
            if !users.contains(&user) {
                users.push(user);
            }
        }
        let mut failed = Failed::default();
        let results = failed.each(users, |u| {
            AlterUserScramCredentialsResult::default()
                .with_user(u.clone())
                .with_error_code(code)
                .with_error_message(None)
        });
        let resp = AlterUserScramCredentialsResponse::default().with_results(results);
        (resp, failed.code(code, 0))
    }
}

/// DescribeCluster: 31, no brokers, controller -1; the endpoint type echoed
/// (v1+).
impl Deny for DescribeClusterRequest {
    fn deny(&self, v: i16, code: i16) -> (DescribeClusterResponse, i16) {
        let mut resp = DescribeClusterResponse::default()
            .with_error_code(code)
            .with_error_message(None);
        if v >= 1 {
            resp.endpoint_type = self.endpoint_type;
        }
        (resp, code)
    }
}

/// WriteTxnMarkers: broker-to-broker (CLUSTER_ACTION): every partition 31,
/// per marker, as the broker's error response fills them.
impl Deny for WriteTxnMarkersRequest {
    fn deny(&self, _: i16, code: i16) -> (WriteTxnMarkersResponse, i16) {
        use write_txn_markers_response::{
            WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
        };
        let mut failed = Failed::default();
        let resp = WriteTxnMarkersResponse::default().with_markers(each(&self.markers, |m| {
            WritableTxnMarkerResult::default()
                .with_producer_id(m.producer_id)
                .with_topics(each(&m.topics, |t| {
                    WritableTxnMarkerTopicResult::default()
                        .with_name(t.name.clone())
                        .with_partitions(failed.each(&t.partition_indexes, |&i| {
                            WritableTxnMarkerPartitionResult::default()
                                .with_partition_index(i)
                                .with_error_code(code)
                        }))
                }))
        }));
        (resp, failed.code(code, 0))
    }
}

/// The share-group state APIs (broker to share coordinator, CLUSTER_ACTION)
/// have no top-level error code: every partition 31. Their result types
/// differ only by name.
macro_rules! deny_share_group_state {
    ($( $req:ident, $module:ident::$result:ident; )*) => {$(
        impl Deny for $req {
            fn deny(&self, _: i16, code: i16) -> (Self::Response, i16) {
                use $module::{$result, PartitionResult};
                let mut failed = Failed::default();
                let resp = Self::Response::default().with_results(each(&self.topics, |t| {
                    $result::default()
                        .with_topic_id(t.topic_id)
                        .with_partitions(failed.each(&t.partitions, |p| {
                            PartitionResult::default()
                                .with_partition(p.partition)
                                .with_error_code(code)
                                .with_error_message(None)
                        }))
                }));
                (resp, failed.code(code, 0))
            }
        }
    )*};
}

deny_share_group_state! {
    InitializeShareGroupStateRequest, initialize_share_group_state_response::InitializeStateResult;
    ReadShareGroupStateRequest, read_share_group_state_response::ReadStateResult;
    WriteShareGroupStateRequest, write_share_group_state_response::WriteStateResult;
    DeleteShareGroupStateRequest, delete_share_group_state_response::DeleteStateResult;
    ReadShareGroupStateSummaryRequest,
        read_share_group_state_summary_response::ReadStateSummaryResult;
}
