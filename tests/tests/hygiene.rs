//! Known bypasses, closed: one normalized path is judged and forwarded;
//! smuggling shapes and oversized heads get a 4xx and never reach the origin.

mod common;

use portcullis_tests::*;

#[test]
fn path_is_normalized_before_matching_and_forwarded_as_matched() {
    let e = common::echo();
    let cases: &[(&str, u16, &str)] = &[
        ("/public/a", 200, "GET /public/a\n"),
        ("/public/../public/b", 200, "GET /public/b\n"),
        ("//public///c", 200, "GET /public/c\n"),
        ("/%70ublic/d", 200, "GET /public/d\n"),
        ("/public/./e?x=1&y=%2F", 200, "GET /public/e?x=1&y=%2F\n"),
        // Dot segments cannot climb out of the allowed prefix.
        ("/public/../private", 403, "Access denied\r\n"),
        ("/private/../../public/f", 200, "GET /public/f\n"),
    ];
    for (path, status, body) in cases {
        let r = curl(&["--path-as-is", &e.url(path)]);
        assert_eq!(
            (r.status, r.body.as_str()),
            (*status, *body),
            "{path}: {r:?}"
        );
    }
}

#[test]
fn ambiguous_paths_are_rejected_with_400() {
    let e = common::echo();
    for path in [
        "/public%2Fa",
        "/public/a%2fb",
        "/public%5Ca",
        "/public/a%00",
        "/public\\a",
    ] {
        let r = curl(&["--path-as-is", &e.url(path)]);
        assert_eq!(r.status, 400, "{path}: {r:?}");
    }
    // A raw NUL or fragment can only be sent by hand.
    for req in [
        &b"GET /public/a\0b HTTP/1.1\r\nHost: x\r\n\r\n"[..],
        &b"GET /public/a#frag HTTP/1.1\r\nHost: x\r\n\r\n"[..],
    ] {
        let resp = raw_exchange(e.addr(), req);
        assert!(resp.starts_with("HTTP/1.1 400"), "{resp:?}");
    }
    assert!(e.pc.metric("portcullis_http_requests_total{verdict=\"rejected\"}") >= 5.0);
}

#[test]
fn smuggling_shapes_are_rejected_and_never_forwarded() {
    let e = common::echo();
    let shapes: &[(&str, &[u8])] = &[
        ("TE and CL", b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
        ("duplicate CL", b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\nabcd"),
        ("CL list", b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 4, 4\r\n\r\nabcd"),
        ("bad chunk size", b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabcd\r\n0\r\n\r\n"),
        ("TE not chunked", b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"),
        ("obs-fold", b"GET /public/a HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n"),
        ("bare LF", b"GET /public/a HTTP/1.1\nHost: x\n\n"),
        ("bare CR", b"GET /public/a HTTP/1.1\r\nHost: x\rX: y\r\n\r\n"),
        ("space before colon", b"GET /public/a HTTP/1.1\r\nHost : x\r\n\r\n"),
    ];
    for (name, req) in shapes {
        let resp = raw_exchange(e.addr(), req);
        let status = resp.get(9..12).unwrap_or("");
        assert!(
            status.starts_with('4') || status == "501",
            "{name}: expected a 4xx, got {resp:?}"
        );
        assert!(
            !resp.contains("length="),
            "{name}: reached the origin: {resp:?}"
        );
    }
    // A well-formed chunked upload still works.
    let r = curl(&[
        "-XPOST",
        "-H",
        "Transfer-Encoding: chunked",
        "--data-binary",
        "abcd",
        &e.url("/upload"),
    ]);
    assert_eq!(r.status, 200, "{r:?}");
}

#[test]
fn oversized_heads_are_refused() {
    let e = common::echo();
    let many: String = (0..150).map(|i| format!("X-H{i}: v\r\n")).collect();
    let req = format!("GET /public/a HTTP/1.1\r\nHost: x\r\n{many}\r\n");
    let resp = raw_exchange(e.addr(), req.as_bytes());
    assert!(
        resp.starts_with("HTTP/1.1 431"),
        "too many headers: {resp:?}"
    );
    let big = "a".repeat(100 * 1024);
    let req = format!("GET /public/a HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\n\r\n");
    let resp = raw_exchange(e.addr(), req.as_bytes());
    assert!(
        resp.starts_with("HTTP/1.1 431"),
        "huge header: {:?}",
        &resp[..resp.len().min(200)]
    );
    // The proxy is still serving.
    assert_eq!(curl(&[&e.url("/public/ok")]).status, 200);
}
