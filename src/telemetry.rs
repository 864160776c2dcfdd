//! Logging and metrics set-up shared by the three programs.
//!
//! Logs go through `tracing`; every request gets a span with a request id (tracing-actix-web).
//! Nothing secret is ever a field of a span or event: session ids are logged as a keyed hash,
//! tokens, cookies and passwords not at all.

use prometheus::{Encoder, Registry, TextEncoder};
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber (once; later calls are no-ops). `RUST_LOG` filters,
/// `CLOAKROOM_LOG_FORMAT=json` switches to JSON lines.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("CLOAKROOM_LOG_FORMAT").is_ok_and(|v| v == "json");
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(std::io::stdout().is_terminal());
    let _ = if json { builder.json().try_init() } else { builder.try_init() };
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
