//! The policy compiler: Cilium's NPDS/NPHDS messages ([`proto`], generated
//! in `cilium-api`) in, the compiled, immutable [`PolicySnapshot`] and
//! [`IdentityTable`] that the proxy consults on every connection and request
//! out. Pure: no I/O, no runtime, no transport; how the resources arrive
//! (xDS from the agent, in `portcullis-xds`, or the standalone CNP
//! translator) is not its business.
//!
//! Data flows one way: NetworkPolicy resources → [`PolicySnapshot::compile`]
//! → an `Arc` swapped in whole by the proxy. A snapshot that fails to compile
//! is rejected with a [`PolicyError`] naming the resource, rule and field; the
//! caller keeps the previous one.

#![forbid(unsafe_code)]

mod convert;
mod dump;
mod error;
mod identity;
pub mod proto;
mod snapshot;
mod sni;

pub use convert::{http_rule_spec, kafka_rule_spec};
pub use dump::{EndpointDump, PortDump, RuleDump, SnapshotDump, UnenforceableDump};
pub use error::{PolicyError, Reason};
pub use identity::{AddressError, IdentityTable, WORLD};
pub use snapshot::{
    Direction, EndpointPolicy, GenericRules, L7Kind, L7Rules, PolicySnapshot, PortRules, Remote,
    Rule, RuleVerdict, Sni, Verdict,
};
pub use sni::{SniPattern, SniPatternError};
