//! The outermost BFF middleware, around actix-session: it makes the session cookie strict before
//! any store lookup (two `__Host-cloakroom` cookies → 400; a malformed value is dropped from the
//! request, so it reaches no store), re-signs cookies signed with a rotated-out key, and turns
//! session store failures into 503 `store_unavailable` + `Retry-After` — the cookie is kept, a
//! store error is never a logout.

use super::cookie::{
    CookieVerdict, SESSION_COOKIE, header_text, inspect_cookie_headers, pairs, reads_as_session_name,
    without_session_cookie,
};
use super::scope::watch_store_failures;
use crate::bff::keys::Keys;
use crate::web::ApiError;
use crate::web::ErrorCode;
use actix_web::ResponseError;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;

fn cookie_headers(req: &ServiceRequest) -> impl Iterator<Item = &[u8]> {
    req.headers().get_all(header::COOKIE).map(HeaderValue::as_bytes)
}

fn strip_session_cookie(req: &mut ServiceRequest) {
    let kept = without_session_cookie(cookie_headers(req));
    let headers = req.headers_mut();
    headers.remove(header::COOKIE);
    // from_bytes, not from_str: a cookie with non-ASCII UTF-8 bytes is kept as the parser read it.
    if let Some(v) = kept.and_then(|k| HeaderValue::from_bytes(k.as_bytes()).ok()) {
        headers.insert(header::COOKIE, v);
    }
}

/// The middleware function (`actix_web::middleware::from_fn`). Reads the [`Keys`] in app data.
pub async fn session_guard(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    match inspect_cookie_headers(cookie_headers(&req)) {
        CookieVerdict::Duplicate => {
            let err = ApiError::new(ErrorCode::InvalidRequest, "more than one session cookie");
            return Ok(req.into_response(err.error_response()));
        }
        CookieVerdict::Strip => {
            tracing::info!("a malformed session cookie was ignored");
            strip_session_cookie(&mut req);
        }
        CookieVerdict::Fine => {}
    }
    let resigned = resign_old_cookie(&mut req);
    let (result, store_failed) = watch_store_failures(next.call(req)).await;
    let result = result.map(|mut res| {
        if let Some(value) = resigned {
            hand_out_resigned_cookie(&mut res, &value);
        }
        res
    });
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

/// The session cookie's value in the request, percent-decoded.
fn session_cookie_value(req: &ServiceRequest) -> Option<String> {
    req.headers().get_all(header::COOKIE).map(HeaderValue::as_bytes).filter_map(header_text).find_map(|s| {
        pairs(s).find(|(name, _)| *name == SESSION_COOKIE).and_then(|(_, v)| {
            percent_encoding::percent_decode_str(v).decode_utf8().ok().map(|d| d.into_owned())
        })
    })
}

/// The keyed hash of the session id in `req`'s cookie — the suffix of the session's store key,
/// and what `session-ended` announces — when the cookie carries a validly signed id (the guard
/// has re-signed one signed with an older key by then). For what must follow one session
/// beyond its request (a relayed WebSocket); the id itself never leaves this function.
pub fn hashed_id(req: &actix_web::HttpRequest, keys: &Keys) -> Option<String> {
    use actix_web::cookie::{Cookie, CookieJar};
    let value =
        req.headers().get_all(header::COOKIE).map(HeaderValue::as_bytes).filter_map(header_text).find_map(
            |s| {
                pairs(s).find(|(name, _)| *name == SESSION_COOKIE).and_then(|(_, v)| {
                    percent_encoding::percent_decode_str(v).decode_utf8().ok().map(|d| d.into_owned())
                })
            },
        )?;
    let mut jar = CookieJar::new();
    jar.add_original(Cookie::new(SESSION_COOKIE, value));
    let id = jar.signed(&keys.cookie_key).get(SESSION_COOKIE)?;
    super::store::is_well_formed_id(id.value()).then(|| keys.hash_id(id.value()))
}

/// `session_key` rotation: a cookie signed with an older key is re-signed with the current one
/// in the request, so that actix-session (which knows one key) accepts it. Returns the new
/// value, for the response to hand out.
fn resign_old_cookie(req: &mut ServiceRequest) -> Option<String> {
    use actix_web::cookie::{Cookie, CookieJar};
    let keys = req.app_data::<actix_web::web::Data<Keys>>()?;
    if keys.old_cookie_keys.is_empty() {
        return None;
    }
    let value = session_cookie_value(req)?;
    let mut jar = CookieJar::new();
    jar.add_original(Cookie::new(SESSION_COOKIE, value));
    if jar.signed(&keys.cookie_key).get(SESSION_COOKIE).is_some() {
        return None;
    }
    let id = keys.old_cookie_keys.iter().find_map(|old| jar.signed(old).get(SESSION_COOKIE))?;
    let mut fresh = CookieJar::new();
    fresh.signed_mut(&keys.cookie_key).add(Cookie::new(SESSION_COOKIE, id.value().to_owned()));
    let resigned = fresh.get(SESSION_COOKIE)?.value().to_owned();
    let mut kept: Vec<String> = req
        .headers()
        .get_all(header::COOKIE)
        .map(HeaderValue::as_bytes)
        .filter_map(header_text)
        .flat_map(|s| s.split(';').map(str::trim).map(str::to_owned).collect::<Vec<_>>())
        .filter(|p| !p.is_empty() && !reads_as_session_name(p.split('=').next().unwrap_or(p)))
        .collect();
    kept.push(format!("{SESSION_COOKIE}={resigned}"));
    let header_value = HeaderValue::from_str(&kept.join("; ")).ok()?;
    req.headers_mut().insert(header::COOKIE, header_value);
    Some(resigned)
}

/// Gives the browser the re-signed cookie (same attributes as actix-session's), unless the
/// response sets the session cookie itself (renewal, logout) or refuses the request.
fn hand_out_resigned_cookie<B>(res: &mut ServiceResponse<B>, value: &str) {
    let prefix = format!("{SESSION_COOKIE}=");
    let sets_own =
        res.headers().get_all(header::SET_COOKIE).any(|v| v.as_bytes().starts_with(prefix.as_bytes()));
    if sets_own || res.status().is_client_error() || res.status().is_server_error() {
        return;
    }
    let cookie = format!("{SESSION_COOKIE}={value}; HttpOnly; SameSite=Lax; Secure; Path=/");
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        res.headers_mut().append(header::SET_COOKIE, v);
        res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}
