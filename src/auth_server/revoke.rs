//! `POST /revoke` (RFC 7009): an authenticated client revokes one of its own tokens. The
//! answer is 200 whether or not the token was known (no oracle) or the client's own.

use super::errors::OAuthError;
use super::grants;
use super::state::AppState;
use super::token::form_params;
use actix_web::{HttpRequest, HttpResponse, web};

/// `POST /revoke`.
pub async fn revoke(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, OAuthError> {
    let params = form_params(&req, &body)?;
    let client = state.clients.authenticate(&req, &params, &state.assertion_context("/revoke")).await?;
    let token = params.get("token").ok_or(OAuthError::InvalidRequest("token is missing"))?;
    // The hint is only an optimisation (RFC 7009 §2.1); refresh tokens are the only tokens
    // kept server-side. Access tokens are self-contained JWTs and expire on their own.
    if let Some((gid, _)) = grants::family_of(&state, token).await?
        && let Some(stored) = grants::load(&state, &gid).await?
    {
        if stored.grant.client_id == client.client_id {
            grants::revoke(&state, &gid).await?;
        } else {
            tracing::warn!(client_id = %client.client_id, "attempt to revoke another client's token");
        }
    }
    Ok(HttpResponse::Ok().insert_header(crate::web::no_store()).finish())
}
