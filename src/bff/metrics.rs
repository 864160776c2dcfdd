//! Prometheus metrics of the BFF.

use prometheus::{Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry};

/// The BFF's metrics, registered in one registry served at `/metrics`.
pub struct BffMetrics {
    /// The registry.
    pub registry: Registry,
    /// `cloakroom_token_refresh_total{outcome}`.
    pub refresh: IntCounterVec,
    /// `cloakroom_token_refresh_wait_seconds`: how long a request needing a refresh waited for
    /// it (its own refresh, or another request's or instance's).
    pub refresh_wait: Histogram,
    /// `cloakroom_proxy_requests_total{route,status_class}`.
    pub proxy_requests: IntCounterVec,
    /// `cloakroom_proxy_request_duration_seconds{route}`.
    pub proxy_latency: HistogramVec,
    /// `cloakroom_near_cache_lookups_total{outcome="hit"|"miss"}`: session and token record
    /// lookups answered by this instance's near cache, or not.
    pub near_cache: IntCounterVec,
    /// `cloakroom_upstream_retries_total`: idempotent requests sent again on a fresh connection
    /// because the reused one turned out closed.
    pub upstream_retries: IntCounter,
}

impl BffMetrics {
    /// Creates and registers the metrics.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let refresh = IntCounterVec::new(
            Opts::new("cloakroom_token_refresh_total", "Token refreshes by outcome"),
            &["outcome"],
        )?;
        let refresh_wait = Histogram::with_opts(
            HistogramOpts::new(
                "cloakroom_token_refresh_wait_seconds",
                "Time requests needing a token refresh waited for it",
            )
            .buckets(vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
        )?;
        let proxy_requests = IntCounterVec::new(
            Opts::new("cloakroom_proxy_requests_total", "Proxied requests by route and status class"),
            &["route", "status_class"],
        )?;
        let proxy_latency = HistogramVec::new(
            HistogramOpts::new("cloakroom_proxy_request_duration_seconds", "Proxied request latency"),
            &["route"],
        )?;
        let near_cache = IntCounterVec::new(
            Opts::new(
                "cloakroom_near_cache_lookups_total",
                "Near-cache lookups of session and token records",
            ),
            &["outcome"],
        )?;
        let upstream_retries = IntCounter::new(
            "cloakroom_upstream_retries_total",
            "Idempotent upstream requests sent again on a fresh connection after a closed one",
        )?;
        registry.register(Box::new(upstream_retries.clone()))?;
        registry.register(Box::new(near_cache.clone()))?;
        registry.register(Box::new(refresh.clone()))?;
        registry.register(Box::new(refresh_wait.clone()))?;
        registry.register(Box::new(proxy_requests.clone()))?;
        registry.register(Box::new(proxy_latency.clone()))?;
        for outcome in ["success", "session_expired", "unavailable", "store_error", "wait_timeout"] {
            refresh.with_label_values(&[outcome]);
        }
        Ok(Self {
            registry,
            refresh,
            refresh_wait,
            proxy_requests,
            proxy_latency,
            near_cache,
            upstream_retries,
        })
    }
}
