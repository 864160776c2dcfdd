//! W3C trace context (`traceparent`, `tracestate`) across process boundaries: written into
//! the requests the programs send (upstream calls, provider calls) from the current span, and
//! read from an incoming request only where the program trusts its callers with it.
//!
//! Everything here is a no-op (one atomic load) while traces are off.

use opentelemetry::propagation::{Extractor, TextMapPropagator as _};
use opentelemetry::trace::TraceContextExt as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use std::sync::atomic::{AtomicBool, Ordering};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Marks traces as on, once the pipeline exists.
pub(super) fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
}

/// Whether this process exports traces.
pub fn traces_enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Whether a program lets an incoming `traceparent` become the parent of its request span
/// (`<section>.telemetry.trust_incoming_traceparent`); app data of each program's `App`.
#[derive(Debug, Clone, Copy, Default)]
pub struct TraceTrust(pub bool);

/// Writes the current span's context into `headers` as `traceparent` (and `tracestate`),
/// replacing any there. Nothing when traces are off or there is no sampled span.
pub fn inject_current(headers: &mut http::HeaderMap) {
    if !traces_enabled() {
        return;
    }
    let cx = tracing::Span::current().context();
    if !cx.span().span_context().is_valid() {
        return;
    }
    headers.remove("traceparent");
    headers.remove("tracestate");
    TraceContextPropagator::new().inject_context(&cx, &mut opentelemetry_http::HeaderInjector(headers));
    // The propagator writes `tracestate` even when the trace has none: send none instead.
    if headers.get("tracestate").is_some_and(|v| v.is_empty()) {
        headers.remove("tracestate");
    }
}

/// Makes the trace context of an incoming request (its `traceparent`/`tracestate`) the
/// parent of `span`. Call it only for a program that trusts its callers ([`TraceTrust`]); a
/// malformed or absent `traceparent` leaves `span` the root of a new trace.
pub fn adopt_remote_parent(span: &tracing::Span, headers: &actix_web::http::header::HeaderMap) {
    if !traces_enabled() {
        return;
    }
    let cx = TraceContextPropagator::new().extract(&IncomingHeaders(headers));
    if cx.span().span_context().is_valid() {
        let _ = span.set_parent(cx);
    }
}

/// An incoming request's headers, read by the propagator.
struct IncomingHeaders<'a>(&'a actix_web::http::header::HeaderMap);

impl Extractor for IncomingHeaders<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}
