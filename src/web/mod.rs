//! HTTP pieces shared by the three programs: the JSON error type, health endpoints, security
//! headers.

mod api_error;
mod headers;
mod request_span;

pub use api_error::ApiError;
pub use headers::{is_form, no_store, security_headers};
pub use request_span::{PathOnlySpan, request_logger};

use actix_web::{HttpResponse, web};

/// `GET /healthz`: the process is alive.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok")
}

/// `GET /metrics` for a registry kept in app data.
pub async fn metrics(registry: web::Data<prometheus::Registry>) -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(crate::telemetry::render(&registry))
}
