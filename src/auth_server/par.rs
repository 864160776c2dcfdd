//! `POST /par` (RFC 9126): an authenticated client pushes its authorization request; the
//! parameters are checked as `/authorize` checks them and kept for a minute under a fresh
//! `request_uri`, which the browser then brings to `/authorize` with the `client_id` alone.

use super::authorize::validate;
use super::errors::OAuthError;
use super::pushed::{self, LIFETIME_SECS};
use super::state::AppState;
use super::token::form_params;
use crate::config::GrantType;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

/// `POST /par`.
pub async fn par(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, OAuthError> {
    let params = form_params(&req, &body)?;
    let client = state.clients.authenticate(&req, &params, &state.assertion_context("/par")).await?;
    if params.has("request_uri") || params.has("request") {
        return Err(OAuthError::InvalidRequest("request_uri and request are not accepted here"));
    }
    let redirect_uri =
        params.get("redirect_uri").ok_or(OAuthError::InvalidRequest("redirect_uri is missing"))?;
    if !client.redirect_uris.iter().any(|u| u == redirect_uri) {
        return Err(OAuthError::InvalidRequest("the redirect_uri is not registered for this client"));
    }
    if !client.grant_types.contains(&GrantType::AuthorizationCode) {
        return Err(OAuthError::UnauthorizedClient);
    }
    let may_use = |r: &str| state.clients.may_use(&client.client_id, r);
    if let Err((error, description)) = validate(&params, &client.client_id, redirect_uri, may_use) {
        tracing::info!(client_id = %client.client_id, error, "pushed authorization request refused");
        return Err(match error {
            "invalid_scope" => OAuthError::InvalidScope,
            "invalid_target" => OAuthError::InvalidTarget(description),
            _ => OAuthError::InvalidRequest(description),
        });
    }
    let request_uri = pushed::save(&state, &client.client_id, &params).await?;
    Ok(HttpResponse::build(StatusCode::CREATED)
        .insert_header(crate::web::no_store())
        .json(serde_json::json!({ "request_uri": request_uri, "expires_in": LIFETIME_SECS })))
}
