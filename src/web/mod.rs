//! HTTP pieces shared by the three programs: the JSON error type, health endpoints, security
//! headers, the same-origin check, per-client rate limits.

mod api_error;
mod error_code;
mod headers;
mod metrics_listener;
mod origin;
pub mod rate_limit;
mod request_span;

pub use api_error::ApiError;
pub use error_code::ErrorCode;
pub use headers::{CONTENT_SECURITY_POLICY, is_form, no_store, security_headers};
pub use metrics_listener::MetricsEndpoint;
pub use origin::{CrossSite, is_unsafe, require_same_origin};
pub use rate_limit::RateLimit;
pub use request_span::{HttpRoute, PathOnlySpan, request_logger};

use actix_web::{HttpResponse, web};

/// `GET /healthz`: the process is alive.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok")
}

/// `GET /metrics` for a registry kept in app data.
pub async fn metrics(registry: web::Data<prometheus::Registry>) -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(crate::telemetry::render(&registry))
}
