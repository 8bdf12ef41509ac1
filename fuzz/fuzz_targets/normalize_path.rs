//! `l7_http::normalize_path` on arbitrary UTF-8.
//!
//! When a target is accepted, the normalized form must be a fixed point
//! (normalizing it again changes nothing), start with '/', and its path part
//! (before the first '?') must hold no dot segment and no empty segment:
//! no "/../", "/./", "//", and no trailing "/." or "/..".

#![no_main]

use l7_http::normalize_path;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(out) = normalize_path(raw) else {
        return;
    };
    assert!(out.starts_with('/'), "{raw:?} -> {out:?}: no leading '/'");
    let again = normalize_path(&out);
    assert_eq!(
        again.as_deref(),
        Ok(out.as_str()),
        "{raw:?} -> {out:?}: not idempotent"
    );
    let path = out.split('?').next().unwrap_or_default();
    for bad in ["/../", "/./", "//"] {
        assert!(!path.contains(bad), "{raw:?} -> {out:?}: path has {bad:?}");
    }
    assert!(
        !path.ends_with("/..") && !path.ends_with("/."),
        "{raw:?} -> {out:?}: path ends in a dot segment"
    );
});
