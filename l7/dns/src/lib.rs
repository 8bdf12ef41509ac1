//! DNS policy core (shared/spec section 4: Cilium's DNS proxy).
//!
//! Pure protocol logic, no sockets or runtime: the proxy (`proxy/src/dns`)
//! receives and forwards queries, follows the agent, and calls in here to
//! decide and to learn.
//!
//! - [`policy`]: the decide core. A `standalonednsproxy.PolicyState` (from
//!   the agent, or made from the policy files) compiled into lookup tables
//!   ([`CompiledDnsPolicy`]), and each query judged into a [`DnsVerdict`]:
//!   the parties as policy sees them, and allowed by which entry or denied
//!   why. Server addresses' identities come from a table the caller
//!   supplies ([`PrefixIdentities`]), so npds stays out of this crate.
//! - [`pattern`]: `matchName` / `matchPattern` rules compiled as the agent
//!   compiles them (one anchored regex per rule set).
//! - [`message`]: the judged name of a query, and the replies Portcullis
//!   makes itself (REFUSED, NXDOMAIN, SERVFAIL, FORMERR), with hickory-proto.
//! - [`harvest`](mod@harvest): the addresses an allowed answer teaches the FQDN cache,
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
pub mod policy;
pub mod proto;

pub use cache::{FqdnCache, Limits as CacheLimits, Selectors};
pub use harvest::{harvest, Harvest, HarvestError};
pub use message::{Query, QueryError, Rcode};
pub use pattern::{DnsRules, DnsSelector, PatternError};
pub use policy::{
    CompiledDnsPolicy, Decision, DenyReason, DnsPolicyError, DnsVerdict, EndpointRef, Parties,
    PrefixIdentities,
};
