//! The `[bff]` section.

use super::resource::{ResourceIndicator, ScopeToken};
use super::types::{FrontendPath, ListenAddr, PublicUrl, RoutePath, SessionKeys, StoreConfig};
use serde::Deserialize;

pub use super::bff_login::LoginParameter;
pub use super::bff_oidc::OidcClientConfig;

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

/// `[[bff.frontends]]`: the app's pages under `path`, either built files served from `dir` or
/// a frontend server (`upstream`: a dev server, a server-rendered app) the BFF proxies to.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "RawFrontend")]
pub struct FrontendConfig {
    /// Local prefix (default `/`).
    pub path: FrontendPath,
    /// Where the pages come from.
    pub source: FrontendSource,
    /// Whether a page needs a signed-in user.
    pub login: FrontendLogin,
    /// The `Content-Security-Policy` of its responses; unset: the BFF's strict default.
    pub csp: Option<String>,
    /// The directory (below `dir`) of fingerprinted files — names that change whenever the
    /// content does, like Vite's `assets/index-BXa1c2De.js` — served with a year-long
    /// `immutable` cache lifetime. Everything else is revalidated (`no-cache`).
    pub immutable_dir: String,
    /// Request headers forwarded to an `upstream` besides the defaults.
    pub forward_request_headers: Vec<String>,
}

/// `bff.frontends[].dir` or `bff.frontends[].upstream`.
#[derive(Debug, Clone)]
pub enum FrontendSource {
    /// The directory of built files (e.g. Vite's `dist/`), with an `index.html`.
    Dir(std::path::PathBuf),
    /// A frontend server's base URL, e.g. `http://localhost:5173`. It gets the whole request
    /// path (the prefix is not stripped), the user's access token when there is a session, and
    /// WebSocket upgrades (a dev server's hot reload).
    Upstream(PublicUrl),
}

/// `[[bff.frontends]]` as written; [`FrontendConfig`] once exactly one source is set.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFrontend {
    #[serde(default)]
    path: FrontendPath,
    #[serde(default)]
    dir: Option<std::path::PathBuf>,
    #[serde(default)]
    upstream: Option<PublicUrl>,
    #[serde(default)]
    login: FrontendLogin,
    #[serde(default)]
    csp: Option<String>,
    #[serde(default)]
    immutable_dir: Option<String>,
    #[serde(default)]
    forward_request_headers: Vec<String>,
}

impl TryFrom<RawFrontend> for FrontendConfig {
    type Error = String;

    fn try_from(raw: RawFrontend) -> Result<Self, String> {
        let source = match (raw.dir, raw.upstream) {
            (Some(dir), None) => FrontendSource::Dir(dir),
            (None, Some(url)) => FrontendSource::Upstream(url),
            _ => {
                return Err(
                    "set exactly one of `dir` (built files) and `upstream` (a frontend server)".into()
                );
            }
        };
        let is_dir = matches!(source, FrontendSource::Dir(_));
        if !is_dir && raw.immutable_dir.is_some() {
            return Err("`immutable_dir` applies to `dir` only".into());
        }
        if is_dir && !raw.forward_request_headers.is_empty() {
            return Err("`forward_request_headers` applies to `upstream` only".into());
        }
        Ok(Self {
            path: raw.path,
            source,
            login: raw.login,
            csp: raw.csp,
            immutable_dir: raw.immutable_dir.unwrap_or_else(default_immutable_dir),
            forward_request_headers: raw.forward_request_headers,
        })
    }
}

impl FrontendConfig {
    /// The frontend server's URL, when it is one.
    pub fn upstream(&self) -> Option<&PublicUrl> {
        match &self.source {
            FrontendSource::Upstream(url) => Some(url),
            FrontendSource::Dir(_) => None,
        }
    }
}

fn default_immutable_dir() -> String {
    "assets".into()
}

/// `bff.frontends[].login`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FrontendLogin {
    /// Served to anyone; the app asks `/bff/user` who is signed in (default).
    #[default]
    Optional,
    /// Without a session a page navigation is redirected to `/bff/login?returnTo=<that page>`,
    /// and any other request gets 401 `unauthenticated`.
    Required,
}

/// The frontends, refused when two share a path.
fn frontends<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<FrontendConfig>, D::Error> {
    unique_paths(Vec::<FrontendConfig>::deserialize(d)?, |f| f.path.as_str())
}

/// `items` when no two share a path (which one serves would be a guess), else the error naming
/// the path.
fn unique_paths<T, E: serde::de::Error>(items: Vec<T>, path: impl Fn(&T) -> &str) -> Result<Vec<T>, E> {
    for (i, item) in items.iter().enumerate() {
        if items[..i].iter().any(|o| path(o) == path(item)) {
            return Err(E::custom(format!("the path `{}` is configured twice", path(item))));
        }
    }
    Ok(items)
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

/// `[[bff.routes]]`: `path` prefix proxied to `upstream`, with what a request must bring.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Local prefix, e.g. `/api`.
    pub path: RoutePath,
    /// Upstream base URL, e.g. `http://localhost:8082`.
    pub upstream: PublicUrl,
    /// Request headers forwarded on this route besides the defaults
    /// (`crate::bff::proxy::header_policy::DEFAULT_FORWARDED`); checked at start.
    #[serde(default)]
    pub forward_request_headers: Vec<String>,
    /// Whether a request needs a session, and so carries the user's token.
    #[serde(default)]
    pub session: RouteSession,
    /// What proves a request is not a cross-site forgery.
    #[serde(default)]
    pub csrf: RouteCsrf,
    /// The methods the route takes (others get 405); unset: any but `TRACE`, `TRACK`, `CONNECT`,
    /// which no route takes.
    #[serde(default)]
    pub methods: Option<Vec<RouteMethod>>,
    /// Relay WebSockets: a `GET` upgrade with the BFF's own `Origin` is connected upstream
    /// (`ws://`/`wss://` of `upstream`) with the session's token as the route's `session` says,
    /// and its frames relayed both ways. Off by default: an upgrade request to a route without
    /// it is proxied as a plain request, its `Upgrade` and `Connection` headers dropped.
    #[serde(default)]
    pub websocket: bool,
    /// Authentication context classes (`acr`) a session must have for this route, any one of
    /// them; a weaker session gets 401 `step_up_required` without the upstream being called.
    #[serde(default)]
    pub acr_values: Vec<String>,
    /// Longest time since the user last authenticated (`auth_time`) for this route; an older
    /// authentication gets 401 `step_up_required` likewise.
    #[serde(default)]
    pub max_age: Option<u64>,
    /// The RFC 8707 resource indicator of this route's API: its access token is obtained for
    /// that resource alone (a token request with `resource=`), kept apart from every other
    /// route's, and never sent anywhere else.
    #[serde(default)]
    pub resource: Option<ResourceIndicator>,
    /// The scopes this route's access token carries, narrower than the login's (a token request
    /// with `scope=`); each must be one of `bff.oidc.scopes` for user tokens.
    #[serde(default)]
    pub scopes: Option<Vec<ScopeToken>>,
    /// Whose token the upstream gets: the signed-in user's (default) or the application's own,
    /// from a client-credentials grant (`"client"`).
    #[serde(default)]
    pub token: RouteToken,
}

/// `bff.routes[].token`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RouteToken {
    /// The session's access token (for the route's `resource`/`scopes`, if any).
    #[default]
    User,
    /// This client's own token from a client-credentials grant (RFC 6749 §4.4), cached per
    /// resource and scopes and shared by every session and instance: the route acts as the
    /// application, not as the user.
    Client,
}

/// `bff.routes[].session`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RouteSession {
    /// No session → 401 `unauthenticated`; the upstream gets the user's access token (default).
    #[default]
    Required,
    /// The user's access token when signed in; an anonymous call otherwise.
    Optional,
    /// A public API: the session is not read and the upstream never gets a token.
    None,
}

/// `bff.routes[].csrf`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RouteCsrf {
    /// `X-CSRF: 1` on every method, same origin, no form content type (default).
    #[default]
    Header,
    /// Safe methods (`GET`, `HEAD`, `OPTIONS`) need only a same-origin or absent `Origin` and
    /// `Sec-Fetch-Site`, so that downloads, `<img>` and `EventSource` work; unsafe methods as
    /// with `header`.
    UnsafeMethods,
}

/// An HTTP method a route takes: an upper-case token, not `TRACE`, `TRACK` or `CONNECT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMethod(pub actix_web::http::Method);

impl<'de> Deserialize<'de> for RouteMethod {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if ["TRACE", "TRACK", "CONNECT"].contains(&s.to_ascii_uppercase().as_str()) {
            return Err(serde::de::Error::custom(format!("`{s}` is never proxied")));
        }
        let upper = !s.is_empty() && s.bytes().all(|b| b.is_ascii_uppercase());
        match actix_web::http::Method::from_bytes(s.as_bytes()) {
            Ok(m) if upper => Ok(Self(m)),
            _ => Err(serde::de::Error::custom(format!("`{s}` is not an upper-case HTTP method"))),
        }
    }
}

/// The routes, refused when two share a path.
fn routes<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<RouteConfig>, D::Error> {
    unique_paths(Vec::<RouteConfig>::deserialize(d)?, |r| r.path.as_str())
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
