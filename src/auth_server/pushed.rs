//! Pushed authorization requests (RFC 9126) in the store: kept under the hash of their
//! `request_uri` for [`LIFETIME_SECS`], bound to the client that pushed them, used once.

use super::errors::OAuthError;
use super::params::Params;
use super::state::{AppState, keys};
use crate::store::StoreError;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Lifetime of a pushed request (`expires_in`).
pub const LIFETIME_SECS: u64 = 60;
/// The `request_uri` prefix RFC 9126 §2.2 suggests.
pub const REQUEST_URI_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";
/// Parameters never kept with a pushed request: the client's credentials.
const CREDENTIALS: &[&str] = &["client_id", "client_secret", "client_assertion", "client_assertion_type"];

#[derive(Serialize, Deserialize)]
struct Pushed {
    client_id: String,
    /// The authorization parameters, form-encoded.
    query: String,
}

/// Keeps `params` pushed by `client_id`; returns the `request_uri`.
pub async fn save(state: &AppState, client_id: &str, params: &Params) -> Result<String, OAuthError> {
    let request_uri = format!("{REQUEST_URI_PREFIX}{}", crate::crypto::random_token(32));
    let record = Pushed { client_id: client_id.to_string(), query: params.encode_except(CREDENTIALS) };
    let value = serde_json::to_vec(&record).map_err(|e| OAuthError::Internal(e.to_string()))?;
    state.store.set(&key(&request_uri), &value, Duration::from_secs(LIFETIME_SECS)).await?;
    Ok(request_uri)
}

/// Why a `request_uri` cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TakeError {
    /// Unknown, expired, used already, or pushed by another client.
    #[error("the request_uri is unknown, expired, used or another client's")]
    Unusable,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The parameters pushed under `request_uri` by `client_id` (with `client_id` among them),
/// deleted so that they serve once. Another client's request stays for its owner.
pub async fn take(state: &AppState, client_id: &str, request_uri: &str) -> Result<Params, TakeError> {
    let key = key(request_uri);
    let stored = state.store.get(&key).await?.ok_or(TakeError::Unusable)?;
    let record: Pushed = serde_json::from_slice(&stored).map_err(|_| TakeError::Unusable)?;
    if record.client_id != client_id {
        tracing::warn!(client_id, "a pushed request presented by another client");
        return Err(TakeError::Unusable);
    }
    if !state.store.compare_and_delete(&key, &stored).await? {
        return Err(TakeError::Unusable);
    }
    let mut params = Params::parse(record.query.as_bytes()).map_err(|_| TakeError::Unusable)?;
    params.insert("client_id", client_id);
    Ok(params)
}

fn key(request_uri: &str) -> String {
    keys::pushed(&crate::crypto::sha256_b64(request_uri.as_bytes()))
}
