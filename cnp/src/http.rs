//! HTTP rules on the wire, as the agent's `envoy_l7_rules_translator.go`
//! builds them: `path`/`method`/`host` become `safe_regex` string matchers
//! on `:path`/`:method`/`:authority`; `headers` entries become presence or
//! exact matchers; `headerMatches` become exact matchers (no `mismatch`) or
//! Cilium `HeaderMatch`es (with `mismatch`, or a secret). Header matchers
//! are sorted; `headerMatches` keep their order.

use std::cmp::Ordering;

use envoy_types::pb::envoy::config::route::v3::header_matcher::HeaderMatchSpecifier;
use envoy_types::pb::envoy::config::route::v3::HeaderMatcher;
use envoy_types::pb::envoy::r#type::matcher::v3::string_matcher::MatchPattern;
use envoy_types::pb::envoy::r#type::matcher::v3::{RegexMatcher, StringMatcher};
use npds::proto::header_match::MismatchAction;
use npds::proto::{HeaderMatch, HttpNetworkPolicyRule, HttpNetworkPolicyRules};

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

/// One `rules.http` entry on the wire.
pub(crate) fn http_rule(h: &HttpRule) -> HttpNetworkPolicyRule {
    let mut headers = Vec::new();
    if !h.path.is_empty() {
        headers.push(regex(":path", &h.path));
    }
    if !h.method.is_empty() {
        headers.push(regex(":method", &h.method));
    }
    if !h.host.is_empty() {
        headers.push(regex(":authority", &h.host));
    }
    for hdr in &h.headers {
        // "Name: value" (split at the first space) or a bare name.
        match hdr.split_once(' ') {
            Some((key, value)) => headers.push(exact(key.trim_end_matches(':'), value)),
            None => headers.push(present(hdr)),
        }
    }
    let mut header_matches = Vec::new();
    for m in &h.header_matches {
        let action = match m.mismatch {
            Mismatch::Fail => MismatchAction::FailOnMismatch,
            Mismatch::Log => MismatchAction::ContinueOnMismatch,
            Mismatch::Add => MismatchAction::AddOnMismatch,
            Mismatch::Delete => MismatchAction::DeleteOnMismatch,
            Mismatch::Replace => MismatchAction::ReplaceOnMismatch,
        };
        match (&m.sds_secret, m.value.is_empty(), m.mismatch) {
            (Some(secret), _, _) => header_matches.push(HeaderMatch {
                name: m.name.clone(),
                mismatch_action: action as i32,
                value_sds_secret: secret.clone(),
                ..Default::default()
            }),
            (None, false, Mismatch::Fail) => headers.push(exact(&m.name, &m.value)),
            (None, true, Mismatch::Fail) => headers.push(present(&m.name)),
            (None, _, _) => header_matches.push(HeaderMatch {
                name: m.name.clone(),
                value: m.value.clone(),
                mismatch_action: action as i32,
                ..Default::default()
            }),
        }
    }
    headers.sort_by(cmp_header);
    HttpNetworkPolicyRule {
        headers,
        header_matches,
    }
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
