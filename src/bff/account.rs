//! `GET /bff/user` and `POST /bff/logout` (`?scope=all`: every session of the user).

use super::csrf::{self, CsrfError};
use super::session::{SessionRecord, TypedSession};
use super::session_store::BffSessionStore;
use super::state::BffState;
use crate::oidc::client;
use crate::web::ApiError;
use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use std::time::Duration;

fn unauthenticated() -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", "no session")
}

/// `GET /bff/user` (+ `X-CSRF: 1`).
pub async fn user(
    req: HttpRequest,
    state: web::Data<BffState>,
    session: TypedSession,
) -> Result<HttpResponse, ApiError> {
    csrf::check_api_call(&req, state.public_origin())?;
    let record = session.current(state.config.session.idle_timeout_secs)?.ok_or_else(unauthenticated)?;
    Ok(HttpResponse::Ok().insert_header(crate::web::no_store()).json(serde_json::json!({
        "sub": record.sub,
        "claims": record.claims,
        "session": { "expires_at": record.expires_at, "idle_expires_at": record.idle_expires_at },
    })))
}

/// The form variant of logout.
#[derive(serde::Deserialize)]
pub struct LogoutForm {
    csrf_token: String,
}

/// `POST /bff/logout`: with `X-CSRF: 1` → 200 `{"logout_url"}`; as a form with `csrf_token`
/// → 303 to that URL. Either way the session is gone and the cookie expired.
pub async fn logout(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<BffState>,
    sessions: web::Data<BffSessionStore>,
    session: TypedSession,
) -> Result<HttpResponse, ApiError> {
    csrf::require_same_origin(&req, state.public_origin())?;
    let form = crate::web::is_form(&req);
    let record = session.current(state.config.session.idle_timeout_secs)?;
    if form {
        let parsed: LogoutForm = serde_urlencoded_form(&body).ok_or(CsrfError::BadFormToken)?;
        if !record.as_ref().is_some_and(|r| r.csrf_token_matches(&parsed.csrf_token)) {
            // A form post without a live session has nothing to log out of; still, no token, no action.
            if record.is_some() {
                return Err(CsrfError::BadFormToken.into());
            }
        }
    } else {
        csrf::require_header(&req)?;
    }
    if let Some(r) = &record
        && logout_scope_all(&req)?
    {
        super::sessions::end_other_sessions(&state, &sessions, r).await?;
    }
    let logout_url = match &record {
        Some(r) => end_session(&state, r).await?,
        None => "/".to_string(),
    };
    session.purge();
    let mut res = if form {
        HttpResponse::SeeOther().insert_header((header::LOCATION, logout_url)).finish()
    } else {
        HttpResponse::Ok().json(serde_json::json!({ "logout_url": logout_url }))
    };
    res.headers_mut().insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
    if record.is_none() {
        // No live session, so actix-session will not expire the cookie: do it here.
        let mut gone = Cookie::build(super::guard::SESSION_COOKIE, "")
            .path("/")
            .secure(true)
            .http_only(true)
            .same_site(SameSite::Lax)
            .finish();
        gone.make_removal();
        let _ = res.add_cookie(&gone);
    }
    Ok(res)
}

/// `?scope=all` ends every session of the user; no `scope` only this one; anything else is 400.
fn logout_scope_all(req: &HttpRequest) -> Result<bool, ApiError> {
    let mut scope = None;
    for (k, v) in url::form_urlencoded::parse(req.query_string().as_bytes()) {
        if k == "scope" {
            scope = Some(v.into_owned());
        }
    }
    match scope.as_deref() {
        None => Ok(false),
        Some("all") => Ok(true),
        Some(_) => {
            Err(ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", "scope must be \"all\" or absent"))
        }
    }
}

fn serde_urlencoded_form(body: &[u8]) -> Option<LogoutForm> {
    url::form_urlencoded::parse(body)
        .find(|(k, _)| k == "csrf_token")
        .map(|(_, v)| LogoutForm { csrf_token: v.into_owned() })
}

/// Revokes the session's refresh token at the provider (RFC 7009) where it offers revocation;
/// a failed attempt is retried in the background. Returns the tokens read (for the logout URL).
pub(super) async fn revoke_session_tokens(
    state: &BffState,
    record: &SessionRecord,
) -> Result<Option<super::tokens::TokenRecord>, ApiError> {
    let tokens = state.tokens.read(&record.handle).await.map_err(|e| ApiError::store_unavailable(&e))?;
    let tokens = tokens.map(|(_, t)| t);
    let meta = state.provider.metadata().await.ok();
    if let (Some(meta), Some(refresh)) = (&meta, tokens.as_ref().and_then(|t| t.refresh_token.clone()))
        && let Some(endpoint) = meta.revocation_endpoint.clone()
    {
        let http = state.http.clone();
        let creds = state.creds.clone();
        let first = client::revoke(&http, &endpoint, &creds, refresh.expose(), "refresh_token").await;
        if let Err(e) = first {
            tracing::warn!(error = %e, "revocation at logout failed; retrying in the background");
            tokio::spawn(async move {
                for attempt in 1..=4u32 {
                    tokio::time::sleep(Duration::from_secs(2u64.pow(attempt))).await;
                    if client::revoke(&http, &endpoint, &creds, refresh.expose(), "refresh_token")
                        .await
                        .is_ok()
                    {
                        return;
                    }
                }
                tracing::warn!("revocation at logout failed for good");
            });
        }
    }
    Ok(tokens)
}

/// Revokes the refresh token, builds the end-session URL.
async fn end_session(state: &BffState, record: &SessionRecord) -> Result<String, ApiError> {
    let tokens = revoke_session_tokens(state, record).await?;
    let meta = state.provider.metadata().await.ok();
    let Some(end) = meta.as_ref().and_then(|m| m.end_session_endpoint.clone()) else { return Ok("/".into()) };
    let mut url = url::Url::parse(&end).map_err(|e| ApiError::internal(&e))?;
    {
        let mut q = url.query_pairs_mut();
        // The contract says no ID token ever reaches the browser, so the hint is opt-in.
        if let Some(id_token) =
            tokens.as_ref().and_then(|t| t.id_token.as_ref()).filter(|_| state.config.logout_id_token_hint)
        {
            q.append_pair("id_token_hint", id_token.expose());
        }
        q.append_pair("post_logout_redirect_uri", &state.config.public_url.join("/"));
        q.append_pair("client_id", &state.creds.client_id);
    }
    Ok(url.to_string())
}
