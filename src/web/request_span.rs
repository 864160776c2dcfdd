//! The per-request span of all three programs (the log line of each request, and the root of
//! its trace when traces are on). Unlike tracing-actix-web's default it records the path
//! without the query string: queries carry authorization codes, `state`, `id_token_hint`s and
//! other values that must never be logged. No header is ever recorded. One line per finished
//! request (method, route, path, status, outcome, request id) is the access log.

use crate::telemetry::TraceTrust;
use crate::web::ApiError;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::{Error, HttpMessage};
use tracing::Span;
use tracing::field::Empty;
use tracing_actix_web::{DefaultRootSpanBuilder, RequestId, RootSpanBuilder};

/// The route of a request the router matched to no resource of its own (a proxied route, a
/// frontend): put in the request's extensions by the handler, recorded as `http.route`.
#[derive(Debug, Clone)]
pub struct HttpRoute(pub std::sync::Arc<str>);

/// Root span with method, route, path (no query), request id and, at the end, the status and
/// the outcome (`ok`, the wire error code, `client_error` or `server_error`).
pub struct PathOnlySpan;

impl RootSpanBuilder for PathOnlySpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let request_id = request.extensions().get::<RequestId>().copied();
        let span = tracing::info_span!(
            "HTTP request",
            otel.name = Empty,
            otel.kind = "server",
            http.method = %request.method(),
            http.route = Empty,
            http.target = %request.path(),
            request_id = request_id.map(|r| r.to_string()).unwrap_or_default(),
            http.status_code = Empty,
            outcome = Empty,
            otel.status_code = Empty,
            exception.message = Empty,
            exception.details = Empty,
        );
        // A caller's trace context is believed only where the program says so; otherwise the
        // request starts a trace of its own (and the header is never forwarded).
        if crate::telemetry::traces_enabled() && request.app_data::<TraceTrust>().is_some_and(|t| t.0) {
            crate::telemetry::adopt_remote_parent(&span, request.headers());
        }
        span
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        let (status, error) = match outcome {
            Ok(res) => {
                let req = res.request();
                // A proxied route's prefix (its handler names it), else the matched pattern.
                let named = req.extensions().get::<HttpRoute>().map(|r| r.0.to_string());
                let route = named.or_else(|| req.match_pattern()).unwrap_or_else(|| "default".into());
                if crate::telemetry::traces_enabled() {
                    // The exported span's name: method and route, never the path.
                    span.record("otel.name", format!("{} {route}", req.method()));
                }
                span.record("http.route", route);
                (res.response().status().as_u16(), res.response().error())
            }
            Err(e) => (e.as_response_error().status_code().as_u16(), Some(e)),
        };
        let code = error.and_then(|e| e.as_error::<ApiError>()).map(|e| e.code().as_str());
        let outcome_label = match (code, status) {
            (Some(code), _) => code,
            (None, ..400) => "ok",
            (None, 400..500) => "client_error",
            (None, _) => "server_error",
        };
        span.record("outcome", outcome_label);
        tracing::info!(parent: &span, status, "request finished");
        DefaultRootSpanBuilder::on_request_end(span, outcome);
    }
}

/// The request-logging middleware every program wraps its app in.
pub fn request_logger() -> tracing_actix_web::TracingLogger<PathOnlySpan> {
    tracing_actix_web::TracingLogger::<PathOnlySpan>::new()
}
