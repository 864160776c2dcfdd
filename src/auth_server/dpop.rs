//! DPoP proofs at the token endpoint (RFC 9449 §5): a request with a `DPoP` header gets tokens
//! bound to the proof's key; the proof is checked by the shared [`crate::jwt::dpop`] (signature
//! with the embedded key, `typ`, `alg` allow-list, `htm` POST, `htu` this token endpoint, `iat`
//! window) and its `jti` is remembered in the store, so a proof is used once.

use super::errors::OAuthError;
use super::state::AppState;
use crate::jwt::dpop::{self, DPOP_HEADER, ProofCheck, VerifiedProof};
use actix_web::HttpRequest;

/// How old a proof's `iat` may be.
pub const PROOF_MAX_AGE_SECS: i64 = 60;

/// The verified proof of the request, `None` when it carries none.
pub async fn token_endpoint_proof(
    req: &HttpRequest,
    state: &AppState,
) -> Result<Option<VerifiedProof>, OAuthError> {
    let mut headers = req.headers().get_all(DPOP_HEADER);
    let Some(value) = headers.next() else { return Ok(None) };
    if headers.next().is_some() {
        return Err(OAuthError::InvalidDpopProof("more than one DPoP header"));
    }
    let proof = value.to_str().map_err(|_| OAuthError::InvalidDpopProof("malformed DPoP proof"))?;
    let endpoint = state.url("/token");
    let check = ProofCheck {
        htm: "POST",
        htu: &endpoint,
        access_token: None,
        nonces: &[],
        max_age_secs: PROOF_MAX_AGE_SECS,
    };
    let verified = dpop::verify_proof(proof, &check).map_err(|e| {
        tracing::info!(reason = %e, "DPoP proof refused at the token endpoint");
        OAuthError::InvalidDpopProof("the DPoP proof is invalid")
    })?;
    if !dpop::replay::first_use(&state.store, "as:", &verified, PROOF_MAX_AGE_SECS).await? {
        tracing::warn!("DPoP proof replayed at the token endpoint");
        return Err(OAuthError::InvalidDpopProof("the DPoP proof was already used"));
    }
    Ok(Some(verified))
}
