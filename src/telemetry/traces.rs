//! The OpenTelemetry pipeline: `tracing` spans → tracing-opentelemetry → the SDK's batch
//! processor → OTLP/HTTP (protobuf) to the configured receiver. Built only when a program has
//! an endpoint; otherwise none of this exists and the subscriber is the log formatter alone.
//!
//! What is exported is the programs' own spans (target `cloakroom…`), never events: a span's
//! fields are chosen where it is made (`skip_all` and explicit, non-secret fields), and log
//! events, which may describe failures in more words, stay in the logs.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::{Level, Metadata, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::registry::LookupSpan;

/// Where one process sends its spans, under which service name.
#[derive(Debug, Clone)]
pub struct TraceExport {
    /// `service.name` of every span (`cloakroom-bff`, `cloakroom-auth-server`, …).
    pub service_name: String,
    /// The OTLP/HTTP traces URL (`…/v1/traces`).
    pub url: String,
}

/// Why the trace pipeline could not be built. Displays as one line.
#[derive(Debug, thiserror::Error)]
pub enum TracesError {
    /// The exporter refused its settings (endpoint, HTTP client).
    #[error("traces: cannot export to {url}: {cause}")]
    Exporter {
        /// The traces URL.
        url: String,
        /// Why.
        cause: String,
    },
}

/// The running trace pipeline of a process (or none). [`Traces::shutdown`] exports what is
/// still buffered; call it once the servers have stopped.
#[derive(Debug)]
pub struct Traces {
    provider: Option<SdkTracerProvider>,
}

impl Traces {
    /// No pipeline: traces are off.
    pub(super) fn off() -> Self {
        Self { provider: None }
    }

    /// Whether spans are exported.
    pub fn is_on(&self) -> bool {
        self.provider.is_some()
    }

    /// Sends every finished span still buffered, then stops the exporter. Blocks (up to the
    /// exporter's timeout): call it outside the async runtime.
    pub fn shutdown(self) {
        if let Some(provider) = self.provider
            && let Err(e) = provider.shutdown()
        {
            tracing::warn!(error = %e, "traces: shutdown");
        }
    }
}

/// The exporting provider and the layer that feeds it. Marks traces as on ([`super::traces_enabled`]).
pub(super) fn pipeline<S>(export: &TraceExport) -> Result<(Traces, impl Layer<S>), TracesError>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(export.url.clone())
        .build()
        .map_err(|e| TracesError::Exporter { url: export.url.clone(), cause: e.to_string() })?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(Resource::builder().with_service_name(export.service_name.clone()).build())
        .build();
    let tracer = provider.tracer("cloakroom");
    super::propagation::enable();
    let layer = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_tracked_inactivity(false)
        .with_filter(filter_fn(exported));
    Ok((Traces { provider: Some(provider) }, layer))
}

/// The spans that become OpenTelemetry spans: the programs' own, down to `debug` (the child
/// spans of store, near cache, refresh and upstream calls are `debug`, so the log formatter,
/// at `info`, never pays for them). No events.
fn exported(meta: &Metadata<'_>) -> bool {
    meta.is_span() && meta.target().starts_with("cloakroom") && *meta.level() <= Level::DEBUG
}
