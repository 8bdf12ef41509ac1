//! `l7_http::FramingScanner` over arbitrary bytes.
//!
//! The first input byte picks where the rest of the input is cut in two
//! (`first % (len + 1)`). The scanner must never panic, and feeding the
//! stream at once, in those two pieces, or one byte at a time must give the
//! same result (the same error, not only Ok/Err) and the same passthrough
//! state: a proxy reads the socket in whatever pieces the kernel hands it.

#![no_main]

use l7_http::{FramingError, FramingScanner};
use libfuzzer_sys::fuzz_target;

/// Feeds `pieces` in order, stopping at the first error as the proxy does.
fn scan<'a>(pieces: impl IntoIterator<Item = &'a [u8]>) -> (Result<(), FramingError>, bool) {
    let mut s = FramingScanner::new();
    for p in pieces {
        if let Err(e) = s.feed(p) {
            return (Err(e), s.is_passthrough());
        }
    }
    (Ok(()), s.is_passthrough())
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, stream)) = data.split_first() else {
        return;
    };
    let cut = usize::from(first) % (stream.len() + 1);
    let (a, b) = stream.split_at(cut);

    let whole = scan([stream]);
    let halves = scan([a, b]);
    assert_eq!(
        whole,
        halves,
        "whole vs split at {cut}: {:?}",
        String::from_utf8_lossy(stream)
    );
    let bytewise = scan(stream.chunks(1));
    assert_eq!(
        whole,
        bytewise,
        "whole vs byte by byte: {:?}",
        String::from_utf8_lossy(stream)
    );
});
