//! The BFF's own plain pages: the login callback's HTML error page and `/readyz`. The app's
//! pages are its frontends' (`[[bff.frontends]]`).

use super::state::BffState;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;

#[derive(Template)]
#[template(path = "bff_error.html")]
struct ErrorPage<'a> {
    message: &'a str,
}

/// An HTML error page (the login callback's failures).
pub fn error_page(status: StatusCode, message: &str) -> HttpResponse {
    let body = ErrorPage { message }.render().unwrap_or_else(|_| "error".into());
    HttpResponse::build(status)
        .insert_header(crate::web::no_store())
        .content_type("text/html; charset=utf-8")
        .body(body)
}

/// `GET /readyz`: the store answers and the provider's metadata is loaded.
pub async fn readyz(state: web::Data<BffState>) -> HttpResponse {
    let store_ok = state.store.ping().await.is_ok();
    let provider_ok = state.provider.metadata().await.is_ok();
    if store_ok && provider_ok {
        HttpResponse::Ok().content_type("text/plain").body("ready")
    } else {
        HttpResponse::ServiceUnavailable().content_type("text/plain").body(format!(
            "store: {}, provider metadata: {}",
            ok(store_ok),
            ok(provider_ok)
        ))
    }
}

fn ok(b: bool) -> &'static str {
    if b { "ok" } else { "unavailable" }
}
