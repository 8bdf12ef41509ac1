//! HTTP policy core of Portcullis.
//!
//! Sits between the proxy's HTTP adapter (which owns hyper and the sockets)
//! and the compiled policy snapshot (crate `npds`, which owns precedence
//! across rules). This crate knows nothing of xDS: it compiles Envoy
//! `HeaderMatcher`s and Cilium header matches into [`HttpRules`], decides
//! one request against them, normalizes the request path, checks request
//! framing hygiene, keeps what is forwarded equal to what was judged
//! (`forward`), and renders the deny responses.

#![forbid(unsafe_code)]

pub mod deny;
pub mod forward;
pub mod framing;
pub mod hygiene;
pub mod matcher;
pub mod normalize;
pub mod rules;

pub use deny::{deny_response, error_response, error_response_h1, is_grpc, ACCESS_DENIED_BODY};
pub use forward::ForwardError;
pub use framing::{FramingError, FramingScanner};
pub use hygiene::{check_request_head, HygieneError};
pub use matcher::{
    CompiledHeaderMatcher, MatcherError, RequestView, REGEX_MAX_PROGRAM_SIZE, REGEX_SIZE_LIMIT,
};
pub use normalize::{normalize_path, PathError};
pub use rules::{
    HeaderLog, HeaderMatchError, HeaderMatchSpec, HeaderValueSource, HttpRuleSpec, HttpRules,
    MatchAction, MismatchAction, NoSecrets, RequestHead, RuleError, SecretSource, REDACTED,
};
