//! `private_key_jwt` (RFC 7523 §2.2, OpenID Connect Core §9): a client proves itself with a JWT
//! signed by one of its registered keys (`jwks_uri` or inline `jwks`). The signature, `alg`,
//! `iss`, `aud` and `exp` go through the one verifier (`jwt::Verifier`, kind
//! `ClientAssertion`); here: `sub` = `iss` = the client, a lifetime no longer than
//! [`MAX_LIFETIME_SECS`], and a `jti` never seen before (kept in the store until `exp`).

use super::errors::OAuthError;
use crate::config::{ClientAuthMethod, ClientConfig};
use crate::jwt::{JwksCache, TokenType, Verifier};
use crate::store::Store;
use base64::Engine;
use serde::Deserialize;
use std::time::Duration;

/// The longest lifetime an assertion may claim (`exp` this far ahead at most).
pub const MAX_LIFETIME_SECS: i64 = 300;
/// Clock tolerance for `exp`, `nbf` and `iat`.
const LEEWAY_SECS: u64 = 5;
/// An unknown `kid` refetches a client's `jwks_uri` at most this often.
const REFETCH_INTERVAL: Duration = Duration::from_secs(10);

/// Where an assertion is checked: the store keeping used `jti`s, and the audiences that name
/// this server (its issuer, its token endpoint, the endpoint called).
pub struct AssertionContext<'a> {
    /// The auth server's store.
    pub store: &'a Store,
    /// Accepted `aud` values.
    pub audiences: Vec<String>,
}

/// The verifier of `client`'s assertions, or `None` when it authenticates with a secret.
/// A `private_key_jwt` client without exactly one of `jwks_uri` and a non-empty `jwks` is
/// refused with the reason (the caller names the key).
pub fn verifier_for(client: &ClientConfig, http: &reqwest::Client) -> Result<Option<Verifier>, String> {
    if client.token_endpoint_auth_method != ClientAuthMethod::PrivateKeyJwt {
        return Ok(None);
    }
    let jwks = match (&client.jwks_uri, &client.jwks) {
        (Some(uri), None) => {
            JwksCache::at_jwks_uri(http.clone(), &client.client_id, uri.as_str(), REFETCH_INTERVAL)
        }
        (None, Some(doc)) => {
            if crate::jwt::jwks::parse_jwks(doc).is_none_or(|keys| keys.is_empty()) {
                return Err("`jwks` holds no usable public signing key".into());
            }
            JwksCache::fixed(&client.client_id, doc)
        }
        _ => return Err("private_key_jwt needs exactly one of `jwks_uri` and `jwks`".into()),
    };
    Ok(Some(Verifier::new(jwks, LEEWAY_SECS)))
}

/// The client an assertion claims to come from (`sub`, unverified): only to pick whose keys
/// verify it.
pub fn claimed_client(assertion: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Sub {
        sub: String,
    }
    let payload = assertion.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).ok()?;
    serde_json::from_slice::<Sub>(&bytes).ok().map(|s| s.sub)
}

#[derive(Deserialize)]
struct AssertionClaims {
    sub: String,
    exp: i64,
    #[serde(default)]
    jti: Option<String>,
}

/// Checks `assertion` as `client_id`'s with `verifier`; every failure is `invalid_client`.
pub async fn check(
    verifier: &Verifier,
    client_id: &str,
    assertion: &str,
    ctx: &AssertionContext<'_>,
) -> Result<(), OAuthError> {
    let refused = || OAuthError::InvalidClient { basic: false };
    let audiences: Vec<&str> = ctx.audiences.iter().map(String::as_str).collect();
    let claims: AssertionClaims =
        verifier.verify_for_any(assertion, &audiences, TokenType::ClientAssertion).await.map_err(|e| {
            tracing::info!(client_id, reason = %e, "client assertion refused");
            refused()
        })?;
    let now = crate::clock::now();
    if claims.sub != client_id || claims.exp > now + MAX_LIFETIME_SECS {
        tracing::info!(client_id, "client assertion refused: subject or lifetime");
        return Err(refused());
    }
    let Some(jti) = claims.jti.filter(|j| !j.is_empty() && j.len() <= 256) else {
        tracing::info!(client_id, "client assertion refused: no jti");
        return Err(refused());
    };
    let key =
        format!("as:assertion-jti:{}", crate::crypto::sha256_b64(format!("{client_id}\n{jti}").as_bytes()));
    let ttl = Duration::from_secs((claims.exp - now).max(0) as u64 + LEEWAY_SECS);
    if !ctx.store.set_nx(&key, b"1", ttl).await? {
        tracing::warn!(client_id, "client assertion replayed");
        return Err(refused());
    }
    Ok(())
}
