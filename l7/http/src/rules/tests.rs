use std::collections::HashMap;

use envoy_types::pb::envoy::config::route::v3::header_matcher::HeaderMatchSpecifier;
use envoy_types::pb::envoy::r#type::matcher::v3::string_matcher::MatchPattern;
use envoy_types::pb::envoy::r#type::matcher::v3::{RegexMatcher, StringMatcher};

use http::HeaderName;

use super::*;

mod actions;

struct Secrets(HashMap<&'static str, &'static str>);

impl SecretSource for Secrets {
    fn secret(&self, name: &str) -> Option<Arc<str>> {
        self.0.get(name).map(|v| Arc::from(*v))
    }
}

fn secrets() -> Secrets {
    Secrets(HashMap::from([
        ("tok", "s3cret"),
        ("empty", ""),
        ("crlf", "a\r\nInjected: 1"),
    ]))
}

fn exact(name: &str, value: &str) -> HeaderMatcher {
    HeaderMatcher {
        name: name.into(),
        header_match_specifier: Some(HeaderMatchSpecifier::StringMatch(StringMatcher {
            match_pattern: Some(MatchPattern::Exact(value.into())),
            ignore_case: false,
        })),
        ..Default::default()
    }
}

fn regex(name: &str, re: &str) -> HeaderMatcher {
    HeaderMatcher {
        name: name.into(),
        header_match_specifier: Some(HeaderMatchSpecifier::StringMatch(StringMatcher {
            match_pattern: Some(MatchPattern::SafeRegex(RegexMatcher {
                regex: re.into(),
                engine_type: None,
            })),
            ignore_case: false,
        })),
        ..Default::default()
    }
}

fn inline(
    name: &str,
    value: &str,
    on_match: MatchAction,
    on_mismatch: MismatchAction,
) -> HeaderMatchSpec {
    HeaderMatchSpec {
        name: name.into(),
        value: HeaderValueSource::Inline(value.into()),
        match_action: on_match,
        mismatch_action: on_mismatch,
    }
}

fn secret(
    name: &str,
    secret: &str,
    on_match: MatchAction,
    on_mismatch: MismatchAction,
) -> HeaderMatchSpec {
    HeaderMatchSpec {
        name: name.into(),
        value: HeaderValueSource::Secret(secret.into()),
        match_action: on_match,
        mismatch_action: on_mismatch,
    }
}

fn only_header_matches(hms: Vec<HeaderMatchSpec>) -> HttpRules {
    HttpRules::compile(&[HttpRuleSpec {
        headers: vec![],
        header_matches: hms,
    }])
    .unwrap()
}

fn header_map(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    h
}

fn run(rules: &HttpRules, method: &str, path: &str, headers: &mut HeaderMap) -> (bool, HeaderLog) {
    let mut log = HeaderLog::default();
    let mut req = RequestHead {
        method,
        path,
        authority: "svc",
        headers,
    };
    let allowed = rules.matches(&mut req, &secrets(), &mut log);
    (allowed, log)
}

fn values(h: &HeaderMap, name: &str) -> Vec<String> {
    h.get_all(name)
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect()
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn empty_rule_list_is_an_error() {
    assert!(matches!(HttpRules::compile(&[]), Err(RuleError::Empty)));
}

#[test]
fn compile_errors_name_rule_and_header() {
    let specs = [
        HttpRuleSpec::default(),
        HttpRuleSpec {
            headers: vec![exact(":method", "GET"), regex(":path", "(x{500}){500}")],
            header_matches: vec![],
        },
    ];
    let err = HttpRules::compile(&specs).unwrap_err().to_string();
    assert!(
        err.starts_with("http_rules[1].headers[1] (:path): regex exceeds the program size limit"),
        "{err}"
    );

    let err = HttpRules::compile(&[HttpRuleSpec {
        headers: vec![regex("x-a", "(")],
        header_matches: vec![],
    }])
    .unwrap_err()
    .to_string();
    assert!(
        err.starts_with("http_rules[0].headers[0] (x-a): invalid regex"),
        "{err}"
    );
}

#[test]
fn header_match_compile_errors() {
    use HeaderMatchError as E;
    use MatchAction as M;
    use MismatchAction as X;
    let cases = [
        (
            inline("", "v", M::Continue, X::Fail),
            E::Name(MatcherError::EmptyName),
            "header name is empty",
        ),
        (
            inline("a\rb", "v", M::Continue, X::Fail),
            E::Name(MatcherError::InvalidName),
            "header name contains NUL, CR or LF",
        ),
        (
            inline("Bad name", "v", M::Continue, X::Fail),
            E::NotAToken("bad name".into()),
            "invalid header name \"bad name\"",
        ),
        (
            inline(":path", "/", M::Continue, X::Replace),
            E::Immutable {
                name: ":path".into(),
                match_action: M::Continue,
                mismatch_action: X::Replace,
            },
            ":path: pseudo-header or host cannot be modified (match_action Continue, mismatch_action Replace)",
        ),
        (
            inline(":authority", "a", M::Delete, X::Fail),
            E::Immutable {
                name: ":authority".into(),
                match_action: M::Delete,
                mismatch_action: X::Fail,
            },
            "cannot be modified",
        ),
        (
            inline("host", "a", M::Continue, X::Add),
            E::Immutable {
                name: "host".into(),
                match_action: M::Continue,
                mismatch_action: X::Add,
            },
            "cannot be modified",
        ),
        (
            inline("X-A", "bad\nvalue", M::Continue, X::Add),
            E::InvalidValue("x-a".into()),
            "x-a: value is not a valid header value",
        ),
        (
            secret("x-a", "", M::Continue, X::Fail),
            E::EmptySecret("x-a".into()),
            "x-a: empty secret name",
        ),
    ];
    for (spec, want, text) in cases {
        let err = HttpRules::compile(&[HttpRuleSpec {
            headers: vec![],
            header_matches: vec![inline("x-ok", "", M::Continue, X::Fail), spec.clone()],
        }])
        .unwrap_err();
        let shown = err.to_string();
        assert!(
            shown.starts_with("http_rules[0].header_matches[1]: "),
            "{shown}"
        );
        assert!(shown.contains(text), "{spec:?}: {shown}");
        match err {
            RuleError::HeaderMatch {
                rule: 0,
                index: 1,
                error,
            } => assert_eq!(error, want, "{spec:?}"),
            other => panic!("{spec:?}: {other:?}"),
        }
    }
    // Read-only actions on pseudo-headers are fine.
    only_header_matches(vec![inline(":method", "GET", M::Continue, X::Fail)]);
}

#[test]
fn rules_without_header_matches_are_any_of_all_of() {
    let rules = HttpRules::compile(&[
        HttpRuleSpec {
            headers: vec![exact(":method", "GET"), regex(":path", "/public/.*")],
            header_matches: vec![],
        },
        HttpRuleSpec {
            headers: vec![exact(":method", "POST"), exact("x-api", "1")],
            header_matches: vec![],
        },
    ])
    .unwrap();
    assert!(!rules.has_header_matches());
    let cases = [
        ("GET", "/public/a", vec![], true),
        ("GET", "/private", vec![], false),
        ("POST", "/public/a", vec![], false),
        ("POST", "/x", vec![("x-api", "1")], true),
        ("POST", "/x", vec![("x-api", "2")], false),
    ];
    for (method, path, hs, want) in cases {
        let mut h = header_map(&hs);
        let (got, log) = run(&rules, method, path, &mut h);
        assert_eq!(got, want, "{method} {path} {hs:?}");
        assert_eq!(log, HeaderLog::default());
    }
}

#[test]
fn empty_rule_allows_everything() {
    let rules = HttpRules::compile(&[HttpRuleSpec::default()]).unwrap();
    assert!(run(&rules, "DELETE", "/anything", &mut HeaderMap::new()).0);
}

#[test]
fn pseudo_header_matches_are_read_only_checks() {
    use MatchAction as M;
    use MismatchAction as X;
    let rules = only_header_matches(vec![inline(":method", "GET", M::Continue, X::Fail)]);
    assert!(run(&rules, "GET", "/", &mut HeaderMap::new()).0);
    let (allowed, log) = run(&rules, "PUT", "/", &mut HeaderMap::new());
    assert!(!allowed);
    assert_eq!(log.missing, pairs(&[(":method", "GET")]));
}

#[test]
fn every_header_match_of_a_rule_runs_after_a_failure() {
    use MatchAction as M;
    use MismatchAction as X;
    let rules = only_header_matches(vec![
        inline("x-required", "yes", M::Continue, X::Fail),
        inline("x-added", "1", M::Continue, X::Add),
    ]);
    let mut h = HeaderMap::new();
    let (allowed, log) = run(&rules, "GET", "/", &mut h);
    assert!(!allowed);
    assert_eq!(values(&h, "x-added"), ["1"]);
    assert_eq!(
        log.missing,
        pairs(&[("x-required", "yes"), ("x-added", "1")])
    );
}

#[test]
fn header_matches_disable_short_circuit_and_apply_every_matching_rule() {
    use MatchAction as M;
    use MismatchAction as X;
    let rules = HttpRules::compile(&[
        // Allows GET outright...
        HttpRuleSpec {
            headers: vec![exact(":method", "GET")],
            header_matches: vec![],
        },
        // ...but this matching rule's actions still apply.
        HttpRuleSpec {
            headers: vec![regex(":path", "/.*")],
            header_matches: vec![inline("x-stamp", "1", M::Continue, X::Replace)],
        },
        // A non-matching rule's actions do not.
        HttpRuleSpec {
            headers: vec![exact(":method", "POST")],
            header_matches: vec![inline("x-post", "1", M::Continue, X::Add)],
        },
    ])
    .unwrap();
    assert!(rules.has_header_matches());
    let mut h = HeaderMap::new();
    let (allowed, _) = run(&rules, "GET", "/x", &mut h);
    assert!(allowed);
    assert_eq!(values(&h, "x-stamp"), ["1"]);
    assert!(h.get("x-post").is_none());
}

#[test]
fn later_rules_see_earlier_mutations() {
    use MatchAction as M;
    use MismatchAction as X;
    let rules = HttpRules::compile(&[
        HttpRuleSpec {
            headers: vec![],
            header_matches: vec![
                inline("x-never", "1", M::Continue, X::Fail),
                inline("x-role", "admin", M::Continue, X::Replace),
            ],
        },
        HttpRuleSpec {
            headers: vec![exact("x-role", "admin")],
            header_matches: vec![],
        },
    ])
    .unwrap();
    let mut h = header_map(&[("x-role", "guest")]);
    let (allowed, log) = run(&rules, "GET", "/", &mut h);
    // Rule 0 fails (x-never) but rewrote x-role, which rule 1 then accepts,
    // exactly as cilium-envoy evaluates the list in order on one header map.
    assert!(allowed);
    assert_eq!(values(&h, "x-role"), ["admin"]);
    assert_eq!(log.rejected, pairs(&[("x-role", "guest")]));
}

#[test]
fn no_secrets_fails_closed() {
    use MatchAction as M;
    use MismatchAction as X;
    let rules = only_header_matches(vec![secret("x-t", "tok", M::Continue, X::Continue)]);
    let mut h = header_map(&[("x-t", "s3cret")]);
    let mut log = HeaderLog::default();
    let mut req = RequestHead {
        method: "GET",
        path: "/",
        authority: "",
        headers: &mut h,
    };
    assert!(!rules.matches(&mut req, &NoSecrets, &mut log));
    assert_eq!(log.missing, pairs(&[("x-t", REDACTED)]));
}

#[test]
fn constant_time_eq() {
    assert!(ct_eq(b"", b""));
    assert!(ct_eq(b"abc", b"abc"));
    assert!(!ct_eq(b"abc", b"abd"));
    assert!(!ct_eq(b"abc", b"ab"));
    assert!(!ct_eq(b"\x00", b"\x80"));
}
