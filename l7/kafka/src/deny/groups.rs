//! Groups: GROUP_AUTHORIZATION_FAILED; transactional IDs:
//! TRANSACTIONAL_ID_AUTHORIZATION_FAILED.

use super::*;

/// FindCoordinator: the error of the key type — group (0) → 30, transaction
/// (1) → 53, share-group state key (2, asked by brokers, CLUSTER_ACTION) →
/// 31, anything else → 30 — with no coordinator (node -1, empty host, port
/// -1). v0–3 answer the one key at the top level (v0 has no key type: a
/// group), v4+ one coordinator entry per key.
impl Deny for FindCoordinatorRequest {
    fn deny(&self, v: i16, code: i16) -> (FindCoordinatorResponse, i16) {
        use find_coordinator_response::Coordinator;
        let error = match self.key_type {
            _ if v < 1 => code,
            1 => TXN,
            2 => CLUSTER,
            _ => code,
        };
        if v < 4 {
            let resp = FindCoordinatorResponse::default()
                .with_error_code(error)
                .with_error_message(None)
                .with_node_id((-1).into())
                .with_port(-1);
            return (resp, error);
        }
        let mut failed = Failed::default();
        let resp = FindCoordinatorResponse::default().with_coordinators(failed.each(
            &self.coordinator_keys,
            |k| {
                Coordinator::default()
                    .with_key(k.clone())
                    .with_node_id((-1).into())
                    .with_port(-1)
                    .with_error_code(error)
                    .with_error_message(None)
            },
        ));
        (resp, failed.code(error, 0))
    }
}

/// JoinGroup: 30 as `JoinGroupRequest.getErrorResponse` builds it:
/// generation -1, no protocol (null from v7, where the field becomes
/// nullable; empty before), unknown (empty) member ID and leader, no members.
impl Deny for JoinGroupRequest {
    fn deny(&self, v: i16, code: i16) -> (JoinGroupResponse, i16) {
        let protocol_name = (v < 7).then(StrBytes::default);
        let resp = JoinGroupResponse::default()
            .with_error_code(code)
            .with_generation_id(-1)
            .with_protocol_type(None)
            .with_protocol_name(protocol_name);
        (resp, code)
    }
}

/// The describe APIs of classic, consumer and share groups: each group 30,
/// empty state/protocol, no members.
macro_rules! deny_describe_groups {
    ($( $req:ident, $groups:ident, $module:ident; )*) => {$(
        impl Deny for $req {
            fn deny(&self, _: i16, code: i16) -> (Self::Response, i16) {
                let mut failed = Failed::default();
                let resp = Self::Response::default().with_groups(failed.each(&self.$groups, |g| {
                    $module::DescribedGroup::default()
                        .with_error_code(code)
                        .with_error_message(None)
                        .with_group_id(g.clone())
                }));
                (resp, failed.code(code, 0))
            }
        }
    )*};
}

deny_describe_groups! {
    DescribeGroupsRequest, groups, describe_groups_response;
    ConsumerGroupDescribeRequest, group_ids, consumer_group_describe_response;
    ShareGroupDescribeRequest, group_ids, share_group_describe_response;
}

/// DeleteGroups: each group 30.
impl Deny for DeleteGroupsRequest {
    fn deny(&self, _: i16, code: i16) -> (DeleteGroupsResponse, i16) {
        use delete_groups_response::DeletableGroupResult;
        let mut failed = Failed::default();
        let resp =
            DeleteGroupsResponse::default().with_results(failed.each(&self.groups_names, |g| {
                DeletableGroupResult::default()
                    .with_group_id(g.clone())
                    .with_error_code(code)
            }));
        (resp, failed.code(code, 0))
    }
}

/// ConsumerGroupHeartbeat: a heartbeat that subscribes to or owns topics
/// gets 29 — the broker checks DESCRIBE on subscribed topics after READ on
/// the group, and the policy denies on topics — any other gets 30. No member
/// ID, epoch or assignment.
impl Deny for ConsumerGroupHeartbeatRequest {
    fn deny(&self, _: i16, code: i16) -> (ConsumerGroupHeartbeatResponse, i16) {
        let names_topics = self
            .subscribed_topic_names
            .as_ref()
            .is_some_and(|t| !t.is_empty())
            || self
                .topic_partitions
                .as_ref()
                .is_some_and(|t| !t.is_empty());
        let error = if names_topics { TOPIC } else { code };
        let resp = ConsumerGroupHeartbeatResponse::default()
            .with_error_code(error)
            .with_error_message(None);
        (resp, error)
    }
}

/// ShareGroupHeartbeat: as ConsumerGroupHeartbeat — 29 when it subscribes
/// to topics, else 30.
impl Deny for ShareGroupHeartbeatRequest {
    fn deny(&self, _: i16, code: i16) -> (ShareGroupHeartbeatResponse, i16) {
        let names_topics = self
            .subscribed_topic_names
            .as_ref()
            .is_some_and(|t| !t.is_empty());
        let error = if names_topics { TOPIC } else { code };
        let resp = ShareGroupHeartbeatResponse::default()
            .with_error_code(error)
            .with_error_message(None);
        (resp, error)
    }
}

/// InitProducerId: 53 for a transactional producer; an idempotent one (null
/// transactional ID) is authorized on the cluster (IDEMPOTENT_WRITE), so 31.
/// No producer ID or epoch (-1).
impl Deny for InitProducerIdRequest {
    fn deny(&self, _: i16, code: i16) -> (InitProducerIdResponse, i16) {
        let error = if self.transactional_id.is_some() {
            code
        } else {
            CLUSTER
        };
        let resp = InitProducerIdResponse::default()
            .with_error_code(error)
            .with_producer_id((-1).into())
            .with_producer_epoch(-1);
        (resp, error)
    }
}

/// DescribeTransactions: each transactional ID 53, no state.
impl Deny for DescribeTransactionsRequest {
    fn deny(&self, _: i16, code: i16) -> (DescribeTransactionsResponse, i16) {
        use describe_transactions_response::TransactionState;
        let mut failed = Failed::default();
        let states = failed.each(&self.transactional_ids, |id| {
            TransactionState::default()
                .with_error_code(code)
                .with_transactional_id(id.clone())
                .with_transaction_start_time_ms(-1)
                .with_producer_id((-1).into())
                .with_producer_epoch(-1)
        });
        let resp = DescribeTransactionsResponse::default().with_transaction_states(states);
        (resp, failed.code(code, 0))
    }
}
