//! Local replies, all built here: the policy deny, and every error the
//! proxy answers itself ([`error_response`]; [`error_response_h1`] is the
//! same reply as raw HTTP/1.1 bytes, for a socket hyper no longer reads).
//!
//! The deny mirrors cilium-envoy: its `cilium.l7policy` filter calls
//! Envoy's `sendLocalReply(403, "Access denied\r\n")`. For a plain HTTP
//! request Envoy answers `403` with that body as `text/plain`. For a gRPC
//! request it answers a trailers-only `200` with `content-type:
//! application/grpc`, `grpc-status: 7` (PERMISSION_DENIED, Envoy's mapping of
//! 403) and the body as `grpc-message`, percent-encoded with Envoy's
//! `PercentEncoding::encode`: bytes outside `0x20..0x7E` plus `%` and `~` are
//! escaped, space is not. So the message is `Access denied%0D%0A`, which a
//! gRPC client decodes back to the body text.

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderMap, HeaderName, HeaderValue, Response, StatusCode};

/// Body of the policy deny, as cilium-envoy sends it (15 bytes).
pub const ACCESS_DENIED_BODY: &str = "Access denied\r\n";

const GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");
const GRPC_MESSAGE: HeaderName = HeaderName::from_static("grpc-message");
/// gRPC PERMISSION_DENIED.
const GRPC_PERMISSION_DENIED: &str = "7";

/// Whether the request is gRPC, by Envoy's rule (`Grpc::Common::
/// hasGrpcContentType`): content-type `application/grpc` exactly or
/// followed by `+` (`application/grpc+proto`). `application/grpc-web*` is
/// not gRPC — Envoy needs its grpc_web filter, absent from Cilium's chain,
/// to speak it — so grpc-web clients get the plain 403. Unlike Envoy the
/// comparison ignores ASCII case, as media types are case-insensitive.
pub fn is_grpc(headers: &HeaderMap) -> bool {
    const GRPC: &[u8] = b"application/grpc";
    let Some(ct) = headers.get(CONTENT_TYPE) else {
        return false;
    };
    let ct = ct.as_bytes();
    match ct.get(..GRPC.len()) {
        Some(prefix) if prefix.eq_ignore_ascii_case(GRPC) => {
            matches!(ct.get(GRPC.len()), None | Some(b'+'))
        }
        _ => false,
    }
}

/// The policy deny: plain `403 Access denied\r\n`, or for gRPC a
/// trailers-only `200` with `grpc-status: 7` and an empty body, so hyper
/// sends a single HEADERS frame with END_STREAM.
pub fn deny_response(grpc: bool) -> Response<Bytes> {
    if grpc {
        let mut resp = Response::new(Bytes::new());
        let h = resp.headers_mut();
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
        h.insert(
            GRPC_STATUS,
            HeaderValue::from_static(GRPC_PERMISSION_DENIED),
        );
        h.insert(GRPC_MESSAGE, grpc_message(ACCESS_DENIED_BODY));
        return resp;
    }
    text_response(
        StatusCode::FORBIDDEN,
        Bytes::from_static(ACCESS_DENIED_BODY.as_bytes()),
    )
}

/// `status` with `reason` and CRLF as a `text/plain` body, e.g. for
/// [`crate::HygieneError::status`]. CR, LF and other control bytes in
/// `reason` are replaced by spaces so the body stays a single line.
pub fn error_response(status: StatusCode, reason: &str) -> Response<Bytes> {
    let mut body: Vec<u8> = reason
        .bytes()
        .map(|b| if b.is_ascii_control() { b' ' } else { b })
        .collect();
    body.extend_from_slice(b"\r\n");
    text_response(status, Bytes::from(body))
}

/// [`error_response`] serialized as an HTTP/1.1 response that closes the
/// connection, for a reply written straight to the socket.
pub fn error_response_h1(status: StatusCode, reason: &str) -> Vec<u8> {
    let resp = error_response(status, reason);
    let mut out = format!(
        "HTTP/1.1 {} {}\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    )
    .into_bytes();
    for (name, value) in resp.headers() {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"connection: close\r\n\r\n");
    out.extend_from_slice(resp.body());
    out
}

fn text_response(status: StatusCode, body: Bytes) -> Response<Bytes> {
    let len = body.len();
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    h.insert(CONTENT_LENGTH, HeaderValue::from(len));
    resp
}

/// Envoy's `PercentEncoding::encode` as used for `grpc-message`.
fn grpc_message(text: &str) -> HeaderValue {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = Vec::with_capacity(text.len() + 8);
    for &b in text.as_bytes() {
        // Envoy escapes `ch >= '~'`, so `~` itself too; kept for fidelity.
        if !(b' '..b'~').contains(&b) || b == b'%' {
            out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]]);
        } else {
            out.push(b);
        }
    }
    // Every byte is now printable ASCII, which is always a valid value.
    HeaderValue::from_bytes(&out).unwrap_or_else(|_| HeaderValue::from_static(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ct(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(CONTENT_TYPE, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn grpc_detection() {
        let cases = [
            ("application/grpc", true),
            ("application/grpc+proto", true),
            ("application/grpc+json", true),
            ("Application/GRPC", true),
            ("application/grpc-web", false),
            ("application/grpc-web+proto", false),
            ("application/grpc-web-text", false),
            ("application/grpcx", false),
            ("application/grpc; charset=utf-8", false),
            ("application/json", false),
            ("text/plain", false),
            ("", false),
        ];
        for (v, want) in cases {
            assert_eq!(is_grpc(&ct(v)), want, "{v:?}");
        }
        assert!(!is_grpc(&HeaderMap::new()));
    }

    #[test]
    fn plain_deny_is_cilium_403() {
        let r = deny_response(false);
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert_eq!(r.body().as_ref(), b"Access denied\r\n");
        assert_eq!(r.headers()[CONTENT_TYPE], "text/plain");
        assert_eq!(r.headers()[CONTENT_LENGTH], "15");
        assert_eq!(r.headers().len(), 2);
    }

    #[test]
    fn grpc_deny_is_trailers_only() {
        let r = deny_response(true);
        assert_eq!(r.status(), StatusCode::OK);
        assert!(r.body().is_empty());
        assert_eq!(r.headers()[CONTENT_TYPE], "application/grpc");
        assert_eq!(r.headers()["grpc-status"], "7");
        assert_eq!(r.headers()["grpc-message"], "Access denied%0D%0A");
        // A content-length would make hyper frame a DATA frame expectation.
        assert!(r.headers().get(CONTENT_LENGTH).is_none());
    }

    #[test]
    fn grpc_message_encoding_matches_envoy() {
        let cases = [
            ("Access denied", "Access denied"),
            ("50% off", "50%25 off"),
            ("a~b", "a%7Eb"),
            ("tab\there", "tab%09here"),
            ("é", "%C3%A9"),
            ("", ""),
        ];
        for (input, want) in cases {
            assert_eq!(grpc_message(input), want, "{input:?}");
        }
    }

    #[test]
    fn error_responses() {
        let r = error_response(StatusCode::BAD_REQUEST, "encoded slash in path");
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert_eq!(r.body().as_ref(), b"encoded slash in path\r\n");
        assert_eq!(r.headers()[CONTENT_LENGTH], "23");
        assert_eq!(r.headers()[CONTENT_TYPE], "text/plain");

        let r = error_response(StatusCode::NOT_IMPLEMENTED, "bad\r\nInjected: yes");
        assert_eq!(r.status(), StatusCode::NOT_IMPLEMENTED);
        assert_eq!(r.body().as_ref(), b"bad  Injected: yes\r\n");

        let raw = error_response_h1(StatusCode::BAD_REQUEST, "bad\nframing");
        assert_eq!(
            String::from_utf8(raw).unwrap(),
            "HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\ncontent-length: 13\r\nconnection: close\r\n\r\nbad framing\r\n"
        );
    }
}
