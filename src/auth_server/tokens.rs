//! The JWTs this provider signs (access tokens per RFC 9068, ID tokens, logout tokens) and the
//! verification of its own tokens when they come back (userinfo, `id_token_hint`).

use super::state::AppState;
use crate::jwt::SigningError;
use jsonwebtoken::{Algorithm, Validation};
use serde::{Deserialize, Serialize};

/// Who and what a token is about.
pub struct Subject<'a> {
    /// Subject.
    pub sub: &'a str,
    /// Login name.
    pub username: &'a str,
    /// Provider session id.
    pub sid: &'a str,
    /// Time of authentication.
    pub auth_time: i64,
    /// Authentication context class (empty: none recorded).
    pub acr: &'a str,
    /// Authentication methods.
    pub amr: &'a [String],
    /// The client.
    pub client_id: &'a str,
}

/// Claims of an access token (RFC 9068).
#[derive(Debug, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Issuer.
    pub iss: String,
    /// Subject.
    pub sub: String,
    /// Audience (the resource server).
    pub aud: String,
    /// Expiry.
    pub exp: i64,
    /// Issued at.
    pub iat: i64,
    /// Not before.
    pub nbf: i64,
    /// Token id.
    pub jti: String,
    /// Space-separated scope.
    pub scope: String,
    /// Provider session id (none in a client-credentials token).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sid: String,
    /// The client the token was issued to.
    pub client_id: String,
    /// Time of authentication (none in a client-credentials token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    /// The DPoP key the token is bound to (RFC 9449 §6.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
    /// Authentication context class (RFC 9470 §5: resource servers decide on it).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub acr: String,
    /// Authentication methods.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
}

/// `cnf` of a DPoP-bound token.
#[derive(Debug, Serialize, Deserialize)]
pub struct Confirmation {
    /// RFC 7638 thumbprint of the key.
    pub jkt: String,
}

/// A signed access token for `aud` (the default audience when `None`), bound to the DPoP key
/// `jkt` when given.
pub fn access_token(
    state: &AppState,
    who: &Subject<'_>,
    scope: &[String],
    aud: Option<&str>,
    jkt: Option<&str>,
) -> Result<String, SigningError> {
    let mut claims = base_claims(state, who.sub, who.client_id, scope, aud, jkt);
    claims.sid = who.sid.to_string();
    claims.auth_time = Some(who.auth_time);
    claims.acr = who.acr.to_string();
    claims.amr = who.amr.to_vec();
    state.signing.sign("at+jwt", &claims)
}

/// A signed access token of the client-credentials grant: the client is the subject; no
/// session, no authentication.
pub fn client_access_token(
    state: &AppState,
    client_id: &str,
    scope: &[String],
    aud: Option<&str>,
    jkt: Option<&str>,
) -> Result<String, SigningError> {
    state.signing.sign("at+jwt", &base_claims(state, client_id, client_id, scope, aud, jkt))
}

/// The claims every access token has (RFC 9068 §2.2).
fn base_claims(
    state: &AppState,
    sub: &str,
    client_id: &str,
    scope: &[String],
    aud: Option<&str>,
    jkt: Option<&str>,
) -> AccessClaims {
    let now = crate::clock::now();
    AccessClaims {
        iss: state.issuer.clone(),
        sub: sub.to_string(),
        aud: aud.unwrap_or(&state.config.access_token_audience).to_string(),
        exp: now + state.config.access_token_ttl_secs as i64,
        iat: now,
        nbf: now,
        jti: crate::crypto::random_token(16),
        scope: scope.join(" "),
        sid: String::new(),
        client_id: client_id.to_string(),
        auth_time: None,
        cnf: jkt.map(|jkt| Confirmation { jkt: jkt.to_string() }),
        acr: String::new(),
        amr: Vec::new(),
    }
}

/// A signed ID token. `nonce` only at the code exchange (OIDC Core §12.2).
pub fn id_token(
    state: &AppState,
    who: &Subject<'_>,
    scope: &[String],
    nonce: Option<&str>,
) -> Result<String, SigningError> {
    let now = crate::clock::now();
    let mut claims = serde_json::json!({
        "iss": state.issuer,
        "sub": who.sub,
        "aud": who.client_id,
        "azp": who.client_id,
        "exp": now + state.config.access_token_ttl_secs as i64,
        "iat": now,
        "auth_time": who.auth_time,
        "sid": who.sid,
    });
    if !who.acr.is_empty() {
        claims["acr"] = who.acr.into();
    }
    if !who.amr.is_empty() {
        claims["amr"] = who.amr.into();
    }
    if let Some(n) = nonce {
        claims["nonce"] = n.into();
    }
    if scope.iter().any(|s| s == "profile") {
        claims["preferred_username"] = who.username.into();
        claims["name"] = who.username.into();
    }
    state.signing.sign("JWT", &claims)
}

/// The back-channel logout event member.
pub const BACKCHANNEL_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// A signed logout token (OIDC Back-Channel Logout 1.0 §2.4): no `nonce`, ever.
pub fn logout_token(state: &AppState, client_id: &str, sub: &str, sid: &str) -> Result<String, SigningError> {
    let now = crate::clock::now();
    let claims = serde_json::json!({
        "iss": state.issuer,
        "aud": client_id,
        "iat": now,
        "exp": now + 120,
        "jti": crate::crypto::random_token(16),
        "sub": sub,
        "sid": sid,
        "events": { BACKCHANNEL_EVENT: {} },
    });
    state.signing.sign("logout+jwt", &claims)
}

/// Why one of our own tokens was refused.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// Wrong `typ` header.
    #[error("wrong token type")]
    Type,
    /// Signature, algorithm, issuer, audience or time checks failed.
    #[error("invalid token: {0}")]
    Invalid(String),
}

fn check_typ(token: &str, typ: &str) -> Result<(), VerifyError> {
    let header = jsonwebtoken::decode_header(token).map_err(|e| VerifyError::Invalid(e.to_string()))?;
    let ok = header.alg == Algorithm::ES256
        && header.typ.as_deref().is_some_and(|t| {
            t.eq_ignore_ascii_case(typ) || t.eq_ignore_ascii_case(&format!("application/{typ}"))
        });
    if ok { Ok(()) } else { Err(VerifyError::Type) }
}

/// The verifying key named by the token's `kid` (the signing key when it names none).
fn key_for<'s>(state: &'s AppState, token: &str) -> Result<&'s jsonwebtoken::DecodingKey, VerifyError> {
    let header = jsonwebtoken::decode_header(token).map_err(|e| VerifyError::Invalid(e.to_string()))?;
    let found = match header.kid.as_deref() {
        Some(kid) => state.verifying.iter().find(|(k, _)| k == kid),
        None => state.verifying.first(),
    };
    found.map(|(_, key)| key).ok_or_else(|| VerifyError::Invalid("unknown kid".into()))
}

/// Verifies an access token we issued: ES256 with our key, `typ: at+jwt`, `iss`, `aud`,
/// `exp`, `nbf`.
pub fn verify_access_token(state: &AppState, token: &str) -> Result<AccessClaims, VerifyError> {
    check_typ(token, "at+jwt")?;
    let mut v = Validation::new(Algorithm::ES256);
    v.set_issuer(&[&state.issuer]);
    v.set_audience(&[&state.config.access_token_audience]);
    v.validate_nbf = true;
    v.leeway = 5;
    v.set_required_spec_claims(&["exp", "iss", "aud", "sub", "nbf"]);
    jsonwebtoken::decode::<AccessClaims>(token, key_for(state, token)?, &v)
        .map(|d| d.claims)
        .map_err(|e| VerifyError::Invalid(e.to_string()))
}

/// Claims read from an `id_token_hint`.
#[derive(Debug, Deserialize)]
pub struct HintClaims {
    /// Subject.
    pub sub: String,
    /// The client it was issued to.
    pub aud: String,
    /// Provider session id.
    #[serde(default)]
    pub sid: Option<String>,
}

/// Verifies an `id_token_hint`: our signature and issuer; it may have expired (OIDC RP-Initiated
/// Logout §2).
pub fn verify_id_token_hint(state: &AppState, token: &str) -> Result<HintClaims, VerifyError> {
    check_typ(token, "JWT")?;
    let mut v = Validation::new(Algorithm::ES256);
    v.set_issuer(&[&state.issuer]);
    v.validate_exp = false;
    v.validate_aud = false;
    v.set_required_spec_claims(&["iss", "sub", "aud"]);
    jsonwebtoken::decode::<HintClaims>(token, key_for(state, token)?, &v)
        .map(|d| d.claims)
        .map_err(|e| VerifyError::Invalid(e.to_string()))
}
