//! `GET /bff/user` and `POST /bff/logout` (`?scope=all`: every session of the user).

use super::policy::ActiveSession;
use super::policy::csrf::CsrfError;
use super::session::{SESSION_COOKIE, SessionEnder, TypedSession};
use super::state::BffState;
use super::tokens::TokenRecord;
use crate::web::{ApiError, ErrorCode};
use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

/// `GET /bff/user` (policy: session, `X-CSRF: 1`): who is signed in, and how (`acr`, `amr`,
/// `auth_time` from the ID token; `null` when it had none).
pub async fn user(record: ActiveSession) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().insert_header(crate::web::no_store()).json(serde_json::json!({
        "sub": record.sub,
        "claims": record.claims,
        "acr": record.acr,
        "amr": record.amr,
        "auth_time": record.auth_time,
        "session": { "expires_at": record.expires_at, "idle_expires_at": record.idle_expires_at },
    })))
}

/// The form variant of logout.
#[derive(serde::Deserialize)]
pub struct LogoutForm {
    csrf_token: String,
}

/// `POST /bff/logout` (policy: same origin, and `X-CSRF: 1` unless a form): with `X-CSRF: 1`
/// → 200 `{"logout_url"}`; as a form with `csrf_token` → 303 to that URL. Either way the session
/// is gone and the cookie expired.
pub async fn logout(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<BffState>,
    ender: web::Data<SessionEnder>,
    session: TypedSession,
    record: Option<ActiveSession>,
) -> Result<HttpResponse, ApiError> {
    let form = crate::web::is_form(&req);
    if form {
        let parsed: LogoutForm = serde_urlencoded_form(&body).ok_or(CsrfError::BadFormToken)?;
        if !record.as_ref().is_some_and(|r| r.csrf_token_matches(&parsed.csrf_token)) {
            // A form post without a live session has nothing to log out of; still, no token, no action.
            if record.is_some() {
                return Err(CsrfError::BadFormToken.into());
            }
        }
    }
    let logout_url = match &record {
        Some(r) => {
            if logout_scope_all(&req)? {
                ender.end_others_of(r).await.map_err(|e| ApiError::store_unavailable(&e))?;
            }
            let tokens = ender.end_current(&session, r).await.map_err(|e| ApiError::store_unavailable(&e))?;
            logout_url(&state, tokens.as_ref()).await?
        }
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
        let mut gone = Cookie::build(SESSION_COOKIE, "")
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
        Some(_) => Err(ApiError::new(ErrorCode::InvalidRequest, "scope must be \"all\" or absent")),
    }
}

fn serde_urlencoded_form(body: &[u8]) -> Option<LogoutForm> {
    url::form_urlencoded::parse(body)
        .find(|(k, _)| k == "csrf_token")
        .map(|(_, v)| LogoutForm { csrf_token: v.into_owned() })
}

/// The provider's end-session URL for the ended session (`/` when it has none).
async fn logout_url(state: &BffState, tokens: Option<&TokenRecord>) -> Result<String, ApiError> {
    let meta = state.provider.metadata().await.ok();
    let Some(end) = meta.as_ref().and_then(|m| m.end_session_endpoint.clone()) else { return Ok("/".into()) };
    let mut url = url::Url::parse(&end).map_err(|e| ApiError::internal(&e))?;
    {
        let mut q = url.query_pairs_mut();
        // The contract says no ID token ever reaches the browser, so the hint is opt-in.
        if let Some(id_token) =
            tokens.and_then(|t| t.id_token.as_ref()).filter(|_| state.config.logout_id_token_hint)
        {
            q.append_pair("id_token_hint", id_token.expose());
        }
        q.append_pair("post_logout_redirect_uri", &state.config.public_url.join("/"));
        q.append_pair("client_id", &state.creds.client_id);
    }
    Ok(url.to_string())
}
