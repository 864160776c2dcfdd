//! THE place where cloakroom validates a JWT it receives: access tokens (resource server), ID
//! tokens and back-channel logout tokens (BFF).
//!
//! The rules (RFC 8725, RFC 9068, OIDC Core §3.1.3.7, Back-Channel Logout §2.6): the key is
//! chosen only by `kid` from the issuer's JWKS; the header `alg` must be the key's bound
//! algorithm (`none`, HS*, and mismatches refused); `typ` must fit the kind of token (explicit
//! typing, so one kind is never accepted as another); `iss` exact, `aud` contains us, `exp`
//! required, `nbf`/`iat` checked with a small leeway; claims deserialise into typed structs.

use super::JwtError;
use super::jwks::JwksCache;
use jsonwebtoken::{Algorithm, Validation};
use serde::de::DeserializeOwned;

/// The kind of token expected; decides which `typ` headers are acceptable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenType {
    /// RFC 9068 access token: `typ` must be `at+jwt` (or `application/at+jwt`).
    Access,
    /// OpenID Connect ID token: `typ` absent or `JWT`.
    Id,
    /// Back-channel logout token: `typ` `logout+jwt` when present; never `at+jwt`.
    Logout,
}

impl TokenType {
    fn accepts(self, typ: Option<&str>) -> bool {
        let typ = typ.map(|t| t.to_ascii_lowercase());
        let typ = typ.as_deref().map(|t| t.strip_prefix("application/").unwrap_or(t));
        match self {
            TokenType::Access => typ == Some("at+jwt"),
            TokenType::Id => matches!(typ, None | Some("jwt")),
            TokenType::Logout => matches!(typ, None | Some("jwt") | Some("logout+jwt")),
        }
    }

    fn required_claims(self) -> &'static [&'static str] {
        match self {
            TokenType::Access => &["exp", "iss", "aud", "sub", "iat"],
            TokenType::Id => &["exp", "iss", "aud", "sub", "iat"],
            TokenType::Logout => &["exp", "iss", "aud", "iat"],
        }
    }
}

/// Largest token accepted; anything longer is refused before parsing.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// Validates tokens of one issuer.
#[derive(Clone)]
pub struct Verifier {
    jwks: JwksCache,
    leeway_secs: u64,
}

/// The validation for one token: algorithm pinned by the key, issuer and audience set,
/// required claims, leeway. `typ` is checked by the caller ([`Verifier::verify`]).
pub fn validation(
    alg: Algorithm,
    issuer: &str,
    audience: &str,
    kind: TokenType,
    leeway_secs: u64,
) -> Validation {
    let mut v = Validation::new(alg);
    v.algorithms = vec![alg];
    v.set_issuer(&[issuer]);
    v.set_audience(&[audience]);
    v.set_required_spec_claims(kind.required_claims());
    v.validate_exp = true;
    v.validate_nbf = true;
    v.leeway = leeway_secs;
    v
}

impl Verifier {
    /// A verifier over `jwks` with `leeway_secs` of clock tolerance.
    pub fn new(jwks: JwksCache, leeway_secs: u64) -> Self {
        Self { jwks, leeway_secs }
    }

    /// The key cache (readiness checks).
    pub fn jwks(&self) -> &JwksCache {
        &self.jwks
    }

    /// Validates `token` as a `kind` for `audience` and returns its typed claims.
    pub async fn verify<C: DeserializeOwned>(
        &self,
        token: &str,
        audience: &str,
        kind: TokenType,
    ) -> Result<C, JwtError> {
        if token.len() > MAX_TOKEN_LEN || token.split('.').count() != 3 {
            return Err(JwtError::Malformed);
        }
        // An unknown `alg` such as `none` fails here: jsonwebtoken has no such algorithm.
        let header = jsonwebtoken::decode_header(token).map_err(|_| JwtError::Malformed)?;
        if !kind.accepts(header.typ.as_deref()) {
            return Err(JwtError::WrongType);
        }
        let kid = header.kid.as_deref().ok_or(JwtError::UnknownKey)?;
        let key = self.jwks.key(kid).await?;
        if header.alg != key.alg {
            return Err(JwtError::AlgorithmMismatch);
        }
        let issuer = self.jwks.issuer().await?;
        let v = validation(key.alg, &issuer, audience, kind, self.leeway_secs);
        let data = jsonwebtoken::decode::<serde_json::Value>(token, &key.key, &v)
            .map_err(|e| JwtError::Invalid(e.kind().clone().into()))?;
        let iat = data.claims.get("iat").and_then(|v| v.as_i64());
        if iat.is_some_and(|iat| iat > crate::clock::now() + self.leeway_secs as i64) {
            return Err(JwtError::Invalid(InvalidReason::IssuedInFuture));
        }
        serde_json::from_value(data.claims).map_err(|_| JwtError::Invalid(InvalidReason::ClaimTypes))
    }
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
            K::InvalidSignature | K::InvalidEcdsaKey | K::InvalidRsaKey(_) => Self::Signature,
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
