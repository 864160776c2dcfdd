//! `POST /token` (RFC 6749 §3.2): client authentication, then the authorization-code,
//! refresh-token or client-credentials grant, if the client is registered for it. Errors are
//! RFC 6749 §5.2 JSON with `Cache-Control: no-store`.

use super::errors::OAuthError;
use super::params::Params;
use super::state::AppState;
use crate::config::GrantType;
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
    let (label, grant) = match params.get("grant_type") {
        Some("authorization_code") => ("authorization_code", Some(GrantType::AuthorizationCode)),
        Some("refresh_token") => ("refresh_token", Some(GrantType::RefreshToken)),
        Some("client_credentials") => ("client_credentials", Some(GrantType::ClientCredentials)),
        Some(_) => ("other", None),
        None => return ("unknown", Err(OAuthError::InvalidRequest("grant_type is missing"))),
    };
    (label, grant_with(req, state, &params, grant).await)
}

/// Authenticates the client, checks it may use `grant` and runs it.
async fn grant_with(
    req: &HttpRequest,
    state: &AppState,
    params: &Params,
    grant: Option<GrantType>,
) -> Result<HttpResponse, OAuthError> {
    let client = state.clients.authenticate(req, params, &state.assertion_context("/token")).await?;
    let grant = grant.ok_or(OAuthError::UnsupportedGrantType)?;
    if !client.grant_types.contains(&grant) {
        tracing::info!(client_id = %client.client_id, ?grant, "grant type not registered for the client");
        return Err(OAuthError::UnauthorizedClient);
    }
    let proof = super::dpop::token_endpoint_proof(req, state).await?;
    let jkt = proof.as_ref().map(|p| p.jkt.as_str());
    match grant {
        GrantType::AuthorizationCode => {
            super::token_code::exchange(state, &client.client_id, params, jkt).await
        }
        GrantType::RefreshToken => {
            super::token_refresh::exchange(state, &client.client_id, params, jkt).await
        }
        GrantType::ClientCredentials => super::token_client::exchange(state, &client.client_id, params, jkt),
    }
}
