//! The login's `returnTo` (`cloakroom::bff::paths::ReturnTo`): whatever is accepted is a local
//! path that a browser resolves on the BFF's own origin (WHATWG URL parsing, the `url` crate),
//! as given and after one more percent-decoding, and it starts with exactly one `/` and has no
//! backslash or control character. It is visible ASCII (non-ASCII kept percent-encoded) and
//! means what was given: both percent-decode to the same bytes.
//!
//! Input: the `returnTo` value (already decoded from the query string once).
#![no_main]

use cloakroom::bff::paths::ReturnTo;
use libfuzzer_sys::fuzz_target;
use percent_encoding::percent_decode_str;

const BFF: &str = "https://bff.example:8443/app/page";

fn stays_home(target: &str) {
    let base = url::Url::parse(BFF).expect("base");
    if let Ok(resolved) = base.join(target) {
        assert_eq!(resolved.origin(), base.origin(), "{target:?} leaves the origin: {resolved}");
    }
}

fn local_form(s: &str) {
    assert!(s.starts_with('/') && !s.starts_with("//"), "{s:?}");
    assert!(!s.chars().any(|c| c == '\\' || c.is_control()), "{s:?}");
}

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else { return };
    let Ok(accepted) = ReturnTo::parse(Some(raw)) else { return };
    let s = accepted.as_str();
    assert!(s.bytes().all(|b| b.is_ascii() && !b.is_ascii_control()), "{s:?}");
    let same: Vec<u8> = percent_decode_str(s).collect();
    assert_eq!(same, percent_decode_str(raw).collect::<Vec<u8>>(), "{raw:?} became {s:?}");
    local_form(s);
    stays_home(s);
    if let Ok(decoded) = percent_decode_str(s).decode_utf8() {
        local_form(&decoded);
        stays_home(&decoded);
    }
});
