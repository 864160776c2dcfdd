//! `POST /token` (RFC 6749 §3.2): client authentication, then the authorization-code or
//! refresh-token grant. Errors are RFC 6749 §5.2 JSON with `Cache-Control: no-store`.

use super::errors::OAuthError;
use super::grants::{Grant, RefreshToken};
use super::params::Params;
use super::state::AppState;
use super::tokens::{self, Subject};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};

/// Parses a form-encoded back-channel request body.
pub fn form_params(req: &HttpRequest, body: &[u8]) -> Result<Params, OAuthError> {
    if !crate::web::is_form(req) {
        return Err(OAuthError::InvalidRequest("the body must be application/x-www-form-urlencoded"));
    }
    Params::parse(body).map_err(|_| OAuthError::InvalidRequest("a parameter is repeated"))
}

/// `POST /token`.
pub async fn token(req: HttpRequest, body: web::Bytes, state: web::Data<AppState>) -> HttpResponse {
    let (grant_type, result) = handle(&req, &body, &state).await;
    let outcome = match &result {
        Ok(_) => "ok",
        Err(e) => e.label(),
    };
    state.metrics.token_requests.with_label_values(&[grant_type, outcome]).inc();
    if let Err(e) = &result {
        tracing::info!(grant_type, error = %e, "token request refused");
    }
    result.unwrap_or_else(|e| e.error_response())
}

async fn handle(
    req: &HttpRequest,
    body: &[u8],
    state: &AppState,
) -> (&'static str, Result<HttpResponse, OAuthError>) {
    let params = match form_params(req, body) {
        Ok(p) => p,
        Err(e) => return ("unknown", Err(e)),
    };
    let grant_type = match params.get("grant_type") {
        Some("authorization_code") => "authorization_code",
        Some("refresh_token") => "refresh_token",
        Some(_) => "other",
        None => return ("unknown", Err(OAuthError::InvalidRequest("grant_type is missing"))),
    };
    let client = match state.clients.authenticate(req, &params) {
        Ok(c) => c,
        Err(e) => return (grant_type, Err(e)),
    };
    let result = match grant_type {
        "authorization_code" => super::token_code::exchange(state, &client.client_id, &params).await,
        "refresh_token" => super::token_refresh::exchange(state, &client.client_id, &params).await,
        _ => Err(OAuthError::UnsupportedGrantType),
    };
    (grant_type, result)
}

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
        client_id: &grant.client_id,
    };
    let internal = |e: crate::jwt::SigningError| OAuthError::Internal(e.to_string());
    let mut body = serde_json::json!({
        "access_token": tokens::access_token(state, &who, scope).map_err(internal)?,
        "token_type": "Bearer",
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
