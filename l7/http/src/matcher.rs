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
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, Weak};

use regex::bytes::{Regex, RegexBuilder};

/// Upper bound, in bytes, on the compiled program (and on the lazy DFA cache)
/// of every policy regex.
///
/// Envoy bounds RE2 "program size" instead (default 100 units); the `regex`
/// crate measures heap bytes, so this is the closest equivalent. 1 MiB admits
/// any realistic path or header pattern while rejecting pathological ones
/// such as `a{1000}{1000}` at compile time, naming the offending rule.
pub const REGEX_SIZE_LIMIT: usize = 1 << 20;

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
    /// The regex compiled to more than [`REGEX_SIZE_LIMIT`] bytes.
    #[error("regex exceeds size limit ({REGEX_SIZE_LIMIT} bytes)")]
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
    Regex(Arc<Regex>),
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
    /// Compiles one matcher; regexes are bounded by [`REGEX_SIZE_LIMIT`].
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
        self.kind.test(v) != self.invert
    }
}

impl Kind {
    fn test(&self, v: &[u8]) -> bool {
        match self {
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
            Kind::Regex(re) => re.is_match(v),
            Kind::Range { start, end } => parse_i64(v).is_some_and(|n| n >= *start && n < *end),
        }
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
        Some(HeaderMatchSpecifier::SafeRegexMatch(r)) => Kind::Regex(compile_regex(&r.regex)?),
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
        Some(MatchPattern::SafeRegex(r)) => Kind::Regex(compile_regex(&r.regex)?),
        Some(MatchPattern::Custom(_)) => return Err(MatcherError::CustomMatcher),
    })
}

/// Compiles `pattern` with RE2 full-match semantics.
///
/// The pattern is first compiled on its own so that an unbalanced `)` cannot
/// escape the anchoring group (`a)|(.*` would otherwise become an unanchored
/// alternation), and must not use the `x` flag, which RE2 lacks and which
/// would let a comment swallow the anchoring. Patterns are built in ASCII mode so `\d`, `\w`, `\s` and
/// `\b` are ASCII-only like RE2's; a pattern that needs Unicode (`\p{..}`)
/// falls back to Unicode mode. Matching is on raw bytes, so non-UTF-8
/// header values are matched rather than rejected.
pub(crate) fn compile_regex(pattern: &str) -> Result<Arc<Regex>, MatcherError> {
    // The bare pattern must be well formed on its own, so that `a)|(.*`
    // cannot close the anchoring group below. A syntax parse shows that
    // without a second compile; on failure the compiler names the problem.
    let tree = match regex_syntax::ast::parse::Parser::new().parse(pattern) {
        Ok(tree) => tree,
        Err(e) => {
            build_regex(pattern)?;
            return Err(MatcherError::InvalidRegex(e.kind().to_string()));
        }
    };
    if uses_extended_mode(&tree) {
        return Err(MatcherError::ExtendedMode);
    }
    intern(format!("^(?:{pattern})$"))
}

/// Identical patterns compile once. The agent sends the same rules for
/// every endpoint a policy selects, and an update repeats most of the one
/// before it; compiling each copy cost time and memory per endpoint.
/// Entries are weak, so a pattern no snapshot uses any more is freed.
fn intern(anchored: String) -> Result<Arc<Regex>, MatcherError> {
    static INTERNED: LazyLock<Mutex<HashMap<String, Weak<Regex>>>> =
        LazyLock::new(Default::default);
    let mut map = INTERNED.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(re) = map.get(&anchored).and_then(Weak::upgrade) {
        return Ok(re);
    }
    let re = Arc::new(build_regex(&anchored)?);
    // Forget dead entries whenever the map doubles: amortized constant cost,
    // and the map stays within twice the live patterns.
    if map.len() >= 1024 && map.len().is_power_of_two() {
        map.retain(|_, w| w.strong_count() > 0);
    }
    map.insert(anchored, Arc::downgrade(&re));
    Ok(re)
}

/// Whether the pattern mentions the `x` flag anywhere, set or cleared, in a
/// flag directive (`(?x)`) or a flag group (`(?x:...)`). Read from the same
/// AST parser the `regex` crate uses, so escapes and classes such as `\(?x)`
/// or `[(?x)]` are not mistaken for flags.
fn uses_extended_mode(tree: &regex_syntax::ast::Ast) -> bool {
    use regex_syntax::ast::{self, Ast, Flag, GroupKind};

    struct FindX;
    impl ast::Visitor for FindX {
        type Output = ();
        type Err = ();
        fn finish(self) -> Result<(), ()> {
            Ok(())
        }
        fn visit_pre(&mut self, node: &Ast) -> Result<(), ()> {
            let flags = match node {
                Ast::Flags(set) => &set.flags,
                Ast::Group(g) => match &g.kind {
                    GroupKind::NonCapturing(flags) => flags,
                    _ => return Ok(()),
                },
                _ => return Ok(()),
            };
            match flags.flag_state(Flag::IgnoreWhitespace) {
                Some(_) => Err(()),
                None => Ok(()),
            }
        }
    }

    // `visit` walks the AST on the heap, so deep nesting cannot overflow the stack.
    ast::visit(tree, FindX).is_err()
}

fn build_regex(pattern: &str) -> Result<Regex, MatcherError> {
    let build = |unicode: bool| {
        RegexBuilder::new(pattern)
            .unicode(unicode)
            .size_limit(REGEX_SIZE_LIMIT)
            .dfa_size_limit(REGEX_SIZE_LIMIT)
            .build()
    };
    let err = match build(false) {
        Ok(re) => return Ok(re),
        Err(regex::Error::CompiledTooBig(_)) => return Err(MatcherError::RegexTooBig),
        Err(_) => match build(true) {
            Ok(re) => return Ok(re),
            Err(e) => e,
        },
    };
    Err(match err {
        regex::Error::CompiledTooBig(_) => MatcherError::RegexTooBig,
        // The crate's message is a multi-line caret diagram; keep the one
        // line that says what is wrong so it fits in a config error.
        regex::Error::Syntax(s) => MatcherError::InvalidRegex(
            s.lines()
                .find_map(|l| l.strip_prefix("error: "))
                .unwrap_or(s.trim())
                .to_owned(),
        ),
        other => MatcherError::InvalidRegex(other.to_string()),
    })
}

#[cfg(test)]
mod tests;
