//! Every Kafka API key in one table: its Cilium name, the class of error a
//! denial answers with, its place in Cilium's `role` sets, and how to find
//! the topics a request names.
//!
//! The rows expand into the name and role lookups below, the topic
//! extraction behind [`crate::topics::request_topics`] and the dispatch
//! behind [`crate::deny::deny`]. The match on [`ApiKey`] is exhaustive, so
//! a kafka-protocol release with a new API key does not build until the key
//! has a row here (and its request type a [`Deny`] impl).

use kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind};
use kafka_protocol::protocol::Request;
use kafka_protocol::ResponseError as E;

use crate::refs::Topics;

/// A request type's denial.
pub trait Deny: Request {
    /// The response denying `self` at `version` with `code` (the error of
    /// its row's class), and the code it reports: the one on the items it
    /// failed (topics, partitions, groups, resources...), else the one at
    /// its top level, 0 when it carries none.
    fn deny(&self, version: i16, code: i16) -> (Self::Response, i16);
}

/// What a denial refuses: the authorization error it answers with, where
/// the request does not pick another (see [`crate::deny`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// TOPIC_AUTHORIZATION_FAILED (29) on every topic or partition.
    Topic,
    /// GROUP_AUTHORIZATION_FAILED (30).
    Group,
    /// CLUSTER_AUTHORIZATION_FAILED (31).
    Cluster,
    /// TRANSACTIONAL_ID_AUTHORIZATION_FAILED (53).
    Txn,
    /// DELEGATION_TOKEN_AUTHORIZATION_FAILED (65).
    Token,
    /// UNSUPPORTED_SASL_MECHANISM (33): the handshake.
    SaslMechanism,
    /// SASL_AUTHENTICATION_FAILED (58): the authentication step.
    SaslAuth,
}

impl Class {
    pub const fn code(self) -> i16 {
        match self {
            Class::Topic => E::TopicAuthorizationFailed.code(),
            Class::Group => E::GroupAuthorizationFailed.code(),
            Class::Cluster => E::ClusterAuthorizationFailed.code(),
            Class::Txn => E::TransactionalIdAuthorizationFailed.code(),
            Class::Token => E::DelegationTokenAuthorizationFailed.code(),
            Class::SaslMechanism => E::UnsupportedSaslMechanism.code(),
            Class::SaslAuth => E::SaslAuthenticationFailed.code(),
        }
    }
}

/// Cilium's `role` sets (`pkg/policy/api/kafka`) a key belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roles {
    pub produce: bool,
    pub consume: bool,
}

/// One row of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Api {
    pub code: i16,
    /// Cilium's lower-case name for keys 0–33 (policy's `apiKey`, the
    /// access log's `api_name`); kafka-protocol's name, lower-cased, after.
    pub name: &'static str,
    pub class: Class,
    pub roles: Roles,
}

#[rustfmt::skip]
macro_rules! roles {
    (-) => { Roles { produce: false, consume: false } };
    (P) => { Roles { produce: true, consume: false } };
    (C) => { Roles { produce: false, consume: true } };
    (PC) => { Roles { produce: true, consume: true } };
}

macro_rules! apis {
    (
        $( $code:literal $key:ident $name:literal $class:ident $roles:tt
            $( |$r:ident, $t:ident| $topics:expr )? ; )*
        retired { $( $rcode:literal $rname:literal ; )* }
    ) => {
        /// Every row: the keys kafka-protocol knows, then the retired ones.
        pub const APIS: &[Api] = &[
            $( Api { code: $code, name: $name, class: Class::$class, roles: roles!($roles) }, )*
            $( Api { code: $rcode, name: $rname, class: Class::Cluster, roles: roles!(-) }, )*
        ];

        $( const _: () = assert!(ApiKey::$key as i16 == $code); )*

        /// The row of `key`.
        pub fn api(key: ApiKey) -> &'static Api {
            match key {
                $( ApiKey::$key => &Api {
                    code: $code, name: $name, class: Class::$class, roles: roles!($roles),
                }, )*
            }
        }

        pub(crate) fn collect_topics(body: &RequestKind, out: &mut Topics) {
            match body {
                $( $( RequestKind::$key($r) => { let $t = out; $topics; } )? )*
                _ => {}
            }
        }

        /// A request of `key`'s kind with every field at its default.
        #[cfg(test)]
        pub(crate) fn empty_request(key: ApiKey) -> RequestKind {
            match key {
                $( ApiKey::$key => RequestKind::$key(Default::default()), )*
            }
        }

        /// The denial of `body` at `version` and the error code it carries;
        /// `None` for a request kind without a row.
        pub(crate) fn deny(body: &RequestKind, version: i16) -> Option<(ResponseKind, i16)> {
            Some(match body {
                $( RequestKind::$key(r) => {
                    let (response, code) = r.deny(version, Class::$class.code());
                    (ResponseKind::$key(response), code)
                } )*
                // `RequestKind` is `#[non_exhaustive]`; `api` above is not, so
                // every variant of the vendored kafka-protocol has a row.
                _ => return None,
            })
        }
    };
}

// `r`: the request; `t`: the topics collector (crate::topics::Topics).
// Rows without topics name none: groups, transactional IDs, principals,
// tokens, quotas, features, brokers, telemetry, config resource listings,
// and Envelope, whose wrapped request is not decoded here.
apis! {
//  code name                          Cilium name                     class          roles
    0  Produce                        "produce"                      Topic          P
        |r, t| t.names_or_ids(&r.topic_data, |x| (Some(&x.name), x.topic_id));
    1  Fetch                          "fetch"                        Topic          C
        |r, t| {
            t.names_or_ids(&r.topics, |x| (Some(&x.topic), x.topic_id));
            t.names_or_ids(&r.forgotten_topics_data, |x| (Some(&x.topic), x.topic_id));
        };
    2  ListOffsets                    "offsets"                      Topic          C
        |r, t| t.names(&r.topics, |x| &x.name);
    3  Metadata                       "metadata"                     Topic          PC
        |r, t| t.names_or_ids(r.topics.iter().flatten(), |x| (x.name.as_ref(), x.topic_id));
    8  OffsetCommit                   "offsetcommit"                 Topic          C
        |r, t| t.names_or_ids(&r.topics, |x| (Some(&x.name), x.topic_id));
    9  OffsetFetch                    "offsetfetch"                  Topic          C
        |r, t| {
            t.names(r.topics.iter().flatten(), |x| &x.name);
            for g in &r.groups {
                t.names_or_ids(g.topics.iter().flatten(), |x| (Some(&x.name), x.topic_id));
            }
        };
    10 FindCoordinator                "findcoordinator"              Group          C;
    11 JoinGroup                      "joingroup"                    Group          C;
    12 Heartbeat                      "heartbeat"                    Group          C;
    13 LeaveGroup                     "leavegroup"                   Group          C;
    14 SyncGroup                      "syncgroup"                    Group          C;
    15 DescribeGroups                 "describegroups"               Group          -;
    16 ListGroups                     "listgroups"                   Cluster        -;
    17 SaslHandshake                  "saslhandshake"                SaslMechanism  -;
    18 ApiVersions                    "apiversions"                  Cluster        PC;
    19 CreateTopics                   "createtopics"                 Topic          -
        |r, t| t.names(&r.topics, |x| &x.name);
    20 DeleteTopics                   "deletetopics"                 Topic          -
        |r, t| {
            t.names(&r.topic_names, |x| x);
            t.names_or_ids(&r.topics, |x| (x.name.as_ref(), x.topic_id));
        };
    21 DeleteRecords                  "deleterecords"                Topic          -
        |r, t| t.names(&r.topics, |x| &x.name);
    22 InitProducerId                 "initproducerid"               Txn            -;
    23 OffsetForLeaderEpoch           "offsetforleaderepoch"         Topic          -
        |r, t| t.names(&r.topics, |x| &x.topic);
    24 AddPartitionsToTxn             "addpartitionstotxn"           Topic          -
        |r, t| {
            t.names(&r.v3_and_below_topics, |x| &x.name);
            for txn in &r.transactions {
                t.names(&txn.topics, |x| &x.name);
            }
        };
    25 AddOffsetsToTxn                "addoffsetstotxn"              Txn            -;
    26 EndTxn                         "endtxn"                       Txn            -;
    27 WriteTxnMarkers                "writetxnmarkers"              Cluster        -
        |r, t| for m in &r.markers { t.names(&m.topics, |x| &x.name) };
    28 TxnOffsetCommit                "txnoffsetcommit"              Topic          -
        |r, t| t.names(&r.topics, |x| &x.name);
    29 DescribeAcls                   "describeacls"                 Cluster        -
        |r, t| t.acl_filter(r.resource_type_filter, r.resource_name_filter.as_ref());
    30 CreateAcls                     "createacls"                   Cluster        -
        |r, t| for c in &r.creations { t.resource(c.resource_type, &c.resource_name) };
    31 DeleteAcls                     "deleteacls"                   Cluster        -
        |r, t| for f in &r.filters {
            t.acl_filter(f.resource_type_filter, f.resource_name_filter.as_ref())
        };
    32 DescribeConfigs                "describeconfigs"              Topic          -
        |r, t| for x in &r.resources { t.resource(x.resource_type, &x.resource_name) };
    33 AlterConfigs                   "alterconfigs"                 Topic          -
        |r, t| for x in &r.resources { t.resource(x.resource_type, &x.resource_name) };
    34 AlterReplicaLogDirs            "alterreplicalogdirs"          Topic          -
        |r, t| for d in &r.dirs { t.names(&d.topics, |x| &x.name) };
    35 DescribeLogDirs                "describelogdirs"              Cluster        -
        |r, t| t.names(r.topics.iter().flatten(), |x| &x.topic);
    36 SaslAuthenticate               "saslauthenticate"             SaslAuth       -;
    37 CreatePartitions               "createpartitions"             Topic          -
        |r, t| t.names(&r.topics, |x| &x.name);
    38 CreateDelegationToken          "createdelegationtoken"        Token          -;
    39 RenewDelegationToken           "renewdelegationtoken"         Token          -;
    40 ExpireDelegationToken          "expiredelegationtoken"        Token          -;
    41 DescribeDelegationToken        "describedelegationtoken"      Token          -;
    42 DeleteGroups                   "deletegroups"                 Group          -;
    43 ElectLeaders                   "electleaders"                 Topic          -
        |r, t| t.names(r.topic_partitions.iter().flatten(), |x| &x.topic);
    44 IncrementalAlterConfigs        "incrementalalterconfigs"      Topic          -
        |r, t| for x in &r.resources { t.resource(x.resource_type, &x.resource_name) };
    45 AlterPartitionReassignments    "alterpartitionreassignments"  Topic          -
        |r, t| t.names(&r.topics, |x| &x.name);
    46 ListPartitionReassignments     "listpartitionreassignments"   Topic          -
        |r, t| t.names(r.topics.iter().flatten(), |x| &x.name);
    47 OffsetDelete                   "offsetdelete"                 Topic          -
        |r, t| t.names(&r.topics, |x| &x.name);
    48 DescribeClientQuotas           "describeclientquotas"         Cluster        -;
    49 AlterClientQuotas              "alterclientquotas"            Cluster        -;
    50 DescribeUserScramCredentials   "describeuserscramcredentials" Cluster        -;
    51 AlterUserScramCredentials      "alteruserscramcredentials"    Cluster        -;
    52 Vote                           "vote"                         Cluster        -
        |r, t| t.names(&r.topics, |x| &x.topic_name);
    53 BeginQuorumEpoch               "beginquorumepoch"             Cluster        -
        |r, t| t.names(&r.topics, |x| &x.topic_name);
    54 EndQuorumEpoch                 "endquorumepoch"               Cluster        -
        |r, t| t.names(&r.topics, |x| &x.topic_name);
    55 DescribeQuorum                 "describequorum"               Cluster        -
        |r, t| t.names(&r.topics, |x| &x.topic_name);
    56 AlterPartition                 "alterpartition"               Cluster        -
        |r, t| t.ids(&r.topics, |x| x.topic_id);
    57 UpdateFeatures                 "updatefeatures"               Cluster        -;
    58 Envelope                       "envelope"                     Cluster        -;
    59 FetchSnapshot                  "fetchsnapshot"                Cluster        -
        |r, t| t.names(&r.topics, |x| &x.name);
    60 DescribeCluster                "describecluster"              Cluster        -;
    61 DescribeProducers              "describeproducers"            Topic          -
        |r, t| t.names(&r.topics, |x| &x.name);
    62 BrokerRegistration             "brokerregistration"           Cluster        -;
    63 BrokerHeartbeat                "brokerheartbeat"              Cluster        -;
    64 UnregisterBroker               "unregisterbroker"             Cluster        -;
    65 DescribeTransactions           "describetransactions"         Txn            -;
    66 ListTransactions               "listtransactions"             Cluster        -;
    67 AllocateProducerIds            "allocateproducerids"          Cluster        -;
    68 ConsumerGroupHeartbeat         "consumergroupheartbeat"       Group          -
        |r, t| {
            t.names(r.subscribed_topic_names.iter().flatten(), |x| x);
            t.ids(r.topic_partitions.iter().flatten(), |x| x.topic_id);
        };
    69 ConsumerGroupDescribe          "consumergroupdescribe"        Group          -;
    70 ControllerRegistration         "controllerregistration"       Cluster        -;
    71 GetTelemetrySubscriptions      "gettelemetrysubscriptions"    Cluster        -;
    72 PushTelemetry                  "pushtelemetry"                Cluster        -;
    73 AssignReplicasToDirs           "assignreplicastodirs"         Cluster        -
        |r, t| for d in &r.directories { t.ids(&d.topics, |x| x.topic_id) };
    74 ListConfigResources            "listconfigresources"          Cluster        -;
    75 DescribeTopicPartitions        "describetopicpartitions"      Topic          -
        |r, t| {
            t.names(&r.topics, |x| &x.name);
            t.names(&r.cursor, |x| &x.topic_name);
        };
    76 ShareGroupHeartbeat            "sharegroupheartbeat"          Group          -
        |r, t| t.names(r.subscribed_topic_names.iter().flatten(), |x| x);
    77 ShareGroupDescribe             "sharegroupdescribe"           Group          -;
    78 ShareFetch                     "sharefetch"                   Topic          -
        |r, t| {
            t.ids(&r.topics, |x| x.topic_id);
            t.ids(&r.forgotten_topics_data, |x| x.topic_id);
        };
    79 ShareAcknowledge               "shareacknowledge"             Topic          -
        |r, t| t.ids(&r.topics, |x| x.topic_id);
    80 AddRaftVoter                   "addraftvoter"                 Cluster        -;
    81 RemoveRaftVoter                "removeraftvoter"              Cluster        -;
    82 UpdateRaftVoter                "updateraftvoter"              Cluster        -;
    83 InitializeShareGroupState      "initializesharegroupstate"    Cluster        -
        |r, t| t.ids(&r.topics, |x| x.topic_id);
    84 ReadShareGroupState            "readsharegroupstate"          Cluster        -
        |r, t| t.ids(&r.topics, |x| x.topic_id);
    85 WriteShareGroupState           "writesharegroupstate"         Cluster        -
        |r, t| t.ids(&r.topics, |x| x.topic_id);
    86 DeleteShareGroupState          "deletesharegroupstate"        Cluster        -
        |r, t| t.ids(&r.topics, |x| x.topic_id);
    87 ReadShareGroupStateSummary     "readsharegroupstatesummary"   Cluster        -
        |r, t| t.ids(&r.topics, |x| x.topic_id);
    90 DescribeShareGroupOffsets      "describesharegroupoffsets"    Topic          -
        |r, t| for g in &r.groups { t.names(g.topics.iter().flatten(), |x| &x.topic_name) };
    91 AlterShareGroupOffsets         "altersharegroupoffsets"       Topic          -
        |r, t| t.names(&r.topics, |x| &x.topic_name);
    92 DeleteShareGroupOffsets        "deletesharegroupoffsets"      Topic          -
        |r, t| t.names(&r.topics, |x| &x.topic_name);

    // Cilium's names for keys kafka-protocol no longer knows; they stay
    // valid in policy.
    retired {
    4  "leaderandisr";
    5  "stopreplica";
    6  "updatemetadata";
    7  "controlledshutdown";
    }
}

/// The name of `key` in policy and in the access log.
pub fn api_key_name(key: ApiKey) -> &'static str {
    api(key).name
}

/// The API key a policy names, by name (case-insensitive) or number.
pub fn parse_api_key(s: &str) -> Option<i16> {
    let lower = s.trim().to_ascii_lowercase();
    if let Ok(n) = lower.parse::<i16>() {
        return (n >= 0).then_some(n);
    }
    APIS.iter().find(|a| a.name == lower).map(|a| a.code)
}

/// The keys of the rows with `role`, checked to number `N`.
const fn role_keys<const N: usize>(produce: bool) -> [i16; N] {
    let mut keys = [0; N];
    let (mut i, mut n) = (0, 0);
    while i < APIS.len() {
        let roles = APIS[i].roles;
        if (produce && roles.produce) || (!produce && roles.consume) {
            keys[n] = APIS[i].code;
            n += 1;
        }
        i += 1;
    }
    assert!(n == N, "a role's key count changed");
    keys
}

/// Cilium's `role: produce`.
pub const PRODUCE_KEYS: &[i16] = &role_keys::<3>(true);
/// Cilium's `role: consume`.
pub const CONSUME_KEYS: &[i16] = &role_keys::<11>(false);

/// The API keys a `role` stands for.
pub fn role_api_keys(role: &str) -> Option<&'static [i16]> {
    match role.to_ascii_lowercase().as_str() {
        "produce" => Some(PRODUCE_KEYS),
        "consume" => Some(CONSUME_KEYS),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_key_names() {
        assert_eq!(parse_api_key("Produce"), Some(0));
        assert_eq!(parse_api_key("offsets"), Some(2));
        assert_eq!(parse_api_key("LeaderAndIsr"), Some(4));
        assert_eq!(parse_api_key("alterconfigs"), Some(33));
        assert_eq!(parse_api_key("describetopicpartitions"), Some(75));
        assert_eq!(parse_api_key("18"), Some(18));
        assert_eq!(parse_api_key("nope"), None);
        assert_eq!(parse_api_key("-1"), None);
        assert_eq!(api_key_name(ApiKey::ListOffsets), "offsets");
    }

    #[test]
    fn names_after_cilium_s_are_kafka_protocol_s() {
        for key in ApiKey::iter().filter(|k| *k as i16 > 33) {
            assert_eq!(api_key_name(key), format!("{key:?}").to_ascii_lowercase());
        }
        let mut codes: Vec<i16> = APIS.iter().map(|a| a.code).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), APIS.len(), "one row per key");
    }

    #[test]
    fn roles_are_cilium_s() {
        assert_eq!(PRODUCE_KEYS, [0, 3, 18]);
        assert_eq!(CONSUME_KEYS, [1, 2, 3, 8, 9, 10, 11, 12, 13, 14, 18]);
        assert_eq!(role_api_keys("Produce"), Some(PRODUCE_KEYS));
        assert_eq!(role_api_keys("admin"), None);
    }
}
