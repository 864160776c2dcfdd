//! `grant_type=client_credentials` (RFC 6749 §4.4): a client registered for it gets an access
//! token about itself (`sub` = `client_id`) for the audience its `resource` names (RFC 8707),
//! with a `scope` it may ask for. No refresh token, no ID token; bound to the DPoP key when
//! the request carried a proof.

use super::errors::OAuthError;
use super::params::{Params, split_scope};
use super::resources;
use super::state::{AppState, SUPPORTED_SCOPES};
use super::tokens;
use actix_web::HttpResponse;

/// Scopes that speak of a user, never granted to a client acting as itself.
const USER_SCOPES: &[&str] = &["openid", "offline_access"];

/// Issues the token (the caller checked the client is registered for this grant).
pub fn exchange(
    state: &AppState,
    client_id: &str,
    params: &Params,
    jkt: Option<&str>,
) -> Result<HttpResponse, OAuthError> {
    let scope = match params.get("scope") {
        None => Vec::new(),
        Some(s) => {
            let asked = split_scope(s);
            let allowed =
                |a: &String| SUPPORTED_SCOPES.contains(&a.as_str()) && !USER_SCOPES.contains(&a.as_str());
            if !asked.iter().all(allowed) {
                return Err(OAuthError::InvalidScope);
            }
            asked
        }
    };
    let aud = resources::for_token(params, &[], |r| state.clients.may_use(client_id, r))?;
    let token = tokens::client_access_token(state, client_id, &scope, aud, jkt)
        .map_err(|e| OAuthError::Internal(e.to_string()))?;
    let mut body = serde_json::json!({
        "access_token": token,
        "token_type": if jkt.is_some() { "DPoP" } else { "Bearer" },
        "expires_in": state.config.access_token_ttl_secs,
    });
    if !scope.is_empty() {
        body["scope"] = scope.join(" ").into();
    }
    tracing::info!(client_id, "client-credentials token issued");
    Ok(super::token_response::send(body))
}
