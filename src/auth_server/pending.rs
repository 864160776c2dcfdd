//! Pending authorization requests: validated `/authorize` parameters kept in the store under
//! a random id while the user signs in (the id travels in the login form).

use super::state::{AppState, keys};
use crate::store::StoreError;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// A validated authorization request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthRequest {
    /// The client.
    pub client_id: String,
    /// The registered redirect URI it named.
    pub redirect_uri: String,
    /// Granted scope values.
    pub scope: Vec<String>,
    /// Opaque client state, returned as is.
    pub state: Option<String>,
    /// Put into the ID token.
    pub nonce: Option<String>,
    /// The PKCE S256 challenge.
    pub code_challenge: String,
}

/// Checks the shape of a request id before it is looked up.
pub fn valid_id(id: &str) -> bool {
    id.len() == 43 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Stores `req` and returns its id.
pub async fn save(state: &AppState, req: &AuthRequest) -> Result<String, StoreError> {
    let id = crate::crypto::random_token(32);
    let bytes = serde_json::to_vec(req).unwrap_or_default();
    let ttl = Duration::from_secs(state.config.authorization_request_ttl_secs);
    state.store.set(&keys::pending(&id), &bytes, ttl).await?;
    Ok(id)
}

/// The pending request with this id.
pub async fn load(state: &AppState, id: &str) -> Result<Option<AuthRequest>, StoreError> {
    if !valid_id(id) {
        return Ok(None);
    }
    Ok(state.store.get(&keys::pending(id)).await?.and_then(|b| serde_json::from_slice(&b).ok()))
}

/// Removes and returns the pending request (it is completed once).
pub async fn take(state: &AppState, id: &str) -> Result<Option<AuthRequest>, StoreError> {
    if !valid_id(id) {
        return Ok(None);
    }
    Ok(state.store.get_del(&keys::pending(id)).await?.and_then(|b| serde_json::from_slice(&b).ok()))
}
