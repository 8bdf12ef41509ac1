//! A well-formed authorization-error response for any request.

use kafka_protocol::messages::{RequestKind, ResponseKind};

/// The response a denied `body` (at `version`) gets: TOPIC_AUTHORIZATION_FAILED
/// on every topic or partition the response carries, and the fitting
/// authorization error elsewhere.
pub fn deny_response(body: &RequestKind, version: i16) -> ResponseKind {
    let _ = (body, version);
    todo!()
}
