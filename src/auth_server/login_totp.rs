//! `POST /login/totp`: the second factor. The browser already holds a password login session
//! (just signed in, or from earlier: a step-up); a current TOTP code of the user's secret raises
//! it to `urn:cloakroom:mfa` and completes the pending authorization request. Wrong codes count
//! against the same per-user and per-address limits as wrong passwords.

use super::authorize::complete;
use super::errors::PageError;
use super::login_session;
use super::params::Params;
use super::pending;
use super::rate_limit::LoginLimiter;
use super::second_factor;
use super::state::AppState;
use super::users::{self, Username};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

const EXPIRED: PageError = PageError::BadRequest(
    "This sign-in request has expired or is unknown. Go back to the application and start again.",
);

/// `POST /login/totp` with `request` and `code`.
pub async fn login_totp(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let origin = state.config.issuer.url().origin().ascii_serialization();
    crate::web::require_same_origin(&req, &origin).map_err(|_| PageError::CrossSite)?;
    if !crate::web::is_form(&req) {
        return Err(PageError::BadRequest("Please submit the form."));
    }
    let params = Params::parse(&body).map_err(|_| PageError::BadRequest("A form field is repeated."))?;
    let request_id = params.get("request").unwrap_or("");
    if pending::load(&state, request_id, &req).await?.is_none() {
        return Err(EXPIRED);
    }
    let Some(session) = login_session::current(&state, &req).await? else { return Err(EXPIRED) };
    let name = Username::parse(&session.username).ok_or(EXPIRED)?;
    let user = users::find(&state, &name).await?.ok_or(EXPIRED)?;
    let secret =
        user.totp_secret.as_deref().ok_or(PageError::BadRequest("This account has no second factor."))?;
    let limiter = LoginLimiter::new(name.as_str(), &crate::web::rate_limit::client_bucket(&req));
    if let Some(retry_after) = limiter.blocked(&state).await? {
        state.metrics.logins.with_label_values(&["throttled"]).inc();
        return Err(PageError::TooManyAttempts { retry_after });
    }
    let code = params.get("code").unwrap_or("").trim();
    if !second_factor::accept(&state, &user.sub, secret, code).await? {
        limiter.record_failure(&state).await?;
        state.metrics.logins.with_label_values(&["failed"]).inc();
        tracing::info!("second factor failed");
        let error = Some("That code is not valid. Enter the current code.");
        return Ok(second_factor::page(StatusCode::UNAUTHORIZED, request_id, &session.username, error));
    }
    limiter.record_success(&state).await?;
    let Some(auth) = pending::take(&state, request_id, &req).await? else { return Err(EXPIRED) };
    let session = login_session::strengthen(&state, &req, &session).await?.ok_or(EXPIRED)?;
    tracing::info!(client_id = %auth.client_id, "second factor succeeded");
    complete(&state, &auth, &session).await
}
