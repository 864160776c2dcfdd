//! The policy of every endpoint the BFF serves, of every configured route and of every
//! frontend, resolved per request by method and path: the BFF's endpoints first, then the
//! routes, then the frontends, each by longest prefix. The endpoint list mirrors the routes
//! `bff::app` registers; a request that resolves to nothing gets no checks and meets the 404.

use super::{CsrfRule, ProxiedShape, RoutePolicy, SessionRule};
use crate::config::{
    BffConfig, FrontendConfig, FrontendLogin, FrontendSource, RouteConfig, RouteCsrf, RouteSession,
};
use actix_web::http::Method;

/// What a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// One of the BFF's own endpoints.
    Endpoint,
    /// The route with this index in `bff.routes`.
    Route(usize),
    /// The frontend with this index in `bff.frontends`.
    Frontend(usize),
}

/// A request's resolved policy and what it is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resolved {
    /// The policy enforced.
    pub policy: RoutePolicy,
    /// What the request is for.
    pub target: Target,
    /// Where the path an upstream sees starts: after a route's prefix (`/api/notes` → `/notes`);
    /// 0 for a frontend (the whole path) and for an endpoint.
    pub below: usize,
}

impl Resolved {
    /// The route's index when the request is for a proxied route.
    pub fn route(&self) -> Option<usize> {
        match self.target {
            Target::Route(i) => Some(i),
            _ => None,
        }
    }
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

/// A configured route's or frontend's entry.
#[derive(Debug)]
struct Prefixed {
    prefix: String,
    policy: RoutePolicy,
    /// The methods it takes; `None`: any (but the tunnel methods, per the policy).
    methods: Option<Vec<Method>>,
    /// Whether a WebSocket upgrade is relayed (`websocket = true` on a route).
    websocket: bool,
}

impl Prefixed {
    /// True when `path` is the prefix or below it, by whole segments (`/api` takes `/api` and
    /// `/api/x`, not `/apiary`).
    fn matches(&self, path: &str) -> bool {
        self.prefix == "/"
            || path
                .strip_prefix(self.prefix.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    }
}

/// Entries with their match order: longest prefix first.
#[derive(Debug)]
struct ByPrefix {
    entries: Vec<Prefixed>,
    order: Vec<usize>,
}

impl ByPrefix {
    fn new(entries: Vec<Prefixed>) -> Self {
        let mut order: Vec<usize> = (0..entries.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(entries[i].prefix.len()));
        Self { entries, order }
    }

    fn find(&self, path: &str) -> Option<(usize, &Prefixed)> {
        self.order.iter().map(|&i| (i, &self.entries[i])).find(|(_, e)| e.matches(path))
    }
}

/// Every endpoint's, route's and frontend's policy, with the public origin the CSRF checks
/// compare against.
#[derive(Debug)]
pub struct PolicyTable {
    endpoints: Vec<Endpoint>,
    routes: ByPrefix,
    frontends: ByPrefix,
    origin: String,
}

/// `POST /bff/logout`: works without a session (it then only expires the cookie).
const LOGOUT: RoutePolicy = RoutePolicy {
    session: SessionRule::Optional,
    csrf: CsrfRule::HeaderOrFormToken,
    refuse_tunnel_methods: false,
    proxied: None,
};

/// The entry of a configured route: its session and CSRF settings, its methods.
fn route_entry(route: &RouteConfig, shape: ProxiedShape) -> Prefixed {
    let session = match route.session {
        RouteSession::Required => SessionRule::Required,
        RouteSession::Optional => SessionRule::Optional,
        RouteSession::None => SessionRule::Ignored,
    };
    let csrf = match route.csrf {
        RouteCsrf::Header => CsrfRule::Header,
        RouteCsrf::UnsafeMethods => CsrfRule::UnsafeMethods,
    };
    Prefixed {
        prefix: route.path.as_str().to_owned(),
        policy: RoutePolicy { session, csrf, refuse_tunnel_methods: true, proxied: Some(shape) },
        methods: route.methods.as_ref().map(|m| m.iter().map(|m| m.0.clone()).collect()),
        websocket: route.websocket,
    }
}

/// The entry of a frontend. Built files: `GET` and `HEAD` only (no CSRF rule needed for reads
/// of public files), the session read only so that `login = "required"` can send a navigation
/// to the login. A frontend server: any method but the tunnel ones, unsafe methods (form posts)
/// same-origin only, the session read so that its token goes along, the request's shape
/// checked as a route's.
fn frontend_entry(frontend: &FrontendConfig, shape: ProxiedShape) -> Prefixed {
    let prefix = frontend.path.as_str().to_owned();
    match (&frontend.source, frontend.login) {
        (FrontendSource::Dir(_), login) => Prefixed {
            prefix,
            policy: RoutePolicy {
                session: if login == FrontendLogin::Required {
                    SessionRule::Login
                } else {
                    SessionRule::Ignored
                },
                csrf: CsrfRule::None,
                refuse_tunnel_methods: true,
                proxied: None,
            },
            methods: Some(vec![Method::GET, Method::HEAD]),
            websocket: false,
        },
        (FrontendSource::Upstream(_), login) => Prefixed {
            prefix,
            policy: RoutePolicy {
                session: if login == FrontendLogin::Required {
                    SessionRule::Login
                } else {
                    SessionRule::Optional
                },
                csrf: CsrfRule::SameOrigin,
                refuse_tunnel_methods: true,
                proxied: Some(shape),
            },
            methods: None,
            // A dev server's hot reload runs over a WebSocket.
            websocket: true,
        },
    }
}

/// The BFF's own endpoints.
fn endpoints() -> Vec<Endpoint> {
    use PathPattern::{Below, Exact};
    let endpoint = |method: Method, path, policy| Endpoint { method, path, policy };
    vec![
        endpoint(Method::GET, Exact("/healthz"), RoutePolicy::OPEN),
        endpoint(Method::GET, Exact("/readyz"), RoutePolicy::OPEN),
        endpoint(Method::GET, Exact("/metrics"), RoutePolicy::OPEN),
        endpoint(Method::GET, Exact("/bff/login"), RoutePolicy::OPEN),
        endpoint(Method::GET, Exact("/bff/callback"), RoutePolicy::OPEN),
        endpoint(Method::GET, Exact("/bff/user"), RoutePolicy::API),
        endpoint(Method::POST, Exact("/bff/logout"), LOGOUT),
        endpoint(Method::GET, Exact("/bff/sessions"), RoutePolicy::API),
        endpoint(Method::DELETE, Below("/bff/sessions/"), RoutePolicy::API),
        // Public keys of `private_key_jwt`, fetched by the provider.
        endpoint(Method::GET, Exact("/bff/jwks"), RoutePolicy::OPEN),
        // Server to server (the provider): no cookie, no CSRF rules; the signed logout
        // token is the credential.
        endpoint(Method::POST, Exact("/bff/backchannel-logout"), RoutePolicy::OPEN),
    ]
}

impl PolicyTable {
    /// The table for `config`: the BFF's own endpoints, each route of `bff.routes`, each
    /// frontend of `bff.frontends`.
    pub fn new(config: &BffConfig, public_origin: &str) -> Self {
        let shape = ProxiedShape { max_body_bytes: config.max_body_bytes };
        Self {
            endpoints: endpoints(),
            routes: ByPrefix::new(config.routes.iter().map(|r| route_entry(r, shape)).collect()),
            frontends: ByPrefix::new(config.frontends.iter().map(|f| frontend_entry(f, shape)).collect()),
            origin: public_origin.to_owned(),
        }
    }

    /// The policy for a request, or `None` when nothing serves it.
    pub fn resolve(&self, method: &Method, path: &str) -> Option<Resolved> {
        if let Some(e) = self.endpoints.iter().find(|e| e.method == *method && e.path.matches(path)) {
            return Some(Resolved { policy: e.policy, target: Target::Endpoint, below: 0 });
        }
        if let Some((i, route)) = self.routes.find(path) {
            return Some(Resolved {
                policy: route.policy,
                target: Target::Route(i),
                below: route.prefix.len(),
            });
        }
        // A path below `/bff` that no endpoint serves is never a frontend's.
        if path == "/bff" || path.starts_with("/bff/") {
            return None;
        }
        self.frontends.find(path).map(|(i, f)| Resolved {
            policy: f.policy,
            target: Target::Frontend(i),
            below: 0,
        })
    }

    /// True when the route or frontend of `target` takes `method` (endpoints are matched by
    /// method already).
    pub fn takes(&self, target: Target, method: &Method) -> bool {
        let entry = match target {
            Target::Endpoint => return true,
            Target::Route(i) => self.routes.entries.get(i),
            Target::Frontend(i) => self.frontends.entries.get(i),
        };
        entry.is_some_and(|e| e.methods.as_ref().is_none_or(|m| m.contains(method)))
    }

    /// True when `target` relays WebSockets: a route with `websocket = true`, a frontend server.
    pub fn relays_websockets(&self, target: Target) -> bool {
        match target {
            Target::Route(i) => self.routes.entries.get(i).is_some_and(|r| r.websocket),
            Target::Frontend(i) => self.frontends.entries.get(i).is_some_and(|f| f.websocket),
            Target::Endpoint => false,
        }
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
            assert_eq!(r.target, Target::Route(0), "{path}");
            assert_eq!(&path[r.below..], path.strip_prefix("/api").unwrap(), "{path}");
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
