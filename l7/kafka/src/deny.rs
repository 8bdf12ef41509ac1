//! A well-formed authorization-error response for any request.
//!
//! [`deny`] answers a denied request the way a broker answers a client that
//! lacks the ACL for it, so that clients fail with the usual
//! `*AuthorizationException` instead of retrying or timing out. The error
//! is the [`Class`] of the key's row in [`crate::api`]:
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
//!
//! Most responses are their error code and nothing else (`impl_deny!`);
//! the rest echo what the request named, one [`Deny`] impl each.

use bytes::Bytes;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use crate::api::Class;
pub use crate::api::Deny;

const TOPIC: i16 = Class::Topic.code();
const GROUP: i16 = Class::Group.code();
const CLUSTER: i16 = Class::Cluster.code();
const TXN: i16 = Class::Txn.code();

/// A denied request's answer.
#[derive(Debug)]
pub struct Denial {
    pub response: ResponseKind,
    /// The error code the denial reports (for the access log).
    pub error_code: i16,
}

/// The answer to a denied `body` at `version`. `None` only for a request
/// kind without a row in [`crate::api`] (one added by a newer
/// kafka-protocol): the caller closes that connection.
pub fn deny(body: &RequestKind, version: i16) -> Option<Denial> {
    let (response, error_code) = crate::api::deny(body, version)?;
    Some(Denial {
        response,
        error_code,
    })
}

/// `items` mapped through `f`: the shape of every echoed list below.
fn each<'a, T: 'a, U>(items: impl IntoIterator<Item = &'a T>, f: impl FnMut(&'a T) -> U) -> Vec<U> {
    items.into_iter().map(f).collect()
}

/// Whether a denial failed any item, learned as the items are built.
#[derive(Default)]
struct Failed(bool);

impl Failed {
    /// [`each`], for the items that carry the error.
    fn each<'a, T: 'a, U>(
        &mut self,
        items: impl IntoIterator<Item = &'a T>,
        f: impl FnMut(&'a T) -> U,
    ) -> Vec<U> {
        let out = each(items, f);
        self.0 |= !out.is_empty();
        out
    }

    /// `item` if any item failed, else `top`.
    fn code(&self, item: i16, top: i16) -> i16 {
        if self.0 {
            item
        } else {
            top
        }
    }
}

/// `top` when `items` is empty, else 0: the top-level code of a response
/// whose request names none of the things it asks about.
fn if_none<T>(items: &[T], top: i16) -> i16 {
    if items.is_empty() {
        top
    } else {
        0
    }
}

/// Denials that are the error code (the row's) plus a few fixed fields.
macro_rules! impl_deny {
    ($( $req:ident $( .$with:ident($value:expr) )* ; )*) => {$(
        impl Deny for $req {
            fn deny(&self, _: i16, code: i16) -> (Self::Response, i16) {
                (Self::Response::default().with_error_code(code) $( .$with($value) )*, code)
            }
        }
    )*};
}

impl_deny! {
    HeartbeatRequest;
    LeaveGroupRequest;
    SyncGroupRequest.with_protocol_type(None).with_protocol_name(None);
    AddOffsetsToTxnRequest;
    EndTxnRequest.with_producer_id((-1).into()).with_producer_epoch(-1);
    CreateDelegationTokenRequest
        .with_issue_timestamp_ms(-1)
        .with_expiry_timestamp_ms(-1)
        .with_max_timestamp_ms(-1);
    RenewDelegationTokenRequest.with_expiry_timestamp_ms(-1);
    ExpireDelegationTokenRequest.with_expiry_timestamp_ms(-1);
    DescribeDelegationTokenRequest;
    // The broker's answer for a mechanism it will not do: the client fails
    // with `UnsupportedSaslMechanismException` rather than retrying.
    SaslHandshakeRequest;
    // The broker's answer to failed authentication, with a message (clients
    // show it), no auth bytes and no session lifetime.
    SaslAuthenticateRequest.with_error_message(Some(StrBytes::from_static_str(
        "Authentication denied by proxy policy",
    )));
    // No error code fits exactly (the broker never denies it);
    // CLUSTER_AUTHORIZATION_FAILED with no API keys makes the client give up
    // on the connection instead of downgrading, which UNSUPPORTED_VERSION
    // would.
    ApiVersionsRequest;
    DescribeAclsRequest.with_error_message(None);
    DescribeClientQuotasRequest.with_error_message(None).with_entries(None);
    DescribeUserScramCredentialsRequest.with_error_message(None);
    UpdateFeaturesRequest.with_error_message(None);
    ListGroupsRequest;
    ListTransactionsRequest;
    ListConfigResourcesRequest;
    GetTelemetrySubscriptionsRequest;
    PushTelemetryRequest;
    VoteRequest;
    BeginQuorumEpochRequest;
    EndQuorumEpochRequest;
    DescribeQuorumRequest.with_error_message(None);
    AlterPartitionRequest;
    EnvelopeRequest.with_response_data(None);
    FetchSnapshotRequest;
    BrokerRegistrationRequest;
    BrokerHeartbeatRequest;
    UnregisterBrokerRequest.with_error_message(None);
    AllocateProducerIdsRequest;
    ControllerRegistrationRequest.with_error_message(None);
    AssignReplicasToDirsRequest;
    AddRaftVoterRequest.with_error_message(None);
    RemoveRaftVoterRequest.with_error_message(None);
    UpdateRaftVoterRequest;
}

mod cluster;
mod groups;
mod topics;

#[cfg(test)]
pub(crate) mod tests;
