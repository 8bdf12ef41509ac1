//! A Kafka request frame from arbitrary bytes, through everything the proxy
//! does with one: decode, topics, the denial, and its encoding.
//!
//! Parsing must never panic or allocate beyond the input; a request that
//! parses must get a denial that encodes at the request's own version.

#![no_main]

use bytes::BytesMut;
use l7_kafka::Request;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut frame = BytesMut::with_capacity(data.len() + 4);
    frame.extend_from_slice(&(data.len() as i32).to_be_bytes());
    frame.extend_from_slice(data);
    let Ok(req) = Request::parse(frame.freeze()) else {
        return;
    };
    let _ = req.topics();
    let _ = req.expects_response();
    let version = req.response_version();
    let deny = l7_kafka::deny::deny(&req.body, version)
        .expect("every known request kind has a denial")
        .response;
    let mut out = BytesMut::new();
    deny.encode(&mut out, version)
        .unwrap_or_else(|e| panic!("{:?} v{version}: denial does not encode: {e:#}", req.api_key));
});
