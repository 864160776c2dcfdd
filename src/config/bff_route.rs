//! `[[bff.routes]]`: the proxied APIs and what a request to each must bring.

use super::bff_frontend::unique_paths;
use super::resource::{ResourceIndicator, ScopeToken};
use super::types::{PublicUrl, RoutePath};
use serde::Deserialize;

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
pub(super) fn routes<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<RouteConfig>, D::Error> {
    unique_paths(Vec::<RouteConfig>::deserialize(d)?, |r| r.path.as_str())
}
