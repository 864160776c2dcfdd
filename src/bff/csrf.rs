//! CSRF defences: the custom header (`X-CSRF: 1`) that forces a CORS preflight on cross-origin
//! `fetch`, exact `Origin` / `Sec-Fetch-Site` checks on unsafe methods, and refusal of "simple"
//! content types on JSON routes (415 `unsupported_media_type`). No `Access-Control-Allow-*`
//! header is ever sent, so no preflight ever succeeds.

use actix_web::HttpRequest;
use actix_web::http::{Method, StatusCode, header};

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
            CsrfError::SimpleContentType => {
                Self::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", e.to_string())
            }
            _ => Self::new(StatusCode::FORBIDDEN, "csrf", e.to_string()),
        }
    }
}

/// True for methods that may change state.
pub fn is_unsafe(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE)
}

/// Requires `X-CSRF: 1`.
pub fn require_header(req: &HttpRequest) -> Result<(), CsrfError> {
    match req.headers().get("x-csrf") {
        Some(v) if v.as_bytes() == b"1" => Ok(()),
        _ => Err(CsrfError::MissingHeader),
    }
}

/// For unsafe methods: refuses `Sec-Fetch-Site: cross-site` and any `Origin` other than
/// exactly `public_origin` (`null` included).
pub fn require_same_origin(req: &HttpRequest, public_origin: &str) -> Result<(), CsrfError> {
    if !is_unsafe(req.method()) {
        return Ok(());
    }
    // Every value counts: a request carrying a second, foreign `Origin` (or `Sec-Fetch-Site`)
    // is not same-origin, whichever of them a later hop would read.
    let headers = req.headers();
    if headers.get_all("sec-fetch-site").any(|v| v.as_bytes().eq_ignore_ascii_case(b"cross-site")) {
        return Err(CsrfError::CrossSite);
    }
    if headers.get_all(header::ORIGIN).any(|origin| origin.as_bytes() != public_origin.as_bytes()) {
        return Err(CsrfError::CrossSite);
    }
    Ok(())
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
