//! The BFF's session-cookie guard (`cloakroom::bff::session::cookie`) against actix-web's own cookie
//! parser, which is what actix-session reads. Whenever actix-session could see two session
//! cookies the guard answers 400; when the guard lets a request pass untouched, actix-session
//! sees at most one, sent under the exact name with a well-formed value; when it strips, the
//! parser then sees no session cookie and every other cookie as before.
//!
//! Input: up to four `Cookie` header values separated by `\n`.
#![no_main]

use actix_web::HttpRequest;
use actix_web::http::header::{COOKIE, HeaderValue};
use actix_web::test::TestRequest;
use cloakroom::bff::session::cookie::{
    CookieVerdict, SESSION_COOKIE, inspect_cookie_headers, well_formed_value, without_session_cookie,
};
use libfuzzer_sys::fuzz_target;

fn request(headers: &[HeaderValue]) -> HttpRequest {
    let mut req = TestRequest::default();
    for h in headers {
        req = req.append_header((COOKIE, h.clone()));
    }
    req.to_http_request()
}

/// Every cookie (name, value) actix-web parses, percent-decoded (`cookies()`) or as sent
/// (`cookies_raw()`).
fn actix_cookies(req: &HttpRequest, raw: bool) -> Vec<(String, String)> {
    let parsed = if raw { req.cookies_raw() } else { req.cookies() };
    match parsed {
        Ok(cookies) => cookies.iter().map(|c| (c.name().to_string(), c.value().to_string())).collect(),
        Err(_) => Vec::new(),
    }
}

fn sessions(cookies: &[(String, String)]) -> Vec<&str> {
    cookies.iter().filter(|(n, _)| n == SESSION_COOKIE).map(|(_, v)| v.as_str()).collect()
}

fuzz_target!(|data: &[u8]| {
    let headers: Vec<HeaderValue> =
        data.split(|b| *b == b'\n').take(4).filter_map(|h| HeaderValue::from_bytes(h).ok()).collect();
    let raw: Vec<&[u8]> = headers.iter().map(HeaderValue::as_bytes).collect();
    let req = request(&headers);
    let seen = actix_cookies(&req, false);
    let seen_raw = actix_cookies(&req, true);

    let verdict = inspect_cookie_headers(raw.iter().copied());
    if sessions(&seen).len() > 1 {
        assert_eq!(verdict, CookieVerdict::Duplicate, "two session cookies not refused");
    }
    if verdict == CookieVerdict::Fine {
        assert!(sessions(&seen).len() <= 1, "two session cookies passed");
        if !sessions(&seen).is_empty() {
            let exact = sessions(&seen_raw);
            assert_eq!(exact.len(), 1, "the session cookie passed under another spelling");
            assert!(well_formed_value(exact[0]), "a malformed session cookie passed: {:?}", exact[0]);
        }
    }
    if verdict == CookieVerdict::Strip {
        let kept = without_session_cookie(raw.iter().copied());
        let stripped: Vec<HeaderValue> = kept
            .map(|k| HeaderValue::from_bytes(k.as_bytes()).expect("stripped header is a header"))
            .into_iter()
            .collect();
        let after = actix_cookies(&request(&stripped), false);
        assert!(sessions(&after).is_empty(), "a session cookie survived stripping: {after:?}");
        // Every other cookie the parser saw is still there (when all headers were UTF-8, the
        // parser saw them at all).
        if raw.iter().all(|h| std::str::from_utf8(h).is_ok()) {
            let others: Vec<_> = seen.iter().filter(|(n, _)| n != SESSION_COOKIE).cloned().collect();
            let after_others: Vec<_> = after.iter().filter(|(n, _)| n != SESSION_COOKIE).cloned().collect();
            assert!(
                others.iter().all(|c| after_others.contains(c)),
                "stripping lost a cookie: {others:?} → {after:?}"
            );
        }
    }
});
