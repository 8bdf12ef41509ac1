use super::*;
use envoy_types::pb::envoy::r#type::matcher::v3::RegexMatcher;
use envoy_types::pb::envoy::r#type::v3::Int64Range;
use envoy_types::pb::xds::core::v3::TypedExtensionConfig;
use http::HeaderValue;
use HeaderMatchSpecifier as S;

fn hm(name: &str, spec: Option<HeaderMatchSpecifier>) -> HeaderMatcher {
    HeaderMatcher {
        name: name.into(),
        header_match_specifier: spec,
        ..Default::default()
    }
}

fn inverted(mut m: HeaderMatcher) -> HeaderMatcher {
    m.invert_match = true;
    m
}

fn missing_as_empty(mut m: HeaderMatcher) -> HeaderMatcher {
    m.treat_missing_header_as_empty = true;
    m
}

fn string(p: MatchPattern, ignore_case: bool) -> Option<HeaderMatchSpecifier> {
    Some(S::StringMatch(StringMatcher {
        match_pattern: Some(p),
        ignore_case,
    }))
}

fn regex(r: &str) -> RegexMatcher {
    RegexMatcher {
        regex: r.into(),
        engine_type: None,
    }
}

#[allow(deprecated)]
fn exact(v: &str) -> Option<HeaderMatchSpecifier> {
    Some(S::ExactMatch(v.into()))
}

#[allow(deprecated)]
fn safe_regex(r: &str) -> Option<HeaderMatchSpecifier> {
    Some(S::SafeRegexMatch(regex(r)))
}

fn range(start: i64, end: i64) -> Option<HeaderMatchSpecifier> {
    Some(S::RangeMatch(Int64Range { start, end }))
}

fn headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in [
        ("x-a", "foo"),
        ("x-multi", "a"),
        ("x-multi", "b"),
        ("x-empty", ""),
        ("x-num", "42"),
        ("x-neg", "-5"),
        ("x-plus", "+42"),
        ("x-spaced", " 42 "),
        ("x-float", "42.0"),
        ("x-big", "99999999999999999999"),
        ("x-inner", "4 2"),
        ("x-uni", "café"),
        ("x-arabic", "١٢"),
    ] {
        h.append(
            HeaderName::from_static(k),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    h.append("x-bin", HeaderValue::from_bytes(b"\xff\xfe").unwrap());
    h
}

fn check(cases: &[(HeaderMatcher, bool)]) {
    let h = headers();
    let view = RequestView {
        method: "GET",
        path: "/api/v1/users?x=1",
        authority: "example.com",
        headers: &h,
    };
    for (m, want) in cases {
        let c = CompiledHeaderMatcher::compile(m).unwrap_or_else(|e| panic!("{m:?}: {e}"));
        assert_eq!(c.matches(&view), *want, "{m:?}");
    }
}

#[test]
fn presence() {
    check(&[
        (hm("x-a", Some(S::PresentMatch(true))), true),
        (hm("x-none", Some(S::PresentMatch(true))), false),
        (hm("x-a", Some(S::PresentMatch(false))), false),
        (hm("x-none", Some(S::PresentMatch(false))), true),
        (inverted(hm("x-none", Some(S::PresentMatch(true)))), true),
        (inverted(hm("x-a", Some(S::PresentMatch(true)))), false),
        (inverted(hm("x-none", Some(S::PresentMatch(false)))), false),
        // No specifier defaults to present_match: true.
        (hm("x-a", None), true),
        (hm("x-none", None), false),
        (hm("x-empty", None), true),
        // Missing-as-empty makes a missing header count as present.
        (
            missing_as_empty(hm("x-none", Some(S::PresentMatch(true)))),
            true,
        ),
        (
            missing_as_empty(hm("x-none", Some(S::PresentMatch(false)))),
            false,
        ),
    ]);
}

#[test]
fn exact_and_string_matchers() {
    use MatchPattern as P;
    check(&[
        (hm("x-a", exact("foo")), true),
        (hm("x-a", exact("Foo")), false),
        (hm("X-A", exact("foo")), true),
        // Deprecated empty exact_match: any value, but the header must exist.
        (hm("x-a", exact("")), true),
        (hm("x-none", exact("")), false),
        (inverted(hm("x-none", exact(""))), false),
        (hm("x-a", string(P::Exact("foo".into()), false)), true),
        (hm("x-a", string(P::Exact("FOO".into()), false)), false),
        (hm("x-a", string(P::Exact("FOO".into()), true)), true),
        (hm("x-a", string(P::Exact("".into()), false)), false),
        (hm("x-empty", string(P::Exact("".into()), false)), true),
        (hm("x-a", string(P::Prefix("fo".into()), false)), true),
        (hm("x-a", string(P::Prefix("FO".into()), false)), false),
        (hm("x-a", string(P::Prefix("FO".into()), true)), true),
        (hm("x-a", string(P::Prefix("fooo".into()), false)), false),
        (hm("x-a", string(P::Suffix("oo".into()), false)), true),
        (hm("x-a", string(P::Suffix("OO".into()), true)), true),
        (hm("x-a", string(P::Suffix("xfoo".into()), false)), false),
        (hm("x-a", string(P::Contains("o".into()), false)), true),
        (hm("x-a", string(P::Contains("O".into()), false)), false),
        (hm("x-a", string(P::Contains("OO".into()), true)), true),
        (hm("x-a", string(P::Contains("fooo".into()), true)), false),
        (hm("x-a", string(P::SafeRegex(regex("f.o")), false)), true),
        // ignore_case has no effect on regexes.
        (hm("x-a", string(P::SafeRegex(regex("FOO")), true)), false),
        (
            inverted(hm("x-a", string(P::Exact("bar".into()), false))),
            true,
        ),
        (
            inverted(hm("x-a", string(P::Exact("foo".into()), false))),
            false,
        ),
    ]);
}

#[test]
#[allow(deprecated)]
fn deprecated_literal_forms() {
    check(&[
        (hm("x-a", Some(S::PrefixMatch("f".into()))), true),
        (hm("x-a", Some(S::PrefixMatch("F".into()))), false),
        (hm("x-a", Some(S::SuffixMatch("o".into()))), true),
        (hm("x-a", Some(S::SuffixMatch("f".into()))), false),
        (hm("x-a", Some(S::ContainsMatch("oo".into()))), true),
        (hm("x-a", Some(S::ContainsMatch("of".into()))), false),
        (hm("x-none", Some(S::ContainsMatch("o".into()))), false),
    ]);
}

#[test]
fn regex_full_match() {
    check(&[
        (hm("x-a", safe_regex("f.o")), true),
        (hm("x-a", safe_regex("fo")), false),
        (hm("x-a", safe_regex("o")), false),
        (hm("x-a", safe_regex("foo|bar")), true),
        (hm("x-a", safe_regex("bar|fo")), false),
        (inverted(hm("x-a", safe_regex("fo"))), true),
        // A missing header fails even an inverted matcher...
        (inverted(hm("x-none", safe_regex("fo"))), false),
        // ...unless it is treated as empty.
        (missing_as_empty(hm("x-none", safe_regex("^$"))), true),
        (missing_as_empty(hm("x-none", safe_regex(""))), true),
        (hm("x-none", safe_regex("^$")), false),
        (hm(":path", safe_regex("/api/v[0-9]+/.*")), true),
        (hm(":path", safe_regex("/api/v[0-9]+")), false),
        // RE2 classes are ASCII: Arabic-Indic digits are not \d.
        (hm("x-num", safe_regex(r"\d+")), true),
        (hm("x-arabic", safe_regex(r"\d+")), false),
        // Unicode classes fall back to a Unicode-mode build.
        (hm("x-uni", safe_regex(r"\p{L}+")), true),
        (hm("x-uni", safe_regex("caf.+")), true),
        // Non-UTF-8 values are matched as bytes, not rejected.
        (hm("x-bin", safe_regex(".*")), true),
        (hm("x-bin", safe_regex("x")), false),
    ]);
}

#[test]
fn range_like_absl_simple_atoi() {
    check(&[
        (hm("x-num", range(0, 100)), true),
        (hm("x-num", range(42, 43)), true),
        (hm("x-num", range(43, 100)), false),
        // Half-open: end is excluded.
        (hm("x-num", range(0, 42)), false),
        (hm("x-neg", range(-10, 0)), true),
        (hm("x-plus", range(0, 100)), true),
        (hm("x-spaced", range(0, 100)), true),
        (hm("x-float", range(0, 100)), false),
        (hm("x-inner", range(0, 100)), false),
        (hm("x-big", range(i64::MIN, i64::MAX)), false),
        (hm("x-a", range(i64::MIN, i64::MAX)), false),
        (hm("x-bin", range(i64::MIN, i64::MAX)), false),
        (hm("x-none", range(i64::MIN, i64::MAX)), false),
        // Missing-as-empty: "" is not a number, so only the inverted form matches.
        (missing_as_empty(hm("x-none", range(0, 10))), false),
        (inverted(missing_as_empty(hm("x-none", range(0, 10)))), true),
        (inverted(hm("x-none", range(0, 10))), false),
    ]);
}

#[test]
fn repeated_headers_are_joined_with_comma() {
    check(&[
        (hm("x-multi", exact("a,b")), true),
        (hm("x-multi", exact("a")), false),
        (hm("x-multi", exact("a, b")), false),
        (hm("x-multi", safe_regex("a,b")), true),
    ]);
}

#[test]
fn pseudo_headers() {
    check(&[
        (hm(":path", exact("/api/v1/users?x=1")), true),
        (hm(":method", exact("GET")), true),
        (hm(":method", exact("get")), false),
        (hm(":authority", exact("example.com")), true),
        (hm("Host", exact("example.com")), true),
        (hm(":scheme", None), false),
        (hm(":scheme", Some(S::PresentMatch(false))), true),
        (hm(":status", None), false),
        // Not representable as an http::HeaderName: never present.
        (hm("bad name", None), false),
        (hm("bad name", Some(S::PresentMatch(false))), true),
    ]);
}

/// `GET /` with no authority and `headers`.
fn get_root(headers: &HeaderMap) -> RequestView<'_> {
    RequestView {
        method: "GET",
        path: "/",
        authority: "",
        headers,
    }
}

#[test]
fn empty_authority_is_absent() {
    let h = HeaderMap::new();
    let view = get_root(&h);
    let present = CompiledHeaderMatcher::compile(&hm(":authority", None)).unwrap();
    assert!(!present.matches(&view));
    let absent = CompiledHeaderMatcher::compile(&hm("host", Some(S::PresentMatch(false)))).unwrap();
    assert!(absent.matches(&view));
}

#[test]
fn lookup_borrows_single_values() {
    let h = headers();
    let view = RequestView {
        method: "GET",
        path: "/",
        authority: "a",
        headers: &h,
    };
    let single = HeaderKey::resolve("x-a").lookup(&view);
    assert!(matches!(single, Some(Cow::Borrowed(b"foo"))));
    let multi = HeaderKey::resolve("x-multi").lookup(&view);
    assert!(matches!(multi, Some(Cow::Owned(ref v)) if v == b"a,b"));
}

#[test]
#[allow(deprecated)]
fn compile_errors() {
    use MatchPattern as P;
    let custom = string(P::Custom(TypedExtensionConfig::default()), false);
    let no_pattern = Some(S::StringMatch(StringMatcher::default()));
    let cases: Vec<(HeaderMatcher, MatcherError)> = vec![
        (hm("", None), MatcherError::EmptyName),
        (hm("a\nb", None), MatcherError::InvalidName),
        (hm("a\0b", None), MatcherError::InvalidName),
        (
            hm("x", safe_regex("a{1000}{1000}")),
            MatcherError::RegexTooBig,
        ),
        (
            hm("x", string(P::SafeRegex(regex("(x{500}){500}")), false)),
            MatcherError::RegexTooBig,
        ),
        (
            hm("x", Some(S::PrefixMatch(String::new()))),
            MatcherError::EmptyPattern("prefix_match"),
        ),
        (
            hm("x", Some(S::SuffixMatch(String::new()))),
            MatcherError::EmptyPattern("suffix_match"),
        ),
        (
            hm("x", Some(S::ContainsMatch(String::new()))),
            MatcherError::EmptyPattern("contains_match"),
        ),
        (
            hm("x", string(P::Prefix(String::new()), true)),
            MatcherError::EmptyPattern("string_match.prefix"),
        ),
        (
            hm("x", string(P::Suffix(String::new()), true)),
            MatcherError::EmptyPattern("string_match.suffix"),
        ),
        (
            hm("x", string(P::Contains(String::new()), true)),
            MatcherError::EmptyPattern("string_match.contains"),
        ),
        (hm("x", no_pattern), MatcherError::MissingPattern),
        (hm("x", custom), MatcherError::CustomMatcher),
    ];
    for (m, want) in cases {
        assert_eq!(
            CompiledHeaderMatcher::compile(&m).err(),
            Some(want),
            "{m:?}"
        );
    }
}

#[test]
fn invalid_regexes_are_errors_with_a_one_line_reason() {
    // `a)|(.*` would compile once wrapped in `^(?:...)$` and match anything;
    // the standalone check must refuse it.
    for r in ["a)|(.*", "(", "[z-a]", r"\C", "(?<=a)b"] {
        match CompiledHeaderMatcher::compile(&hm("x", safe_regex(r))) {
            Err(MatcherError::InvalidRegex(reason)) => {
                assert!(!reason.contains('\n'), "{r:?}: {reason:?}")
            }
            other => panic!("{r:?}: {other:?}"),
        }
    }
}

#[test]
fn extended_mode_is_refused() {
    // RE2 has no `x` flag. Honoured here, `#` would start a comment that
    // swallows the `)$` of `^(?:...)$`: `(?x)/a#c` then fails to compile,
    // and with a newline after the comment the anchoring is lost outright.
    for r in [
        "(?x)/a#c",
        "(?x)/a#c\n",
        "(?x)a b",
        "(?ix)A",
        "(?i-x)a",
        "(?-x)a",
        "a(?x)",
        "(?x:a b)",
        "(?i)(?s:(?x: a))",
        "b|(?x)a",
    ] {
        assert_eq!(
            CompiledHeaderMatcher::compile(&hm("x", safe_regex(r))).err(),
            Some(MatcherError::ExtendedMode),
            "{r:?}"
        );
    }
    assert_eq!(
        MatcherError::ExtendedMode.to_string(),
        "the x flag is not supported: RE2 has no extended mode"
    );
    // An `x` that is not a flag: literals, escapes, classes, group names.
    for r in [r"\(?x\)", "[(?x)]", "(?i)x", "(?P<x>a)", "(?s:x)", "(x)"] {
        assert!(
            CompiledHeaderMatcher::compile(&hm("x", safe_regex(r))).is_ok(),
            "{r:?}"
        );
    }
}

#[test]
fn name_is_lowercased() {
    let c = CompiledHeaderMatcher::compile(&hm("X-Foo", None)).unwrap();
    assert_eq!(c.name(), "x-foo");
}

#[test]
fn identical_patterns_share_one_compiled_regex() {
    let a = super::pattern::compile("/shared/[0-9]+").unwrap();
    let b = super::pattern::compile("/shared/[0-9]+").unwrap();
    assert!(std::sync::Arc::ptr_eq(&a, &b));
    let c = super::pattern::compile("/other/[0-9]+").unwrap();
    assert!(!std::sync::Arc::ptr_eq(&a, &c));
    // Still anchored, still the same semantics.
    assert_eq!(a.is_match(b"/shared/42"), Some(true));
    assert_eq!(a.is_match(b"/shared/42/x"), Some(false));
}

#[test]
fn a_regex_that_cannot_be_built_fails_closed_even_inverted() {
    for invert in [false, true] {
        let m = CompiledHeaderMatcher {
            name: ":path".into(),
            key: HeaderKey::Path,
            kind: Kind::Regex(super::pattern::tests::unbuildable()),
            invert,
            treat_missing_as_empty: true,
        };
        assert!(!m.matches(&get_root(&HeaderMap::new())), "invert {invert}");
    }
}
