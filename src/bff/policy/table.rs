//! The policy of every endpoint the BFF serves and of every configured route, resolved per
//! request by method and path. The endpoint list mirrors the routes `bff::app` registers; a
//! request that resolves to nothing (an unknown path) gets no checks and meets the 404.

use super::{CsrfRule, ProxiedShape, RoutePolicy, SessionRule};
use crate::bff::paths::strip_route;
use crate::config::{BffConfig, RouteConfig, RouteCsrf, RouteSession};
use actix_web::http::Method;

/// A request's resolved policy, and the index of the route it matched (for the proxy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resolved {
    /// The policy enforced.
    pub policy: RoutePolicy,
    /// Index into `bff.routes` when the request is for a proxied route.
    pub route: Option<usize>,
}

#[derive(Debug)]
enum PathPattern {
    /// This path only.
    Exact(&'static str),
    /// Any path below this prefix (which ends with `/`).
    Below(&'static str),
}

impl PathPattern {
    fn matches(&self, path: &str) -> bool {
        match self {
            Self::Exact(p) => path == *p,
            Self::Below(prefix) => path.len() > prefix.len() && path.starts_with(prefix),
        }
    }
}

#[derive(Debug)]
struct Endpoint {
    method: Method,
    path: PathPattern,
    policy: RoutePolicy,
}

/// A configured route's entry.
#[derive(Debug)]
struct Route {
    prefix: String,
    policy: RoutePolicy,
    /// `bff.routes[].methods`; `None`: any method (but the tunnel methods, per the policy).
    methods: Option<Vec<Method>>,
}

/// Every endpoint's and route's policy, with the public origin the CSRF checks compare against.
#[derive(Debug)]
pub struct PolicyTable {
    endpoints: Vec<Endpoint>,
    /// Routes by index in `bff.routes`.
    routes: Vec<Route>,
    /// Indices into `routes`, longest prefix first: the first that matches serves.
    by_length: Vec<usize>,
    origin: String,
}

/// A page that shows the signed-in user when there is one.
const PAGE: RoutePolicy = RoutePolicy {
    session: SessionRule::Optional,
    csrf: CsrfRule::None,
    refuse_tunnel_methods: false,
    proxied: None,
};
/// A server-rendered form post: same origin, the session's form token, a session.
const FORM_POST: RoutePolicy = RoutePolicy {
    session: SessionRule::Required,
    csrf: CsrfRule::FormToken,
    refuse_tunnel_methods: false,
    proxied: None,
};
/// `POST /bff/logout`: works without a session (it then only expires the cookie).
const LOGOUT: RoutePolicy = RoutePolicy {
    session: SessionRule::Optional,
    csrf: CsrfRule::HeaderOrFormToken,
    refuse_tunnel_methods: false,
    proxied: None,
};

/// The entry of a configured route: its session and CSRF settings, its methods.
fn route_entry(route: &RouteConfig, shape: ProxiedShape) -> Route {
    let session = match route.session {
        RouteSession::Required => SessionRule::Required,
        RouteSession::Optional => SessionRule::Optional,
        RouteSession::None => SessionRule::Ignored,
    };
    let csrf = match route.csrf {
        RouteCsrf::Header => CsrfRule::Header,
        RouteCsrf::UnsafeMethods => CsrfRule::UnsafeMethods,
    };
    Route {
        prefix: route.path.as_str().to_owned(),
        policy: RoutePolicy { session, csrf, refuse_tunnel_methods: true, proxied: Some(shape) },
        methods: route.methods.as_ref().map(|m| m.iter().map(|m| m.0.clone()).collect()),
    }
}

impl PolicyTable {
    /// The table for `config`: the BFF's own endpoints, then each route of `bff.routes`.
    pub fn new(config: &BffConfig, public_origin: &str) -> Self {
        use PathPattern::{Below, Exact};
        let endpoint = |method: Method, path, policy| Endpoint { method, path, policy };
        let endpoints = vec![
            endpoint(Method::GET, Exact("/healthz"), RoutePolicy::OPEN),
            endpoint(Method::GET, Exact("/readyz"), RoutePolicy::OPEN),
            endpoint(Method::GET, Exact("/metrics"), RoutePolicy::OPEN),
            endpoint(Method::GET, Exact("/"), PAGE),
            endpoint(Method::POST, Exact("/notes-form"), FORM_POST),
            endpoint(Method::GET, Exact("/app"), RoutePolicy::OPEN),
            endpoint(Method::GET, Below("/app/"), RoutePolicy::OPEN),
            endpoint(Method::GET, Exact("/app/"), RoutePolicy::OPEN),
            endpoint(Method::GET, Exact("/bff/login"), RoutePolicy::OPEN),
            endpoint(Method::GET, Exact("/bff/callback"), RoutePolicy::OPEN),
            endpoint(Method::GET, Exact("/bff/user"), RoutePolicy::API),
            endpoint(Method::POST, Exact("/bff/logout"), LOGOUT),
            endpoint(Method::GET, Exact("/bff/sessions"), RoutePolicy::API),
            endpoint(Method::DELETE, Below("/bff/sessions/"), RoutePolicy::API),
            // Server to server (the provider): no cookie, no CSRF rules; the signed logout
            // token is the credential.
            endpoint(Method::POST, Exact("/bff/backchannel-logout"), RoutePolicy::OPEN),
        ];
        let shape = ProxiedShape { max_body_bytes: config.max_body_bytes };
        let routes: Vec<Route> = config.routes.iter().map(|r| route_entry(r, shape)).collect();
        let mut by_length: Vec<usize> = (0..routes.len()).collect();
        by_length.sort_by_key(|&i| std::cmp::Reverse(routes[i].prefix.len()));
        Self { endpoints, routes, by_length, origin: public_origin.to_owned() }
    }

    /// The policy for a request, or `None` when no endpoint or route serves it.
    pub fn resolve(&self, method: &Method, path: &str) -> Option<Resolved> {
        if let Some(e) = self.endpoints.iter().find(|e| e.method == *method && e.path.matches(path)) {
            return Some(Resolved { policy: e.policy, route: None });
        }
        self.by_length
            .iter()
            .find(|&&i| strip_route(path, &self.routes[i].prefix).is_some())
            .map(|&i| Resolved { policy: self.routes[i].policy, route: Some(i) })
    }

    /// The path prefix of route `index`.
    pub fn route_prefix(&self, index: usize) -> Option<&str> {
        self.routes.get(index).map(|r| r.prefix.as_str())
    }

    /// True when route `index` takes `method`.
    pub fn route_takes(&self, index: usize, method: &Method) -> bool {
        self.routes.get(index).is_some_and(|r| r.methods.as_ref().is_none_or(|m| m.contains(method)))
    }

    /// The public origin (`scheme://host[:port]`) the same-origin checks compare against.
    pub fn origin(&self) -> &str {
        &self.origin
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> PolicyTable {
        let config: BffConfig = crate::config::ConfigSource::from_toml_str(
            r#"[bff]
            public_url = "https://app.example"
            [bff.oidc]
            issuer = "https://id.example"
            client_id = "c"
            client_secret = "s"
            [[bff.routes]]
            path = "/api"
            upstream = "https://api.internal"
            "#,
        )
        .section("bff")
        .expect("a valid configuration");
        PolicyTable::new(&config, "https://app.example")
    }

    #[test]
    fn every_path_under_a_route_resolves_to_that_route_with_the_api_policy() {
        let t = table();
        for path in ["/api", "/api/", "/api/notes/1"] {
            let r = t.resolve(&Method::PATCH, path).expect(path);
            assert_eq!(r.route, Some(0), "{path}");
            assert_eq!(
                (r.policy.session, r.policy.csrf),
                (SessionRule::Required, CsrfRule::Header),
                "{path}"
            );
            assert!(r.policy.refuse_tunnel_methods && r.policy.proxied.is_some(), "{path}");
        }
        assert_eq!(t.resolve(&Method::GET, "/apiary"), None);
    }

    #[test]
    fn bff_endpoints_resolve_by_method_and_path_and_other_methods_get_no_policy() {
        let t = table();
        assert_eq!(t.resolve(&Method::GET, "/bff/user").map(|r| r.policy), Some(RoutePolicy::API));
        assert_eq!(t.resolve(&Method::POST, "/bff/logout").map(|r| r.policy), Some(LOGOUT));
        assert_eq!(t.resolve(&Method::DELETE, "/bff/sessions/abc").map(|r| r.policy), Some(RoutePolicy::API));
        assert_eq!(t.resolve(&Method::DELETE, "/bff/sessions/"), None);
        assert_eq!(t.resolve(&Method::POST, "/bff/user"), None);
        assert_eq!(t.resolve(&Method::GET, "/bff/backchannel-logout"), None);
    }
}
