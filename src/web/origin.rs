//! The same-origin check for state-changing requests, shared by the BFF (its CSRF defence) and
//! the auth server (login CSRF on its sign-in and sign-up forms).

use actix_web::HttpRequest;
use actix_web::http::{Method, header};

/// An unsafe request that the browser marked as cross-site, or that carries a foreign `Origin`.
#[derive(Debug, thiserror::Error)]
#[error("cross-site request refused")]
pub struct CrossSite;

/// True for methods that may change state.
pub fn is_unsafe(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE)
}

/// For unsafe methods: refuses `Sec-Fetch-Site: cross-site` and any `Origin` other than
/// exactly `public_origin` (`null` included). A request with neither header passes.
pub fn require_same_origin(req: &HttpRequest, public_origin: &str) -> Result<(), CrossSite> {
    if !is_unsafe(req.method()) {
        return Ok(());
    }
    // Every value counts: a request carrying a second, foreign `Origin` (or `Sec-Fetch-Site`)
    // is not same-origin, whichever of them a later hop would read.
    let headers = req.headers();
    if headers.get_all("sec-fetch-site").any(|v| v.as_bytes().eq_ignore_ascii_case(b"cross-site")) {
        return Err(CrossSite);
    }
    if headers.get_all(header::ORIGIN).any(|origin| origin.as_bytes() != public_origin.as_bytes()) {
        return Err(CrossSite);
    }
    Ok(())
}
