//! Logging, traces and metrics set-up shared by the three programs.
//!
//! Logs go through `tracing`; every request gets a span with a request id (tracing-actix-web).
//! Traces (OpenTelemetry, [`traces`]) are the same spans exported over OTLP/HTTP, only when an
//! endpoint is configured. Nothing secret is ever a field of a span or event: session ids are
//! logged as a keyed hash, tokens, cookies and passwords not at all.

mod propagation;
mod traces;

pub use propagation::{TraceTrust, adopt_remote_parent, inject_current, traces_enabled};
pub use traces::{TraceExport, Traces, TracesError};

use prometheus::{Encoder, Registry, TextEncoder};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// Installs the global subscriber (once; later calls are no-ops). `RUST_LOG` filters,
/// `CLOAKROOM_LOG_FORMAT=json` switches to JSON lines. With `export`, spans also go to an
/// OTLP/HTTP receiver (the returned [`Traces`] flushes them at shutdown); without it the
/// subscriber is the plain log formatter and nothing else.
pub fn init(export: Option<&TraceExport>) -> Result<Traces, TracesError> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("CLOAKROOM_LOG_FORMAT").is_ok_and(|v| v == "json");
    use std::io::IsTerminal;
    let ansi = std::io::stdout().is_terminal();
    let Some(export) = export else {
        let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false).with_ansi(ansi);
        let _ = if json { builder.json().try_init() } else { builder.try_init() };
        return Ok(Traces::off());
    };
    let (traces, otel_layer) = traces::pipeline(export)?;
    let fmt = tracing_subscriber::fmt::layer().with_target(false).with_ansi(ansi);
    // The log filter applies to the log lines only: the exporter has its own (traces.rs).
    let fmt = if json { fmt.json().boxed() } else { fmt.boxed() };
    let _ = tracing_subscriber::registry().with(fmt.with_filter(filter)).with(otel_layer).try_init();
    Ok(traces)
}

/// The subscriber of the admin commands: errors only, on stderr, so stdout carries only
/// their output (`RUST_LOG` still filters).
pub fn init_admin() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("error"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(false)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Renders a registry in the Prometheus text format.
pub fn render(registry: &Registry) -> String {
    let mut buf = Vec::new();
    let encoder = TextEncoder::new();
    if encoder.encode(&registry.gather(), &mut buf).is_err() {
        return String::new();
    }
    String::from_utf8(buf).unwrap_or_default()
}
