//! The `[bff]` section.

use super::types::{ListenAddr, PublicUrl, SessionKeys, StoreConfig};
use serde::Deserialize;

use super::bff_frontend::frontends;
pub use super::bff_frontend::{FrontendConfig, FrontendLogin, FrontendSource};
pub use super::bff_login::LoginParameter;
pub use super::bff_oidc::OidcClientConfig;
use super::bff_route::routes;
pub use super::bff_route::{RouteConfig, RouteCsrf, RouteMethod, RouteSession, RouteToken};

/// Configuration of the BFF session broker.
#[derive(Debug, Clone, Deserialize)]
pub struct BffConfig {
    /// Address to listen on.
    #[serde(default = "default_listen")]
    pub listen: ListenAddr,
    /// Where `/metrics` is served instead of `listen` (unset: on `listen`).
    #[serde(default)]
    pub metrics_listen: Option<ListenAddr>,
    /// On SIGTERM: stop accepting, then give in-flight requests this long to finish.
    #[serde(default = "super::types::default_shutdown_timeout_secs")]
    pub shutdown_timeout_secs: u64,
    /// Traces (OpenTelemetry): `bff.telemetry.otlp_endpoint`, `….trust_incoming_traceparent`.
    #[serde(default)]
    pub telemetry: super::TelemetryConfig,
    /// The origin browsers use; the callback is `public_url + "/bff/callback"`.
    #[serde(default = "default_public_url")]
    pub public_url: PublicUrl,
    /// Session store.
    #[serde(flatten)]
    pub store: StoreConfig,
    /// Keys encrypting tokens at rest (required outside `demo`).
    #[serde(default)]
    pub session_key: Option<SessionKeys>,
    /// Key of the hash that turns session and user ids into store keys; independent of
    /// `session_key` so that rotating that never moves a record. Unset: a fixed key.
    #[serde(default)]
    pub session_id_hash_key: Option<SessionKeys>,
    /// Refresh this long before the access token expires (capped at half its lifetime).
    #[serde(default = "default_refresh_skew")]
    pub refresh_skew_secs: u64,
    /// Lifetime of the cross-instance refresh lock: longer than a refresh can take (the provider
    /// timeout plus a margin), so that a crashed holder does not block a session for long.
    #[serde(default = "default_refresh_lock_ttl_ms")]
    pub refresh_lock_ttl_ms: u64,
    /// How long a request waits for another request's (or instance's) refresh before it
    /// answers 503 `auth_server_unavailable`; it never refreshes a second time.
    #[serde(default = "default_refresh_wait_ms")]
    pub refresh_wait_ms: u64,
    /// Timeout for a call to an upstream resource server.
    #[serde(default = "default_upstream_timeout")]
    pub upstream_timeout_secs: u64,
    /// Longest pause between two chunks of an upstream's response body (a stream of events, a
    /// long download) before the BFF ends the response.
    #[serde(default = "default_upstream_idle_timeout")]
    pub upstream_idle_timeout_secs: u64,
    /// How long an idle pooled connection to an upstream (or the provider) is kept for reuse.
    /// Shorter than the upstreams' own keep-alive (actix 5 s, nginx 75 s), so that the BFF
    /// drops a connection before the upstream does and rarely sends into a closing one.
    #[serde(default = "default_upstream_pool_idle")]
    pub upstream_pool_idle_secs: u64,
    /// Largest request body forwarded upstream.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// Largest WebSocket message (a frame, or a fragmented message put together) relayed either
    /// way on a `websocket = true` route; a larger one closes the socket with 1009.
    #[serde(default = "default_websocket_max_message")]
    pub websocket_max_message_bytes: usize,
    /// A relayed WebSocket with no frame either way for this long is closed with 1001.
    #[serde(default = "default_websocket_idle_timeout")]
    pub websocket_idle_timeout_secs: u64,
    /// Whether frames of a relayed WebSocket slide the session's idle timeout as requests do.
    /// Off by default: a socket kept open by itself does not keep its user signed in.
    #[serde(default)]
    pub websocket_slides_session: bool,
    /// Most session and token records kept in this instance's near cache (0 turns it off).
    #[serde(default = "default_near_cache_entries")]
    pub near_cache_entries: usize,
    /// Put the ID token into the end-session URL as `id_token_hint`. Off by default: that URL goes
    /// to the browser, and no token may (the URL carries `client_id` instead, which RP-initiated
    /// logout accepts together with `post_logout_redirect_uri`).
    #[serde(default)]
    pub logout_id_token_hint: bool,
    /// Lifetime of a login attempt started at `/bff/login` (its store record and its login
    /// cookie): how long the user may take at the provider. Between 30 and 3600 seconds.
    #[serde(default = "default_login_attempt_ttl", deserialize_with = "login_attempt_ttl")]
    pub login_attempt_ttl_secs: u64,
    /// Login attempts one client address may start per window; more get 429
    /// `too_many_requests`. Every attempt is a store record until it ends or expires.
    #[serde(default = "default_login_rate_limit")]
    pub login_rate_limit_per_ip: u32,
    /// Window of the login-attempt counter.
    #[serde(default = "default_login_rate_window")]
    pub login_rate_limit_window_secs: u64,
    /// The authorization-request parameters `/bff/login` takes from its query and passes to
    /// the provider; any other parameter is 400 `invalid_login_parameter`.
    #[serde(
        default = "super::bff_login::default_login_parameters",
        deserialize_with = "super::bff_login::login_parameters"
    )]
    pub login_parameters: Vec<LoginParameter>,
    /// The OpenID provider and this client's registration there.
    pub oidc: OidcClientConfig,
    /// Session lifetimes.
    #[serde(default)]
    pub session: SessionConfig,
    /// Proxied routes: a fixed allow-list (the longest matching prefix serves a request).
    #[serde(default, deserialize_with = "routes")]
    pub routes: Vec<RouteConfig>,
    /// The app's own pages, served from the BFF's origin (the longest matching prefix serves a
    /// request that no route and no BFF endpoint serves). Without any, the bundled demo pages
    /// are served at `/` and `/app/`.
    #[serde(default, deserialize_with = "frontends")]
    pub frontends: Vec<FrontendConfig>,
}

/// `[bff.session]`.
#[derive(Debug, Clone, Deserialize)]
pub struct SessionConfig {
    /// Sliding idle timeout.
    #[serde(default = "default_idle")]
    pub idle_timeout_secs: u64,
    /// Absolute lifetime, never extended.
    #[serde(default = "default_absolute")]
    pub absolute_timeout_secs: u64,
    /// What happens when a session is used from another coarse IP range or user-agent family.
    #[serde(default)]
    pub client_binding: ClientBinding,
}

/// `bff.session.client_binding`: reaction to a session used by a different-looking client.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientBinding {
    /// Nothing is checked (default).
    #[default]
    Off,
    /// A change is logged as a security event; the session goes on.
    Flag,
    /// A change is logged as a security event and the session is ended (401).
    End,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            idle_timeout_secs: default_idle(),
            absolute_timeout_secs: default_absolute(),
            client_binding: ClientBinding::Off,
        }
    }
}

fn default_login_attempt_ttl() -> u64 {
    300
}
fn default_login_rate_limit() -> u32 {
    30
}
fn default_login_rate_window() -> u64 {
    60
}

/// Bounds of `login_attempt_ttl_secs`: under 30 s a user cannot finish signing in; over an hour
/// a flood of attempts lingers in the store for no one's benefit.
const LOGIN_ATTEMPT_TTL_RANGE: std::ops::RangeInclusive<u64> = 30..=3600;

fn login_attempt_ttl<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let secs = u64::deserialize(d)?;
    if !LOGIN_ATTEMPT_TTL_RANGE.contains(&secs) {
        return Err(serde::de::Error::custom(format!(
            "must be between {} and {} seconds",
            LOGIN_ATTEMPT_TTL_RANGE.start(),
            LOGIN_ATTEMPT_TTL_RANGE.end()
        )));
    }
    Ok(secs)
}

fn default_listen() -> ListenAddr {
    ListenAddr(([127, 0, 0, 1], 8080).into())
}
fn default_public_url() -> PublicUrl {
    PublicUrl::parse("http://localhost:8080").unwrap_or_else(|_| unreachable!())
}
fn default_refresh_skew() -> u64 {
    30
}
fn default_refresh_lock_ttl_ms() -> u64 {
    15_000
}
fn default_refresh_wait_ms() -> u64 {
    10_000
}
fn default_upstream_timeout() -> u64 {
    30
}
fn default_upstream_idle_timeout() -> u64 {
    60
}
fn default_upstream_pool_idle() -> u64 {
    4
}
fn default_max_body() -> usize {
    1024 * 1024
}
fn default_websocket_max_message() -> usize {
    1024 * 1024
}
fn default_websocket_idle_timeout() -> u64 {
    300
}
fn default_near_cache_entries() -> usize {
    100_000
}
fn default_idle() -> u64 {
    1800
}
fn default_absolute() -> u64 {
    43200
}
