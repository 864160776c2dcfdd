//! The successful token response (RFC 6749 §5.1) shared by the authorization-code and the
//! refresh-token grants.

use super::errors::OAuthError;
use super::grants::{Grant, RefreshToken};
use super::state::AppState;
use super::tokens::{self, Subject};
use actix_web::HttpResponse;

/// The successful token response for `grant`, with `scope` (possibly narrower than the grant's).
pub fn respond(
    state: &AppState,
    grant: &Grant,
    scope: &[String],
    refresh: Option<RefreshToken>,
    nonce: Option<&str>,
) -> Result<HttpResponse, OAuthError> {
    let who = Subject {
        sub: &grant.sub,
        username: &grant.username,
        sid: &grant.sid,
        auth_time: grant.auth_time,
        acr: &grant.acr,
        amr: &grant.amr,
        client_id: &grant.client_id,
    };
    let internal = |e: crate::jwt::SigningError| OAuthError::Internal(e.to_string());
    let mut body = serde_json::json!({
        "access_token": tokens::access_token(state, &who, scope, grant.jkt.as_deref()).map_err(internal)?,
        "token_type": if grant.jkt.is_some() { "DPoP" } else { "Bearer" },
        "expires_in": state.config.access_token_ttl_secs,
        "scope": scope.join(" "),
    });
    if scope.iter().any(|s| s == "openid") {
        body["id_token"] = tokens::id_token(state, &who, scope, nonce).map_err(internal)?.into();
    }
    if let Some(rt) = refresh {
        body["refresh_token"] = rt.0.into();
        // Not in RFC 6749, but common (Keycloak): tells the client when the family ends, so a
        // client session never outlives its refresh token.
        body["refresh_expires_in"] = (grant.expires_at - crate::clock::now()).max(0).into();
    }
    Ok(HttpResponse::Ok()
        .insert_header(crate::web::no_store())
        .insert_header(("Pragma", "no-cache"))
        .json(body))
}
