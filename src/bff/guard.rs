//! The outermost BFF middleware, around actix-session: it makes the session cookie strict before
//! any store lookup (two `__Host-cloakroom` cookies → 400; a malformed value is dropped from the
//! request, so it reaches no store) and turns session store failures into 503
//! `store_unavailable` + `Retry-After` — the cookie is kept, a store error is never a logout.

use super::session_store::watch_store_failures;
use crate::web::ApiError;
use actix_web::ResponseError;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "__Host-cloakroom";

/// Longest session cookie value considered at all.
const MAX_COOKIE_VALUE: usize = 200;

/// True when `v` can be a session cookie value at all: 1 to 200 bytes of base64/URL-safe
/// characters (and `%`, for values a client still sends percent-encoded).
pub fn well_formed_value(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= MAX_COOKIE_VALUE
        && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_+/=%".contains(&b))
}

/// What the guard does with a request's session cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CookieVerdict {
    /// No session cookie, or exactly one well-formed one: pass the request on as it is.
    Fine,
    /// More than one session cookie: 400, whichever one actix-session would pick.
    Duplicate,
    /// One malformed session cookie: drop it from the request (it is never looked up).
    Strip,
}

/// The pairs of `Cookie` header values exactly as actix-web splits and parses them for
/// actix-session (`HttpRequest::cookies`): split on `;`, trimmed, name and value
/// percent-decoded, unparseable pairs skipped; one header that is not UTF-8 hides every cookie.
/// Each item is the raw pair and its parsed name and value.
fn parsed_pairs<'a, I>(cookie_headers: I) -> Vec<(&'a str, Option<(String, String)>)>
where
    I: IntoIterator<Item = &'a [u8]>,
{
    let mut out = Vec::new();
    for header in cookie_headers {
        let Ok(s) = std::str::from_utf8(header) else { return Vec::new() };
        for pair in s.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let parsed = cookie::Cookie::parse_encoded(pair)
                .ok()
                .map(|c| (c.name().to_string(), c.value().to_string()));
            out.push((pair, parsed));
        }
    }
    out
}

/// The session cookie values in a request's `Cookie` header values, as actix-session sees
/// them (so `__Host-cloakroom =…` or `__Host-cloakroo%6D=…` count: actix trims and decodes).
pub fn session_cookie_values<'a>(cookie_headers: impl IntoIterator<Item = &'a [u8]>) -> Vec<String> {
    parsed_pairs(cookie_headers)
        .into_iter()
        .filter_map(|(_, parsed)| parsed.filter(|(name, _)| name == SESSION_COOKIE).map(|(_, v)| v))
        .collect()
}

/// The guard's decision on a request's `Cookie` header values.
pub fn inspect_cookie_headers<'a>(cookie_headers: impl IntoIterator<Item = &'a [u8]>) -> CookieVerdict {
    match session_cookie_values(cookie_headers).as_slice() {
        [] => CookieVerdict::Fine,
        [one] if well_formed_value(one) => CookieVerdict::Fine,
        [_] => CookieVerdict::Strip,
        _ => CookieVerdict::Duplicate,
    }
}

/// One `Cookie` header value with every other cookie of `cookie_headers` and no session
/// cookie (`None` when nothing is left). Pairs actix-web cannot parse are kept as they were.
pub fn without_session_cookie<'a>(cookie_headers: impl IntoIterator<Item = &'a [u8]>) -> Option<String> {
    let kept: Vec<&str> = parsed_pairs(cookie_headers)
        .into_iter()
        .filter(|(_, parsed)| !parsed.as_ref().is_some_and(|(name, _)| name == SESSION_COOKIE))
        .map(|(pair, _)| pair)
        .collect();
    (!kept.is_empty()).then(|| kept.join("; "))
}

fn cookie_headers(req: &ServiceRequest) -> impl Iterator<Item = &[u8]> {
    req.headers().get_all(header::COOKIE).map(HeaderValue::as_bytes)
}

fn strip_session_cookie(req: &mut ServiceRequest) {
    let kept = without_session_cookie(cookie_headers(req));
    let headers = req.headers_mut();
    headers.remove(header::COOKIE);
    // from_bytes, not from_str: a cookie with non-ASCII UTF-8 bytes is kept as actix read it.
    if let Some(v) = kept.and_then(|k| HeaderValue::from_bytes(k.as_bytes()).ok()) {
        headers.insert(header::COOKIE, v);
    }
}

/// The middleware function (`actix_web::middleware::from_fn`).
pub async fn session_guard(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    match inspect_cookie_headers(cookie_headers(&req)) {
        CookieVerdict::Duplicate => {
            let err =
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", "more than one session cookie");
            return Ok(req.into_response(err.error_response()));
        }
        CookieVerdict::Strip => {
            tracing::info!("a malformed session cookie was ignored");
            strip_session_cookie(&mut req);
        }
        CookieVerdict::Fine => {}
    }
    let (result, store_failed) = watch_store_failures(next.call(req)).await;
    match result {
        Ok(res) if store_failed && res.status().is_server_error() => {
            let err = ApiError::store_unavailable(&"session store call failed");
            Ok(res.into_response(err.error_response()))
        }
        Ok(mut res) => {
            compact_session_cookie(res.headers_mut());
            Ok(res.map_into_boxed_body())
        }
        // actix-session reports its store failures as opaque 500 errors; ours become 503.
        Err(_) if store_failed => Err(ApiError::store_unavailable(&"session store call failed").into()),
        Err(e) => Err(e),
    }
}

/// actix-session percent-encodes the signed cookie value (`+`, `/`, `=` of the base64 MAC),
/// which can push it past 100 bytes. Those characters are legal cookie octets (RFC 6265 §4.1.1)
/// and actix parses cookies with percent-decoding either way, so the value is sent decoded:
/// always 87 bytes (44 of MAC, 43 of id).
fn compact_session_cookie(headers: &mut actix_web::http::header::HeaderMap) {
    let prefix = format!("{SESSION_COOKIE}=");
    let values: Vec<HeaderValue> = headers.get_all(header::SET_COOKIE).cloned().collect();
    if !values.iter().any(|v| v.as_bytes().starts_with(prefix.as_bytes())) {
        return;
    }
    headers.remove(header::SET_COOKIE);
    for v in values {
        let rewritten = v.to_str().ok().filter(|s| s.starts_with(&prefix)).and_then(|s| {
            let (pair, attrs) = s.split_once(';').unwrap_or((s, ""));
            let decoded = percent_encoding::percent_decode_str(pair).decode_utf8().ok()?;
            let sep = if attrs.is_empty() { "" } else { ";" };
            HeaderValue::from_str(&format!("{decoded}{sep}{attrs}")).ok()
        });
        headers.append(header::SET_COOKIE, rewritten.unwrap_or(v));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(headers: &[&str]) -> CookieVerdict {
        inspect_cookie_headers(headers.iter().map(|h| h.as_bytes()))
    }

    #[test]
    fn session_cookies_spelled_as_the_cookie_parser_reads_them_count_as_duplicates() {
        assert_eq!(verdict(&["__Host-cloakroom=a; __Host-cloakroom =b"]), CookieVerdict::Duplicate);
        assert_eq!(verdict(&["__Host-cloakroo%6D=a", "__Host-cloakroom=b"]), CookieVerdict::Duplicate);
        assert_eq!(verdict(&["x=1; __Host-cloakroom=abc"]), CookieVerdict::Fine);
        assert_eq!(verdict(&["__Host-cloakroomx=abc; __Host-cloakroom=abc"]), CookieVerdict::Fine);
    }

    #[test]
    fn a_malformed_session_cookie_is_stripped_and_every_other_cookie_kept() {
        let headers = ["theme=dark; __Host-cloakroom=not valid!", "lang=é"];
        let raw = || headers.iter().map(|h| h.as_bytes());

        assert_eq!(inspect_cookie_headers(raw()), CookieVerdict::Strip);
        assert_eq!(without_session_cookie(raw()).as_deref(), Some("theme=dark; lang=é"));
    }

    #[test]
    fn a_header_that_is_not_utf8_hides_every_cookie_as_it_does_for_actix() {
        let headers: [&[u8]; 2] = [b"__Host-cloakroom=a", b"x=\xff"];
        assert!(session_cookie_values(headers).is_empty());
    }
}
