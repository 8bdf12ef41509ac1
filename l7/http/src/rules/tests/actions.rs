//! The per-`HeaderMatch` action table, one request per case, checked
//! against cilium-envoy's `HeaderMatch::allowed`.

use super::*;

struct Case {
    spec: HeaderMatchSpec,
    request: Vec<(&'static str, &'static str)>,
    allowed: bool,
    after: Vec<&'static str>,
    missing: Vec<(&'static str, &'static str)>,
    rejected: Vec<(&'static str, &'static str)>,
}

#[test]
fn header_match_actions_follow_cilium() {
    use MatchAction as M;
    use MismatchAction as X;
    let c = |spec, request, allowed, after, missing, rejected| Case {
        spec,
        request,
        allowed,
        after,
        missing,
        rejected,
    };
    let cases = vec![
        // Match actions.
        c(
            inline("x-t", "v", M::Continue, X::Fail),
            vec![("x-t", "v")],
            true,
            vec!["v"],
            vec![],
            vec![],
        ),
        c(
            inline("x-t", "v", M::Fail, X::Continue),
            vec![("x-t", "v")],
            false,
            vec!["v"],
            vec![],
            vec![("x-t", "v")],
        ),
        c(
            inline("x-t", "v", M::Delete, X::Fail),
            vec![("x-t", "v")],
            true,
            vec![],
            vec![],
            vec![("x-t", "v")],
        ),
        // Mismatch actions, header absent.
        c(
            inline("x-t", "v", M::Continue, X::Fail),
            vec![],
            false,
            vec![],
            vec![("x-t", "v")],
            vec![],
        ),
        c(
            inline("x-t", "v", M::Continue, X::Continue),
            vec![],
            true,
            vec![],
            vec![("x-t", "v")],
            vec![],
        ),
        c(
            inline("x-t", "v", M::Continue, X::Add),
            vec![],
            true,
            vec!["v"],
            vec![("x-t", "v")],
            vec![],
        ),
        c(
            inline("x-t", "v", M::Continue, X::Delete),
            vec![],
            true,
            vec![],
            vec![],
            vec![],
        ),
        c(
            inline("x-t", "v", M::Continue, X::Replace),
            vec![],
            true,
            vec!["v"],
            vec![("x-t", "v")],
            vec![],
        ),
        // Mismatch actions, wrong value.
        c(
            inline("x-t", "v", M::Continue, X::Fail),
            vec![("x-t", "w")],
            false,
            vec!["w"],
            vec![("x-t", "v")],
            vec![],
        ),
        c(
            inline("x-t", "v", M::Continue, X::Add),
            vec![("x-t", "w")],
            true,
            vec!["w", "v"],
            vec![("x-t", "v")],
            vec![],
        ),
        c(
            inline("x-t", "v", M::Continue, X::Delete),
            vec![("x-t", "w")],
            true,
            vec![],
            vec![],
            vec![("x-t", "w")],
        ),
        c(
            inline("x-t", "v", M::Continue, X::Replace),
            vec![("x-t", "w"), ("x-t", "z")],
            true,
            vec!["v"],
            vec![("x-t", "v")],
            vec![("x-t", "w,z")],
        ),
        // Values compare against all values joined with ','.
        c(
            inline("x-t", "a,b", M::Continue, X::Fail),
            vec![("x-t", "a"), ("x-t", "b")],
            true,
            vec!["a", "b"],
            vec![],
            vec![],
        ),
        c(
            inline("x-t", "a", M::Continue, X::Fail),
            vec![("x-t", "a"), ("x-t", "b")],
            false,
            vec!["a", "b"],
            vec![("x-t", "a")],
            vec![],
        ),
        // Comparison is case-sensitive on values, insensitive on names.
        c(
            inline("X-T", "V", M::Continue, X::Fail),
            vec![("x-t", "v")],
            false,
            vec!["v"],
            vec![("x-t", "V")],
            vec![],
        ),
        // Empty value: presence check.
        c(
            inline("x-t", "", M::Continue, X::Fail),
            vec![("x-t", "anything")],
            true,
            vec!["anything"],
            vec![],
            vec![],
        ),
        c(
            inline("x-t", "", M::Fail, X::Continue),
            vec![("x-t", "")],
            false,
            vec![""],
            vec![],
            vec![("x-t", "")],
        ),
        c(
            inline("x-t", "", M::Continue, X::Fail),
            vec![],
            false,
            vec![],
            vec![("x-t", "")],
            vec![],
        ),
        c(
            inline("x-t", "", M::Continue, X::Add),
            vec![],
            true,
            vec![""],
            vec![("x-t", "")],
            vec![],
        ),
        c(
            inline("x-t", "", M::Continue, X::Delete),
            vec![],
            true,
            vec![],
            vec![],
            vec![],
        ),
        // Secret-backed: compared with the secret, logged redacted.
        c(
            secret("x-t", "tok", M::Continue, X::Fail),
            vec![("x-t", "s3cret")],
            true,
            vec!["s3cret"],
            vec![],
            vec![],
        ),
        c(
            secret("x-t", "tok", M::Continue, X::Fail),
            vec![("x-t", "guess")],
            false,
            vec!["guess"],
            vec![("x-t", REDACTED)],
            vec![],
        ),
        c(
            secret("x-t", "tok", M::Fail, X::Continue),
            vec![("x-t", "s3cret")],
            false,
            vec!["s3cret"],
            vec![],
            vec![("x-t", REDACTED)],
        ),
        c(
            secret("x-t", "tok", M::Continue, X::Replace),
            vec![("x-t", "guess")],
            true,
            vec!["s3cret"],
            vec![("x-t", REDACTED)],
            vec![("x-t", REDACTED)],
        ),
        c(
            secret("x-t", "tok", M::Continue, X::Add),
            vec![],
            true,
            vec!["s3cret"],
            vec![("x-t", REDACTED)],
            vec![],
        ),
        c(
            secret("x-t", "tok", M::Continue, X::Delete),
            vec![("x-t", "guess")],
            true,
            vec![],
            vec![],
            vec![("x-t", REDACTED)],
        ),
        // Unknown or empty secrets fail closed, without touching the request.
        c(
            secret("x-t", "nope", M::Continue, X::Replace),
            vec![("x-t", "w")],
            false,
            vec!["w"],
            vec![("x-t", REDACTED)],
            vec![],
        ),
        c(
            secret("x-t", "nope", M::Continue, X::Continue),
            vec![("x-t", "w")],
            false,
            vec!["w"],
            vec![("x-t", REDACTED)],
            vec![],
        ),
        c(
            secret("x-t", "empty", M::Continue, X::Fail),
            vec![("x-t", "")],
            false,
            vec![""],
            vec![("x-t", REDACTED)],
            vec![],
        ),
        // A secret that cannot be a header value is never written.
        c(
            secret("x-t", "crlf", M::Continue, X::Add),
            vec![],
            false,
            vec![],
            vec![("x-t", REDACTED)],
            vec![],
        ),
    ];
    for (i, case) in cases.into_iter().enumerate() {
        let rules = only_header_matches(vec![case.spec.clone()]);
        assert!(rules.has_header_matches());
        let mut h = header_map(&case.request);
        let (allowed, log) = run(&rules, "GET", "/", &mut h);
        let ctx = format!("case {i}: {:?} on {:?}", case.spec, case.request);
        assert_eq!(allowed, case.allowed, "{ctx}");
        assert_eq!(values(&h, "x-t"), case.after, "{ctx}");
        assert_eq!(log.missing, pairs(&case.missing), "{ctx}");
        assert_eq!(log.rejected, pairs(&case.rejected), "{ctx}");
    }
}
