//! How this client authenticates to the provider on every back-channel call (token, revocation,
//! pushed authorization requests): `client_secret_basic` (RFC 6749 §2.3.1), `client_secret_post`
//! or `private_key_jwt` (RFC 7523 §2.2, OpenID Connect Core §9).

use crate::config::Secret;
use crate::jwt::SigningKey;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Serialize;
use std::sync::Arc;

/// Upper bound for one call to the provider (a hung provider must not hang a request).
pub const PROVIDER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Lifetime of a client assertion: long enough for one call, too short to be worth stealing.
pub const ASSERTION_LIFETIME_SECS: i64 = 60;

/// `client_assertion_type` of a JWT client assertion (RFC 7523 §2.2).
pub const JWT_BEARER_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// This client's registration at the provider.
#[derive(Debug, Clone)]
pub struct ClientCredentials {
    /// `client_id`.
    pub client_id: String,
    /// How the client proves it is itself.
    pub auth: ClientAuth,
}

/// A client authentication method with what it needs. `Debug` shows no secret and no key.
#[derive(Debug, Clone)]
pub enum ClientAuth {
    /// `Authorization: Basic` with the form-encoded id and secret.
    SecretBasic(Secret),
    /// `client_id` and `client_secret` in the form body.
    SecretPost(Secret),
    /// A signed client assertion (`client_assertion_type` + `client_assertion`).
    PrivateKeyJwt(ClientKeys),
}

/// The client's signing keys: the first signs, all are published (rotation without downtime:
/// publish the next key first, sign with it later, keep the old one published a while).
#[derive(Clone)]
pub struct ClientKeys {
    keys: Arc<Vec<SigningKey>>,
}

impl std::fmt::Debug for ClientKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kids: Vec<&str> = self.keys.iter().map(|k| k.kid()).collect();
        f.debug_struct("ClientKeys").field("kids", &kids).finish()
    }
}

/// Why a request could not be authenticated.
#[derive(Debug, thiserror::Error)]
pub enum ClientAuthError {
    /// No key was given to sign with.
    #[error("no client key to sign the client assertion with")]
    NoKey,
    /// Signing the assertion failed.
    #[error("the client assertion could not be signed")]
    Sign,
}

impl ClientKeys {
    /// The keys, the signing one first; `None` when the list is empty.
    pub fn new(keys: Vec<SigningKey>) -> Option<Self> {
        (!keys.is_empty()).then(|| Self { keys: Arc::new(keys) })
    }

    /// The JWK set the provider may fetch (`jwks_uri`): every key's public half.
    pub fn jwks(&self) -> serde_json::Value {
        let keys: Vec<&serde_json::Value> = self.keys.iter().map(|k| k.public_jwk()).collect();
        serde_json::json!({ "keys": keys })
    }

    /// A fresh assertion for `client_id`, audience `audience`.
    pub fn assertion(&self, client_id: &str, audience: &str) -> Result<String, ClientAuthError> {
        let key = self.keys.first().ok_or(ClientAuthError::NoKey)?;
        let now = crate::clock::now();
        let claims = AssertionClaims {
            iss: client_id,
            sub: client_id,
            aud: audience,
            jti: crate::crypto::random_token(24),
            iat: now,
            exp: now + ASSERTION_LIFETIME_SECS,
        };
        key.sign("JWT", &claims).map_err(|_| ClientAuthError::Sign)
    }
}

#[derive(Serialize)]
struct AssertionClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    jti: String,
    iat: i64,
    exp: i64,
}

impl ClientCredentials {
    /// The JWK set of this client's keys, when it authenticates with them.
    pub fn jwks(&self) -> Option<serde_json::Value> {
        match &self.auth {
            ClientAuth::PrivateKeyJwt(keys) => Some(keys.jwks()),
            _ => None,
        }
    }

    /// A POST of `form` to `url`, authenticated as this client. `issuer` is the provider's
    /// issuer identifier exactly as its metadata spells it: the assertion's audience.
    pub fn post(
        &self,
        http: &reqwest::Client,
        url: &str,
        issuer: &str,
        form: &[(&str, &str)],
    ) -> Result<reqwest::RequestBuilder, ClientAuthError> {
        let req =
            http.post(url).header(reqwest::header::ACCEPT, "application/json").timeout(PROVIDER_TIMEOUT);
        let mut body: Vec<(&str, &str)> = form.to_vec();
        let assertion;
        let req = match &self.auth {
            ClientAuth::SecretBasic(secret) => {
                // RFC 6749 §2.3.1: id and secret are form-urlencoded before Basic encoding.
                let id = utf8_percent_encode(&self.client_id, NON_ALPHANUMERIC).to_string();
                let secret = utf8_percent_encode(secret.expose(), NON_ALPHANUMERIC).to_string();
                req.basic_auth(id, Some(secret))
            }
            ClientAuth::SecretPost(secret) => {
                body.extend([("client_id", self.client_id.as_str()), ("client_secret", secret.expose())]);
                req
            }
            ClientAuth::PrivateKeyJwt(keys) => {
                assertion = keys.assertion(&self.client_id, issuer)?;
                body.extend([
                    ("client_id", self.client_id.as_str()),
                    ("client_assertion_type", JWT_BEARER_ASSERTION),
                    ("client_assertion", assertion.as_str()),
                ]);
                req
            }
        };
        Ok(req.form(&body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(jwt: &str) -> serde_json::Value {
        use base64::Engine;
        let part = jwt.split('.').nth(1).unwrap();
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).unwrap())
            .unwrap()
    }

    #[test]
    fn an_assertion_names_the_client_the_issuer_a_fresh_jti_and_a_short_life_under_the_signing_kid() {
        let (first, second) = (SigningKey::generate().unwrap(), SigningKey::generate().unwrap());
        let keys = ClientKeys::new(vec![first.clone(), second.clone()]).unwrap();
        let (a, b) =
            (keys.assertion("bff", "https://op").unwrap(), keys.assertion("bff", "https://op").unwrap());
        let header = jsonwebtoken::decode_header(&a).unwrap();
        assert_eq!(header.kid.as_deref(), Some(first.kid()));
        let (pa, pb) = (payload(&a), payload(&b));
        assert_eq!(
            (pa["iss"].as_str(), pa["sub"].as_str(), pa["aud"].as_str()),
            (Some("bff"), Some("bff"), Some("https://op"))
        );
        assert_ne!(pa["jti"], pb["jti"]);
        let life = pa["exp"].as_i64().unwrap() - pa["iat"].as_i64().unwrap();
        assert!(life > 0 && life <= 60, "{life}");
        assert_eq!(keys.jwks()["keys"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn debug_shows_neither_secret_nor_key() {
        let key = SigningKey::generate().unwrap();
        let creds = ClientCredentials {
            client_id: "bff".into(),
            auth: ClientAuth::PrivateKeyJwt(ClientKeys::new(vec![key.clone()]).unwrap()),
        };
        let shown = format!("{creds:?}");
        assert!(
            !shown.contains("PRIVATE") && !shown.contains(key.to_pem().lines().nth(1).unwrap()),
            "{shown}"
        );
        let secret = ClientAuth::SecretPost(Secret::new("hunter2-secret"));
        assert!(!format!("{secret:?}").contains("hunter2"));
    }
}
