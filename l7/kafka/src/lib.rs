//! Kafka policy core.
//!
//! - [`frame`]: length-prefixed frames, bounded, read without trusting the
//!   length for allocation.
//! - [`request`]: the request header and body decoded with `kafka-protocol`
//!   for every API key and version it knows, flexible versions included;
//!   only what policy needs is looked at and the original bytes are
//!   forwarded untouched. A large Produce naming one topic can be judged
//!   from its head alone, so that its record batches need not be read.
//! - [`topics`]: the topics a request names (by name or by topic ID), and
//!   the topic IDs a response teaches.
//! - [`rules`]: Cilium's Kafka rules (`role`, `apiKey`, `apiVersion`,
//!   `clientID`, `topic`), validated and matched as proxylib did.
//! - [`deny`]: a well-formed authorization-error response for any request.

pub mod api;
pub mod deny;
pub mod frame;
pub mod request;
pub mod response;
pub mod rules;
pub mod topics;

pub use kafka_protocol;
pub use request::{ParseError, Request};
pub use rules::{KafkaRuleSpec, KafkaRules, RequestView, RuleError};
pub use topics::TopicRef;
