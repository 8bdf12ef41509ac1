//! Envoy `HeaderMatcher` (route v3) compiled into a request-time matcher.
//!
//! Semantics follow Envoy's `Http::HeaderUtility` (`header_utility.cc`), which
//! cilium-envoy uses verbatim for `HttpNetworkPolicyRule.headers`:
//!
//! * All values of a repeated header are joined with `,` before matching
//!   (`getAllOfHeaderAsString`); a single value is matched in place without
//!   allocating.
//! * A missing header never matches, whatever `invert_match` says, unless
//!   `treat_missing_header_as_empty` is set, in which case the value is `""`.
//!   `present_match` is the exception: it matches on absence when
//!   `present_match: false` (or when inverted), and with
//!   `treat_missing_header_as_empty` a missing header counts as present.
//! * No specifier at all means `present_match: true`.
//! * The deprecated `exact_match: ""` matches any value (Envoy quirk), while
//!   `string_match.exact: ""` matches only the empty value.
//! * `ignore_case` is ASCII-only and ignored by `safe_regex`, as in Envoy.
//! * Regexes use full-match semantics (RE2 `FullMatch`).
//!
//! Pseudo-headers come from the request head, not the header map: `:path`
//! (normalized path with query), `:method` and `:authority`. Because Envoy
//! folds the HTTP/1 `Host` header into `:authority`, the name `host` reads
//! the authority too, so a policy can never see a `Host` that disagrees with
//! the authority the proxy routes on. `:scheme`, other pseudo-headers and
//! names that are not valid HTTP header names are never present (the proxy
//! does not carry a scheme in [`RequestView`]).

use std::borrow::Cow;

use envoy_types::pb::envoy::config::route::v3::header_matcher::HeaderMatchSpecifier;
use envoy_types::pb::envoy::config::route::v3::HeaderMatcher;
use envoy_types::pb::envoy::r#type::matcher::v3::string_matcher::MatchPattern;
use envoy_types::pb::envoy::r#type::matcher::v3::StringMatcher;
use http::{HeaderMap, HeaderName};
use std::sync::Arc;

use pattern::PolicyRegex;

/// Upper bound on a policy regex's program size, counted when the policy
/// arrives: one unit per literal byte, per byte range of a class (per UTF-8
/// sequence in Unicode mode), per alternative and per repetition, with
/// bounded repetitions counted as many times as they may repeat.
///
/// Envoy bounds RE2's program size the same way (instructions, not bytes).
/// 32,768 (about the 1 MiB the built program would take) admits any
/// realistic path or header pattern while rejecting pathological ones such
/// as `a{1000}{1000}` before anything is built, naming the offending rule.
pub const REGEX_MAX_PROGRAM_SIZE: usize = 1 << 15;

/// Upper bound, in bytes, on the compiled program of every policy regex when
/// it is built on first use. Patterns within [`REGEX_MAX_PROGRAM_SIZE`] stay
/// below it; it is a backstop.
pub const REGEX_SIZE_LIMIT: usize = 8 << 20;

/// The parts of a request that header matchers read.
#[derive(Clone, Copy, Debug)]
pub struct RequestView<'a> {
    /// `:method`.
    pub method: &'a str,
    /// `:path`: the normalized path including the query.
    pub path: &'a str,
    /// `:authority` (HTTP/1 `Host`); empty means absent.
    pub authority: &'a str,
    /// Regular (non-pseudo) headers.
    pub headers: &'a HeaderMap,
}

/// Why an Envoy `HeaderMatcher` could not be compiled.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum MatcherError {
    /// Envoy's proto validation requires a non-empty name.
    #[error("header name is empty")]
    EmptyName,
    /// Envoy's proto validation rejects NUL, CR and LF in names.
    #[error("header name contains NUL, CR or LF")]
    InvalidName,
    /// The regex's program is larger than [`REGEX_MAX_PROGRAM_SIZE`].
    #[error("regex exceeds the program size limit ({REGEX_MAX_PROGRAM_SIZE})")]
    RegexTooBig,
    /// The regex is not valid syntax.
    #[error("invalid regex: {0}")]
    InvalidRegex(String),
    /// The regex sets the `x` flag (`(?x)`, `(?x:...)`, `(?-x)`), which RE2
    /// (and so Envoy) rejects. Honouring it would also let a `#` comment
    /// swallow the `)$` that anchors the pattern.
    #[error("the x flag is not supported: RE2 has no extended mode")]
    ExtendedMode,
    /// Envoy's proto validation forbids empty prefix/suffix/contains.
    #[error("{0} must not be empty")]
    EmptyPattern(&'static str),
    /// A `string_match` without any pattern set.
    #[error("string_match has no pattern")]
    MissingPattern,
    /// `string_match.custom` extensions are not supported.
    #[error("string_match custom extensions are not supported")]
    CustomMatcher,
    /// `range_match` with no range message.
    #[error("range_match has no range")]
    MissingRange,
    /// `safe_regex_match` with no regex message.
    #[error("safe_regex_match has no regex")]
    MissingRegex,
}

/// Where a header's value comes from for a given name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum HeaderKey {
    Path,
    Method,
    Authority,
    /// Names that can never be present (`:scheme`, unknown pseudo-headers,
    /// names the `http` crate cannot represent).
    Never,
    Header(HeaderName),
}

impl HeaderKey {
    /// `lower` must already be lowercase (Envoy's `LowerCaseString`).
    pub(crate) fn resolve(lower: &str) -> HeaderKey {
        match lower {
            ":path" => HeaderKey::Path,
            ":method" => HeaderKey::Method,
            ":authority" | "host" => HeaderKey::Authority,
            _ if lower.starts_with(':') => HeaderKey::Never,
            _ => HeaderName::from_bytes(lower.as_bytes())
                .map(HeaderKey::Header)
                .unwrap_or(HeaderKey::Never),
        }
    }

    /// Whether this key is backed by the header map (and so can be mutated).
    pub(crate) fn header_name(&self) -> Option<&HeaderName> {
        match self {
            HeaderKey::Header(name) => Some(name),
            _ => None,
        }
    }

    /// All values of the header joined with `,`; borrowed unless the header
    /// repeats, which keeps the common case allocation-free.
    pub(crate) fn lookup<'v>(&self, view: &RequestView<'v>) -> Option<Cow<'v, [u8]>> {
        match self {
            HeaderKey::Path => Some(Cow::Borrowed(view.path.as_bytes())),
            HeaderKey::Method => Some(Cow::Borrowed(view.method.as_bytes())),
            HeaderKey::Authority if view.authority.is_empty() => None,
            HeaderKey::Authority => Some(Cow::Borrowed(view.authority.as_bytes())),
            HeaderKey::Never => None,
            HeaderKey::Header(name) => {
                let mut values = view.headers.get_all(name).iter();
                let first = values.next()?;
                let Some(second) = values.next() else {
                    return Some(Cow::Borrowed(first.as_bytes()));
                };
                let mut joined = Vec::with_capacity(first.len() + second.len() + 16);
                joined.extend_from_slice(first.as_bytes());
                for v in std::iter::once(second).chain(values) {
                    joined.push(b',');
                    joined.extend_from_slice(v.as_bytes());
                }
                Some(Cow::Owned(joined))
            }
        }
    }
}

/// Lowercases and validates a configured header name the way Envoy's proto
/// validation and `LowerCaseString` do.
pub(crate) fn normalize_name(name: &str) -> Result<String, MatcherError> {
    if name.is_empty() {
        return Err(MatcherError::EmptyName);
    }
    if name.bytes().any(|b| matches!(b, 0 | b'\r' | b'\n')) {
        return Err(MatcherError::InvalidName);
    }
    Ok(name.to_ascii_lowercase())
}

#[derive(Debug)]
enum Kind {
    Present(bool),
    /// Deprecated `exact_match: ""`: any value of a present header.
    AnyValue,
    Exact {
        value: Box<[u8]>,
        ignore_case: bool,
    },
    Prefix {
        value: Box<[u8]>,
        ignore_case: bool,
    },
    Suffix {
        value: Box<[u8]>,
        ignore_case: bool,
    },
    Contains {
        value: Box<[u8]>,
        ignore_case: bool,
    },
    Regex(Arc<PolicyRegex>),
    /// Half-open `[start, end)`.
    Range {
        start: i64,
        end: i64,
    },
}

/// A compiled Envoy `HeaderMatcher`.
#[derive(Debug)]
pub struct CompiledHeaderMatcher {
    name: String,
    key: HeaderKey,
    kind: Kind,
    invert: bool,
    treat_missing_as_empty: bool,
}

impl CompiledHeaderMatcher {
    /// Compiles one matcher; regexes are validated now and built on first
    /// use, bounded by [`REGEX_MAX_PROGRAM_SIZE`].
    pub fn compile(m: &HeaderMatcher) -> Result<Self, MatcherError> {
        let name = normalize_name(&m.name)?;
        let key = HeaderKey::resolve(&name);
        Ok(CompiledHeaderMatcher {
            name,
            key,
            kind: compile_kind(m.header_match_specifier.as_ref())?,
            invert: m.invert_match,
            treat_missing_as_empty: m.treat_missing_header_as_empty,
        })
    }

    /// The lowercased header name this matcher reads.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the request satisfies this matcher.
    pub fn matches(&self, view: &RequestView<'_>) -> bool {
        let value = self.key.lookup(view);
        if let Kind::Present(want) = self.kind {
            let present = value.is_some() || self.treat_missing_as_empty;
            return (present == want) != self.invert;
        }
        let v: &[u8] = match &value {
            Some(v) => v,
            None if self.treat_missing_as_empty => b"",
            // Envoy: a missing header fails every value matcher, inverted or not.
            None => return false,
        };
        match self.kind.test(v) {
            Some(matched) => matched != self.invert,
            // A regex that could not be built matches nothing, inverted or
            // not: the rule fails closed.
            None => false,
        }
    }
}

impl Kind {
    /// `None` when the answer is unknown (a regex that failed to build).
    fn test(&self, v: &[u8]) -> Option<bool> {
        Some(match self {
            Kind::Present(p) => *p,
            Kind::AnyValue => true,
            Kind::Exact { value, ignore_case } => {
                if *ignore_case {
                    v.eq_ignore_ascii_case(value)
                } else {
                    v == &value[..]
                }
            }
            Kind::Prefix { value, ignore_case } => v
                .get(..value.len())
                .is_some_and(|h| bytes_eq(h, value, *ignore_case)),
            Kind::Suffix { value, ignore_case } => v
                .len()
                .checked_sub(value.len())
                .is_some_and(|at| bytes_eq(&v[at..], value, *ignore_case)),
            Kind::Contains { value, ignore_case } => contains(v, value, *ignore_case),
            Kind::Regex(re) => return re.is_match(v),
            Kind::Range { start, end } => parse_i64(v).is_some_and(|n| n >= *start && n < *end),
        })
    }
}

fn bytes_eq(a: &[u8], b: &[u8], ignore_case: bool) -> bool {
    if ignore_case {
        a.eq_ignore_ascii_case(b)
    } else {
        a == b
    }
}

fn contains(hay: &[u8], needle: &[u8], ignore_case: bool) -> bool {
    // `windows(0)` panics; an empty needle is contained everywhere anyway.
    if needle.is_empty() {
        return true;
    }
    hay.windows(needle.len())
        .any(|w| bytes_eq(w, needle, ignore_case))
}

/// `absl::SimpleAtoi` for int64: surrounding ASCII whitespace is ignored, an
/// optional sign is accepted, anything else (including overflow) fails.
fn parse_i64(v: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(v).ok()?;
    let s = s.trim_matches(|c: char| matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c'));
    s.parse().ok()
}

#[allow(deprecated)] // the deprecated oneof arms are still sent by Cilium
fn compile_kind(spec: Option<&HeaderMatchSpecifier>) -> Result<Kind, MatcherError> {
    let literal = |s: &str, field: &'static str| -> Result<Box<[u8]>, MatcherError> {
        if s.is_empty() {
            return Err(MatcherError::EmptyPattern(field));
        }
        Ok(s.as_bytes().into())
    };
    Ok(match spec {
        None => Kind::Present(true),
        Some(HeaderMatchSpecifier::PresentMatch(p)) => Kind::Present(*p),
        Some(HeaderMatchSpecifier::ExactMatch(s)) if s.is_empty() => Kind::AnyValue,
        Some(HeaderMatchSpecifier::ExactMatch(s)) => Kind::Exact {
            value: s.as_bytes().into(),
            ignore_case: false,
        },
        Some(HeaderMatchSpecifier::PrefixMatch(s)) => Kind::Prefix {
            value: literal(s, "prefix_match")?,
            ignore_case: false,
        },
        Some(HeaderMatchSpecifier::SuffixMatch(s)) => Kind::Suffix {
            value: literal(s, "suffix_match")?,
            ignore_case: false,
        },
        Some(HeaderMatchSpecifier::ContainsMatch(s)) => Kind::Contains {
            value: literal(s, "contains_match")?,
            ignore_case: false,
        },
        Some(HeaderMatchSpecifier::SafeRegexMatch(r)) => Kind::Regex(pattern::compile(&r.regex)?),
        Some(HeaderMatchSpecifier::RangeMatch(r)) => Kind::Range {
            start: r.start,
            end: r.end,
        },
        Some(HeaderMatchSpecifier::StringMatch(sm)) => compile_string_matcher(sm)?,
    })
}

fn compile_string_matcher(sm: &StringMatcher) -> Result<Kind, MatcherError> {
    let ignore_case = sm.ignore_case;
    let literal = |s: &str, field: &'static str| -> Result<Box<[u8]>, MatcherError> {
        if s.is_empty() {
            return Err(MatcherError::EmptyPattern(field));
        }
        Ok(s.as_bytes().into())
    };
    Ok(match sm.match_pattern.as_ref() {
        None => return Err(MatcherError::MissingPattern),
        Some(MatchPattern::Exact(s)) => Kind::Exact {
            value: s.as_bytes().into(),
            ignore_case,
        },
        Some(MatchPattern::Prefix(s)) => Kind::Prefix {
            value: literal(s, "string_match.prefix")?,
            ignore_case,
        },
        Some(MatchPattern::Suffix(s)) => Kind::Suffix {
            value: literal(s, "string_match.suffix")?,
            ignore_case,
        },
        Some(MatchPattern::Contains(s)) => Kind::Contains {
            value: literal(s, "string_match.contains")?,
            ignore_case,
        },
        Some(MatchPattern::SafeRegex(r)) => Kind::Regex(pattern::compile(&r.regex)?),
        Some(MatchPattern::Custom(_)) => return Err(MatcherError::CustomMatcher),
    })
}

mod pattern;

#[cfg(test)]
mod tests;
