//! CSRF defences: the custom header (`X-CSRF: 1`) that forces a CORS preflight on cross-origin
//! `fetch`, exact `Origin` / `Sec-Fetch-Site` checks on unsafe methods, and refusal of "simple"
//! content types on JSON routes (415 `unsupported_media_type`). No `Access-Control-Allow-*`
//! header is ever sent, so no preflight ever succeeds.

use crate::web::ErrorCode;
use actix_web::HttpRequest;
use actix_web::http::header;

/// Why a request was refused as a possible forgery.
#[derive(Debug, thiserror::Error)]
pub enum CsrfError {
    /// `X-CSRF: 1` is missing.
    #[error("the X-CSRF: 1 header is required")]
    MissingHeader,
    /// A cross-site unsafe request.
    #[error("cross-site request refused")]
    CrossSite,
    /// The form token is missing or wrong.
    #[error("the form token is missing or wrong")]
    BadFormToken,
    /// A WebSocket upgrade without the BFF's own `Origin` (cross-site WebSocket hijacking).
    #[error("a WebSocket upgrade needs this site's own Origin")]
    NotOwnOrigin,
    /// A simple content type on a JSON route.
    #[error("content type not accepted here; send application/json")]
    SimpleContentType,
}

impl From<CsrfError> for crate::web::ApiError {
    fn from(e: CsrfError) -> Self {
        match e {
            CsrfError::SimpleContentType => Self::new(ErrorCode::UnsupportedMediaType, e.to_string()),
            _ => Self::new(ErrorCode::Csrf, e.to_string()),
        }
    }
}

use crate::web::is_unsafe;

/// Requires `X-CSRF: 1`.
pub fn require_header(req: &HttpRequest) -> Result<(), CsrfError> {
    match req.headers().get("x-csrf") {
        Some(v) if v.as_bytes() == b"1" => Ok(()),
        _ => Err(CsrfError::MissingHeader),
    }
}

/// [`crate::web::require_same_origin`] (the check the auth server's forms share), as a CSRF
/// refusal.
pub fn require_same_origin(req: &HttpRequest, public_origin: &str) -> Result<(), CsrfError> {
    crate::web::require_same_origin(req, public_origin).map_err(|_| CsrfError::CrossSite)
}

/// For unsafe methods on JSON routes: refuses the content types a form or `fetch` without
/// preflight can send (`text/plain`, `multipart/form-data`, `application/x-www-form-urlencoded`).
pub fn refuse_simple_content_type(req: &HttpRequest) -> Result<(), CsrfError> {
    if !is_unsafe(req.method()) {
        return Ok(());
    }
    let Some(ct) = req.headers().get(header::CONTENT_TYPE) else { return Ok(()) };
    let essence = ct.to_str().unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if matches!(essence.as_str(), "text/plain" | "multipart/form-data" | "application/x-www-form-urlencoded")
    {
        return Err(CsrfError::SimpleContentType);
    }
    Ok(())
}

/// For any method: every `Origin` is exactly `public_origin` and every `Sec-Fetch-Site` is
/// `same-origin` or `none` (typed by the user); a request with neither passes. `same-site` is
/// refused too: a sibling subdomain is another origin, and the session cookie reaches it.
pub fn require_same_origin_any_method(req: &HttpRequest, public_origin: &str) -> Result<(), CsrfError> {
    let headers = req.headers();
    let foreign_site = headers.get_all("sec-fetch-site").any(|v| {
        let v = v.as_bytes();
        !(v.eq_ignore_ascii_case(b"same-origin") || v.eq_ignore_ascii_case(b"none"))
    });
    if foreign_site || headers.get_all(header::ORIGIN).any(|o| o.as_bytes() != public_origin.as_bytes()) {
        return Err(CsrfError::CrossSite);
    }
    Ok(())
}

/// For a WebSocket upgrade (which cannot carry `X-CSRF`, and which browsers send cross-site
/// with the cookie: cross-site WebSocket hijacking): exactly one `Origin`, equal to
/// `public_origin`, and no foreign `Sec-Fetch-Site`. A missing `Origin` is refused too: every
/// browser sends one on a WebSocket handshake, so its absence means a client that is not one
/// — or one whose request was tampered with.
pub fn require_own_origin(req: &HttpRequest, public_origin: &str) -> Result<(), CsrfError> {
    let mut origins = req.headers().get_all(header::ORIGIN);
    match (origins.next(), origins.next()) {
        (Some(o), None) if o.as_bytes() == public_origin.as_bytes() => {}
        _ => return Err(CsrfError::NotOwnOrigin),
    }
    require_same_origin_any_method(req, public_origin).map_err(|_| CsrfError::NotOwnOrigin)
}

/// `csrf = "unsafe-methods"`: safe methods need only [`require_same_origin_any_method`] (so
/// that downloads, `<img>` and `EventSource`, which cannot send a header, work); unsafe methods
/// pass every check of [`check_api_call`].
pub fn check_unsafe_methods(req: &HttpRequest, public_origin: &str) -> Result<(), CsrfError> {
    if is_unsafe(req.method()) {
        check_api_call(req, public_origin)
    } else {
        require_same_origin_any_method(req, public_origin)
    }
}

/// The checks every API call (proxy, `/bff/user`) passes: header, origin, content type.
pub fn check_api_call(req: &HttpRequest, public_origin: &str) -> Result<(), CsrfError> {
    require_header(req)?;
    require_same_origin(req, public_origin)?;
    refuse_simple_content_type(req)
}
