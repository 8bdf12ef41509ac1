//! Compiled HTTP rules (`HttpNetworkPolicyRules`) and their evaluation.
//!
//! Mirrors cilium-envoy's `PortNetworkPolicyRule::allowed` over its
//! `http_rules` (`cilium/network_policy.cc`):
//!
//! * A rule matches when every Envoy `HeaderMatcher` in `headers` matches
//!   (an empty list matches everything); the rule set allows the request
//!   when any rule allows it.
//! * When no rule has `header_matches`, evaluation stops at the first
//!   matching rule. When any rule has them, every rule is evaluated so that
//!   every matching rule's header actions (add/delete/replace) are applied,
//!   and header mutations of one rule are visible to the rules after it.
//! * Within a matching rule all `header_matches` run even after one fails;
//!   the rule allows only if none failed.
//!
//! See [`HeaderMatchSpec`] for the per-header-match actions.

use std::sync::Arc;

use envoy_types::pb::envoy::config::route::v3::HeaderMatcher;
use http::{HeaderMap, HeaderValue};

use crate::matcher::{normalize_name, CompiledHeaderMatcher, HeaderKey, MatcherError, RequestView};

/// Where a header match takes its value from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeaderValueSource {
    /// Inline value; empty means "presence only".
    Inline(String),
    /// SDS secret name (`value_sds_secret`); resolved at match time.
    Secret(String),
}

/// What a header match does when the header has the expected value (or,
/// for a presence check, is present).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatchAction {
    /// Allow; nothing logged.
    Continue,
    /// Log the value as rejected; the rule fails.
    Fail,
    /// Log the value as rejected and remove the header; the rule continues.
    Delete,
}

/// What a header match does when the header is missing or has another value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MismatchAction {
    /// Log the expected value as missing; the rule fails.
    Fail,
    /// Log the expected value as missing; the rule continues.
    Continue,
    /// Append the expected value and log it as missing; the rule continues.
    Add,
    /// Remove a header that has a wrong value and log that value as
    /// rejected; nothing happens for a presence check or an absent header.
    Delete,
    /// Log a wrong value as rejected, set the header to the expected value
    /// (replacing all values) and log it as missing; the rule continues.
    Replace,
}

/// A Cilium `HeaderMatch`, already decoded from its proto.
///
/// The value is compared with all values of the header joined by `,`, in
/// constant time. An empty value is a presence check. Values backed by a
/// secret are logged as `"[redacted]"`, as are wrong values of such headers.
#[derive(Clone, Debug)]
pub struct HeaderMatchSpec {
    /// Header name (case-insensitive).
    pub name: String,
    /// Expected value.
    pub value: HeaderValueSource,
    /// Action on match.
    pub match_action: MatchAction,
    /// Action on mismatch.
    pub mismatch_action: MismatchAction,
}

/// One `HttpNetworkPolicyRule` as it arrives: Envoy matchers plus header matches.
#[derive(Clone, Debug, Default)]
pub struct HttpRuleSpec {
    /// Envoy header matchers; all must match (empty matches everything).
    pub headers: Vec<HeaderMatcher>,
    /// Cilium header matches, run only when `headers` matched.
    pub header_matches: Vec<HeaderMatchSpec>,
}

/// Why a rule could not be compiled. `Display` names the rule index and field.
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    /// A `headers[header]` Envoy matcher is invalid.
    #[error("http_rules[{rule}].headers[{header}] ({name}): {error}")]
    Header {
        /// Index into `http_rules`.
        rule: usize,
        /// Index into that rule's `headers`.
        header: usize,
        /// The matcher's header name as configured.
        name: String,
        /// What is wrong.
        error: MatcherError,
    },
    /// A `header_matches[index]` entry is invalid.
    #[error("http_rules[{rule}].header_matches[{index}]: {error}")]
    HeaderMatch {
        /// Index into `http_rules`.
        rule: usize,
        /// Index into that rule's `header_matches`.
        index: usize,
        /// What is wrong.
        error: HeaderMatchError,
    },
    /// No rules at all (an empty `http_rules` is not an allow-all here; the
    /// caller must not build an [`HttpRules`] for it).
    #[error("http_rules is empty (at least one rule is required)")]
    Empty,
}

/// Why a [`HeaderMatchSpec`] could not be compiled. Each variant says which
/// part of the spec is at fault, so that a caller can point at its own field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderMatchError {
    /// The name is empty or contains NUL, CR or LF
    /// ([`MatcherError::EmptyName`] or [`MatcherError::InvalidName`]).
    #[error(transparent)]
    Name(MatcherError),
    /// The (lowercased) name is neither an HTTP header name (a token) nor a
    /// pseudo-header or `host`.
    #[error("invalid header name {0:?}")]
    NotAToken(String),
    /// An action would modify a pseudo-header or `host`, which the proxy
    /// reads from the request head and cannot rewrite.
    #[error(
        "{name}: pseudo-header or host cannot be modified (match_action {match_action:?}, mismatch_action {mismatch_action:?})"
    )]
    Immutable {
        /// The lowercased name.
        name: String,
        /// The configured match action.
        match_action: MatchAction,
        /// The configured mismatch action.
        mismatch_action: MismatchAction,
    },
    /// The inline value is written by the mismatch action (add, replace) but
    /// is not a valid header value.
    #[error("{0}: value is not a valid header value")]
    InvalidValue(String),
    /// `value_sds_secret` is set but empty.
    #[error("{0}: empty secret name")]
    EmptySecret(String),
}

/// Resolves `value_sds_secret` names. A missing secret fails closed.
pub trait SecretSource {
    /// The current value of secret `name`, or `None` if it is not (yet) known.
    fn secret(&self, name: &str) -> Option<std::sync::Arc<str>>;
}

/// No secrets at all: every secret-backed match fails closed.
pub struct NoSecrets;
impl SecretSource for NoSecrets {
    fn secret(&self, _name: &str) -> Option<std::sync::Arc<str>> {
        None
    }
}

/// The request as policy sees it. `path` is the normalized path with query.
pub struct RequestHead<'a> {
    /// `:method`.
    pub method: &'a str,
    /// `:path`, normalized (see [`crate::normalize_path`]), with the query.
    pub path: &'a str,
    /// `:authority` / `Host`; empty when the request has none.
    pub authority: &'a str,
    /// Request headers; header matches may add, replace or remove entries.
    pub headers: &'a mut HeaderMap,
}

impl RequestHead<'_> {
    /// A read-only view for header matchers.
    pub fn view(&self) -> RequestView<'_> {
        RequestView {
            method: self.method,
            path: self.path,
            authority: self.authority,
            headers: self.headers,
        }
    }
}

/// Headers that header matches found missing or rejected (for the access log).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct HeaderLog {
    /// `(name, value)` expected but missing (or added/replaced).
    pub missing: Vec<(String, String)>,
    /// `(name, value)` present but rejected (or deleted/replaced).
    pub rejected: Vec<(String, String)>,
}

/// How a secret-backed value (and any wrong value of its header) is logged.
pub const REDACTED: &str = "[redacted]";

/// Compiled `HttpNetworkPolicyRules`: the `http_rules` of one port rule.
#[derive(Debug)]
pub struct HttpRules {
    rules: Vec<CompiledRule>,
    has_header_matches: bool,
}

#[derive(Debug)]
struct CompiledRule {
    headers: Vec<CompiledHeaderMatcher>,
    header_matches: Vec<CompiledHeaderMatch>,
}

#[derive(Debug)]
struct CompiledHeaderMatch {
    /// Lowercased, as logged by cilium-envoy (`LowerCaseString`).
    name: String,
    key: HeaderKey,
    value: CompiledValue,
    match_action: MatchAction,
    mismatch_action: MismatchAction,
}

#[derive(Debug)]
enum CompiledValue {
    /// `header` is precomputed when an action may write the value.
    Inline {
        text: String,
        header: Option<HeaderValue>,
    },
    Secret(String),
}

impl HttpRules {
    /// Compiles rule specs; errors name the rule, field index and header.
    pub fn compile(specs: &[HttpRuleSpec]) -> Result<Self, RuleError> {
        if specs.is_empty() {
            return Err(RuleError::Empty);
        }
        let mut rules = Vec::with_capacity(specs.len());
        for (r, spec) in specs.iter().enumerate() {
            let headers = spec
                .headers
                .iter()
                .enumerate()
                .map(|(h, m)| {
                    CompiledHeaderMatcher::compile(m).map_err(|error| RuleError::Header {
                        rule: r,
                        header: h,
                        name: m.name.clone(),
                        error,
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let header_matches = spec
                .header_matches
                .iter()
                .enumerate()
                .map(|(i, hm)| {
                    CompiledHeaderMatch::compile(hm).map_err(|error| RuleError::HeaderMatch {
                        rule: r,
                        index: i,
                        error,
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            rules.push(CompiledRule {
                headers,
                header_matches,
            });
        }
        let has_header_matches = rules.iter().any(|r| !r.header_matches.is_empty());
        Ok(HttpRules {
            rules,
            has_header_matches,
        })
    }

    /// Whether any rule has header matches (which may mutate the request and
    /// disable first-match short-circuiting, here and across port rules).
    pub fn has_header_matches(&self) -> bool {
        self.has_header_matches
    }

    /// Decides the request: true when any rule allows it. Header matches of
    /// every matching rule are applied to `req.headers` and logged to `log`.
    pub fn matches(
        &self,
        req: &mut RequestHead<'_>,
        secrets: &dyn SecretSource,
        log: &mut HeaderLog,
    ) -> bool {
        if !self.has_header_matches {
            let view = req.view();
            return self.rules.iter().any(|r| r.headers_match(&view));
        }
        let mut allowed = false;
        for rule in &self.rules {
            // Re-borrow per rule: earlier rules may have mutated the headers.
            if rule.headers_match(&req.view()) && rule.apply_header_matches(req, secrets, log) {
                allowed = true;
            }
        }
        allowed
    }
}

impl CompiledRule {
    fn headers_match(&self, view: &RequestView<'_>) -> bool {
        self.headers.iter().all(|m| m.matches(view))
    }

    fn apply_header_matches(
        &self,
        req: &mut RequestHead<'_>,
        secrets: &dyn SecretSource,
        log: &mut HeaderLog,
    ) -> bool {
        // No short-circuit: every header match's action must run.
        let mut accepted = true;
        for hm in &self.header_matches {
            if !hm.apply(req, secrets, log) {
                accepted = false;
            }
        }
        accepted
    }
}

impl CompiledHeaderMatch {
    fn compile(spec: &HeaderMatchSpec) -> Result<Self, HeaderMatchError> {
        let name = normalize_name(&spec.name).map_err(HeaderMatchError::Name)?;
        let key = HeaderKey::resolve(&name);
        let mutates = spec.match_action == MatchAction::Delete
            || matches!(
                spec.mismatch_action,
                MismatchAction::Add | MismatchAction::Delete | MismatchAction::Replace
            );
        match &key {
            HeaderKey::Header(_) => {}
            _ if !name.starts_with(':') && name != "host" => {
                return Err(HeaderMatchError::NotAToken(name));
            }
            // The request head's pseudo-headers are borrowed, not owned, so
            // they cannot be rewritten; refuse rather than silently ignore.
            _ if mutates => {
                return Err(HeaderMatchError::Immutable {
                    name,
                    match_action: spec.match_action,
                    mismatch_action: spec.mismatch_action,
                });
            }
            _ => {}
        }
        let writes_value = matches!(
            spec.mismatch_action,
            MismatchAction::Add | MismatchAction::Replace
        );
        let value = match &spec.value {
            HeaderValueSource::Inline(text) => {
                let header = if writes_value {
                    Some(
                        HeaderValue::from_str(text)
                            .map_err(|_| HeaderMatchError::InvalidValue(name.clone()))?,
                    )
                } else {
                    None
                };
                CompiledValue::Inline {
                    text: text.clone(),
                    header,
                }
            }
            HeaderValueSource::Secret(secret) if secret.is_empty() => {
                return Err(HeaderMatchError::EmptySecret(name));
            }
            HeaderValueSource::Secret(secret) => CompiledValue::Secret(secret.clone()),
        };
        Ok(CompiledHeaderMatch {
            name,
            key,
            value,
            match_action: spec.match_action,
            mismatch_action: spec.mismatch_action,
        })
    }

    fn is_secret(&self) -> bool {
        matches!(self.value, CompiledValue::Secret(_))
    }

    fn log_text(&self, value: &[u8]) -> String {
        if self.is_secret() {
            REDACTED.to_owned()
        } else {
            String::from_utf8_lossy(value).into_owned()
        }
    }

    fn log_missing(&self, log: &mut HeaderLog, value: &[u8]) {
        log.missing.push((self.name.clone(), self.log_text(value)));
    }

    fn log_rejected(&self, log: &mut HeaderLog, value: &[u8]) {
        log.rejected.push((self.name.clone(), self.log_text(value)));
    }

    /// Returns whether the rule may continue (cilium's `HeaderMatch::allowed`).
    fn apply(
        &self,
        req: &mut RequestHead<'_>,
        secrets: &dyn SecretSource,
        log: &mut HeaderLog,
    ) -> bool {
        let secret: Option<Arc<str>>;
        let expected: &[u8] = match &self.value {
            CompiledValue::Inline { text, .. } => text.as_bytes(),
            CompiledValue::Secret(name) => {
                // An unknown or empty secret fails closed. (cilium-envoy would
                // turn an empty secret into a presence check; a secret that
                // has not arrived must never widen access.)
                secret = secrets.secret(name).filter(|s| !s.is_empty());
                match &secret {
                    Some(s) => s.as_bytes(),
                    None => {
                        self.log_missing(log, b"");
                        return false;
                    }
                }
            }
        };
        let presence_only = expected.is_empty();

        let (present, matched, wrong_value) = {
            let view = req.view();
            let current = self.key.lookup(&view);
            let present = current.is_some();
            let matched = if presence_only {
                present
            } else {
                current.as_deref().is_some_and(|v| ct_eq(v, expected))
            };
            // Only these two actions log the wrong value; don't copy it otherwise.
            let wrong_value = match (&current, matched, self.mismatch_action) {
                (Some(v), false, MismatchAction::Delete | MismatchAction::Replace) => {
                    Some(self.log_text(v))
                }
                _ => None,
            };
            (present, matched, wrong_value)
        };

        if matched {
            return match self.match_action {
                MatchAction::Continue => true,
                MatchAction::Fail => {
                    self.log_rejected(log, expected);
                    false
                }
                MatchAction::Delete => {
                    self.log_rejected(log, expected);
                    self.remove(req)
                }
            };
        }
        match self.mismatch_action {
            MismatchAction::Fail => {
                self.log_missing(log, expected);
                false
            }
            MismatchAction::Continue => {
                self.log_missing(log, expected);
                true
            }
            MismatchAction::Add => {
                let (Some(name), Some(value)) =
                    (self.key.header_name(), self.write_value(expected))
                else {
                    self.log_missing(log, expected);
                    return false;
                };
                req.headers.append(name.clone(), value);
                self.log_missing(log, expected);
                true
            }
            MismatchAction::Delete => {
                if presence_only || !present {
                    return true;
                }
                let ok = self.remove(req);
                if let Some(v) = wrong_value {
                    log.rejected.push((self.name.clone(), v));
                }
                ok
            }
            MismatchAction::Replace => {
                let (Some(name), Some(value)) =
                    (self.key.header_name(), self.write_value(expected))
                else {
                    self.log_missing(log, expected);
                    return false;
                };
                if let Some(v) = wrong_value {
                    log.rejected.push((self.name.clone(), v));
                }
                req.headers.insert(name.clone(), value);
                self.log_missing(log, expected);
                true
            }
        }
    }

    /// The value to write; `None` (fail closed) for a secret that is not a
    /// valid header value.
    fn write_value(&self, expected: &[u8]) -> Option<HeaderValue> {
        match &self.value {
            CompiledValue::Inline { header, .. } => header.clone(),
            CompiledValue::Secret(_) => HeaderValue::from_bytes(expected).ok(),
        }
    }

    fn remove(&self, req: &mut RequestHead<'_>) -> bool {
        match self.key.header_name() {
            Some(name) => {
                // Drops every value of the name, like Envoy's `headers.remove`.
                req.headers.remove(name);
                true
            }
            // Unreachable: compile() refuses mutating actions on pseudo-headers.
            None => false,
        }
    }
}

/// Equality that does not stop at the first differing byte, so response
/// timing does not reveal how much of a secret a guess got right (cilium-envoy
/// uses `CRYPTO_memcmp`). Lengths are compared first, as there.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut diff = 0u8;
    for (x, y) in a.iter().zip(b) {
        // black_box keeps the optimizer from turning this into an early exit.
        diff = std::hint::black_box(diff | (x ^ y));
    }
    diff == 0
}

#[cfg(test)]
mod tests;
