//! `grant_type=refresh_token` (RFC 6749 §6) with rotation on every use and reuse detection
//! (RFC 9700 §4.14.2): a rotated token presented again revokes the whole grant and tells the
//! client over the back channel. A `scope` narrows the access token's scope and a `resource`
//! picks its audience (RFC 8707 §2.2); either refused leaves the refresh token unspent.

use super::errors::OAuthError;
use super::grants::{self, Grant};
use super::params::{Params, split_scope};
use super::resources;
use super::state::AppState;
use super::token_response::Issue;
use actix_web::HttpResponse;

/// Exchanges a refresh token for a new token pair. A family bound to a DPoP key needs a proof
/// of that key (`jkt`); an unbound family stays unbound (a proof changes nothing).
pub async fn exchange(
    state: &AppState,
    client_id: &str,
    params: &Params,
    jkt: Option<&str>,
) -> Result<HttpResponse, OAuthError> {
    let token = params.get("refresh_token").ok_or(OAuthError::InvalidRequest("refresh_token is missing"))?;
    let unknown = OAuthError::InvalidGrant("unknown, expired or revoked refresh token");
    let Some((gid, hash)) = grants::family_of(state, token).await? else { return Err(unknown) };
    let Some(stored) = grants::load(state, &gid).await? else { return Err(unknown) };
    let grant = &stored.grant;
    if grant.client_id != client_id {
        tracing::warn!(client_id, "refresh token presented by another client");
        return Err(OAuthError::InvalidGrant("the refresh token was issued to another client"));
    }
    // Before the reuse check: without the bound key, a stolen token (current or rotated)
    // neither refreshes nor revokes the family.
    match (grant.jkt.as_deref(), jkt) {
        (Some(_), None) => return Err(OAuthError::InvalidDpopProof("the refresh token needs a DPoP proof")),
        (Some(bound), Some(given)) if bound != given => {
            tracing::warn!(client_id, "DPoP-bound refresh token presented with another key");
            return Err(OAuthError::InvalidGrant("the refresh token is bound to another DPoP key"));
        }
        _ => {}
    }
    if grant.refresh_hash.as_deref() != Some(hash.as_str()) {
        return Err(reuse_detected(state, grant).await);
    }
    let now = crate::clock::now();
    if now >= grant.expires_at || now >= grant.last_used + state.config.refresh_token_idle_ttl_secs as i64 {
        grants::revoke(state, &grant.gid).await?;
        return Err(unknown);
    }
    let scope = match params.get("scope") {
        None => grant.scope.clone(),
        Some(s) => {
            let asked = split_scope(s);
            if asked.is_empty() || !asked.iter().all(|a| grant.scope.contains(a)) {
                return Err(OAuthError::InvalidScope);
            }
            asked
        }
    };
    let aud = resources::for_token(params, &grant.resources, |r| state.clients.may_use(client_id, r))?;
    let Some((rotated, refresh)) = grants::rotate(state, &stored).await? else {
        // Another request rotated this token first: this one is a reuse.
        return Err(reuse_detected(state, grant).await);
    };
    let issue = Issue { scope: &scope, aud, refresh: Some(refresh), nonce: None };
    super::token_response::respond(state, &rotated, issue)
}

/// Revokes the family and notifies its client. Returns the error to answer with.
async fn reuse_detected(state: &AppState, grant: &Grant) -> OAuthError {
    tracing::warn!(client_id = %grant.client_id, "rotated refresh token reused: revoking the grant");
    match grants::revoke(state, &grant.gid).await {
        Ok(Some(revoked)) => state.backchannel.notify_grants(state, &[revoked]),
        // Already revoked by a concurrent detection, which sent the notice.
        Ok(None) => {}
        Err(e) => return OAuthError::Store(e),
    }
    OAuthError::InvalidGrant("the refresh token was already used")
}
