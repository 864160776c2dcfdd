//! ID token validation at login, in one place: [`crate::jwt::Verifier`] with
//! `TokenType::Id` and audience = `client_id` (signature by the issuer's JWKS, algorithm bound
//! to the key, `typ`, `iss`, `aud`, `exp`, `iat`, typed claims), plus what only a relying party
//! can check: `azp` and the login's `nonce`.

use crate::jwt::{Audience, JwtError, TokenType, Verifier};
use serde::Deserialize;

/// Why an ID token was refused. Never carries the token.
#[derive(Debug, thiserror::Error)]
pub enum IdTokenError {
    /// Signature, algorithm, type, `iss`, `aud`, `exp`, `iat` or a claim type is wrong.
    #[error("ID token is invalid: {0}")]
    Invalid(JwtError),
    /// The `nonce` is missing or not the one of this login.
    #[error("ID token nonce does not match")]
    Nonce,
    /// `azp` is missing or not this client while the token has several audiences.
    #[error("ID token azp does not match")]
    Azp,
    /// The issuer's keys could not be fetched.
    #[error("the issuer's keys are unavailable")]
    KeysUnavailable,
}

/// The checked claims of an ID token.
#[derive(Debug, Clone, Deserialize)]
pub struct IdTokenClaims {
    /// Subject.
    pub sub: String,
    /// Provider session id (for back-channel logout).
    #[serde(default)]
    pub sid: Option<String>,
    /// Issued at.
    pub iat: i64,
    /// Expiry.
    pub exp: i64,
    /// Authentication context class reference.
    #[serde(default)]
    pub acr: Option<String>,
    /// Authentication methods references.
    #[serde(default)]
    pub amr: Option<Vec<String>>,
    /// When the user authenticated.
    #[serde(default)]
    pub auth_time: Option<i64>,
    #[serde(default)]
    nonce: Option<String>,
    #[serde(default)]
    azp: Option<String>,
    aud: Audience,
    /// Every claim, for the profile shown by `/bff/user`.
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

/// The claims `/bff/user` exposes, picked from the ID token.
pub const PROFILE_CLAIMS: &[&str] =
    &["name", "preferred_username", "email", "email_verified", "given_name", "family_name", "picture"];

impl IdTokenClaims {
    /// The profile claims (plus `sub`) as a JSON object.
    pub fn profile(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut m = serde_json::Map::new();
        m.insert("sub".into(), self.sub.clone().into());
        for k in PROFILE_CLAIMS {
            if let Some(v) = self.other.get(*k) {
                m.insert((*k).into(), v.clone());
            }
        }
        m
    }
}

/// Clock tolerance for `exp` / `iat`.
pub const LEEWAY_SECS: u64 = 30;

/// Validates an ID token from the token endpoint for `client_id` and the login's nonce.
pub async fn validate_id_token(
    verifier: &Verifier,
    token: &str,
    client_id: &str,
    expected_nonce: &str,
) -> Result<IdTokenClaims, IdTokenError> {
    let claims: IdTokenClaims =
        verifier.verify(token, client_id, TokenType::Id).await.map_err(|e| match e {
            JwtError::KeysUnavailable => IdTokenError::KeysUnavailable,
            other => IdTokenError::Invalid(other),
        })?;
    let several = matches!(&claims.aud, Audience::Many(list) if list.len() > 1);
    if (several || claims.azp.is_some()) && claims.azp.as_deref() != Some(client_id) {
        return Err(IdTokenError::Azp);
    }
    let nonce_ok = claims
        .nonce
        .as_deref()
        .is_some_and(|n| crate::crypto::constant_time_eq(n.as_bytes(), expected_nonce.as_bytes()));
    if !nonce_ok {
        return Err(IdTokenError::Nonce);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwt::SigningKey;
    use serde_json::json;

    const ISS: &str = "http://issuer.test";

    fn setup() -> (SigningKey, Verifier) {
        let key = SigningKey::generate().unwrap();
        let jwks = crate::jwt::JwksCache::fixed(ISS, &json!({ "keys": [key.public_jwk()] }));
        (key, Verifier::new(jwks, LEEWAY_SECS))
    }

    fn claims(overrides: serde_json::Value) -> serde_json::Value {
        let now = crate::clock::now();
        let mut c = json!({ "iss": ISS, "sub": "alice", "aud": "bff", "iat": now, "exp": now + 60,
                            "nonce": "n-1", "sid": "s-1", "name": "Alice" });
        for (k, v) in overrides.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        c
    }

    fn check(
        key: &SigningKey,
        v: &Verifier,
        typ: &str,
        c: serde_json::Value,
    ) -> Result<IdTokenClaims, IdTokenError> {
        let token = key.sign(typ, &c).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(validate_id_token(v, &token, "bff", "n-1"))
    }

    #[test]
    fn a_well_formed_id_token_passes_and_yields_profile_claims() {
        let (key, jwks) = setup();
        let c = check(&key, &jwks, "JWT", claims(json!({}))).unwrap();
        assert_eq!(c.sub, "alice");
        assert_eq!(c.sid.as_deref(), Some("s-1"));
        assert_eq!(c.profile()["name"], "Alice");
    }

    #[test]
    fn every_single_mutation_of_an_id_token_is_refused() {
        let (key, jwks) = setup();
        let now = crate::clock::now();
        for (what, c) in [
            ("nonce", claims(json!({ "nonce": "other" }))),
            ("no nonce", claims(json!({ "nonce": null }))),
            ("aud", claims(json!({ "aud": "someone-else" }))),
            ("multi aud without azp", claims(json!({ "aud": ["bff", "other"] }))),
            ("azp", claims(json!({ "aud": ["bff", "other"], "azp": "other" }))),
            ("iss", claims(json!({ "iss": "http://evil.test" }))),
            ("expired", claims(json!({ "exp": now - 120 }))),
            ("string exp", claims(json!({ "exp": (now + 60).to_string() }))),
            ("future iat", claims(json!({ "iat": now + 600 }))),
            ("no sub", claims(json!({ "sub": null }))),
        ] {
            assert!(check(&key, &jwks, "JWT", c).is_err(), "{what}");
        }
        assert!(check(&key, &jwks, "at+jwt", claims(json!({}))).is_err(), "an access token is no ID token");
        let (other, _) = setup();
        assert!(check(&other, &jwks, "JWT", claims(json!({}))).is_err(), "unknown key");
    }

    #[test]
    fn several_audiences_with_our_azp_pass() {
        let (key, jwks) = setup();
        assert!(check(&key, &jwks, "JWT", claims(json!({ "aud": ["bff", "other"], "azp": "bff" }))).is_ok());
    }
}
