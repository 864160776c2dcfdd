//! Whose token a route's upstream gets, and for which audience: the session's token for the
//! login's audience (the default), the session's token for a route's `resource`/`scopes`, or
//! the application's own client-credentials token. Resolved once at start from `[[bff.routes]]`.

use crate::config::{BffConfig, ConfigError, ResourceIndicator, RouteConfig, RouteSession, RouteToken};
use base64::Engine;
use sha2::Digest;
use std::sync::Arc;

/// What a token request asks for beyond the grant: a resource (RFC 8707) and narrower scopes.
#[derive(Debug, PartialEq, Eq)]
pub struct Audience {
    /// A short id derived from the resource and scopes: the key of this audience's token in a
    /// session's token record, and of the client token in the store. Stable across instances
    /// and restarts with the same configuration.
    pub id: String,
    /// The `resource` parameter, if any.
    pub resource: Option<String>,
    /// The `scope` parameter (sorted, space-separated), if any.
    pub scope: Option<String>,
}

impl Audience {
    /// The audience of `route`; `None` when it names neither a resource nor scopes.
    fn of(route: &RouteConfig) -> Option<Self> {
        let resource = route.resource.as_ref().map(|r| r.as_str().to_owned());
        let scope = route.scopes.as_ref().map(|s| {
            let mut names: Vec<&str> = s.iter().map(|t| t.as_str()).collect();
            names.sort_unstable();
            names.dedup();
            names.join(" ")
        });
        if resource.is_none() && scope.is_none() {
            return None;
        }
        let digest = sha2::Sha256::digest(format!(
            "{}\n{}",
            resource.as_deref().unwrap_or_default(),
            scope.as_deref().unwrap_or_default()
        ));
        let id = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..6]);
        Some(Self { id, resource, scope })
    }

    /// The audience of the login's own token, `resource` alone (its id is never used: the
    /// login's token has fields of its own in the record).
    pub fn of_resource(resource: &ResourceIndicator) -> Self {
        Self { id: String::new(), resource: Some(resource.as_str().to_owned()), scope: None }
    }

    /// The application's audience for a client route without resource or scopes.
    fn default_client() -> Self {
        Self { id: "client".into(), resource: None, scope: None }
    }

    /// The token request's extra parameters.
    pub fn form(&self) -> Vec<(&'static str, &str)> {
        let mut form = Vec::with_capacity(2);
        if let Some(r) = &self.resource {
            form.push(("resource", r.as_str()));
        }
        if let Some(s) = &self.scope {
            form.push(("scope", s.as_str()));
        }
        form
    }
}

/// Where a route's token comes from.
#[derive(Debug, Clone)]
pub enum TokenSource {
    /// The signed-in user's token: the login's (`None`) or one for the route's audience.
    User(Option<Arc<Audience>>),
    /// The application's own token (client credentials) for this audience.
    Client(Arc<Audience>),
}

impl TokenSource {
    /// The source of route `i`, checked against the rest of the configuration; a combination
    /// that cannot work refuses the start, naming the key.
    pub fn of_route(config: &BffConfig, i: usize) -> Result<Self, ConfigError> {
        let route = &config.routes[i];
        let key = |name: &str| format!("bff.routes.{i}.{name}");
        if route.scopes.as_ref().is_some_and(|s| s.is_empty()) {
            return Err(ConfigError::new(key("scopes"), "is empty; leave it out for the login's scopes"));
        }
        let audience = Audience::of(route);
        match route.token {
            RouteToken::User => {
                if route.session == RouteSession::None && audience.is_some() {
                    let name = if route.resource.is_some() { "resource" } else { "scopes" };
                    return Err(ConfigError::new(
                        key(name),
                        "a route with session = \"none\" never gets a user's token",
                    ));
                }
                let login = &config.oidc.scopes;
                if let Some(s) =
                    route.scopes.iter().flatten().find(|s| !login.iter().any(|l| l == s.as_str()))
                {
                    return Err(ConfigError::new(
                        key("scopes"),
                        format!(
                            "`{}` is not one of bff.oidc.scopes; a token can only narrow the login's scopes",
                            s.as_str()
                        ),
                    ));
                }
                // The login's own resource needs no token of its own.
                let login_own = route.scopes.is_none()
                    && route.resource.is_some()
                    && route.resource == config.oidc.resource;
                Ok(Self::User(audience.filter(|_| !login_own).map(Arc::new)))
            }
            RouteToken::Client => {
                if let Some(s) =
                    route.scopes.iter().flatten().find(|s| ["openid", "offline_access"].contains(&s.as_str()))
                {
                    return Err(ConfigError::new(
                        key("scopes"),
                        format!("`{}` is a user's scope; an application's token never has it", s.as_str()),
                    ));
                }
                Ok(Self::Client(Arc::new(audience.unwrap_or_else(Audience::default_client))))
            }
        }
    }
}

/// The resources the login asks for (RFC 8707 §2.1): the login token's own
/// (`bff.oidc.resource`) first, then every user-token route's, once each, so that the grant
/// covers them and a refresh may ask for any (some providers insist).
pub fn login_resources(config: &BffConfig) -> Vec<String> {
    let mut resources: Vec<String> = config
        .routes
        .iter()
        .filter(|r| r.token == RouteToken::User && r.session != RouteSession::None)
        .filter_map(|r| r.resource.as_ref().map(|r| r.as_str().to_owned()))
        .collect();
    resources.sort_unstable();
    resources.dedup();
    if let Some(own) = &config.oidc.resource {
        resources.retain(|r| r != own.as_str());
        resources.insert(0, own.as_str().to_owned());
    }
    resources
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(routes: &str) -> BffConfig {
        crate::config::ConfigSource::from_toml_str(&format!(
            "[bff.oidc]\nissuer = \"https://id.example\"\nclient_id = \"c\"\nclient_secret = \"s\"\nscopes = [\"openid\", \"offline_access\", \"notes:read\", \"notes:write\"]\n{routes}"
        ))
        .section("bff")
        .expect("parses")
    }

    fn route(extra: &str) -> String {
        route_at("/a", extra)
    }

    fn route_at(path: &str, extra: &str) -> String {
        format!("[[bff.routes]]\npath = \"{path}\"\nupstream = \"http://localhost:1\"\n{extra}\n")
    }

    #[test]
    fn a_route_without_resource_or_scopes_gets_the_logins_token() {
        let c = config(&route(""));
        assert!(matches!(TokenSource::of_route(&c, 0), Ok(TokenSource::User(None))));
    }

    #[test]
    fn the_same_resource_and_scopes_give_the_same_audience_id_in_any_order() {
        let c = config(
            &(route("resource = \"https://a.example\"\nscopes = [\"notes:write\", \"notes:read\"]")
                + &route_at(
                    "/b",
                    "resource = \"https://a.example\"\nscopes = [\"notes:read\", \"notes:write\"]",
                )
                + &route_at("/c", "resource = \"https://b.example\"")),
        );
        let ids: Vec<Arc<Audience>> = (0..3)
            .map(|i| match TokenSource::of_route(&c, i) {
                Ok(TokenSource::User(Some(a))) => a,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(ids[0].id, ids[1].id);
        assert_ne!(ids[0].id, ids[2].id);
        assert_eq!(ids[0].scope.as_deref(), Some("notes:read notes:write"));
        assert_eq!(ids[0].form(), [("resource", "https://a.example"), ("scope", "notes:read notes:write")]);
        assert_eq!(login_resources(&c), ["https://a.example", "https://b.example"]);
    }

    #[test]
    fn the_logins_own_resource_is_asked_first_and_a_route_naming_it_alone_shares_the_logins_token() {
        let c = config(&format!(
            "resource = \"https://own.example\"\n{}{}",
            route("resource = \"https://own.example\""),
            route_at("/b", "resource = \"https://b.example\"")
        ));
        assert_eq!(login_resources(&c), ["https://own.example", "https://b.example"]);
        assert!(matches!(TokenSource::of_route(&c, 0), Ok(TokenSource::User(None))));
        assert!(matches!(TokenSource::of_route(&c, 1), Ok(TokenSource::User(Some(_)))));
    }

    #[test]
    fn impossible_token_settings_refuse_the_start_naming_the_key() {
        for (extra, key) in [
            ("scopes = [\"admin\"]", "bff.routes.0.scopes"),
            ("scopes = []", "bff.routes.0.scopes"),
            ("session = \"none\"\nresource = \"https://a.example\"", "bff.routes.0.resource"),
            ("token = \"client\"\nscopes = [\"offline_access\"]", "bff.routes.0.scopes"),
        ] {
            let err = TokenSource::of_route(&config(&route(extra)), 0).expect_err(extra);
            assert_eq!(err.key, key, "{extra}");
        }
    }

    #[test]
    fn a_client_route_may_be_public_and_gets_the_applications_audience() {
        let c = config(&route("session = \"none\"\ntoken = \"client\""));
        let Ok(TokenSource::Client(a)) = TokenSource::of_route(&c, 0) else { panic!("a client route") };
        assert!(a.form().is_empty());
        assert!(login_resources(&c).is_empty());
    }
}
