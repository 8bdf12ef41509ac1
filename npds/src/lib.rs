//! The policy side of Portcullis: Cilium's NPDS/NPHDS wire schema
//! ([`proto`]), and the compiled, immutable [`PolicySnapshot`] that the proxy
//! consults on every connection and request.
//!
//! Data flows one way: NetworkPolicy resources (from the agent over xDS, or
//! from the standalone CNP translator) → [`PolicySnapshot::compile`] → an
//! `Arc` swapped in whole by the proxy. A snapshot that fails to compile is
//! rejected with a [`PolicyError`] naming the resource, rule and field; the
//! caller keeps the previous one.

#![forbid(unsafe_code)]

mod convert;
mod dump;
mod error;
mod identity;
pub mod proto;
mod snapshot;
mod sni;
pub mod xds;

pub use convert::{http_rule_spec, kafka_rule_spec};
pub use dump::{EndpointDump, PortDump, RuleDump, SnapshotDump, UnenforceableDump};
pub use error::{PolicyError, Reason};
pub use identity::{AddressError, IdentityTable, WORLD};
pub use snapshot::{
    Direction, EndpointPolicy, GenericRules, L7Kind, L7Rules, PolicySnapshot, PortRules, Remote,
    Rule, RuleVerdict, Sni, Verdict,
};
pub use sni::{SniPattern, SniPatternError};
