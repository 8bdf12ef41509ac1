//! The topics a request names, and the topic IDs a response teaches.

use kafka_protocol::messages::{RequestKind, ResponseKind};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

/// A topic as a request names it: by name, or (newer versions of Fetch and
/// others) by topic ID.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TopicRef {
    Name(StrBytes),
    Id(Uuid),
}

/// Every topic `body` names, in request order, duplicates included.
pub fn request_topics(body: &RequestKind) -> Vec<TopicRef> {
    let _ = body;
    todo!()
}

/// The (topic ID, name) pairs a response carries.
pub fn response_topic_ids(body: &ResponseKind) -> Vec<(Uuid, StrBytes)> {
    let _ = body;
    todo!()
}
