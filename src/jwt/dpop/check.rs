//! Checking a DPoP proof (RFC 9449 §4.3) as a server: the reference auth server at its token
//! endpoint, the reference resource server on every request. Everything but the `jti` replay
//! cache, which needs the caller's store: it gets the `jti` back to remember.

use super::{DpopAlg, PROOF_TYP, access_token_hash, htu, thumbprint};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

/// Largest proof accepted; anything longer is refused before parsing.
pub const MAX_PROOF_LEN: usize = 4096;

/// A proof may be this much younger than the server's clock says (clock skew).
const FUTURE_SKEW_SECS: i64 = 5;

/// Why a proof was refused. Displays never include the proof.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DpopError {
    /// Not a compact JWS, too long, or unreadable header or claims.
    #[error("malformed DPoP proof")]
    Malformed,
    /// `typ` is not `dpop+jwt`.
    #[error("the DPoP proof has the wrong typ")]
    WrongType,
    /// `alg` is not on the allow-list (`none`, HS*, anything but EdDSA and ES256).
    #[error("the DPoP proof's algorithm is not allowed")]
    Algorithm,
    /// The embedded `jwk` is missing, private, or not a key of the `alg`.
    #[error("the DPoP proof's key is unusable")]
    Key,
    /// The signature does not verify with the embedded key.
    #[error("the DPoP proof's signature is invalid")]
    Signature,
    /// `htm` is not the request's method.
    #[error("the DPoP proof is for another method")]
    Method,
    /// `htu` is not the request's URL.
    #[error("the DPoP proof is for another URL")]
    Url,
    /// `iat` is outside the accepted window.
    #[error("the DPoP proof is too old or from the future")]
    Time,
    /// `ath` is missing or is not the hash of the presented access token.
    #[error("the DPoP proof is for another access token")]
    AccessTokenHash,
    /// The server requires a nonce and the proof lacks it or carries a stale one.
    #[error("the DPoP proof lacks the server's nonce")]
    UseNonce,
    /// The `jti` was seen before (the caller's replay cache says so).
    #[error("the DPoP proof was replayed")]
    Replayed,
    /// The proof's key is not the one the token is bound to (`cnf.jkt`).
    #[error("the DPoP proof is signed by another key than the token's")]
    WrongKey,
}

/// What the request says a proof must match.
pub struct ProofCheck<'a> {
    /// The request's method.
    pub htm: &'a str,
    /// The request's URL as this server is reached (its query is ignored).
    pub htu: &'a str,
    /// The access token presented with the proof: `ath` must be its hash.
    pub access_token: Option<&'a str>,
    /// The nonces the server accepts now; empty when it requires none.
    pub nonces: &'a [String],
    /// How old `iat` may be.
    pub max_age_secs: i64,
}

/// A proof that passed: its key's thumbprint, and the `jti` and `iat` for the replay cache.
#[derive(Debug, Clone)]
pub struct VerifiedProof {
    /// RFC 7638 thumbprint of the proof's key.
    pub jkt: String,
    /// The proof's id.
    pub jti: String,
    /// When it was made.
    pub iat: i64,
}

#[derive(Deserialize)]
struct Header {
    typ: Option<String>,
    alg: String,
    jwk: Option<serde_json::Value>,
    #[serde(default)]
    crit: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Claims {
    jti: String,
    htm: String,
    htu: String,
    iat: i64,
    #[serde(default)]
    ath: Option<String>,
    #[serde(default)]
    nonce: Option<String>,
}

/// Verifies `proof` against what the request says (everything but `jti` replay).
pub fn verify_proof(proof: &str, check: &ProofCheck<'_>) -> Result<VerifiedProof, DpopError> {
    if proof.len() > MAX_PROOF_LEN || proof.split('.').count() != 3 {
        return Err(DpopError::Malformed);
    }
    let (header, jkt, key) = read_header(proof)?;
    let mut validation = Validation::new(header);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_aud = false;
    let claims = jsonwebtoken::decode::<Claims>(proof, &key, &validation)
        .map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidSignature => DpopError::Signature,
            _ => DpopError::Malformed,
        })?
        .claims;
    check_claims(&claims, check)?;
    Ok(VerifiedProof { jkt, jti: claims.jti, iat: claims.iat })
}

/// The header's algorithm (allow-listed), the key's thumbprint and the key itself.
fn read_header(proof: &str) -> Result<(Algorithm, String, DecodingKey), DpopError> {
    let encoded = proof.split('.').next().ok_or(DpopError::Malformed)?;
    let bytes = URL_SAFE_NO_PAD.decode(encoded).map_err(|_| DpopError::Malformed)?;
    let header: Header = serde_json::from_slice(&bytes).map_err(|_| DpopError::Malformed)?;
    if header.crit.is_some() {
        return Err(DpopError::Malformed);
    }
    if !header.typ.as_deref().is_some_and(|t| t.eq_ignore_ascii_case(PROOF_TYP)) {
        return Err(DpopError::WrongType);
    }
    let (alg, kty) = match DpopAlg::from_name(&header.alg).ok_or(DpopError::Algorithm)? {
        DpopAlg::EdDsa => (Algorithm::EdDSA, "OKP"),
        DpopAlg::Es256 => (Algorithm::ES256, "EC"),
    };
    let jwk = header.jwk.ok_or(DpopError::Key)?;
    if jwk.get("d").is_some() || jwk.get("kty").and_then(|v| v.as_str()) != Some(kty) {
        return Err(DpopError::Key);
    }
    let jkt = thumbprint(&jwk).ok_or(DpopError::Key)?;
    let parsed: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwk).map_err(|_| DpopError::Key)?;
    let key = DecodingKey::from_jwk(&parsed).map_err(|_| DpopError::Key)?;
    Ok((alg, jkt, key))
}

fn check_claims(claims: &Claims, check: &ProofCheck<'_>) -> Result<(), DpopError> {
    if claims.jti.is_empty() || claims.jti.len() > 256 {
        return Err(DpopError::Malformed);
    }
    if claims.htm != check.htm {
        return Err(DpopError::Method);
    }
    if !same_url(&claims.htu, htu(check.htu)) {
        return Err(DpopError::Url);
    }
    let now = crate::clock::now();
    if claims.iat > now + FUTURE_SKEW_SECS || claims.iat < now - check.max_age_secs {
        return Err(DpopError::Time);
    }
    if let Some(token) = check.access_token {
        let expected = access_token_hash(token);
        let given = claims.ath.as_deref().unwrap_or_default();
        if !crate::crypto::constant_time_eq(given.as_bytes(), expected.as_bytes()) {
            return Err(DpopError::AccessTokenHash);
        }
    }
    if !check.nonces.is_empty() && !check.nonces.iter().any(|n| claims.nonce.as_deref() == Some(n.as_str())) {
        return Err(DpopError::UseNonce);
    }
    Ok(())
}

/// RFC 9449 §4.3 step 9: `htu` compared without query and fragment, after syntax-based
/// normalisation (scheme and host case, default port).
fn same_url(claimed: &str, expected: &str) -> bool {
    match (url::Url::parse(claimed), url::Url::parse(expected)) {
        (Ok(mut a), Ok(mut b)) => {
            for u in [&mut a, &mut b] {
                u.set_query(None);
                u.set_fragment(None);
            }
            a == b
        }
        _ => false,
    }
}
