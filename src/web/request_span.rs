//! The per-request log span of all three programs. Unlike tracing-actix-web's default it
//! records the path without the query string: queries carry authorization codes, `state`,
//! `id_token_hint`s and other values that must never be logged. One line per finished request
//! (method, route, path, status, request id) is the access log.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::{Error, HttpMessage};
use tracing::Span;
use tracing_actix_web::{DefaultRootSpanBuilder, RequestId, RootSpanBuilder};

/// Root span with method, route, path (no query), request id and, at the end, the status.
pub struct PathOnlySpan;

impl RootSpanBuilder for PathOnlySpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let request_id = request.extensions().get::<RequestId>().copied();
        let route = request.match_pattern().unwrap_or_else(|| "default".into());
        tracing::info_span!(
            "HTTP request",
            http.method = %request.method(),
            http.route = %route,
            http.target = %request.path(),
            request_id = request_id.map(|r| r.to_string()).unwrap_or_default(),
            http.status_code = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
            exception.message = tracing::field::Empty,
            exception.details = tracing::field::Empty,
        )
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        let status = match outcome {
            Ok(res) => res.response().status().as_u16(),
            Err(e) => e.as_response_error().status_code().as_u16(),
        };
        tracing::info!(parent: &span, status, "request finished");
        DefaultRootSpanBuilder::on_request_end(span, outcome);
    }
}

/// The request-logging middleware every program wraps its app in.
pub fn request_logger() -> tracing_actix_web::TracingLogger<PathOnlySpan> {
    tracing_actix_web::TracingLogger::<PathOnlySpan>::new()
}
