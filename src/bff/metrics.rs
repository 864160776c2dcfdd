//! Prometheus metrics of the BFF.

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
};

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
    /// `cloakroom_websocket_open`: relayed WebSockets open on this instance.
    pub websocket_open: IntGauge,
    /// `cloakroom_websocket_closes_total{reason}`: relayed WebSockets closed, by why
    /// ([`WEBSOCKET_CLOSE_REASONS`]).
    pub websocket_closes: IntCounterVec,
    /// The proxy's series of each configured route, in the configuration's order.
    routes: Vec<RouteMetrics>,
}

/// How a proxied request ended, as the `status_class` label says it.
#[derive(Debug, Clone, Copy)]
pub enum ProxyOutcome {
    /// The upstream answered with this status.
    Status(u16),
    /// No usable access token.
    TokenError,
    /// The upstream could not be reached, timed out, or the body was too large.
    Error,
}

/// The `reason` labels of `cloakroom_websocket_closes_total`: the browser or the upstream
/// closed, the session ended (1008), the idle timeout (1001), a message over the limit (1009),
/// a broken connection or protocol error.
pub const WEBSOCKET_CLOSE_REASONS: [&str; 6] =
    ["browser", "upstream", "session_ended", "idle", "too_large", "error"];

const STATUS_CLASSES: [&str; 8] = ["0xx", "1xx", "2xx", "3xx", "4xx", "5xx", "token_error", "error"];

impl ProxyOutcome {
    fn index(self) -> usize {
        match self {
            Self::Status(s) if s < 600 => usize::from(s / 100),
            Self::TokenError => 6,
            Self::Status(_) | Self::Error => 7,
        }
    }
}

/// One route's series, resolved at start so that a proxied request looks up no labels.
pub struct RouteMetrics {
    by_class: Vec<IntCounter>,
    latency: Histogram,
}

impl RouteMetrics {
    /// Counts one proxied request and its latency.
    pub fn observe(&self, outcome: ProxyOutcome, elapsed: std::time::Duration) {
        if let Some(counter) = self.by_class.get(outcome.index()) {
            counter.inc();
        }
        self.latency.observe(elapsed.as_secs_f64());
    }
}

impl BffMetrics {
    /// Creates and registers the metrics, with the proxy's series for `routes` (labels).
    pub fn new(routes: &[&str]) -> Result<Self, prometheus::Error> {
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
        let websocket_open =
            IntGauge::new("cloakroom_websocket_open", "Relayed WebSockets open on this instance")?;
        let websocket_closes = IntCounterVec::new(
            Opts::new("cloakroom_websocket_closes_total", "Relayed WebSockets closed, by reason"),
            &["reason"],
        )?;
        for reason in WEBSOCKET_CLOSE_REASONS {
            websocket_closes.with_label_values(&[reason]);
        }
        registry.register(Box::new(websocket_open.clone()))?;
        registry.register(Box::new(websocket_closes.clone()))?;
        registry.register(Box::new(upstream_retries.clone()))?;
        registry.register(Box::new(near_cache.clone()))?;
        registry.register(Box::new(refresh.clone()))?;
        registry.register(Box::new(refresh_wait.clone()))?;
        registry.register(Box::new(proxy_requests.clone()))?;
        registry.register(Box::new(proxy_latency.clone()))?;
        for outcome in ["success", "session_expired", "unavailable", "store_error", "wait_timeout"] {
            refresh.with_label_values(&[outcome]);
        }
        let routes = routes
            .iter()
            .map(|route| RouteMetrics {
                by_class: STATUS_CLASSES
                    .iter()
                    .map(|c| proxy_requests.with_label_values(&[route, c]))
                    .collect(),
                latency: proxy_latency.with_label_values(&[route]),
            })
            .collect();
        Ok(Self {
            registry,
            refresh,
            refresh_wait,
            proxy_requests,
            proxy_latency,
            near_cache,
            upstream_retries,
            websocket_open,
            websocket_closes,
            routes,
        })
    }

    /// The series of the `index`-th configured route.
    pub fn route(&self, index: usize) -> Option<&RouteMetrics> {
        self.routes.get(index)
    }
}
