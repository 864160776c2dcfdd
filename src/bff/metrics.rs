//! Prometheus metrics of the BFF.

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

/// The BFF's metrics, registered in one registry served at `/metrics`.
pub struct BffMetrics {
    /// The registry.
    pub registry: Registry,
    /// `cloakroom_token_refresh_total{outcome}`.
    pub refresh: IntCounterVec,
    /// `cloakroom_proxy_requests_total{route,status_class}`.
    pub proxy_requests: IntCounterVec,
    /// `cloakroom_proxy_request_duration_seconds{route}`.
    pub proxy_latency: HistogramVec,
}

impl BffMetrics {
    /// Creates and registers the metrics.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let refresh = IntCounterVec::new(
            Opts::new("cloakroom_token_refresh_total", "Token refreshes by outcome"),
            &["outcome"],
        )?;
        let proxy_requests = IntCounterVec::new(
            Opts::new("cloakroom_proxy_requests_total", "Proxied requests by route and status class"),
            &["route", "status_class"],
        )?;
        let proxy_latency = HistogramVec::new(
            HistogramOpts::new("cloakroom_proxy_request_duration_seconds", "Proxied request latency"),
            &["route"],
        )?;
        registry.register(Box::new(refresh.clone()))?;
        registry.register(Box::new(proxy_requests.clone()))?;
        registry.register(Box::new(proxy_latency.clone()))?;
        for outcome in ["success", "session_expired", "unavailable", "store_error"] {
            refresh.with_label_values(&[outcome]);
        }
        Ok(Self { registry, refresh, proxy_requests, proxy_latency })
    }
}
