//! `l7_http::HttpRules`: compile a regex matcher, decide a request.
//!
//! Input layout, by lines (`\n`):
//!   byte 0           flags: bit 0 invert_match, bit 1 treat_missing_header_as_empty,
//!                    bits 2-3 the matcher's header (:path, :method, :authority, x-fuzz),
//!                    bits 4-6 a Cilium header match on x-fuzz whose value is the
//!                    regex line (0: none, else the match/mismatch actions)
//!   line 0 (rest)    the regex (`string_match.safe_regex`)
//!   line 1           `METHOD PATH`
//!   line 2           authority
//!   lines 3..        `name: value` headers (invalid ones are skipped)
//!
//! Compile errors are fine; nothing may panic. For `:path` (always present)
//! with no header match, inverting the matcher must invert the decision.

#![no_main]

use envoy_types::pb::envoy::config::route::v3::header_matcher::HeaderMatchSpecifier;
use envoy_types::pb::envoy::config::route::v3::HeaderMatcher;
use envoy_types::pb::envoy::r#type::matcher::v3::string_matcher::MatchPattern;
use envoy_types::pb::envoy::r#type::matcher::v3::{RegexMatcher, StringMatcher};
use http::{HeaderMap, HeaderName, HeaderValue};
use l7_http::{
    HeaderLog, HeaderMatchSpec, HeaderValueSource, HttpRuleSpec, HttpRules, MatchAction,
    MismatchAction, NoSecrets, RequestHead,
};
use libfuzzer_sys::fuzz_target;

const NAMES: [&str; 4] = [":path", ":method", ":authority", "x-fuzz"];

fn matcher(name: &str, regex: &str, invert: bool, missing_empty: bool) -> HeaderMatcher {
    HeaderMatcher {
        name: name.into(),
        header_match_specifier: Some(HeaderMatchSpecifier::StringMatch(StringMatcher {
            match_pattern: Some(MatchPattern::SafeRegex(RegexMatcher {
                regex: regex.into(),
                engine_type: None,
            })),
            ignore_case: false,
        })),
        invert_match: invert,
        treat_missing_header_as_empty: missing_empty,
    }
}

fn header_match(sel: u8, value: &str) -> Option<HeaderMatchSpec> {
    if sel == 0 {
        return None;
    }
    let match_action = [
        MatchAction::Continue,
        MatchAction::Fail,
        MatchAction::Delete,
    ][usize::from(sel % 3)];
    let mismatch_action = [
        MismatchAction::Fail,
        MismatchAction::Continue,
        MismatchAction::Add,
        MismatchAction::Delete,
        MismatchAction::Replace,
    ][usize::from(sel % 5)];
    Some(HeaderMatchSpec {
        name: "X-Fuzz".into(),
        value: HeaderValueSource::Inline(value.into()),
        match_action,
        mismatch_action,
    })
}

fn decide(
    rules: &HttpRules,
    method: &str,
    path: &str,
    authority: &str,
    headers: &HeaderMap,
) -> bool {
    let mut headers = headers.clone();
    let mut req = RequestHead {
        method,
        path,
        authority,
        headers: &mut headers,
    };
    rules.matches(&mut req, &NoSecrets, &mut HeaderLog::default())
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let mut lines = text.split('\n');
    let regex = lines.next().unwrap_or_default();
    let (method, path) = lines
        .next()
        .unwrap_or_default()
        .split_once(' ')
        .unwrap_or(("GET", "/"));
    let authority = lines.next().unwrap_or_default();
    let mut headers = HeaderMap::new();
    for line in lines {
        let Some((n, v)) = line.split_once(':') else {
            continue;
        };
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(n.trim().as_bytes()),
            HeaderValue::from_str(v.trim()),
        ) {
            headers.append(n, v);
        }
    }

    let invert = flags & 1 != 0;
    let missing_empty = flags & 2 != 0;
    let name = NAMES[usize::from((flags >> 2) & 3)];
    let hm = header_match((flags >> 4) & 7, regex);
    let spec = |invert: bool| {
        [HttpRuleSpec {
            headers: vec![matcher(name, regex, invert, missing_empty)],
            header_matches: hm.clone().into_iter().collect(),
        }]
    };
    let Ok(rules) = HttpRules::compile(&spec(invert)) else {
        return;
    };
    let allowed = decide(&rules, method, path, authority, &headers);

    if name == ":path" && hm.is_none() {
        let flipped = HttpRules::compile(&spec(!invert)).expect("same regex compiled once");
        let other = decide(&flipped, method, path, authority, &headers);
        assert_ne!(
            allowed, other,
            "invert_match did not invert: regex {regex:?} path {path:?}"
        );
    }
});
