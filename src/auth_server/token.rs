//! `POST /token` (RFC 6749 §3.2): client authentication, then the authorization-code or
//! refresh-token grant. Errors are RFC 6749 §5.2 JSON with `Cache-Control: no-store`.

use super::errors::OAuthError;
use super::params::Params;
use super::state::AppState;
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
    let client = match state.clients.authenticate(req, &params, &state.assertion_context("/token")).await {
        Ok(c) => c,
        Err(e) => return (grant_type, Err(e)),
    };
    let proof = match super::dpop::token_endpoint_proof(req, state).await {
        Ok(p) => p,
        Err(e) => return (grant_type, Err(e)),
    };
    let jkt = proof.as_ref().map(|p| p.jkt.as_str());
    let result = match grant_type {
        "authorization_code" => super::token_code::exchange(state, &client.client_id, &params, jkt).await,
        "refresh_token" => super::token_refresh::exchange(state, &client.client_id, &params, jkt).await,
        _ => Err(OAuthError::UnsupportedGrantType),
    };
    (grant_type, result)
}
