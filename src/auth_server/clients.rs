//! The registry of confidential clients and client authentication at the token, revocation
//! and pushed-request endpoints: `client_secret_basic` or `client_secret_post` (RFC 6749
//! §2.3.1) for a client registered with a secret method, a signed assertion (`private_key_jwt`,
//! [`client_assertion`](super::client_assertion)) for one registered with keys.

use super::client_assertion::{self, AssertionContext};
use super::errors::OAuthError;
use super::params::Params;
use super::resources;
use crate::config::{ClientAuthMethod, ClientConfig, GrantType};
use crate::crypto::constant_time_eq;
use crate::jwt::Verifier;
use crate::oidc::client_auth::JWT_BEARER_ASSERTION;
use crate::startup::StartupError;
use actix_web::HttpRequest;
use base64::Engine;
use std::collections::HashMap;

/// One registered client and, for `private_key_jwt`, the verifier of its assertions.
struct Registered {
    config: ClientConfig,
    assertions: Option<Verifier>,
}

/// Registered clients by `client_id`.
pub struct ClientRegistry {
    clients: HashMap<String, Registered>,
    /// The audience of tokens asked for without a resource; every client may name it.
    default_audience: String,
}

impl ClientRegistry {
    /// Builds the registry; a duplicated `client_id`, a secret client without a secret, a
    /// key client without keys or a malformed resource indicator stops start-up with one line
    /// naming the key.
    pub fn new(list: &[ClientConfig], default_audience: &str) -> Result<Self, StartupError> {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(5))
            .build()
            .map_err(|e| StartupError::Other(format!("HTTP client: {e}")))?;
        let mut clients = HashMap::new();
        for (n, c) in list.iter().enumerate() {
            let fail = |key: &str, why: &str| {
                StartupError::Other(format!("configuration key `auth_server.clients.{n}.{key}`: {why}"))
            };
            let assertions = client_assertion::verifier_for(c, &http).map_err(|why| fail("jwks", &why))?;
            if assertions.is_none() && c.client_secret.is_none() {
                return Err(fail(
                    "client_secret",
                    "is required with a client_secret_* token_endpoint_auth_method",
                ));
            }
            if c.grant_types.is_empty() {
                return Err(fail("grant_types", "must name at least one grant type"));
            }
            if c.grant_types.contains(&GrantType::AuthorizationCode) && c.redirect_uris.is_empty() {
                return Err(fail("redirect_uris", "is required with the authorization_code grant type"));
            }
            for (i, r) in c.resources.iter().enumerate() {
                resources::check_indicator(r)
                    .map_err(|why| fail(&format!("resources.{i}"), &format!("`{r}` {why}")))?;
            }
            let entry = Registered { config: c.clone(), assertions };
            if clients.insert(c.client_id.clone(), entry).is_some() {
                return Err(fail("client_id", &format!("`{}` is registered twice", c.client_id)));
            }
        }
        Ok(Self { clients, default_audience: default_audience.to_string() })
    }

    /// Whether `client_id` is registered with `grant`.
    pub fn may_grant(&self, client_id: &str, grant: GrantType) -> bool {
        self.get(client_id).is_some_and(|c| c.grant_types.contains(&grant))
    }

    /// Whether `client_id` may ask for tokens for `resource`: the default audience, or one of
    /// the client's `resources`, exactly as written.
    pub fn may_use(&self, client_id: &str, resource: &str) -> bool {
        resource == self.default_audience
            || self.get(client_id).is_some_and(|c| c.resources.iter().any(|r| r == resource))
    }

    /// The client with this id.
    pub fn get(&self, client_id: &str) -> Option<&ClientConfig> {
        self.clients.get(client_id).map(|r| &r.config)
    }

    /// Authenticates the calling client. Exactly one method may be used, and it must be the
    /// client's: a secret for a secret client, an assertion for a `private_key_jwt` one.
    pub async fn authenticate(
        &self,
        req: &HttpRequest,
        params: &Params,
        ctx: &AssertionContext<'_>,
    ) -> Result<&ClientConfig, OAuthError> {
        let basic = basic_credentials(req)?;
        let post = params.get("client_secret");
        let assertion = params.has("client_assertion") || params.has("client_assertion_type");
        if usize::from(basic.is_some()) + usize::from(post.is_some()) + usize::from(assertion) > 1 {
            return Err(OAuthError::InvalidRequest("use one client authentication method"));
        }
        if assertion {
            return self.by_assertion(params, ctx).await;
        }
        let (id, secret, is_basic) = match (basic, post) {
            (Some((id, secret)), _) => {
                if params.get("client_id").is_some_and(|p| p != id) {
                    return Err(OAuthError::InvalidClient { basic: true });
                }
                (id, secret, true)
            }
            (None, Some(secret)) => match params.get("client_id") {
                Some(id) => (id.to_string(), secret.to_string(), false),
                None => return Err(OAuthError::InvalidClient { basic: false }),
            },
            (None, None) => return Err(OAuthError::InvalidClient { basic: false }),
        };
        let client = self.clients.get(&id).map(|r| &r.config);
        // Compare against something even for an unknown (or key-only) client, so timing says little.
        let expected = client
            .filter(|c| c.token_endpoint_auth_method != ClientAuthMethod::PrivateKeyJwt)
            .and_then(|c| c.client_secret.as_ref())
            .map(|s| s.expose());
        let ok = constant_time_eq(expected.unwrap_or("\u{0}unknown-client").as_bytes(), secret.as_bytes());
        match client {
            Some(c) if ok && expected.is_some() => Ok(c),
            _ => Err(OAuthError::InvalidClient { basic: is_basic }),
        }
    }

    /// `client_assertion_type` + `client_assertion` (+ an optional `client_id` that must match).
    async fn by_assertion(
        &self,
        params: &Params,
        ctx: &AssertionContext<'_>,
    ) -> Result<&ClientConfig, OAuthError> {
        let refused = || OAuthError::InvalidClient { basic: false };
        if params.get("client_assertion_type") != Some(JWT_BEARER_ASSERTION) {
            return Err(refused());
        }
        let assertion = params.get("client_assertion").ok_or_else(refused)?;
        let id = client_assertion::claimed_client(assertion).ok_or_else(refused)?;
        if params.get("client_id").is_some_and(|p| p != id) {
            return Err(refused());
        }
        let client = self.clients.get(&id).ok_or_else(refused)?;
        let verifier = client.assertions.as_ref().ok_or_else(refused)?;
        client_assertion::check(verifier, &id, assertion, ctx).await?;
        Ok(&client.config)
    }
}

/// `Authorization: Basic base64(urlencode(id) ":" urlencode(secret))`, decoded.
fn basic_credentials(req: &HttpRequest) -> Result<Option<(String, String)>, OAuthError> {
    let Some(value) = req.headers().get(actix_web::http::header::AUTHORIZATION) else {
        return Ok(None);
    };
    let bad = || OAuthError::InvalidClient { basic: true };
    let value = value.to_str().map_err(|_| bad())?;
    let Some((scheme, rest)) = value.split_once(' ') else { return Err(bad()) };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(bad());
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(rest.trim()).map_err(|_| bad())?;
    let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(bad)?;
    Ok(Some((form_decode(id).ok_or_else(bad)?, form_decode(secret).ok_or_else(bad)?)))
}

/// Decodes one `application/x-www-form-urlencoded` component (`+` is a space).
fn form_decode(s: &str) -> Option<String> {
    let spaced = s.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced).decode_utf8().ok().map(|c| c.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_decoded() {
        assert_eq!(form_decode("a%3Ab+c").as_deref(), Some("a:b c"));
        assert_eq!(form_decode("%FF"), None);
    }
}
