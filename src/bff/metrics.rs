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

/// `metric`, registered in `registry`.
fn registered<M: prometheus::core::Collector + Clone + 'static>(
    registry: &Registry,
    metric: M,
) -> Result<M, prometheus::Error> {
    registry.register(Box::new(metric.clone()))?;
    Ok(metric)
}

/// The refresh counter (every outcome's series present from the start) and the wait histogram.
fn refresh_metrics(registry: &Registry) -> Result<(IntCounterVec, Histogram), prometheus::Error> {
    let refresh = registered(
        registry,
        IntCounterVec::new(
            Opts::new("cloakroom_token_refresh_total", "Token refreshes by outcome"),
            &["outcome"],
        )?,
    )?;
    let refresh_wait = registered(
        registry,
        Histogram::with_opts(
            HistogramOpts::new(
                "cloakroom_token_refresh_wait_seconds",
                "Time requests needing a token refresh waited for it",
            )
            .buckets(vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
        )?,
    )?;
    for outcome in ["success", "session_expired", "unavailable", "store_error", "wait_timeout"] {
        refresh.with_label_values(&[outcome]);
    }
    Ok((refresh, refresh_wait))
}

/// The proxy's request counter and latency histogram, by route.
fn proxy_metrics(registry: &Registry) -> Result<(IntCounterVec, HistogramVec), prometheus::Error> {
    let proxy_requests = registered(
        registry,
        IntCounterVec::new(
            Opts::new("cloakroom_proxy_requests_total", "Proxied requests by route and status class"),
            &["route", "status_class"],
        )?,
    )?;
    let proxy_latency = registered(
        registry,
        HistogramVec::new(
            HistogramOpts::new("cloakroom_proxy_request_duration_seconds", "Proxied request latency"),
            &["route"],
        )?,
    )?;
    Ok((proxy_requests, proxy_latency))
}

/// The open-socket gauge and the close counter (every reason's series present from the start).
fn websocket_metrics(registry: &Registry) -> Result<(IntGauge, IntCounterVec), prometheus::Error> {
    let open = registered(
        registry,
        IntGauge::new("cloakroom_websocket_open", "Relayed WebSockets open on this instance")?,
    )?;
    let closes = registered(
        registry,
        IntCounterVec::new(
            Opts::new("cloakroom_websocket_closes_total", "Relayed WebSockets closed, by reason"),
            &["reason"],
        )?,
    )?;
    for reason in WEBSOCKET_CLOSE_REASONS {
        closes.with_label_values(&[reason]);
    }
    Ok((open, closes))
}

impl RouteMetrics {
    /// Each route's series, resolved once so that a proxied request looks up no labels.
    fn for_routes(routes: &[&str], requests: &IntCounterVec, latency: &HistogramVec) -> Vec<RouteMetrics> {
        routes
            .iter()
            .map(|route| RouteMetrics {
                by_class: STATUS_CLASSES.iter().map(|c| requests.with_label_values(&[route, c])).collect(),
                latency: latency.with_label_values(&[route]),
            })
            .collect()
    }
}

impl BffMetrics {
    /// Creates and registers the metrics, with the proxy's series for `routes` (labels).
    pub fn new(routes: &[&str]) -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let (refresh, refresh_wait) = refresh_metrics(&registry)?;
        let (proxy_requests, proxy_latency) = proxy_metrics(&registry)?;
        let near_cache = registered(
            &registry,
            IntCounterVec::new(
                Opts::new(
                    "cloakroom_near_cache_lookups_total",
                    "Near-cache lookups of session and token records",
                ),
                &["outcome"],
            )?,
        )?;
        let upstream_retries = registered(
            &registry,
            IntCounter::new(
                "cloakroom_upstream_retries_total",
                "Idempotent upstream requests sent again on a fresh connection after a closed one",
            )?,
        )?;
        let (websocket_open, websocket_closes) = websocket_metrics(&registry)?;
        let routes = RouteMetrics::for_routes(routes, &proxy_requests, &proxy_latency);
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
