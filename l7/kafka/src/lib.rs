//! Kafka policy core: pure, sync code over bytes. The proxy
//! (`proxy/src/kafka.rs`) owns the sockets, reads them as [`frame::Decoder`]
//! asks, judges each [`Request`] with [`KafkaRules`] and forwards it, or
//! answers it with [`deny::deny`]; it passes broker responses through,
//! checking their order and learning topic IDs with [`response`] and
//! [`topics::TopicIds`]. Nothing here does I/O.
//!
//! - [`api`]: one row per API key — Cilium name, error class, `role`
//!   membership, where the request keeps its topics — from which the name
//!   lookups, topic extraction and deny dispatch are generated. A new key
//!   (or a kafka-protocol upgrade) is one row.
//! - [`frame`]: length-prefixed frames found in a buffer, bounded, never
//!   trusting the length for allocation; whole, or a large frame's head.
//! - [`request`]: the request header and body decoded with `kafka-protocol`
//!   for every API key and version it knows, flexible versions included;
//!   only what policy needs is looked at and the original bytes are
//!   forwarded untouched. A large Produce naming one topic can be judged
//!   from its head alone, so that its record batches need not be read.
//! - [`topics`]: the topics a request names (by name or by topic ID), the
//!   topic IDs a response teaches, and the table of those learned.
//! - [`rules`]: Cilium's Kafka rules (`role`, `apiKey`, `apiVersion`,
//!   `clientID`, `topic`), validated and matched as proxylib did.
//! - [`deny`]: a well-formed authorization-error response for any request,
//!   with the error code it carries.
//! - [`response`]: responses made here encoded as frames, a broker's
//!   Metadata response scrubbed for a denied request, correlation checks.

#![forbid(unsafe_code)]

pub mod api;
pub mod deny;
pub mod frame;
mod refs;
pub mod request;
pub mod response;
pub mod rules;
pub mod topics;

pub use kafka_protocol;
pub use request::{ParseError, Request};
pub use rules::{KafkaRuleSpec, KafkaRules, RequestView, RuleError};
pub use topics::TopicRef;
