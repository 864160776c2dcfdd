//! Grants: what one code redemption produced — a refresh-token family. The grant record keeps
//! the hash of the one current refresh token; every refresh token ever issued in the family
//! maps back to the grant, so a rotated one presented again is recognised as reuse.
//! Revoking a grant deletes its record: every token of the family dies with it.

use super::state::{AppState, keys};
use crate::crypto::{random_token, sha256_b64};
use crate::store::StoreError;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// A grant record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Grant {
    /// Grant id.
    pub gid: String,
    /// The client holding it.
    pub client_id: String,
    /// Subject.
    pub sub: String,
    /// Login name (profile claims).
    pub username: String,
    /// Provider session id.
    pub sid: String,
    /// Granted scope values (a refresh may narrow, never widen).
    pub scope: Vec<String>,
    /// Time of the original authentication.
    pub auth_time: i64,
    /// Its `acr` (tokens of the family keep it: a refresh is no new authentication).
    #[serde(default)]
    pub acr: String,
    /// Its `amr`.
    #[serde(default)]
    pub amr: Vec<String>,
    /// The resources the authorization request named (RFC 8707): a token of the family may be
    /// asked for one of them only. Empty: any the client may use.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,
    /// Absolute end of the family (Unix seconds).
    pub expires_at: i64,
    /// Hash of the current refresh token; `None` when no refresh token was issued.
    pub refresh_hash: Option<String>,
    /// Last issue of a refresh token (idle expiry counts from here).
    pub last_used: i64,
    /// The thumbprint of the DPoP key the family is bound to (RFC 9449 §5): every token of it
    /// carries `cnf.jkt`, and a refresh needs a proof signed by that key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jkt: Option<String>,
}

/// A refresh token as issued. `Debug` never shows it.
pub struct RefreshToken(pub String);

impl std::fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RefreshToken([redacted])")
    }
}

/// A grant as read, with its exact bytes for compare-and-swap.
pub struct StoredGrant {
    /// Exact stored bytes.
    pub raw: Vec<u8>,
    /// The record.
    pub grant: Grant,
}

/// What the grant creation needs to know.
pub struct NewGrant<'a> {
    /// The client.
    pub client_id: &'a str,
    /// Subject.
    pub sub: &'a str,
    /// Login name.
    pub username: &'a str,
    /// Session id.
    pub sid: &'a str,
    /// Granted scope.
    pub scope: &'a [String],
    /// Time of authentication.
    pub auth_time: i64,
    /// Its `acr`.
    pub acr: &'a str,
    /// Its `amr`.
    pub amr: &'a [String],
    /// The resources named at authorization.
    pub resources: &'a [String],
    /// Whether to issue a refresh token (`offline_access`).
    pub with_refresh: bool,
    /// The DPoP key the tokens are bound to, when the code was redeemed with a proof.
    pub jkt: Option<&'a str>,
}

fn ttl_until(expires_at: i64) -> Duration {
    Duration::from_secs((expires_at - crate::clock::now()).max(1) as u64)
}

/// Creates a grant (and its first refresh token when asked).
pub async fn create(
    state: &AppState,
    new: NewGrant<'_>,
) -> Result<(Grant, Option<RefreshToken>), StoreError> {
    let now = crate::clock::now();
    let lifetime = if new.with_refresh {
        state.config.refresh_token_ttl_secs
    } else {
        state.config.access_token_ttl_secs
    };
    let token = new.with_refresh.then(|| RefreshToken(random_token(32)));
    let grant = Grant {
        gid: random_token(16),
        client_id: new.client_id.to_string(),
        sub: new.sub.to_string(),
        username: new.username.to_string(),
        sid: new.sid.to_string(),
        scope: new.scope.to_vec(),
        auth_time: new.auth_time,
        acr: new.acr.to_string(),
        amr: new.amr.to_vec(),
        resources: new.resources.to_vec(),
        expires_at: now + lifetime as i64,
        refresh_hash: token.as_ref().map(|t| sha256_b64(t.0.as_bytes())),
        last_used: now,
        jkt: new.jkt.map(str::to_string),
    };
    let ttl = ttl_until(grant.expires_at);
    if let Some(hash) = &grant.refresh_hash {
        state.store.set(&keys::refresh(hash), grant.gid.as_bytes(), ttl).await?;
    }
    let bytes = serde_json::to_vec(&grant).unwrap_or_default();
    state.store.set(&keys::grant(&grant.gid), &bytes, ttl).await?;
    // The indexes hold the grant until it expires, exactly like its record.
    state.store.index_add(&keys::sid_grants(&grant.sid), &grant.gid, grant.expires_at).await?;
    state.store.index_add(&keys::sub_grants(&grant.sub), &grant.gid, grant.expires_at).await?;
    Ok((grant, token))
}

/// The grant with this id, if it is alive.
pub async fn load(state: &AppState, gid: &str) -> Result<Option<StoredGrant>, StoreError> {
    let Some(raw) = state.store.get(&keys::grant(gid)).await? else { return Ok(None) };
    Ok(serde_json::from_slice(&raw).ok().map(|grant| StoredGrant { raw, grant }))
}

/// The grant id a refresh token belongs to (current or rotated), with the token's hash.
pub async fn family_of(state: &AppState, token: &str) -> Result<Option<(String, String)>, StoreError> {
    if token.is_empty() || token.len() > 256 {
        return Ok(None);
    }
    let hash = sha256_b64(token.as_bytes());
    let gid = state.store.get(&keys::refresh(&hash)).await?.and_then(|b| String::from_utf8(b).ok());
    Ok(gid.map(|g| (g, hash)))
}

/// Replaces the current refresh token atomically; `None` when the grant changed meanwhile
/// (another refresh won, or the grant was revoked).
pub async fn rotate(
    state: &AppState,
    stored: &StoredGrant,
) -> Result<Option<(Grant, RefreshToken)>, StoreError> {
    let token = RefreshToken(random_token(32));
    let hash = sha256_b64(token.0.as_bytes());
    let mut grant = stored.grant.clone();
    grant.refresh_hash = Some(hash.clone());
    grant.last_used = crate::clock::now();
    let ttl = ttl_until(grant.expires_at);
    // Map the new token first: if the swap loses, the mapping points at a grant whose current
    // hash is not this one, so the token is useless.
    state.store.set(&keys::refresh(&hash), grant.gid.as_bytes(), ttl).await?;
    let bytes = serde_json::to_vec(&grant).unwrap_or_default();
    if state.store.compare_and_swap(&keys::grant(&grant.gid), &stored.raw, &bytes, ttl).await? {
        Ok(Some((grant, token)))
    } else {
        state.store.del(&keys::refresh(&hash)).await?;
        Ok(None)
    }
}

/// Revokes a grant; returns it when it was alive.
pub async fn revoke(state: &AppState, gid: &str) -> Result<Option<Grant>, StoreError> {
    let Some(raw) = state.store.get_del(&keys::grant(gid)).await? else { return Ok(None) };
    let grant: Option<Grant> = serde_json::from_slice(&raw).ok();
    if let Some(g) = &grant {
        state.store.index_remove(&keys::sid_grants(&g.sid), gid).await?;
        state.store.index_remove(&keys::sub_grants(&g.sub), gid).await?;
        tracing::info!(client_id = %g.client_id, grant = %gid_label(gid), "grant revoked");
    }
    Ok(grant)
}

/// Ids of the live grants of a provider session.
pub async fn of_sid(state: &AppState, sid: &str) -> Result<Vec<String>, StoreError> {
    state.store.index_members(&keys::sid_grants(sid)).await
}

/// Ids of the live grants of a subject, over every client and provider session.
pub async fn of_sub(state: &AppState, sub: &str) -> Result<Vec<String>, StoreError> {
    state.store.index_members(&keys::sub_grants(sub)).await
}

/// Revokes the grants with these ids; returns those that were alive.
pub async fn revoke_all(state: &AppState, gids: &[String]) -> Result<Vec<Grant>, StoreError> {
    let mut revoked = Vec::new();
    for gid in gids {
        if let Some(g) = revoke(state, gid).await? {
            revoked.push(g);
        }
    }
    Ok(revoked)
}

/// A short, non-secret label of a grant id for logs.
fn gid_label(gid: &str) -> String {
    sha256_b64(gid.as_bytes()).chars().take(12).collect()
}
