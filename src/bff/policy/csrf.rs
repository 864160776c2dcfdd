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

/// The checks every API call (proxy, `/bff/user`) passes: header, origin, content type.
pub fn check_api_call(req: &HttpRequest, public_origin: &str) -> Result<(), CsrfError> {
    require_header(req)?;
    require_same_origin(req, public_origin)?;
    refuse_simple_content_type(req)
}
