//! What a judged request becomes on its way upstream: the rules that keep
//! what the origin receives equal to what was judged.
//!
//! The proxy applies these before policy looks at a request (hop-by-hop
//! headers, the `Host` of an absolute-form target, HTTP/2's `:authority`
//! against `host`) and after (which `101` may be relayed). Pure functions
//! over `http` types; no I/O.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Version};
use smallvec::SmallVec;

/// Why a request cannot be forwarded as it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ForwardError {
    #[error("more than one host header")]
    MultipleHost,
    #[error(":authority and host disagree")]
    AuthorityHostMismatch,
    #[error("userinfo in the request target")]
    UserinfoInTarget,
    #[error("request target authority is not a valid Host value")]
    InvalidAuthority,
    #[error("more than one Upgrade header")]
    MultipleUpgrade,
    /// `Connection` names a header the request is judged on or framed by.
    #[error("Connection header names {0}")]
    ProtectedHeaderNamed(&'static str),
}

/// RFC 9113 8.3.1: `:authority` and `Host` must name the same thing, and a
/// request carries one `Host` at most; otherwise one would be judged and
/// the origin could act on the other.
pub fn check_h2_authority<B>(req: &Request<B>) -> Result<(), ForwardError> {
    let mut hosts = req.headers().get_all(header::HOST).iter();
    let host = hosts.next();
    if hosts.next().is_some() {
        return Err(ForwardError::MultipleHost);
    }
    match (req.uri().authority(), host) {
        (Some(authority), Some(host))
            if !authority
                .as_str()
                .as_bytes()
                .eq_ignore_ascii_case(host.as_bytes()) =>
        {
            Err(ForwardError::AuthorityHostMismatch)
        }
        _ => Ok(()),
    }
}

/// The HTTP/2 header list size as RFC 9113 6.5.2 counts it (each field's
/// name and value plus 32), pseudo-headers included.
pub fn header_list_size<B>(req: &Request<B>) -> usize {
    let uri = req.uri();
    let pseudo = [
        req.method().as_str().len() + 7,
        uri.path_and_query().map_or(1, |p| p.as_str().len()) + 5,
        uri.authority().map_or(0, |a| a.as_str().len()) + 10,
        uri.scheme_str().map_or(0, str::len) + 7,
    ];
    pseudo.iter().map(|n| n + 32).sum::<usize>()
        + req
            .headers()
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len() + 32)
            .sum::<usize>()
}

/// An absolute-form target (`GET http://a.example/x`) is judged on its
/// authority, so that is the `Host` the origin gets (RFC 9112 3.2.2: the
/// target's authority replaces `Host`), HTTP/1.0 requests without a `Host`
/// included. A target with userinfo is refused (RFC 9110 4.2.4).
pub fn host_from_target<B>(req: &mut Request<B>) -> Result<(), ForwardError> {
    let Some(authority) = req.uri().authority() else {
        return Ok(());
    };
    if authority.as_str().contains('@') {
        return Err(ForwardError::UserinfoInTarget);
    }
    let host =
        HeaderValue::from_str(authority.as_str()).map_err(|_| ForwardError::InvalidAuthority)?;
    req.headers_mut().insert(header::HOST, host);
    Ok(())
}

/// The protocol list of a request's `Upgrade`, one token at a time.
pub fn upgrade_tokens(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|t| !t.is_empty())
}

/// The upgrade to relay: `Some(protocols)` when an HTTP/1.1 request asks
/// for one (`Connection: upgrade` and `Upgrade`) and every protocol it
/// names is allowed. Any other `Upgrade` is dropped with the hop-by-hop
/// headers and the request goes on as a plain one.
pub fn requested_upgrade<B>(
    req: &Request<B>,
    allowed: impl Fn(&str) -> bool,
) -> Result<Option<String>, ForwardError> {
    let mut values = req.headers().get_all(header::UPGRADE).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(ForwardError::MultipleUpgrade);
    }
    let asked = req.version() == Version::HTTP_11
        && connection_tokens(req.headers()).any(|t| t.eq_ignore_ascii_case("upgrade"));
    let Ok(value) = value.to_str() else {
        return Ok(None);
    };
    let allowed =
        asked && upgrade_tokens(value).next().is_some() && upgrade_tokens(value).all(allowed);
    Ok(allowed.then(|| value.to_owned()))
}

/// The protocol a 101 response switched to.
pub fn switched_to(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

fn connection_tokens(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|s| s.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Headers a `Connection` token may not remove: the authority the request
/// is judged on and its body framing. Such a request is refused.
const PROTECTED: [&str; 3] = ["host", "content-length", "transfer-encoding"];

/// Removes a request's hop-by-hop headers (RFC 9110 7.6.1), including those
/// `Connection` names; keeps `Connection: upgrade` + `Upgrade` when an
/// allowed upgrade is relayed, and `te: trailers` (gRPC needs it). Runs
/// before the request is judged.
pub fn strip_request_hop_by_hop(
    headers: &mut HeaderMap,
    keep_upgrade: bool,
) -> Result<(), ForwardError> {
    if let Some(p) = connection_tokens(headers)
        .find_map(|t| PROTECTED.iter().find(|p| t.eq_ignore_ascii_case(p)))
    {
        return Err(ForwardError::ProtectedHeaderNamed(p));
    }
    for name in &hop_by_hop(headers, keep_upgrade) {
        headers.remove(name);
    }
    if keep_upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    }
    Ok(())
}

/// The same for a response that is not an upgrade; nothing is protected.
pub fn strip_response_hop_by_hop(headers: &mut HeaderMap) {
    for name in &hop_by_hop(headers, false) {
        headers.remove(name);
    }
}

/// The hop-by-hop headers present. One pass over the names picks them, and
/// only those are removed (a hashed removal per possible hop-by-hop name
/// cost more than the rest of the header handling).
fn hop_by_hop(headers: &HeaderMap, keep_upgrade: bool) -> SmallVec<[HeaderName; 4]> {
    let named: SmallVec<[&str; 4]> = connection_tokens(headers).collect();
    let te_trailers_only = headers
        .get(header::TE)
        .is_none_or(|v| v.as_bytes().eq_ignore_ascii_case(b"trailers"));
    headers
        .keys()
        .filter(|name| {
            let name = name.as_str();
            if keep_upgrade && (name == "upgrade" || name == "connection") {
                // `Connection` is rewritten by the caller.
                return false;
            }
            match name {
                "connection"
                | "upgrade"
                | "http2-settings"
                | "keep-alive"
                | "proxy-connection"
                | "proxy-authenticate"
                | "proxy-authorization"
                | "transfer-encoding" => true,
                _ if named.iter().any(|t| t.eq_ignore_ascii_case(name)) => true,
                "te" => !te_trailers_only,
                _ => false,
            }
        })
        .cloned()
        .collect()
}

/// Whether a `101` switched to a protocol the request asked for (`asked`,
/// as [`requested_upgrade`] returned it).
pub fn upgrade_agreed(asked: &str, response: &HeaderMap) -> bool {
    switched_to(response)
        .is_some_and(|got| upgrade_tokens(asked).any(|t| t.eq_ignore_ascii_case(got)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        // Collecting appends, so repeated names keep every value.
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    HeaderName::try_from(*k).unwrap(),
                    HeaderValue::try_from(*v).unwrap(),
                )
            })
            .collect()
    }

    fn names(h: &HeaderMap) -> Vec<String> {
        let mut v: Vec<String> = h
            .iter()
            .map(|(k, v)| format!("{k}: {}", v.to_str().unwrap()))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn hop_by_hop_headers_are_stripped() {
        let mut h = headers(&[
            ("host", "a"),
            ("connection", "keep-alive, X-Secret"),
            ("keep-alive", "timeout=5"),
            ("x-secret", "1"),
            ("x-kept", "2"),
            ("transfer-encoding", "chunked"),
            ("proxy-authorization", "basic x"),
            ("proxy-connection", "close"),
            ("upgrade", "websocket"),
            ("te", "trailers"),
        ]);
        strip_request_hop_by_hop(&mut h, false).unwrap();
        assert_eq!(names(&h), ["host: a", "te: trailers", "x-kept: 2"]);

        // A TE other than "trailers" goes; so does one `Connection` names.
        let mut h = headers(&[("te", "gzip"), ("x", "1")]);
        strip_request_hop_by_hop(&mut h, false).unwrap();
        assert_eq!(names(&h), ["x: 1"]);
        let mut h = headers(&[("connection", "TE"), ("te", "trailers")]);
        strip_request_hop_by_hop(&mut h, false).unwrap();
        assert!(h.is_empty());

        // Nothing hop-by-hop: untouched.
        let mut h = headers(&[("content-length", "3"), ("x", "1"), ("x", "2")]);
        strip_request_hop_by_hop(&mut h, false).unwrap();
        assert_eq!(names(&h), ["content-length: 3", "x: 1", "x: 2"]);
    }

    #[test]
    fn an_upgrade_keeps_upgrade_and_says_so_in_connection() {
        let mut h = headers(&[
            ("connection", "Upgrade, x-hop"),
            ("upgrade", "websocket"),
            ("x-hop", "1"),
            ("keep-alive", "timeout=5"),
            ("sec-websocket-key", "k"),
        ]);
        strip_request_hop_by_hop(&mut h, true).unwrap();
        assert_eq!(
            names(&h),
            [
                "connection: upgrade",
                "sec-websocket-key: k",
                "upgrade: websocket"
            ]
        );
    }

    #[test]
    fn connection_may_not_name_what_is_judged_or_framed() {
        for named in ["Host", "content-length", "Transfer-Encoding"] {
            let mut h = headers(&[("host", "a"), ("connection", &format!("close, {named}"))]);
            let err = strip_request_hop_by_hop(&mut h, false).unwrap_err();
            assert!(
                err.to_string().contains(&named.to_ascii_lowercase()),
                "{err}"
            );
        }
        // HTTP2-Settings goes even when `Connection` does not name it.
        let mut h = headers(&[
            ("host", "a"),
            ("http2-settings", "AAMA"),
            ("upgrade", "h2c"),
        ]);
        strip_request_hop_by_hop(&mut h, false).unwrap();
        assert_eq!(names(&h), ["host: a"]);
    }

    fn request(version: Version, uri: &str, pairs: &[(&str, &str)]) -> Request<()> {
        let mut req = Request::builder()
            .version(version)
            .uri(uri)
            .body(())
            .unwrap();
        *req.headers_mut() = headers(pairs);
        req
    }

    #[test]
    fn only_allowed_upgrades_are_relayed() {
        let allowed = |t: &str| t.eq_ignore_ascii_case("websocket");
        let up = |version, pairs: &[(&str, &str)]| {
            requested_upgrade(&request(version, "/", pairs), allowed)
        };
        let ws = [("connection", "Upgrade"), ("upgrade", "WebSocket")];
        assert_eq!(up(Version::HTTP_11, &ws), Ok(Some("WebSocket".into())));
        assert_eq!(up(Version::HTTP_10, &ws), Ok(None));
        for value in ["h2c", "websocket, h2c", "", "foo"] {
            let pairs = [("connection", "upgrade"), ("upgrade", value)];
            assert_eq!(up(Version::HTTP_11, &pairs), Ok(None), "{value}");
        }
        // `Upgrade` without `Connection: upgrade` asks for nothing.
        assert_eq!(up(Version::HTTP_11, &[("upgrade", "websocket")]), Ok(None));
        assert_eq!(
            up(
                Version::HTTP_11,
                &[("upgrade", "websocket"), ("upgrade", "h2c")]
            ),
            Err(ForwardError::MultipleUpgrade)
        );
        // A 101 must switch to what was asked for.
        let switched = |to: &str| headers(&[("upgrade", to)]);
        assert!(upgrade_agreed("websocket", &switched("WebSocket")));
        assert!(!upgrade_agreed("websocket", &switched("h2c")));
        assert!(!upgrade_agreed("websocket", &HeaderMap::new()));
    }

    #[test]
    fn h2_authority_checks() {
        let ok = |uri, pairs: &[(&str, &str)]| {
            check_h2_authority(&request(Version::HTTP_2, uri, pairs)).is_ok()
        };
        assert!(ok("http://a.example/", &[]));
        assert!(ok("http://a.example/", &[("host", "A.example")]));
        assert!(ok("/", &[("host", "a.example")]));
        assert!(!ok("http://a.example/", &[("host", "b.example")]));
        assert!(!ok("/", &[("host", "a.example"), ("host", "a.example")]));
    }

    #[test]
    fn absolute_form_sets_host() {
        let mut req = request(
            Version::HTTP_11,
            "http://a.example:8080/x",
            &[("host", "b")],
        );
        host_from_target(&mut req).unwrap();
        assert_eq!(req.headers()[header::HOST], "a.example:8080");
        let mut req = request(Version::HTTP_10, "http://a.example/x", &[]);
        host_from_target(&mut req).unwrap();
        assert_eq!(req.headers()[header::HOST], "a.example");
        let mut req = request(
            Version::HTTP_11,
            "http://u@a.example/x",
            &[("host", "a.example")],
        );
        assert!(host_from_target(&mut req).is_err());
        let mut req = request(Version::HTTP_11, "/x", &[("host", "b")]);
        host_from_target(&mut req).unwrap();
        assert_eq!(req.headers()[header::HOST], "b");
    }
}
