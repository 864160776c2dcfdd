//! THE place where cloakroom validates a JWT it receives: access tokens (resource server, any
//! actix service through [`BearerToken`](crate::resource_server::BearerToken)), ID tokens and
//! back-channel logout tokens (BFF).
//!
//! The rules (RFC 8725, RFC 9068, OIDC Core §3.1.3.7, Back-Channel Logout §2.6):
//! - the key is chosen only by `kid`, from the configured issuer's JWKS ([`JwksCache`]); `jku`,
//!   `x5u` and an embedded `jwk` are ignored; a `crit` header is refused (we understand no
//!   extension);
//! - the header `alg` must be the key's bound algorithm (`none`, HS*, and mismatches refused);
//! - `typ` must fit the kind of token ([`TokenType`]), so one kind is never accepted as another;
//! - `iss` exact, `aud` (a string or an array of strings) contains the expected audience,
//!   `exp` and `iat` required, `nbf` when present, all with the configured leeway;
//! - registered claims must have their JSON types (a string `exp`, an object `aud`, an array
//!   `iss` or a numeric `sub` is refused) whatever claims type the caller asks for;
//! - logout tokens: the back-channel `events` member, no `nonce`, `sub` and/or `sid`.
//!
//! Callers choose their own claims type: `verifier.verify::<AccessClaims>(…)` for access
//! tokens, any `serde::de::DeserializeOwned` struct for ID or logout tokens. What stays with
//! the caller: `nonce`/`azp` of ID tokens, `jti` replay of logout tokens, scopes.

#[cfg(test)]
mod key_families;
#[cfg(test)]
mod tests;

use super::JwtError;
use super::claims::Audience;
use super::jwks::JwksCache;
use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// The `events` member a back-channel logout token must carry.
pub const BACKCHANNEL_LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// Largest token accepted; anything longer is refused before parsing.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// The kind of token expected; decides which `typ` headers are acceptable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenType {
    /// RFC 9068 access token: `typ` must be `at+jwt` (or `application/at+jwt`).
    Access,
    /// OpenID Connect ID token: `typ` absent or `JWT`. Never `at+jwt` nor `logout+jwt`.
    Id,
    /// Back-channel logout token: `typ` `logout+jwt`, absent, or `JWT` (BCL §2.4 only says
    /// SHOULD be explicitly typed, and deployed providers send `JWT`). Never `at+jwt`. An ID
    /// token still cannot pass as one: a logout token must carry the back-channel `events`
    /// member and no `nonce`, which ID tokens never satisfy.
    Logout,
    /// RFC 7523 client assertion (`private_key_jwt`): `typ` absent, `JWT` or
    /// `client-authentication+jwt`. Never `at+jwt` nor `logout+jwt`; `iat` is optional.
    ClientAssertion,
}

impl TokenType {
    /// True when a token whose header carries `typ` may be this kind (case-insensitive, with
    /// or without the `application/` prefix, RFC 7515 §4.1.9).
    pub fn accepts(self, typ: Option<&str>) -> bool {
        let typ = typ.map(|t| t.to_ascii_lowercase());
        let typ = typ.as_deref().map(|t| t.strip_prefix("application/").unwrap_or(t));
        match self {
            TokenType::Access => typ == Some("at+jwt"),
            TokenType::Id => matches!(typ, None | Some("jwt")),
            TokenType::Logout => matches!(typ, None | Some("jwt") | Some("logout+jwt")),
            TokenType::ClientAssertion => {
                matches!(typ, None | Some("jwt") | Some("client-authentication+jwt"))
            }
        }
    }

    fn required_claims(self) -> &'static [&'static str] {
        match self {
            TokenType::Access | TokenType::Id => &["exp", "iss", "aud", "sub", "iat"],
            TokenType::Logout => &["exp", "iss", "aud", "iat"],
            TokenType::ClientAssertion => &["exp", "iss", "aud", "sub"],
        }
    }
}

/// The validation for one token: algorithm pinned by the key, issuer and audience set,
/// required claims, `exp` and `nbf` with leeway. `typ`, `iat` and claim types are checked by
/// [`Verifier::verify`] (jsonwebtoken checks neither).
pub fn validation(
    alg: Algorithm,
    issuer: &str,
    audiences: &[&str],
    kind: TokenType,
    leeway_secs: u64,
) -> Validation {
    let mut v = Validation::new(alg);
    v.algorithms = vec![alg];
    v.set_issuer(&[issuer]);
    v.set_audience(audiences);
    v.set_required_spec_claims(kind.required_claims());
    v.validate_exp = true;
    v.validate_nbf = true;
    v.leeway = leeway_secs;
    v
}

/// The registered claims, strictly typed: whatever type the caller deserialises into, these
/// must have their JSON types.
#[derive(Deserialize)]
struct Registered {
    iss: String,
    aud: Audience,
    exp: i64,
    #[serde(default)]
    iat: Option<i64>,
    #[serde(default)]
    nbf: Option<i64>,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    jti: Option<String>,
    #[serde(default)]
    sid: Option<String>,
}

/// Validates tokens of one issuer. Cheap to clone.
#[derive(Clone)]
pub struct Verifier {
    jwks: JwksCache,
    leeway_secs: u64,
}

impl Verifier {
    /// A verifier over `jwks` with `leeway_secs` of clock tolerance. The expected `iss` is the
    /// issuer exactly as its metadata spells it ([`JwksCache::issuer`]).
    pub fn new(jwks: JwksCache, leeway_secs: u64) -> Self {
        Self { jwks, leeway_secs }
    }

    /// The key cache (readiness checks).
    pub fn jwks(&self) -> &JwksCache {
        &self.jwks
    }

    /// Validates `token` as a `kind` for `audience` and returns its claims as `C`.
    pub async fn verify<C: DeserializeOwned>(
        &self,
        token: &str,
        audience: &str,
        kind: TokenType,
    ) -> Result<C, JwtError> {
        self.verify_for_any(token, &[audience], kind).await
    }

    /// Validates `token` as a `kind` whose `aud` names at least one of `audiences` (a client
    /// assertion may name the issuer or the endpoint it is sent to).
    pub async fn verify_for_any<C: DeserializeOwned>(
        &self,
        token: &str,
        audiences: &[&str],
        kind: TokenType,
    ) -> Result<C, JwtError> {
        if token.len() > MAX_TOKEN_LEN || token.split('.').count() != 3 {
            return Err(JwtError::Malformed);
        }
        // An unknown `alg` such as `none` fails here: jsonwebtoken has no such algorithm.
        let header = jsonwebtoken::decode_header(token).map_err(|_| JwtError::Malformed)?;
        if header.crit.is_some() || header.enc.is_some() || header.zip.is_some() {
            return Err(JwtError::Malformed);
        }
        if !kind.accepts(header.typ.as_deref()) {
            return Err(JwtError::WrongType);
        }
        let kid = header.kid.as_deref().ok_or(JwtError::UnknownKey)?;
        let key = self.jwks.key(kid).await?;
        if header.alg != key.alg {
            return Err(JwtError::AlgorithmMismatch);
        }
        let issuer = self.jwks.issuer().await?;
        let v = validation(key.alg, &issuer, audiences, kind, self.leeway_secs);
        let data = jsonwebtoken::decode::<serde_json::Value>(token, &key.key, &v)
            .map_err(|e| JwtError::Invalid(e.kind().clone().into()))?;
        self.check_registered(&data.claims, &issuer, audiences, kind)?;
        serde_json::from_value(data.claims).map_err(|_| JwtError::Invalid(InvalidReason::ClaimTypes))
    }

    /// What jsonwebtoken leaves unchecked or checks loosely (an array `iss`, a float `exp`,
    /// `iat`), and the shape of logout tokens.
    fn check_registered(
        &self,
        claims: &serde_json::Value,
        issuer: &str,
        audiences: &[&str],
        kind: TokenType,
    ) -> Result<(), JwtError> {
        let invalid = |r| Err(JwtError::Invalid(r));
        let Ok(r) = Registered::deserialize(claims) else { return invalid(InvalidReason::ClaimTypes) };
        let (now, leeway) = (crate::clock::now(), self.leeway_secs as i64);
        if r.iss != issuer {
            return invalid(InvalidReason::Issuer);
        }
        if !audiences.iter().any(|a| r.aud.contains(a)) {
            return invalid(InvalidReason::Audience);
        }
        if r.exp < now - leeway {
            return invalid(InvalidReason::Expired);
        }
        if r.nbf.is_some_and(|nbf| nbf > now + leeway) {
            return invalid(InvalidReason::NotYetValid);
        }
        match r.iat {
            Some(iat) if iat > now + leeway => return invalid(InvalidReason::IssuedInFuture),
            // Required but for client assertions (RFC 7523 §3 makes it optional there); its
            // absence reads as the claims' shape being wrong, as before it was optional.
            None if kind != TokenType::ClientAssertion => return invalid(InvalidReason::ClaimTypes),
            _ => {}
        }
        let present = |s: &Option<String>| s.as_deref().is_some_and(|s| !s.is_empty());
        match kind {
            TokenType::Access | TokenType::Id | TokenType::ClientAssertion if !present(&r.sub) => {
                invalid(InvalidReason::MissingClaim)
            }
            TokenType::Logout => check_logout(claims, &r),
            _ => Ok(()),
        }
    }
}

/// Back-Channel Logout 1.0 §2.4/§2.6: `events` names the logout event, no `nonce`, a `jti`,
/// and `sub` and/or `sid`.
fn check_logout(claims: &serde_json::Value, r: &Registered) -> Result<(), JwtError> {
    let invalid = |why| Err(JwtError::Invalid(why));
    let has_event = claims
        .get("events")
        .and_then(|e| e.as_object())
        .and_then(|e| e.get(BACKCHANNEL_LOGOUT_EVENT))
        .is_some_and(|e| e.is_object());
    if !has_event {
        return invalid(InvalidReason::MissingClaim);
    }
    if claims.get("nonce").is_some() {
        return invalid(InvalidReason::Forbidden);
    }
    let present = |s: &Option<String>| s.as_deref().is_some_and(|s| !s.is_empty());
    if !present(&r.jti) || !(present(&r.sub) || present(&r.sid)) {
        return invalid(InvalidReason::MissingClaim);
    }
    Ok(())
}

/// Why a signed token's contents were refused (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvalidReason {
    /// Expired.
    Expired,
    /// Not yet valid.
    NotYetValid,
    /// Issued in the future.
    IssuedInFuture,
    /// Wrong issuer.
    Issuer,
    /// Wrong audience.
    Audience,
    /// Bad signature.
    Signature,
    /// A required claim is missing.
    MissingClaim,
    /// A claim has the wrong JSON type.
    ClaimTypes,
    /// A claim that must not be there (a `nonce` in a logout token).
    Forbidden,
    /// Anything else jsonwebtoken refused.
    Other,
}

impl From<jsonwebtoken::errors::ErrorKind> for InvalidReason {
    fn from(k: jsonwebtoken::errors::ErrorKind) -> Self {
        use jsonwebtoken::errors::ErrorKind as K;
        match k {
            K::ExpiredSignature => Self::Expired,
            K::ImmatureSignature => Self::NotYetValid,
            K::InvalidIssuer => Self::Issuer,
            K::InvalidAudience => Self::Audience,
            K::InvalidSignature | K::InvalidEcdsaKey | K::InvalidEddsaKey | K::InvalidRsaKey(_) => {
                Self::Signature
            }
            K::MissingRequiredClaim(_) => Self::MissingClaim,
            K::Json(_) | K::InvalidClaimFormat(_) => Self::ClaimTypes,
            _ => Self::Other,
        }
    }
}

impl std::fmt::Display for InvalidReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}
