//! HTTP rules on the wire, as the agent's `envoy_l7_rules_translator.go`
//! builds them: `path`/`method`/`host` become `safe_regex` string matchers
//! on `:path`/`:method`/`:authority`; `headers` entries become presence or
//! exact matchers; `headerMatches` become exact matchers (no `mismatch`) or
//! Cilium `HeaderMatch`es (with `mismatch`, or a secret). Header matchers
//! are sorted; `headerMatches` keep their order.
//!
//! Every rule is also compiled here with the proxy's compiler
//! ([`check_http_rule`]), which is the one judge of what an HTTP rule may
//! contain (regex syntax, size and flags, header names and values, actions).

use std::cmp::Ordering;

use envoy_types::pb::envoy::config::route::v3::header_matcher::HeaderMatchSpecifier;
use envoy_types::pb::envoy::config::route::v3::HeaderMatcher;
use envoy_types::pb::envoy::r#type::matcher::v3::string_matcher::MatchPattern;
use envoy_types::pb::envoy::r#type::matcher::v3::{RegexMatcher, StringMatcher};
use l7_http::{HeaderMatchError, MatcherError, RuleError};
use npds::proto::header_match::MismatchAction;
use npds::proto::{HeaderMatch, HttpNetworkPolicyRule, HttpNetworkPolicyRules};

use crate::error::{index, join, Fault};
use crate::spec::{HttpRule, Mismatch};

fn string_matcher(name: &str, pattern: MatchPattern) -> HeaderMatcher {
    HeaderMatcher {
        name: name.to_string(),
        header_match_specifier: Some(HeaderMatchSpecifier::StringMatch(StringMatcher {
            match_pattern: Some(pattern),
            ..Default::default()
        })),
        ..Default::default()
    }
}

fn regex(name: &str, re: &str) -> HeaderMatcher {
    string_matcher(
        name,
        MatchPattern::SafeRegex(RegexMatcher {
            regex: re.to_string(),
            ..Default::default()
        }),
    )
}

fn exact(name: &str, value: &str) -> HeaderMatcher {
    string_matcher(name, MatchPattern::Exact(value.to_string()))
}

fn present(name: &str) -> HeaderMatcher {
    HeaderMatcher {
        name: name.to_string(),
        header_match_specifier: Some(HeaderMatchSpecifier::PresentMatch(true)),
        ..Default::default()
    }
}

/// The CNP field a wire element was translated from, so that a compile error
/// can point back at it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    Path,
    Method,
    Host,
    /// `headers[i]`.
    Header(usize),
    /// `headerMatches[i]`, sent as an Envoy `HeaderMatcher`.
    HeaderMatch(usize),
}

/// A rule on the wire, with where each of its elements came from.
struct Translated {
    rule: HttpNetworkPolicyRule,
    /// One per `rule.headers` entry.
    header_sources: Vec<Source>,
    /// One per `rule.header_matches` entry: the `headerMatches` index.
    header_match_sources: Vec<usize>,
}

fn translate(h: &HttpRule) -> Translated {
    let mut headers = Vec::new();
    if !h.path.is_empty() {
        headers.push((regex(":path", &h.path), Source::Path));
    }
    if !h.method.is_empty() {
        headers.push((regex(":method", &h.method), Source::Method));
    }
    if !h.host.is_empty() {
        headers.push((regex(":authority", &h.host), Source::Host));
    }
    for (i, hdr) in h.headers.iter().enumerate() {
        // "Name: value" (split at the first space) or a bare name.
        let m = match hdr.split_once(' ') {
            Some((key, value)) => exact(key.trim_end_matches(':'), value),
            None => present(hdr),
        };
        headers.push((m, Source::Header(i)));
    }
    let mut header_matches = Vec::new();
    let mut header_match_sources = Vec::new();
    for (i, m) in h.header_matches.iter().enumerate() {
        let action = match m.mismatch {
            Mismatch::Fail => MismatchAction::FailOnMismatch,
            Mismatch::Log => MismatchAction::ContinueOnMismatch,
            Mismatch::Add => MismatchAction::AddOnMismatch,
            Mismatch::Delete => MismatchAction::DeleteOnMismatch,
            Mismatch::Replace => MismatchAction::ReplaceOnMismatch,
        };
        let wire = match (&m.sds_secret, m.value.is_empty(), m.mismatch) {
            (Some(secret), _, _) => HeaderMatch {
                name: m.name.clone(),
                mismatch_action: action as i32,
                value_sds_secret: secret.clone(),
                ..Default::default()
            },
            (None, false, Mismatch::Fail) => {
                headers.push((exact(&m.name, &m.value), Source::HeaderMatch(i)));
                continue;
            }
            (None, true, Mismatch::Fail) => {
                headers.push((present(&m.name), Source::HeaderMatch(i)));
                continue;
            }
            (None, _, _) => HeaderMatch {
                name: m.name.clone(),
                value: m.value.clone(),
                mismatch_action: action as i32,
                ..Default::default()
            },
        };
        header_matches.push(wire);
        header_match_sources.push(i);
    }
    // Stable, so equal matchers keep their order (and their sources).
    headers.sort_by(|a, b| cmp_header(&a.0, &b.0));
    let (headers, header_sources) = headers.into_iter().unzip();
    Translated {
        rule: HttpNetworkPolicyRule {
            headers,
            header_matches,
        },
        header_sources,
        header_match_sources,
    }
}

/// One `rules.http` entry on the wire.
pub(crate) fn http_rule(h: &HttpRule) -> HttpNetworkPolicyRule {
    translate(h).rule
}

/// Compiles the wire form of one `rules.http` entry (at `path`) with the
/// proxy's own compiler, exactly as `npds` will when the policy arrives, so
/// that the translator never emits a rule the proxy refuses. A failure is
/// reported at the CNP field it came from.
pub(crate) fn check_http_rule(h: &HttpRule, path: &str) -> Result<(), Fault> {
    let t = translate(h);
    let Err(e) = l7_http::HttpRules::compile(&[npds::http_rule_spec(&t.rule)]) else {
        return Ok(());
    };
    let header_match = |i: usize, field: &str| join(&index(&join(path, "headerMatches"), i), field);
    Err(match e {
        RuleError::Header { header, error, .. } => {
            let regex = |key: &str, re: &str| {
                let detail = match &error {
                    MatcherError::InvalidRegex(detail) => detail.clone(),
                    other => other.to_string(),
                };
                Fault::invalid(
                    join(path, key),
                    format!("invalid regular expression {re:?}: {detail}"),
                )
            };
            match t.header_sources[header] {
                Source::Path => regex("path", &h.path),
                Source::Method => regex("method", &h.method),
                Source::Host => regex("host", &h.host),
                Source::Header(i) => {
                    Fault::invalid(index(&join(path, "headers"), i), error.to_string())
                }
                Source::HeaderMatch(i) => {
                    let field = match error {
                        MatcherError::EmptyName | MatcherError::InvalidName => "name",
                        _ => "value",
                    };
                    Fault::invalid(header_match(i, field), error.to_string())
                }
            }
        }
        RuleError::HeaderMatch {
            index: k, error, ..
        } => {
            let field = match error {
                HeaderMatchError::Name(_) | HeaderMatchError::NotAToken(_) => "name",
                HeaderMatchError::Immutable { .. } => "mismatch",
                HeaderMatchError::InvalidValue(_) => "value",
                HeaderMatchError::EmptySecret(_) => "secret",
            };
            Fault::invalid(
                header_match(t.header_match_sources[k], field),
                error.to_string(),
            )
        }
        // Not reachable with one rule, but never let an error go unreported.
        other => Fault::invalid(path, other.to_string()),
    })
}

/// The HTTP rules of one port rule, sorted as the agent sorts them.
pub(crate) fn http_rules(rules: &[HttpRule]) -> HttpNetworkPolicyRules {
    let mut http_rules: Vec<HttpNetworkPolicyRule> = rules.iter().map(http_rule).collect();
    http_rules.sort_by(cmp_http_rule);
    HttpNetworkPolicyRules { http_rules }
}

/// A sort key for what the agent's `HeaderMatcherCmp` does not look at.
fn pattern_key(m: &HeaderMatcher) -> (u8, String) {
    match &m.header_match_specifier {
        Some(HeaderMatchSpecifier::StringMatch(s)) => match &s.match_pattern {
            Some(MatchPattern::Exact(v)) => (1, v.clone()),
            Some(MatchPattern::SafeRegex(r)) => (2, r.regex.clone()),
            Some(MatchPattern::Prefix(v)) => (3, v.clone()),
            Some(MatchPattern::Suffix(v)) => (4, v.clone()),
            Some(MatchPattern::Contains(v)) => (5, v.clone()),
            _ => (6, String::new()),
        },
        _ => (0, String::new()),
    }
}

fn is_present(m: &HeaderMatcher) -> bool {
    matches!(
        m.header_match_specifier,
        Some(HeaderMatchSpecifier::PresentMatch(true))
    )
}

/// The agent's `HeaderMatcherCmp` (name, then presence, then inversion),
/// completed with the string pattern so the order is total.
pub(crate) fn cmp_header(a: &HeaderMatcher, b: &HeaderMatcher) -> Ordering {
    a.name
        .cmp(&b.name)
        .then(is_present(a).cmp(&is_present(b)))
        .then(a.invert_match.cmp(&b.invert_match))
        .then_with(|| pattern_key(a).cmp(&pattern_key(b)))
}

/// The agent's `HTTPNetworkPolicyRuleCmp` (header count, then headers),
/// completed with the header matches.
pub(crate) fn cmp_http_rule(a: &HttpNetworkPolicyRule, b: &HttpNetworkPolicyRule) -> Ordering {
    a.headers
        .len()
        .cmp(&b.headers.len())
        .then_with(|| cmp_slices(&a.headers, &b.headers, cmp_header))
        .then_with(|| {
            let key = |m: &HeaderMatch| {
                (
                    m.name.clone(),
                    m.value.clone(),
                    m.match_action,
                    m.mismatch_action,
                    m.value_sds_secret.clone(),
                )
            };
            let ka: Vec<_> = a.header_matches.iter().map(key).collect();
            let kb: Vec<_> = b.header_matches.iter().map(key).collect();
            ka.cmp(&kb)
        })
}

/// Rule lists: length first, then element by element.
pub(crate) fn cmp_http_rules(a: &[HttpNetworkPolicyRule], b: &[HttpNetworkPolicyRule]) -> Ordering {
    a.len()
        .cmp(&b.len())
        .then_with(|| cmp_slices(a, b, cmp_http_rule))
}

fn cmp_slices<T>(a: &[T], b: &[T], f: impl Fn(&T, &T) -> Ordering) -> Ordering {
    a.iter()
        .zip(b)
        .map(|(x, y)| f(x, y))
        .find(|o| o.is_ne())
        .unwrap_or(Ordering::Equal)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::HeaderMatchSpec;

    #[test]
    fn headers_translate_like_the_agent() {
        let rule = HttpRule {
            path: "/foo".into(),
            method: "GET".into(),
            host: "foo.cilium.io".into(),
            headers: vec!["header2: value".into(), "header1".into()],
            header_matches: vec![
                HeaderMatchSpec {
                    name: "user-agent".into(),
                    value: "dummy-agent".into(),
                    mismatch: Mismatch::Replace,
                    sds_secret: None,
                },
                HeaderMatchSpec {
                    name: "x-fail".into(),
                    value: "v".into(),
                    mismatch: Mismatch::Fail,
                    sds_secret: None,
                },
                HeaderMatchSpec {
                    name: "x-token".into(),
                    value: String::new(),
                    mismatch: Mismatch::Log,
                    sds_secret: Some("cilium-secrets/ns-tok".into()),
                },
            ],
        };
        let wire = http_rule(&rule);
        let names: Vec<&str> = wire.headers.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(
            names,
            [
                ":authority",
                ":method",
                ":path",
                "header1",
                "header2",
                "x-fail"
            ]
        );
        assert_eq!(wire.headers[0], regex(":authority", "foo.cilium.io"));
        assert_eq!(wire.headers[3], present("header1"));
        assert_eq!(wire.headers[4], exact("header2", "value"));
        assert_eq!(wire.headers[5], exact("x-fail", "v"));
        assert_eq!(
            wire.header_matches,
            vec![
                HeaderMatch {
                    name: "user-agent".into(),
                    value: "dummy-agent".into(),
                    mismatch_action: MismatchAction::ReplaceOnMismatch as i32,
                    ..Default::default()
                },
                HeaderMatch {
                    name: "x-token".into(),
                    mismatch_action: MismatchAction::ContinueOnMismatch as i32,
                    value_sds_secret: "cilium-secrets/ns-tok".into(),
                    ..Default::default()
                },
            ]
        );
    }

    #[test]
    fn rules_sort_by_header_count_first() {
        let one = HttpRule {
            path: "/bar".into(),
            method: "PUT".into(),
            ..Default::default()
        };
        let two = HttpRule {
            path: "/foo".into(),
            method: "GET".into(),
            host: "foo.cilium.io".into(),
            ..Default::default()
        };
        let wire = http_rules(&[two.clone(), one.clone(), HttpRule::default()]);
        assert_eq!(wire.http_rules[0], http_rule(&HttpRule::default()));
        assert_eq!(wire.http_rules[1], http_rule(&one));
        assert_eq!(wire.http_rules[2], http_rule(&two));
    }
}
