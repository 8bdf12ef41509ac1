//! Request path normalization, applied before policy sees `:path`.
//!
//! The goal is that a path rule sees the same resource the upstream will
//! serve, so encodings that different servers decode differently are
//! rejected outright instead of guessed at:
//!
//! * rejected: a fragment, NUL (literal or `%00`), `%2F`, `%5C`, a literal
//!   `\`, control characters, space or non-ASCII bytes, malformed `%`
//!   escapes, and a target that is not in origin form (`/...`). `*`
//!   (`OPTIONS *`) is rejected too: it names no resource a path rule could
//!   match, so the caller decides separately whether to allow it.
//! * then, like Envoy's `normalize_path` + `merge_slashes`: escapes of
//!   unreserved characters (`A-Z a-z 0-9 - . _ ~`) are decoded, other
//!   escapes have their hex uppercased, dot segments are removed (RFC 3986
//!   section 5.2.4, after decoding so `%2e%2e` counts as `..`), and finally
//!   runs of `/` are merged. Dot removal runs before slash merging, as in
//!   Envoy, so `/a//../b` becomes `/a/b`; the proxy must forward the
//!   normalized path so the upstream resolves it the same way.
//! * The query is kept verbatim (no decoding) but must not contain a
//!   fragment, control characters, space or non-ASCII bytes.

/// Why a request target was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PathError {
    /// `*` (asterisk form, `OPTIONS *`).
    #[error("asterisk-form request target is not supported")]
    Asterisk,
    /// Does not start with `/` (absolute or authority form, or empty).
    #[error("request target is not in origin form (must start with '/')")]
    NotOriginForm,
    /// A `#` anywhere.
    #[error("request target contains a fragment ('#')")]
    Fragment,
    /// Literal NUL or `%00`.
    #[error("path contains a NUL byte")]
    NulByte,
    /// `%2F` / `%2f`.
    #[error("path contains an encoded slash (%2F)")]
    EncodedSlash,
    /// `%5C` / `%5c`.
    #[error("path contains an encoded backslash (%5C)")]
    EncodedBackslash,
    /// Literal `\`.
    #[error("path contains a backslash")]
    Backslash,
    /// A byte below 0x20 or 0x7F.
    #[error("request target contains control character 0x{0:02x}")]
    ControlCharacter(u8),
    /// Space or a non-ASCII byte.
    #[error("request target contains invalid character 0x{0:02x}")]
    InvalidCharacter(u8),
    /// `%` not followed by two hex digits.
    #[error("path contains invalid percent-encoding at byte {0}")]
    InvalidPercentEncoding(usize),
}

/// Normalizes an origin-form request target (`/path?query`); see the module
/// docs for the exact rules. The result always starts with `/`.
pub fn normalize_path(raw: &str) -> Result<String, PathError> {
    if raw == "*" {
        return Err(PathError::Asterisk);
    }
    if !raw.starts_with('/') {
        return Err(PathError::NotOriginForm);
    }
    let (path, query) = match raw.find('?') {
        Some(i) => (&raw[..i], Some(&raw[i..])),
        None => (raw, None),
    };
    if let Some(q) = query {
        for &b in q.as_bytes() {
            check_common(b)?;
        }
    }

    if already_normal(path) {
        return Ok(raw.to_owned());
    }
    normalize_slow(path, query)
}

/// True when normalization would return `path` unchanged: only plain
/// characters (no `%`, `\`, controls, space or non-ASCII), no `.` or `..`
/// segment and no empty segment but a trailing one. Most requests take
/// this single scan instead of decoding, segment removal and merging.
fn already_normal(path: &str) -> bool {
    let bytes = path.as_bytes();
    // Start of the current segment, after the leading '/'.
    let mut start = 1;
    for (i, &b) in bytes.iter().enumerate().skip(1) {
        if b == b'/' {
            if matches!(&bytes[start..i], b"" | b"." | b"..") {
                return false;
            }
            start = i + 1;
        } else if b == b'%' || b == b'\\' || check_common(b).is_err() {
            return false;
        }
    }
    // A trailing empty segment ("/a/") is kept as it is.
    !matches!(&bytes[start..], b"." | b"..")
}

fn normalize_slow(path: &str, query: Option<&str>) -> Result<String, PathError> {
    let decoded = decode_path(path)?;
    let mut out = String::with_capacity(path.len() + query.map_or(0, str::len));
    remove_dot_segments(&decoded, &mut out);
    merge_slashes(&mut out);
    if let Some(q) = query {
        out.push_str(q);
    }
    Ok(out)
}

/// Checks shared by path and query.
fn check_common(b: u8) -> Result<(), PathError> {
    match b {
        0 => Err(PathError::NulByte),
        b'#' => Err(PathError::Fragment),
        0x01..=0x1f | 0x7f => Err(PathError::ControlCharacter(b)),
        b' ' | 0x80..=0xff => Err(PathError::InvalidCharacter(b)),
        _ => Ok(()),
    }
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Validates the path and applies the escape rules. The output is ASCII, so
/// pushing bytes as chars is lossless.
fn decode_path(path: &str) -> Result<String, PathError> {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        check_common(b)?;
        match b {
            b'\\' => return Err(PathError::Backslash),
            b'%' => {
                let (Some(hi), Some(lo)) = (
                    bytes.get(i + 1).copied().and_then(hex_val),
                    bytes.get(i + 2).copied().and_then(hex_val),
                ) else {
                    return Err(PathError::InvalidPercentEncoding(i));
                };
                let c = hi << 4 | lo;
                match c {
                    0 => return Err(PathError::NulByte),
                    b'/' => return Err(PathError::EncodedSlash),
                    b'\\' => return Err(PathError::EncodedBackslash),
                    c if is_unreserved(c) => out.push(char::from(c)),
                    c => {
                        out.push('%');
                        out.push(char::from(HEX[usize::from(c >> 4)]));
                        out.push(char::from(HEX[usize::from(c & 0xf)]));
                    }
                }
                i += 3;
            }
            _ => {
                out.push(char::from(b));
                i += 1;
            }
        }
    }
    Ok(out)
}

/// RFC 3986 section 5.2.4 on an absolute path, expressed over segments: a
/// `.` or `..` in last position leaves a trailing slash, `..` at the root
/// stays at the root, and empty segments are kept (merged later).
fn remove_dot_segments(path: &str, out: &mut String) {
    // The leading '/' is guaranteed by the caller.
    let rest = path.strip_prefix('/').unwrap_or(path);
    let mut stack: Vec<&str> = Vec::new();
    let mut segments = rest.split('/').peekable();
    while let Some(seg) = segments.next() {
        let last = segments.peek().is_none();
        match seg {
            "." => {}
            ".." => {
                stack.pop();
            }
            s => {
                stack.push(s);
                continue;
            }
        }
        if last {
            stack.push("");
        }
    }
    out.push('/');
    for (i, seg) in stack.iter().enumerate() {
        if i > 0 {
            out.push('/');
        }
        out.push_str(seg);
    }
}

fn merge_slashes(path: &mut String) {
    if !path.contains("//") {
        return;
    }
    let mut prev_slash = false;
    path.retain(|c| {
        let keep = !(c == '/' && prev_slash);
        prev_slash = c == '/';
        keep
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes() {
        let cases = [
            ("/", "/"),
            ("/a/b", "/a/b"),
            ("/a/../b", "/b"),
            ("//a///b", "/a/b"),
            ("/%61dmin", "/admin"),
            ("/a/./b/", "/a/b/"),
            ("/..", "/"),
            ("/../../x", "/x"),
            ("/a/..", "/"),
            ("/a/.", "/a/"),
            ("/a/b/..", "/a/"),
            ("/./", "/"),
            ("/a//../b", "/a/b"),
            ("/%7Euser", "/~user"),
            ("/%7euser", "/~user"),
            ("/a%20b", "/a%20b"),
            ("/a%3fb", "/a%3Fb"),
            ("/%2e%2e/etc", "/etc"),
            ("/%2E%2E/etc", "/etc"),
            ("/a/.%2e/b", "/b"),
            ("/a/%2e/b", "/a/b"),
            ("/%25", "/%25"),
            ("/%2561", "/%2561"),
            ("/A-Z_a.z~0", "/A-Z_a.z~0"),
            ("/...", "/..."),
            ("/a/..b", "/a/..b"),
            ("/x?a=1&b=/../%2f", "/x?a=1&b=/../%2f"),
            ("/a/../b?q", "/b?q"),
            ("/?", "/?"),
            ("/a?x?y", "/a?x?y"),
            ("/%c3%a9", "/%C3%A9"),
            ("/a:b@c!$&'()*+,;=", "/a:b@c!$&'()*+,;="),
        ];
        for (raw, want) in cases {
            assert_eq!(normalize_path(raw).as_deref(), Ok(want), "input {raw:?}");
        }
    }

    /// The one-scan shortcut must never answer differently from the full
    /// normalization: every path byte and every short segment shape.
    #[test]
    fn the_shortcut_agrees_with_full_normalization() {
        let mut paths: Vec<String> = (0u8..=255)
            .flat_map(|b| {
                let c = char::from(b);
                [format!("/a{c}b"), format!("/{c}"), format!("/x/{c}{c}/y")]
            })
            .collect();
        for segs in ["", ".", "..", "...", "a", ".a", "a."] {
            for tail in ["", "/", "/b", "//b"] {
                paths.push(format!("/{segs}{tail}"));
                paths.push(format!("/x/{segs}{tail}"));
            }
        }
        for raw in &paths {
            let path = raw.split('?').next().unwrap_or(raw);
            let query = raw.find('?').map(|i| &raw[i..]);
            let fast = if already_normal(path) {
                Ok(raw.clone())
            } else {
                continue;
            };
            assert_eq!(fast, normalize_slow(path, query), "input {raw:?}");
        }
        assert!(already_normal("/api/v1/items/42") && already_normal("/a/b/"));
        assert!(!already_normal("/a/./b") && !already_normal("/a//b") && !already_normal("/%61"));
    }

    #[test]
    fn rejects() {
        use PathError::*;
        let cases = [
            ("*", Asterisk),
            ("", NotOriginForm),
            ("a/b", NotOriginForm),
            ("http://h/a", NotOriginForm),
            ("/a%2fb", EncodedSlash),
            ("/a%2Fb", EncodedSlash),
            ("/a%5cb", EncodedBackslash),
            ("/a%5Cb", EncodedBackslash),
            ("/a\\b", Backslash),
            ("/a#x", Fragment),
            ("/a?q#x", Fragment),
            ("/a%00", NulByte),
            ("/a\0", NulByte),
            ("/a?\0", NulByte),
            ("/a\tb", ControlCharacter(b'\t')),
            ("/a\r\nb", ControlCharacter(b'\r')),
            ("/a\x7f", ControlCharacter(0x7f)),
            ("/a?x\ny", ControlCharacter(b'\n')),
            ("/a b", InvalidCharacter(b' ')),
            ("/a?b c", InvalidCharacter(b' ')),
            ("/é", InvalidCharacter(0xc3)),
            ("/%G1", InvalidPercentEncoding(1)),
            ("/%4", InvalidPercentEncoding(1)),
            ("/ab%", InvalidPercentEncoding(3)),
            ("/%%41", InvalidPercentEncoding(1)),
        ];
        for (raw, want) in cases {
            assert_eq!(normalize_path(raw), Err(want), "input {raw:?}");
        }
    }

    #[test]
    fn query_is_verbatim_even_with_escapes() {
        // Not decoded or re-cased: the upstream parses the query itself.
        assert_eq!(
            normalize_path("/p?%2f%5c%00x").as_deref(),
            Ok("/p?%2f%5c%00x")
        );
    }

    #[test]
    fn is_idempotent() {
        for raw in [
            "/a/../b/./c//d/",
            "/%61%2e%2E/x%3f",
            "/../..",
            "/a%20b/..?q=1",
        ] {
            let once = normalize_path(raw).unwrap();
            assert_eq!(
                normalize_path(&once).as_deref(),
                Ok(once.as_str()),
                "{raw:?}"
            );
        }
    }

    #[test]
    fn errors_display_the_problem() {
        assert_eq!(
            PathError::EncodedSlash.to_string(),
            "path contains an encoded slash (%2F)"
        );
        assert_eq!(
            PathError::ControlCharacter(0x0a).to_string(),
            "request target contains control character 0x0a"
        );
    }
}
