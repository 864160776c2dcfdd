//! The successful token response (RFC 6749 §5.1) shared by the authorization-code and the
//! refresh-token grants (the client-credentials grant shares only [`send`]).

use super::errors::OAuthError;
use super::grants::{Grant, RefreshToken};
use super::state::AppState;
use super::tokens::{self, Subject};
use actix_web::HttpResponse;

/// What one token response carries besides the grant's own data.
pub struct Issue<'a> {
    /// The scope of the access token (possibly narrower than the grant's).
    pub scope: &'a [String],
    /// The access token's audience (RFC 8707 resource); `None`: the default audience.
    pub aud: Option<&'a str>,
    /// The new refresh token, if one was issued.
    pub refresh: Option<RefreshToken>,
    /// The ID token's `nonce` (code exchange only).
    pub nonce: Option<&'a str>,
}

/// The successful token response for `grant`.
pub fn respond(state: &AppState, grant: &Grant, issue: Issue<'_>) -> Result<HttpResponse, OAuthError> {
    let Issue { scope, aud, refresh, nonce } = issue;
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
        "access_token": tokens::access_token(state, &who, scope, aud, grant.jkt.as_deref()).map_err(internal)?,
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
    Ok(send(body))
}

/// A successful token response with `body`: never cached.
pub fn send(body: serde_json::Value) -> HttpResponse {
    HttpResponse::Ok().insert_header(crate::web::no_store()).insert_header(("Pragma", "no-cache")).json(body)
}
