//! Authorization codes: 256 random bits, stored only under their SHA-256, bound to everything
//! the token request must repeat, single use. A redeemed code keeps a record of the grant it
//! produced, so that a replay can revoke that grant (RFC 6749 §4.1.2).

use super::login_session::LoginSession;
use super::pending::AuthRequest;
use super::state::{AppState, keys};
use crate::crypto::{random_token, sha256_b64};
use crate::store::StoreError;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// How long a redeemed code is remembered (to detect replays) at least.
const REDEEMED_MEMORY_SECS: u64 = 600;

/// What a code stands for.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CodeRecord {
    /// The client it was issued to.
    pub client_id: String,
    /// The redirect URI of the authorization request.
    pub redirect_uri: String,
    /// PKCE S256 challenge.
    pub code_challenge: String,
    /// Nonce for the ID token.
    pub nonce: Option<String>,
    /// Granted scope values.
    pub scope: Vec<String>,
    /// Subject.
    pub sub: String,
    /// Login name (profile claims).
    pub username: String,
    /// Provider session id.
    pub sid: String,
    /// Time of authentication.
    pub auth_time: i64,
    /// The `acr` reported for this authorization.
    #[serde(default)]
    pub acr: String,
    /// The methods of the authentication.
    #[serde(default)]
    pub amr: Vec<String>,
    /// The resources the authorization request named (RFC 8707); empty: none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,
    /// Unix time after which the code is refused.
    pub expires_at: i64,
    /// The grant this code was redeemed for, once it was.
    pub redeemed_by: Option<String>,
}

/// A code as presented at the token endpoint: looked up by hash only.
pub struct StoredCode {
    /// The store key.
    pub key: String,
    /// The exact stored bytes (for compare-and-swap).
    pub raw: Vec<u8>,
    /// The record.
    pub record: CodeRecord,
}

/// Issues a code for a completed authorization request.
pub async fn issue(
    state: &AppState,
    req: &AuthRequest,
    session: &LoginSession,
) -> Result<String, StoreError> {
    let code = random_token(32);
    let record = CodeRecord {
        client_id: req.client_id.clone(),
        redirect_uri: req.redirect_uri.clone(),
        code_challenge: req.code_challenge.clone(),
        nonce: req.nonce.clone(),
        scope: req.scope.clone(),
        sub: session.sub.clone(),
        username: session.username.clone(),
        sid: session.sid.clone(),
        auth_time: session.auth_time,
        acr: super::second_factor::reported_acr(&req.acr_values, &session.acr),
        amr: session.amr.clone(),
        resources: req.resources.clone(),
        expires_at: crate::clock::now() + state.config.code_ttl_secs as i64,
        redeemed_by: None,
    };
    let bytes = serde_json::to_vec(&record).unwrap_or_default();
    // The record outlives the code's validity so that a late replay is still recognised.
    let ttl = Duration::from_secs(state.config.code_ttl_secs.max(REDEEMED_MEMORY_SECS));
    state.store.set(&keys::code(&sha256_b64(code.as_bytes())), &bytes, ttl).await?;
    Ok(code)
}

/// Looks up a presented code.
pub async fn find(state: &AppState, code: &str) -> Result<Option<StoredCode>, StoreError> {
    if code.len() > 256 {
        return Ok(None);
    }
    let key = keys::code(&sha256_b64(code.as_bytes()));
    let Some(raw) = state.store.get(&key).await? else { return Ok(None) };
    let Ok(record) = serde_json::from_slice(&raw) else { return Ok(None) };
    Ok(Some(StoredCode { key, raw, record }))
}

/// Marks the code redeemed for grant `gid`; false when someone else redeemed it first.
pub async fn mark_redeemed(state: &AppState, code: &StoredCode, gid: &str) -> Result<bool, StoreError> {
    let mut record = code.record.clone();
    record.redeemed_by = Some(gid.to_string());
    let bytes = serde_json::to_vec(&record).unwrap_or_default();
    let ttl = Duration::from_secs(state.config.code_ttl_secs.max(REDEEMED_MEMORY_SECS));
    state.store.compare_and_swap(&code.key, &code.raw, &bytes, ttl).await
}
