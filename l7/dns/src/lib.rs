//! DNS policy core (shared/spec section 4: Cilium's DNS proxy).
//!
//! - [`pattern`]: `matchName` / `matchPattern` rules compiled as the agent
//!   compiles them (one anchored regex per rule set).
//! - [`message`]: the judged name of a query, and the replies Portcullis
//!   makes itself (REFUSED, NXDOMAIN, SERVFAIL, FORMERR), with hickory-proto.
//! - [`harvest`]: the addresses an allowed answer teaches the FQDN cache,
//!   along the CNAME chain, with the chain's TTL.
//! - [`cache`]: the FQDN cache those answers fill, bounded, with TTL expiry,
//!   and the `toFQDNs` selector identities its addresses carry.
//! - [`proto`]: the standalone DNS proxy's messages (generated in
//!   `cilium-api`, which also has the `FQDNData` client and server) and the
//!   address encodings they use.

pub mod cache;
pub mod harvest;
pub mod message;
pub mod pattern;
pub mod proto;

pub use cache::{FqdnCache, Limits as CacheLimits, Selectors};
pub use harvest::{harvest, Harvest, HarvestError};
pub use message::{Query, QueryError, Rcode};
pub use pattern::{DnsRules, DnsSelector, PatternError};
