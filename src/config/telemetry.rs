//! The `telemetry` table of each program's section (`bff.telemetry`, `auth_server.telemetry`,
//! `resource_server.telemetry`): where traces go, and whether a caller's trace context is
//! believed.

use super::types::PublicUrl;
use serde::Deserialize;

/// Traces (OpenTelemetry) of one program. Everything is off by default.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    /// Base URL of an OTLP/HTTP receiver (a Collector's `http://collector:4318`); spans go to
    /// `<otlp_endpoint>/v1/traces` as protobuf. Unset: `OTEL_EXPORTER_OTLP_ENDPOINT` when that
    /// is set, else no traces at all.
    #[serde(default)]
    pub otlp_endpoint: Option<PublicUrl>,
    /// Whether an incoming `traceparent`/`tracestate` becomes the parent of the request's span.
    /// Off: a caller's trace context is ignored (and never forwarded), each request starts a
    /// trace of its own.
    #[serde(default)]
    pub trust_incoming_traceparent: bool,
}

impl TelemetryConfig {
    /// The OTLP/HTTP traces URL this program exports to, from the key or else the standard
    /// environment variables (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` as is,
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/traces`); `None`: traces are off.
    pub fn traces_url(&self) -> Option<String> {
        if let Some(url) = &self.otlp_endpoint {
            return Some(url.join("/v1/traces"));
        }
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").or_else(|| {
            var("OTEL_EXPORTER_OTLP_ENDPOINT").map(|base| format!("{}/v1/traces", base.trim_end_matches('/')))
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{BffConfig, ConfigSource};

    #[test]
    fn a_bad_endpoint_names_its_key_in_one_line() {
        let src = ConfigSource::from_toml_str("[bff.telemetry]\notlp_endpoint = 'collector:4318'\n");
        let err = src.section::<BffConfig>("bff").unwrap_err();
        assert_eq!(err.key, "bff.telemetry.otlp_endpoint", "{err}");
        assert!(!err.to_string().contains('\n'));
    }

    #[test]
    fn the_endpoint_is_a_base_url_and_trust_is_off_by_default() {
        let src = ConfigSource::from_toml_str("[bff.telemetry]\notlp_endpoint = 'http://collector:4318/'\n");
        let cfg = src.section::<super::TelemetryConfig>("bff.telemetry").unwrap();
        assert_eq!(cfg.traces_url().as_deref(), Some("http://collector:4318/v1/traces"));
        assert!(!cfg.trust_incoming_traceparent);
    }

    #[test]
    fn an_unknown_telemetry_key_is_named() {
        let src = ConfigSource::from_toml_str("[auth_server.telemetry]\ntrust_traceparent = true\n");
        let err = src.section::<crate::config::AuthServerConfig>("auth_server").unwrap_err();
        assert_eq!(err.key, "auth_server.telemetry.trust_traceparent", "{err}");
    }
}
