//! Policies the `cnp_parse_translate` fuzz target found the translator
//! accepting and the proxy's compiler then refusing (reproducers in
//! `fuzz/artifacts-found/cnp_parse_translate/`). Each is now refused by the
//! translator, with an error naming the file, policy and field.

use std::path::Path;

use super::{cnp, run};
use crate::parse_file;

/// A CNP named `c` with one ingress rule on TCP port 80 carrying `http`.
fn http_policy(http: &str) -> String {
    format!(
        "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {{name: c}}\nspec:\n  endpointSelector: {{}}\n  ingress:\n  - toPorts:\n    - ports: [{{port: \"80\", protocol: TCP}}]\n      rules:\n        http:\n        - {http}\n"
    )
}

fn refused(yaml: &str) -> String {
    parse_file(Path::new("f.yaml"), yaml)
        .expect_err("the translator must refuse this policy")
        .to_string()
}

const AT: &str = "f.yaml: CiliumNetworkPolicy \"c\": spec.ingress[0].toPorts[0].rules.http[0].";

#[test]
fn header_match_mutates_pseudo_header() {
    let yaml = http_policy(r#"headerMatches: [{name: ":authority", value: v, mismatch: REPLACE}]"#);
    assert_eq!(
        refused(&yaml),
        format!(
            "{AT}headerMatches[0].mismatch: :authority: pseudo-header or host cannot be modified \
             (match_action Continue, mismatch_action Replace)"
        )
    );
    // Every mutating action, on every name the proxy cannot rewrite.
    for name in [":authority", "Host", ":method", ":path"] {
        for action in ["ADD", "DELETE", "REPLACE"] {
            let yaml = http_policy(&format!(
                r#"headerMatches: [{{name: "{name}", value: v, mismatch: {action}}}]"#
            ));
            let err = refused(&yaml);
            assert!(
                err.starts_with(&format!("{AT}headerMatches[0].mismatch: ")),
                "{err}"
            );
            assert!(
                err.contains("pseudo-header or host cannot be modified"),
                "{err}"
            );
        }
    }
}

#[test]
fn header_match_name_not_a_token_fuzzer_min() {
    // The fuzzer's own input, byte for byte (`specs`, a bare CR in a plain
    // scalar, which YAML folds into a space: the name is `x d`).
    let yaml = "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: c}\nspecs:\n\
                - endpointSelector:\n   matchExpressions:\n  ingress:\n  - toPorts:\n    - ports:\n      \
                - {port: 8,protocol: TCP}\n      rules:\n       http:\n       - headerMatches:\n         \
                - {name: x\rd,mismatch: REPLACE}";
    assert_eq!(
        refused(yaml),
        "f.yaml: CiliumNetworkPolicy \"c\": specs[0].ingress[0].toPorts[0].rules.http[0].\
         headerMatches[0].name: invalid header name \"x d\""
    );
}

#[test]
fn header_match_name_not_a_token() {
    let yaml = http_policy(r#"headerMatches: [{name: "x d", value: v, mismatch: LOG}]"#);
    assert_eq!(
        refused(&yaml),
        format!("{AT}headerMatches[0].name: invalid header name \"x d\"")
    );
    // A CR is refused even where the match becomes an Envoy matcher.
    let yaml = http_policy(r#"headerMatches: [{name: "x\rd", value: v}]"#);
    assert_eq!(
        refused(&yaml),
        format!("{AT}headerMatches[0].name: header name contains NUL, CR or LF")
    );
}

#[test]
fn header_match_value_not_a_header_value() {
    let yaml = http_policy(r#"headerMatches: [{name: x-a, value: "a\nb", mismatch: ADD}]"#);
    assert_eq!(
        refused(&yaml),
        format!("{AT}headerMatches[0].value: x-a: value is not a valid header value")
    );
    let yaml = http_policy(r#"headerMatches: [{name: x-a, value: "a\rb", mismatch: REPLACE}]"#);
    assert_eq!(
        refused(&yaml),
        format!("{AT}headerMatches[0].value: x-a: value is not a valid header value")
    );
}

#[test]
fn headers_name_with_cr() {
    let yaml = http_policy(r#"headers: ["a\rb"]"#);
    assert_eq!(
        refused(&yaml),
        format!("{AT}headers[0]: header name contains NUL, CR or LF")
    );
    // The index is the CNP one, not the position in the sorted wire headers.
    let yaml = http_policy(r#"{path: /p, headers: [z-ok, "a\nb: v"]}"#);
    assert_eq!(
        refused(&yaml),
        format!("{AT}headers[1]: header name contains NUL, CR or LF")
    );
}

#[test]
fn regex_extended_mode_comment() {
    let yaml = http_policy(r#"path: "(?x)/a#c""#);
    assert_eq!(
        refused(&yaml),
        format!(
            "{AT}path: invalid regular expression \"(?x)/a#c\": \
             the x flag is not supported: RE2 has no extended mode"
        )
    );
    let yaml = http_policy(r#"{method: GET, host: "(?ix:a . b)"}"#);
    assert_eq!(
        refused(&yaml),
        format!(
            "{AT}host: invalid regular expression \"(?ix:a . b)\": \
             the x flag is not supported: RE2 has no extended mode"
        )
    );
}

#[test]
fn regex_over_proxy_size_limit() {
    let yaml = http_policy(r#"path: "/a{40000}""#);
    assert_eq!(
        refused(&yaml),
        format!(
            "{AT}path: invalid regular expression \"/a{{40000}}\": \
             regex exceeds the program size limit (32768)"
        )
    );
}

#[test]
fn near_misses_are_accepted_and_compile() {
    // Read-only checks on pseudo-headers, names that are tokens, values that
    // are header values, and a regex just under the limit: accepted, and
    // what the translator emits the proxy compiles.
    let inv = "endpoints: [{id: 1, ips: [10.0.0.1], labels: {app: web}}]";
    let spec = r#"endpointSelector: {}
ingress:
- toPorts:
  - ports: [{port: "80", protocol: TCP}]
    rules:
      http:
      - headerMatches:
        - {name: ":authority", value: v, mismatch: LOG}
        - {name: Host, value: v}
        - {name: "x d", value: v}
        - {name: x-a, value: "a b\tc", mismatch: ADD}
        - {name: x-b, value: "a\nb", mismatch: LOG}
      - {path: "/a{100}", method: "(?i)get", headers: ["X-Ok", "x-v: a b"]}
"#;
    let t = run(inv, &cnp("default", spec));
    npds::PolicySnapshot::compile("1", t.network_policies.clone(), None).expect("npds compiles");
}
