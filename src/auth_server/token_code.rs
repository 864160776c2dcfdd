//! `grant_type=authorization_code` (RFC 6749 §4.1.3 with PKCE, RFC 7636 §4.6; a `resource`
//! picks the access token's audience, RFC 8707 §2.2). A code is
//! redeemed once; a replay by the code's own client is refused and revokes what the first
//! redemption produced (another client presenting it is refused and changes nothing).

use super::codes;
use super::errors::OAuthError;
use super::grants::{self, NewGrant};
use super::params::Params;
use super::resources;
use super::state::AppState;
use super::token_response::Issue;
use crate::config::GrantType;
use crate::crypto::{constant_time_eq, sha256_b64};
use actix_web::HttpResponse;

/// Exchanges a code for tokens; with `jkt` (a DPoP proof came with it) they are bound to it.
pub async fn exchange(
    state: &AppState,
    client_id: &str,
    params: &Params,
    jkt: Option<&str>,
) -> Result<HttpResponse, OAuthError> {
    let code = params.get("code").ok_or(OAuthError::InvalidRequest("code is missing"))?;
    let redirect_uri =
        params.get("redirect_uri").ok_or(OAuthError::InvalidRequest("redirect_uri is missing"))?;
    let verifier =
        params.get("code_verifier").ok_or(OAuthError::InvalidRequest("code_verifier is missing"))?;
    if !valid_verifier(verifier) {
        return Err(OAuthError::InvalidRequest("code_verifier must be 43-128 unreserved characters"));
    }
    let stored =
        codes::find(state, code).await?.ok_or(OAuthError::InvalidGrant("unknown or expired code"))?;
    let record = &stored.record;
    check_code(state, record, client_id, redirect_uri, verifier).await?;
    let aud = resources::for_token(params, &record.resources, |r| state.clients.may_use(client_id, r))?;

    // The grant exists before the code says it was redeemed for it, so a replay arriving in
    // between can always find and revoke it.
    let (grant, refresh) = grants::create(
        state,
        NewGrant {
            client_id,
            sub: &record.sub,
            username: &record.username,
            sid: &record.sid,
            scope: &record.scope,
            auth_time: record.auth_time,
            acr: &record.acr,
            amr: &record.amr,
            resources: &record.resources,
            with_refresh: record.scope.iter().any(|s| s == "offline_access")
                && state.clients.may_grant(client_id, GrantType::RefreshToken),
            jkt,
        },
    )
    .await?;
    if !codes::mark_redeemed(state, &stored, &grant.gid).await? {
        // Someone redeemed it concurrently: neither redemption may stand.
        grants::revoke(state, &grant.gid).await?;
        if let Some(other) = codes::find(state, code).await?.and_then(|c| c.record.redeemed_by) {
            grants::revoke(state, &other).await?;
        }
        return Err(OAuthError::InvalidGrant("the code was already used"));
    }
    let issue = Issue { scope: &grant.scope, aud, refresh, nonce: record.nonce.as_deref() };
    super::token_response::respond(state, &grant, issue)
}

/// RFC 7636 §4.1: 43–128 characters of `[A-Z a-z 0-9 - . _ ~]`.
fn valid_verifier(v: &str) -> bool {
    (43..=128).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

/// The code's client, single use, expiry, redirect URI and PKCE verifier. A replay by the
/// code's own client revokes the grant the code was redeemed for.
async fn check_code(
    state: &AppState,
    record: &codes::CodeRecord,
    client_id: &str,
    redirect_uri: &str,
    verifier: &str,
) -> Result<(), OAuthError> {
    // The client first: a code that leaked to another client must not let that client revoke
    // the owner's grant by replaying it. Only the code's own client replaying it is a replay.
    if record.client_id != client_id {
        tracing::warn!(client_id, "authorization code presented by another client");
        return Err(OAuthError::InvalidGrant("the code was issued to another client"));
    }
    if let Some(gid) = &record.redeemed_by {
        tracing::warn!(client_id, "authorization code replayed: revoking its grant");
        grants::revoke(state, gid).await?;
        return Err(OAuthError::InvalidGrant("the code was already used"));
    }
    if crate::clock::now() > record.expires_at {
        return Err(OAuthError::InvalidGrant("unknown or expired code"));
    }
    if record.redirect_uri != redirect_uri {
        return Err(OAuthError::InvalidGrant("redirect_uri does not match the authorization request"));
    }
    if !constant_time_eq(sha256_b64(verifier.as_bytes()).as_bytes(), record.code_challenge.as_bytes()) {
        return Err(OAuthError::InvalidGrant("code_verifier does not match the code_challenge"));
    }
    Ok(())
}
