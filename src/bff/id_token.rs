//! ID token validation at login, in one place. Until `jwt::verify` lands on main this uses
//! jsonwebtoken directly with the same rules; switching is a change to [`validate_id_token`] only.

use super::provider::{Provider, ProviderError};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde::Deserialize;

/// Why an ID token was refused. Never carries the token.
#[derive(Debug, thiserror::Error)]
pub enum IdTokenError {
    /// Signature, algorithm, `iss`, `aud`, `exp`, `iat` or a claim type is wrong.
    #[error("ID token is invalid: {0}")]
    Invalid(String),
    /// The `nonce` is missing or not the one of this login.
    #[error("ID token nonce does not match")]
    Nonce,
    /// `azp` is missing or not this client while the token has several audiences.
    #[error("ID token azp does not match")]
    Azp,
    /// The keys could not be fetched.
    #[error(transparent)]
    Provider(#[from] ProviderError),
}

/// `aud`: one string or a list of strings (anything else is refused by deserialisation).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
#[allow(dead_code)] // the single audience is checked by jsonwebtoken; only its shape matters here
enum Audience {
    One(String),
    Many(Vec<String>),
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

const LEEWAY_SECS: u64 = 30;

/// Validates an ID token from the token endpoint: signature by the issuer's JWKS (asymmetric
/// allow-list bound to the JWK), `iss` exact, `aud` contains `client_id`, `azp` when several
/// audiences, `exp`/`iat` with small leeway, `nonce` equals the login's nonce.
pub async fn validate_id_token(
    provider: &Provider,
    token: &str,
    client_id: &str,
    expected_nonce: &str,
) -> Result<IdTokenClaims, IdTokenError> {
    let meta = provider.metadata().await?;
    let header = decode_header(token).map_err(|e| IdTokenError::Invalid(e.to_string()))?;
    let kid = header.kid.as_deref().ok_or_else(|| IdTokenError::Invalid("no kid".into()))?;
    let jwks = provider.jwks_for(Some(kid)).await?;
    validate_with_keys(&jwks, &meta.issuer, token, client_id, expected_nonce)
}

/// [`validate_id_token`] once the issuer's key set is at hand.
pub fn validate_with_keys(
    jwks: &JwkSet,
    issuer: &str,
    token: &str,
    client_id: &str,
    expected_nonce: &str,
) -> Result<IdTokenClaims, IdTokenError> {
    let header = decode_header(token).map_err(|e| IdTokenError::Invalid(e.to_string()))?;
    let allowed = [Algorithm::ES256, Algorithm::ES384, Algorithm::RS256, Algorithm::PS256, Algorithm::EdDSA];
    if !allowed.contains(&header.alg) {
        return Err(IdTokenError::Invalid(format!("algorithm {:?} not allowed", header.alg)));
    }
    if matches!(header.typ.as_deref(), Some(t) if t.eq_ignore_ascii_case("at+jwt") || t.eq_ignore_ascii_case("logout+jwt"))
    {
        return Err(IdTokenError::Invalid("not an ID token (typ)".into()));
    }
    let kid = header.kid.as_deref().ok_or_else(|| IdTokenError::Invalid("no kid".into()))?;
    let jwk = jwks.find(kid).ok_or_else(|| IdTokenError::Invalid("unknown kid".into()))?;
    if let Some(key_alg) = jwk.common.key_algorithm
        && format!("{key_alg:?}") != format!("{:?}", header.alg)
    {
        return Err(IdTokenError::Invalid("alg does not match the key".into()));
    }
    let key = DecodingKey::from_jwk(jwk).map_err(|e| IdTokenError::Invalid(e.to_string()))?;
    let mut v = Validation::new(header.alg);
    v.set_issuer(&[issuer]);
    v.set_audience(&[client_id]);
    v.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    v.leeway = LEEWAY_SECS;
    let claims =
        decode::<IdTokenClaims>(token, &key, &v).map_err(|e| IdTokenError::Invalid(e.to_string()))?.claims;
    if claims.iat > crate::clock::now() + LEEWAY_SECS as i64 {
        return Err(IdTokenError::Invalid("issued in the future".into()));
    }
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

    fn setup() -> (SigningKey, JwkSet) {
        let key = SigningKey::generate().unwrap();
        let jwks: JwkSet = serde_json::from_value(json!({ "keys": [key.public_jwk()] })).unwrap();
        (key, jwks)
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
        jwks: &JwkSet,
        typ: &str,
        c: serde_json::Value,
    ) -> Result<IdTokenClaims, IdTokenError> {
        validate_with_keys(jwks, ISS, &key.sign(typ, &c).unwrap(), "bff", "n-1")
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
