//! The BFF's session-cookie guard (`cloakroom::bff::guard`) against actix-web's own cookie
//! parser, which is what actix-session reads: the guard must see exactly the session cookies
//! actix-session would see, answer 400 for two or more, strip a malformed one completely while
//! keeping every other cookie, and pass on only a well-formed one.
//!
//! Input: up to four `Cookie` header values separated by `\n`.
#![no_main]

use actix_web::http::header::{COOKIE, HeaderValue};
use actix_web::test::TestRequest;
use cloakroom::bff::guard::{
    CookieVerdict, SESSION_COOKIE, inspect_cookie_headers, session_cookie_values, well_formed_value,
    without_session_cookie,
};
use libfuzzer_sys::fuzz_target;

/// Every cookie (name, value) actix-web parses from `headers`, in order.
fn actix_cookies(headers: &[HeaderValue]) -> Vec<(String, String)> {
    let mut req = TestRequest::default();
    for h in headers {
        req = req.append_header((COOKIE, h.clone()));
    }
    let req = req.to_http_request();
    match req.cookies() {
        Ok(cookies) => cookies.iter().map(|c| (c.name().to_string(), c.value().to_string())).collect(),
        Err(_) => Vec::new(),
    }
}

fuzz_target!(|data: &[u8]| {
    let headers: Vec<HeaderValue> =
        data.split(|b| *b == b'\n').take(4).filter_map(|h| HeaderValue::from_bytes(h).ok()).collect();
    let raw: Vec<&[u8]> = headers.iter().map(HeaderValue::as_bytes).collect();
    let seen = actix_cookies(&headers);
    let sessions: Vec<&String> = seen.iter().filter(|(n, _)| n == SESSION_COOKIE).map(|(_, v)| v).collect();

    let values = session_cookie_values(raw.iter().copied());
    assert_eq!(
        values.iter().collect::<Vec<_>>(),
        sessions,
        "the guard sees other session cookies than actix"
    );

    let verdict = inspect_cookie_headers(raw.iter().copied());
    match verdict {
        CookieVerdict::Duplicate => assert!(sessions.len() > 1),
        CookieVerdict::Strip => assert!(sessions.len() == 1 && !well_formed_value(sessions[0])),
        CookieVerdict::Fine => match sessions.as_slice() {
            [] => {}
            [one] => {
                assert!(well_formed_value(one));
                assert!(one.len() <= 200 && one.bytes().all(|b| b.is_ascii_graphic() && b != b';'));
            }
            _ => panic!("two session cookies passed the guard"),
        },
    }

    if verdict == CookieVerdict::Strip {
        let kept = without_session_cookie(raw.iter().copied());
        let after = match kept {
            Some(k) => {
                actix_cookies(&[HeaderValue::from_bytes(k.as_bytes()).expect("stripped header is a header")])
            }
            None => Vec::new(),
        };
        let others: Vec<_> = seen.iter().filter(|(n, _)| n != SESSION_COOKIE).cloned().collect();
        assert_eq!(after, others, "stripping changed other cookies or kept the session cookie");
    }
});
