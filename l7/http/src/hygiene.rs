//! Request framing hygiene: refuse heads whose body framing or headers could
//! be read differently by the proxy and the upstream (request smuggling).
//!
//! Runs on a head hyper has already parsed, as a second line of defence:
//! hyper tolerates some shapes (e.g. a repeated identical Content-Length)
//! that an upstream might frame differently. The checks follow RFC 9112
//! sections 3.2 and 6 and RFC 9113 section 8.2.2, choosing "reject" where
//! the RFCs allow "reject or repair".

use http::header::{CONTENT_LENGTH, HOST, TE, TRANSFER_ENCODING};
use http::{HeaderMap, StatusCode, Version};

/// Why a request head was refused. [`HygieneError::status`] gives the
/// response status.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HygieneError {
    /// A header name contains NUL, CR or LF.
    #[error("header name {name:?} contains NUL, CR or LF")]
    InvalidHeaderName {
        /// The name, lossily decoded.
        name: String,
    },
    /// A header value contains NUL, CR or LF.
    #[error("value of header {name:?} contains NUL, CR or LF")]
    InvalidHeaderValue {
        /// The header name.
        name: String,
    },
    /// HTTP/2 and HTTP/3 forbid connection-specific headers.
    #[error("connection-specific header {name:?} is not allowed in HTTP/2 or HTTP/3")]
    ConnectionSpecificHeader {
        /// The header name.
        name: String,
    },
    /// HTTP/2 and HTTP/3 allow `te` only with the value `trailers`.
    #[error("te header other than \"trailers\" is not allowed in HTTP/2 or HTTP/3")]
    InvalidTe,
    /// HTTP/1.1 requires a Host header.
    #[error("HTTP/1.1 request without a Host header")]
    MissingHost,
    /// More than one Host header.
    #[error("more than one Host header")]
    MultipleHost,
    /// More than one Content-Length header, even with equal values.
    #[error("more than one Content-Length header")]
    MultipleContentLength,
    /// A Content-Length holding a list such as `5, 5`.
    #[error("Content-Length holds a list of values")]
    ContentLengthList,
    /// A Content-Length that is not a decimal number fitting in 64 bits.
    #[error("Content-Length is not a non-negative decimal number")]
    InvalidContentLength,
    /// Transfer-Encoding in an HTTP/1.0 request.
    #[error("Transfer-Encoding in an HTTP/1.0 request")]
    TransferEncodingHttp10,
    /// Both Transfer-Encoding and Content-Length.
    #[error("both Transfer-Encoding and Content-Length are present")]
    TransferEncodingWithContentLength,
    /// An empty, non-token or parameterized Transfer-Encoding element.
    #[error("malformed Transfer-Encoding")]
    MalformedTransferEncoding,
    /// `chunked` present but not the final coding.
    #[error("chunked is not the final transfer coding")]
    ChunkedNotFinal,
    /// `chunked` applied more than once.
    #[error("chunked transfer coding applied more than once")]
    RepeatedChunked,
    /// Any transfer coding other than `chunked` (answered with 501).
    #[error("unsupported transfer coding {coding:?}")]
    UnsupportedTransferCoding {
        /// The coding as sent.
        coding: String,
    },
}

impl HygieneError {
    /// 501 Not Implemented for a transfer coding we do not implement (RFC
    /// 9112 section 6.1); 400 Bad Request for everything else.
    pub fn status(&self) -> StatusCode {
        match self {
            HygieneError::UnsupportedTransferCoding { .. } => StatusCode::NOT_IMPLEMENTED,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// Checks a parsed request head; `Ok` means its framing is unambiguous.
pub fn check_request_head(version: Version, headers: &HeaderMap) -> Result<(), HygieneError> {
    check_bytes(headers)?;
    let h2_or_h3 = version == Version::HTTP_2 || version == Version::HTTP_3;
    if h2_or_h3 {
        check_connection_specific(headers)?;
    } else {
        let hosts = headers.get_all(HOST).iter().count();
        if hosts > 1 {
            return Err(HygieneError::MultipleHost);
        }
        if hosts == 0 && version == Version::HTTP_11 {
            return Err(HygieneError::MissingHost);
        }
    }
    check_content_length(headers)?;
    if headers.contains_key(TRANSFER_ENCODING) {
        // HTTP/1.0 has no chunked framing; HTTP/2+ was refused above.
        if version < Version::HTTP_11 {
            return Err(HygieneError::TransferEncodingHttp10);
        }
        if headers.contains_key(CONTENT_LENGTH) {
            return Err(HygieneError::TransferEncodingWithContentLength);
        }
        check_transfer_encoding(headers)?;
    }
    Ok(())
}

fn has_nul_cr_lf(bytes: &[u8]) -> bool {
    bytes.iter().any(|&b| matches!(b, 0 | b'\r' | b'\n'))
}

fn check_bytes(headers: &HeaderMap) -> Result<(), HygieneError> {
    // The `http` types already refuse these bytes on the safe constructors;
    // this catches values built through the unchecked ones.
    for (name, value) in headers {
        if has_nul_cr_lf(name.as_str().as_bytes()) {
            return Err(HygieneError::InvalidHeaderName {
                name: name.as_str().to_owned(),
            });
        }
        if has_nul_cr_lf(value.as_bytes()) {
            return Err(HygieneError::InvalidHeaderValue {
                name: name.as_str().to_owned(),
            });
        }
    }
    Ok(())
}

fn check_connection_specific(headers: &HeaderMap) -> Result<(), HygieneError> {
    const FORBIDDEN: [&str; 5] = [
        "connection",
        "transfer-encoding",
        "keep-alive",
        "upgrade",
        "proxy-connection",
    ];
    for name in FORBIDDEN {
        if headers.contains_key(name) {
            return Err(HygieneError::ConnectionSpecificHeader {
                name: name.to_owned(),
            });
        }
    }
    for te in headers.get_all(TE) {
        if !te.as_bytes().eq_ignore_ascii_case(b"trailers") {
            return Err(HygieneError::InvalidTe);
        }
    }
    Ok(())
}

fn check_content_length(headers: &HeaderMap) -> Result<(), HygieneError> {
    let mut values = headers.get_all(CONTENT_LENGTH).iter();
    let Some(value) = values.next() else {
        return Ok(());
    };
    if values.next().is_some() {
        return Err(HygieneError::MultipleContentLength);
    }
    let bytes = value.as_bytes();
    if bytes.contains(&b',') {
        return Err(HygieneError::ContentLengthList);
    }
    let valid = !bytes.is_empty()
        && bytes.iter().all(u8::is_ascii_digit)
        && std::str::from_utf8(bytes)
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .is_some();
    if !valid {
        return Err(HygieneError::InvalidContentLength);
    }
    Ok(())
}

/// RFC 9110 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn check_transfer_encoding(headers: &HeaderMap) -> Result<(), HygieneError> {
    // Codings across all Transfer-Encoding lines form one list, in order.
    let mut codings: Vec<&[u8]> = Vec::with_capacity(1);
    for value in headers.get_all(TRANSFER_ENCODING) {
        for element in value.as_bytes().split(|&b| b == b',') {
            let coding = element.trim_ascii();
            if coding.is_empty() || !coding.iter().all(|&b| is_tchar(b)) {
                return Err(HygieneError::MalformedTransferEncoding);
            }
            codings.push(coding);
        }
    }
    let is_chunked = |c: &[u8]| c.eq_ignore_ascii_case(b"chunked");
    let chunked = codings.iter().filter(|c| is_chunked(c)).count();
    let last_is_chunked = codings.last().is_some_and(|c| is_chunked(c));
    // RFC 9112 6.3: chunked not last leaves the length undeterminable: 400.
    if chunked > 0 && !last_is_chunked {
        return Err(HygieneError::ChunkedNotFinal);
    }
    if let Some(other) = codings.iter().find(|c| !is_chunked(c)) {
        return Err(HygieneError::UnsupportedTransferCoding {
            coding: String::from_utf8_lossy(other).into_owned(),
        });
    }
    if chunked > 1 {
        return Err(HygieneError::RepeatedChunked);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderName, HeaderValue};

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        m
    }

    const H: (&str, &str) = ("host", "example.com");

    #[test]
    fn accepts_clean_heads() {
        let cases: &[(Version, &[(&str, &str)])] = &[
            (Version::HTTP_11, &[H]),
            (Version::HTTP_11, &[H, ("content-length", "0")]),
            (Version::HTTP_11, &[H, ("content-length", "0042")]),
            (Version::HTTP_11, &[H, ("transfer-encoding", "chunked")]),
            (Version::HTTP_11, &[H, ("transfer-encoding", "Chunked")]),
            (Version::HTTP_10, &[]),
            (Version::HTTP_10, &[("content-length", "5")]),
            (
                Version::HTTP_2,
                &[("content-length", "5"), ("te", "trailers")],
            ),
            (Version::HTTP_2, &[]),
            (Version::HTTP_3, &[("x", "y")]),
        ];
        for (version, headers) in cases {
            assert_eq!(
                check_request_head(*version, &map(headers)),
                Ok(()),
                "{version:?} {headers:?}"
            );
        }
    }

    #[test]
    fn rejects_bad_heads() {
        use HygieneError::*;
        let unsupported = |c: &str| UnsupportedTransferCoding {
            coding: c.to_owned(),
        };
        let conn = |n: &str| ConnectionSpecificHeader { name: n.to_owned() };
        let v11 = Version::HTTP_11;
        type Case<'a> = (Version, Vec<(&'a str, &'a str)>, HygieneError);
        let cases: Vec<Case> = vec![
            (v11, vec![], MissingHost),
            (v11, vec![H, H], MultipleHost),
            (
                v11,
                vec![H, ("content-length", "5"), ("content-length", "5")],
                MultipleContentLength,
            ),
            (v11, vec![H, ("content-length", "5, 5")], ContentLengthList),
            (v11, vec![H, ("content-length", "5,6")], ContentLengthList),
            (
                v11,
                vec![H, ("content-length", "abc")],
                InvalidContentLength,
            ),
            (v11, vec![H, ("content-length", "-1")], InvalidContentLength),
            (v11, vec![H, ("content-length", "+5")], InvalidContentLength),
            (v11, vec![H, ("content-length", "")], InvalidContentLength),
            (v11, vec![H, ("content-length", "5 ")], InvalidContentLength),
            (
                v11,
                vec![H, ("content-length", "99999999999999999999999")],
                InvalidContentLength,
            ),
            (
                v11,
                vec![H, ("transfer-encoding", "chunked"), ("content-length", "5")],
                TransferEncodingWithContentLength,
            ),
            (
                Version::HTTP_10,
                vec![("transfer-encoding", "chunked")],
                TransferEncodingHttp10,
            ),
            (
                v11,
                vec![H, ("transfer-encoding", "gzip, chunked")],
                unsupported("gzip"),
            ),
            (
                v11,
                vec![H, ("transfer-encoding", "gzip")],
                unsupported("gzip"),
            ),
            (
                v11,
                vec![H, ("transfer-encoding", "xchunked")],
                unsupported("xchunked"),
            ),
            (
                v11,
                vec![H, ("transfer-encoding", "identity")],
                unsupported("identity"),
            ),
            (
                v11,
                vec![H, ("transfer-encoding", "chunked, chunked")],
                RepeatedChunked,
            ),
            (
                v11,
                vec![
                    H,
                    ("transfer-encoding", "chunked"),
                    ("transfer-encoding", "chunked"),
                ],
                RepeatedChunked,
            ),
            (
                v11,
                vec![H, ("transfer-encoding", "chunked, gzip")],
                ChunkedNotFinal,
            ),
            (
                v11,
                vec![
                    H,
                    ("transfer-encoding", "chunked"),
                    ("transfer-encoding", "gzip"),
                ],
                ChunkedNotFinal,
            ),
            (
                v11,
                vec![H, ("transfer-encoding", "")],
                MalformedTransferEncoding,
            ),
            (
                v11,
                vec![H, ("transfer-encoding", "chunked,")],
                MalformedTransferEncoding,
            ),
            (
                v11,
                vec![H, ("transfer-encoding", ", chunked")],
                MalformedTransferEncoding,
            ),
            (
                v11,
                vec![H, ("transfer-encoding", "chunked;q=1")],
                MalformedTransferEncoding,
            ),
            (
                v11,
                vec![H, ("transfer-encoding", "\"chunked\"")],
                MalformedTransferEncoding,
            ),
            (
                Version::HTTP_2,
                vec![("connection", "close")],
                conn("connection"),
            ),
            (
                Version::HTTP_2,
                vec![("transfer-encoding", "chunked")],
                conn("transfer-encoding"),
            ),
            (
                Version::HTTP_2,
                vec![("keep-alive", "5")],
                conn("keep-alive"),
            ),
            (Version::HTTP_2, vec![("upgrade", "h2c")], conn("upgrade")),
            (
                Version::HTTP_3,
                vec![("proxy-connection", "x")],
                conn("proxy-connection"),
            ),
            (Version::HTTP_2, vec![("te", "gzip")], InvalidTe),
            (
                Version::HTTP_2,
                vec![("content-length", "1"), ("content-length", "1")],
                MultipleContentLength,
            ),
        ];
        for (version, headers, want) in cases {
            assert_eq!(
                check_request_head(version, &map(&headers)),
                Err(want),
                "{version:?} {headers:?}"
            );
        }
    }

    #[test]
    fn nul_cr_lf_detection() {
        // `HeaderValue`'s safe constructors refuse these bytes, so the check
        // in `check_bytes` is exercised through its helper.
        for (bytes, bad) in [
            (&b"a\0b"[..], true),
            (b"a\rb", true),
            (b"a\nb", true),
            (b"a\tb", false),
            (b"plain", false),
        ] {
            assert_eq!(has_nul_cr_lf(bytes), bad, "{bytes:?}");
        }
    }

    #[test]
    fn status_codes() {
        assert_eq!(
            HygieneError::UnsupportedTransferCoding {
                coding: "gzip".into()
            }
            .status(),
            StatusCode::NOT_IMPLEMENTED
        );
        assert_eq!(
            HygieneError::RepeatedChunked.status(),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            HygieneError::MultipleContentLength.status(),
            StatusCode::BAD_REQUEST
        );
    }

    #[test]
    fn display_names_the_problem() {
        assert_eq!(
            HygieneError::TransferEncodingWithContentLength.to_string(),
            "both Transfer-Encoding and Content-Length are present"
        );
        assert_eq!(
            HygieneError::ConnectionSpecificHeader {
                name: "upgrade".into()
            }
            .to_string(),
            "connection-specific header \"upgrade\" is not allowed in HTTP/2 or HTTP/3"
        );
    }
}
