//! Where the proxy sends a request: every configured route and every frontend server
//! (`[[bff.frontends]] upstream = …`), resolved once at start — the parsed base URL, whether the
//! user's token goes along, which request headers cross, and the metrics series.

use super::header_policy::RequestHeaderPolicy;
use crate::bff::frontend::csp_of;
use crate::bff::policy::Target;
use crate::bff::step_up::AuthRequirement;
use crate::bff::tokens::TokenSource;
use crate::config::{BffConfig, ConfigError, FrontendLogin, RouteSession};
use actix_web::http::header::HeaderValue;

/// What kind of upstream it is, which decides the request path and one header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamKind {
    /// An API route: the path below the route's prefix is sent.
    Route,
    /// A frontend server: the whole request path is sent (the app knows its own base path),
    /// with the session's form token in `X-Cloakroom-Csrf-Token`, so that a server-rendered
    /// page can put it in its forms (`POST /bff/logout` takes it instead of `X-CSRF`).
    Frontend,
}

/// One upstream, resolved at start.
#[derive(Debug)]
pub struct Upstream {
    /// The parsed base URL; only path and query change per request.
    pub base: url::Url,
    /// Whether a request needs a session and carries the user's token.
    pub session: RouteSession,
    /// The request headers that cross.
    pub headers: RequestHeaderPolicy,
    /// Route or frontend server.
    pub kind: UpstreamKind,
    /// Index of its series in `BffMetrics`.
    pub metrics: usize,
    /// Its path, the metrics and traces label.
    pub label: std::sync::Arc<str>,
    /// The `Content-Security-Policy` the BFF sets on every response, beside any of the
    /// upstream's (a browser enforces each): the frontend's `csp`, else the strict default.
    pub csp: HeaderValue,
    /// What the session's authentication must satisfy (`acr_values`, `max_age`), if anything.
    pub requirement: Option<AuthRequirement>,
    /// Whose token it gets, for which audience.
    pub token: TokenSource,
}

fn default_csp() -> HeaderValue {
    HeaderValue::from_static(crate::web::CONTENT_SECURITY_POLICY)
}

/// Every route's and frontend server's upstream.
#[derive(Debug, Default)]
pub struct Upstreams {
    /// Routes first, in `bff.routes` order, then the frontend servers.
    list: Vec<Upstream>,
    /// For each of `bff.frontends`, its entry in `list` when it is a frontend server.
    frontends: Vec<Option<usize>>,
    /// The resources of the user-token routes, which the login asks for.
    login_resources: Vec<String>,
}

/// The header a frontend server finds the session's form token in.
pub const FORM_TOKEN_HEADER: &str = "x-cloakroom-csrf-token";

impl Upstreams {
    /// Resolves `bff.routes` and the frontend servers of `bff.frontends`; a request header
    /// that can never be forwarded refuses the start, naming the key.
    pub fn build(config: &BffConfig) -> Result<Self, ConfigError> {
        let policy = |names: &[String], key: String| {
            RequestHeaderPolicy::with_names(names).map_err(|e| ConfigError::new(key, e.to_string()))
        };
        let mut list = Vec::with_capacity(config.routes.len() + config.frontends.len());
        for (i, r) in config.routes.iter().enumerate() {
            list.push(Upstream {
                base: r.upstream.url().clone(),
                session: r.session,
                headers: policy(
                    &r.forward_request_headers,
                    format!("bff.routes.{i}.forward_request_headers"),
                )?,
                kind: UpstreamKind::Route,
                metrics: list.len(),
                label: r.path.as_str().into(),
                csp: default_csp(),
                requirement: requirement(config, i)?,
                token: TokenSource::of_route(config, i)?,
            });
        }
        let mut frontends = Vec::with_capacity(config.frontends.len());
        for (i, f) in config.frontends.iter().enumerate() {
            let Some(url) = f.upstream() else {
                frontends.push(None);
                continue;
            };
            let key = format!("bff.frontends.{i}.forward_request_headers");
            let csp =
                csp_of(f.csp.as_deref(), || format!("bff.frontends.{i}.csp"))?.unwrap_or_else(default_csp);
            frontends.push(Some(list.len()));
            list.push(Upstream {
                base: url.url().clone(),
                session: match f.login {
                    FrontendLogin::Optional => RouteSession::Optional,
                    FrontendLogin::Required => RouteSession::Required,
                },
                headers: policy(&f.forward_request_headers, key)?,
                kind: UpstreamKind::Frontend,
                metrics: list.len(),
                label: f.path.as_str().into(),
                csp,
                requirement: None,
                token: TokenSource::User(None),
            });
        }
        let login_resources = crate::bff::tokens::login_resources(config);
        if config.oidc.resource.is_none() && !login_resources.is_empty() {
            tracing::warn!(
                "routes name their own `resource` but bff.oidc.resource is unset: a provider that \
                 wants one resource per token request (node-oidc-provider) refuses the login"
            );
        }
        Ok(Self { list, frontends, login_resources })
    }

    /// The `resource` parameters of the authorization request (RFC 8707 §2.1): every
    /// user-token route's resource, once, so that the grant covers them.
    pub fn login_resources(&self) -> &[String] {
        &self.login_resources
    }

    /// The upstream of a request the policy matched to `target`.
    pub fn get(&self, target: Target) -> Option<&Upstream> {
        let index = match target {
            Target::Route(i) => i,
            Target::Frontend(i) => (*self.frontends.get(i)?)?,
            Target::Endpoint => return None,
        };
        self.list.get(index)
    }

    /// The metrics label of each upstream, in series order: the route's or frontend's path.
    pub fn labels(config: &BffConfig) -> Vec<&str> {
        let routes = config.routes.iter().map(|r| r.path.as_str());
        routes
            .chain(config.frontends.iter().filter(|f| f.upstream().is_some()).map(|f| f.path.as_str()))
            .collect()
    }
}

/// Route `i`'s authentication requirement: well-formed values the step-up login may ask for,
/// on a route that reads the session.
fn requirement(config: &BffConfig, i: usize) -> Result<Option<AuthRequirement>, ConfigError> {
    let r = &config.routes[i];
    let key = if r.acr_values.is_empty() { "max_age" } else { "acr_values" };
    let req = AuthRequirement::of_route(&r.acr_values, r.max_age, &config.login_parameters)
        .map_err(|e| ConfigError::new(format!("bff.routes.{i}.{key}"), e.to_string()))?;
    if req.is_some() && r.session == RouteSession::None {
        return Err(ConfigError::new(
            format!("bff.routes.{i}.{key}"),
            "needs a session (`session` is \"none\")",
        ));
    }
    Ok(req)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> Result<BffConfig, crate::config::ConfigError> {
        crate::config::ConfigSource::from_toml_str(&format!(
            r#"[bff]
            [bff.oidc]
            issuer = "https://id.example"
            client_id = "c"
            client_secret = "s"
            {extra}"#
        ))
        .section("bff")
    }

    #[test]
    fn a_header_that_can_never_cross_refuses_the_start_naming_the_routes_key() {
        let config = config(
            r#"[[bff.routes]]
            path = "/api"
            upstream = "http://localhost:1"
            [[bff.routes]]
            path = "/b"
            upstream = "http://localhost:2"
            forward_request_headers = ["cookie"]"#,
        )
        .expect("parses");
        let err = Upstreams::build(&config).unwrap_err();
        assert_eq!(err.key, "bff.routes.1.forward_request_headers");
        assert!(!err.to_string().contains('\n'));
    }

    #[test]
    fn a_route_requirement_the_login_cannot_ask_for_refuses_the_start_naming_the_key() {
        let route = |extra: &str| {
            crate::config::ConfigSource::from_toml_str(&format!(
                "[bff]\nlogin_parameters = [\"prompt\"]\n[bff.oidc]\nissuer = \"https://id.example\"\nclient_id = \"c\"\nclient_secret = \"s\"\n[[bff.routes]]\npath = \"/api\"\nupstream = \"http://localhost:1\"\n{extra}"
            ))
            .section::<BffConfig>("bff")
            .map(|c| Upstreams::build(&c).map(|_| ()).map_err(|e| e.key))
        };
        assert_eq!(route("acr_values = [\"mfa\"]").unwrap(), Err("bff.routes.0.acr_values".into()));
        assert_eq!(route("max_age = 60").unwrap(), Err("bff.routes.0.max_age".into()));
        assert_eq!(route("").unwrap(), Ok(()));
    }

    #[test]
    fn a_header_that_can_never_cross_refuses_the_start_naming_the_frontends_key() {
        let config = config(
            r#"[[bff.frontends]]
            upstream = "http://localhost:5173"
            forward_request_headers = ["x-forwarded-host"]"#,
        )
        .expect("parses");
        assert_eq!(Upstreams::build(&config).unwrap_err().key, "bff.frontends.0.forward_request_headers");
    }

    #[test]
    fn routes_and_frontend_servers_resolve_to_their_own_upstreams_and_built_files_to_none() {
        let config = config(
            r#"[[bff.routes]]
            path = "/api"
            upstream = "http://localhost:1"
            [[bff.frontends]]
            path = "/app"
            dir = "static"
            [[bff.frontends]]
            upstream = "http://localhost:5173"
            login = "required""#,
        )
        .expect("parses");
        let upstreams = Upstreams::build(&config).expect("builds");
        let route = upstreams.get(Target::Route(0)).expect("the route");
        assert_eq!(
            (route.kind, route.session, route.metrics),
            (UpstreamKind::Route, RouteSession::Required, 0)
        );
        assert!(upstreams.get(Target::Frontend(0)).is_none());
        let site = upstreams.get(Target::Frontend(1)).expect("the frontend server");
        assert_eq!(
            (site.kind, site.session, site.metrics),
            (UpstreamKind::Frontend, RouteSession::Required, 1)
        );
        assert_eq!(site.base.as_str(), "http://localhost:5173/");
        assert_eq!(Upstreams::labels(&config), ["/api", "/"]);
        assert!(upstreams.get(Target::Endpoint).is_none());
    }
}
