//! Response headers every page and API answer should carry.

use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::DefaultHeaders;

/// The Content-Security-Policy of every answer: pages use only same-origin scripts and styles.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self' http: https:; \
     frame-ancestors 'none'";

/// Headers that cost nothing and close whole classes of attacks: no framing, no MIME sniffing,
/// no referrer leaks to other sites, a strict CSP (pages use only same-origin scripts and styles).
pub fn security_headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add((header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
        .add((header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
        // `same-origin`, not `no-referrer`: under `no-referrer` browsers send `Origin: null` on
        // same-origin form posts and fetches, which the BFF's Origin check must refuse.
        .add((header::REFERRER_POLICY, HeaderValue::from_static("same-origin")))
        .add((header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY)))
        .add((HeaderName::from_static("cross-origin-opener-policy"), HeaderValue::from_static("same-origin")))
}

/// `Cache-Control: no-store`, for responses that set cookies or carry user data.
pub fn no_store() -> (HeaderName, HeaderValue) {
    (header::CACHE_CONTROL, HeaderValue::from_static("no-store"))
}

/// True when the request declares an `application/x-www-form-urlencoded` body (HTML form posts
/// and OAuth back-channel requests; every other body type is refused where forms are expected).
pub fn is_form(req: &actix_web::HttpRequest) -> bool {
    req.headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"))
}
