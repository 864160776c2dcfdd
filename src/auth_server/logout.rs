//! `GET/POST /logout`: OpenID Connect RP-Initiated Logout 1.0. With a valid `id_token_hint`
//! the logout happens at once; without one the user confirms with a POST, taken only from our
//! own page (same-origin check, like the sign-in form). Ending a session revokes its grants and sends
//! back-channel logout to their clients. Redirects only to a registered post-logout URI.

use super::authorize::with_query;
use super::errors::PageError;
use super::grants;
use super::login_session;
use super::pages::{self, LogoutConfirmPage, MessagePage};
use super::params::Params;
use super::state::AppState;
use super::tokens::{HintClaims, verify_id_token_hint};
use actix_web::http::StatusCode;
use actix_web::http::header::LOCATION;
use actix_web::{HttpRequest, HttpResponse, web};

/// `GET /logout`.
pub async fn logout_get(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    let params = Params::parse(req.query_string().as_bytes())
        .map_err(|_| PageError::BadRequest("A request parameter is repeated."))?;
    end_session(&req, &params, &state, false).await
}

/// `POST /logout` (the confirmation form, or an RP posting the parameters).
pub async fn logout_post(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let params = if crate::web::is_form(&req) {
        Params::parse(&body).map_err(|_| PageError::BadRequest("A form field is repeated."))?
    } else {
        Params::default()
    };
    // Without an `id_token_hint` the post ends the session of whichever browser sends it (by its
    // cookie, which a same-site page's post carries): only our own confirmation page may send
    // it. With a hint only the session the hint names ends, as for `GET`, so an RP may post it.
    if params.get("id_token_hint").is_none() {
        super::login::same_origin(&req, &state)?;
    }
    end_session(&req, &params, &state, true).await
}

async fn end_session(
    req: &HttpRequest,
    params: &Params,
    state: &AppState,
    confirmed: bool,
) -> Result<HttpResponse, PageError> {
    let request = LogoutRequest::check(params, state)?;
    if request.hint.is_none() && !confirmed {
        let mut fields = Vec::new();
        for name in ["client_id", "post_logout_redirect_uri", "state"] {
            if let Some(v) = params.get(name) {
                fields.push((name, v));
            }
        }
        return Ok(pages::render(StatusCode::OK, &LogoutConfirmPage { fields }));
    }
    let clear_cookie = end_sessions(req, state, request.hint.as_ref()).await?;
    let mut res = match request.redirect {
        Some(uri) => {
            let mut q: Vec<(&str, &str)> = Vec::new();
            if let Some(s) = params.get("state") {
                q.push(("state", s));
            }
            let location = with_query(uri, &q)?;
            HttpResponse::Found()
                .insert_header(crate::web::no_store())
                .insert_header((LOCATION, location))
                .finish()
        }
        None => pages::render(
            StatusCode::OK,
            &MessagePage { title: "Signed out", message: "You are signed out." },
        ),
    };
    if clear_cookie {
        res.add_cookie(&login_session::removal_cookie()).map_err(|e| PageError::Internal(e.to_string()))?;
    }
    Ok(res)
}

/// A checked RP-initiated logout request: the verified `id_token_hint`, if any, and the
/// registered `post_logout_redirect_uri` to go to, if any.
struct LogoutRequest<'a> {
    hint: Option<HintClaims>,
    redirect: Option<&'a str>,
}

impl<'a> LogoutRequest<'a> {
    /// The hint must be our own ID token; `client_id` must agree with it; a redirect URI needs
    /// a known client that registered it.
    fn check(params: &'a Params, state: &AppState) -> Result<Self, PageError> {
        let hint = match params.get("id_token_hint") {
            Some(t) => Some(verify_id_token_hint(state, t).map_err(|_| {
                PageError::BadRequest("The id_token_hint is not a valid ID token from this server.")
            })?),
            None => None,
        };
        let client_id = match (params.get("client_id"), &hint) {
            (Some(c), Some(h)) if c != h.aud => {
                return Err(PageError::BadRequest("The client_id does not match the id_token_hint."));
            }
            (Some(c), _) => Some(c.to_string()),
            (None, Some(h)) => Some(h.aud.clone()),
            (None, None) => None,
        };
        let client = match &client_id {
            Some(c) => Some(state.clients.get(c).ok_or(PageError::BadRequest("The client is unknown."))?),
            None => None,
        };
        let redirect = match params.get("post_logout_redirect_uri") {
            None => None,
            Some(uri) => {
                let Some(client) = client else {
                    return Err(PageError::BadRequest(
                        "A post_logout_redirect_uri needs a client_id or an id_token_hint.",
                    ));
                };
                if !client.post_logout_redirect_uris.iter().any(|u| u == uri) {
                    return Err(PageError::BadRequest(
                        "The post_logout_redirect_uri is not registered for this client.",
                    ));
                }
                Some(uri)
            }
        };
        Ok(Self { hint, redirect })
    }
}

/// Ends the provider sessions the request names — the hint's, and the browser's own when there
/// is no hint or the hint names it — with their grants, and notifies the clients. True when the
/// browser's login cookie must be cleared.
async fn end_sessions(
    req: &HttpRequest,
    state: &AppState,
    hint: Option<&HintClaims>,
) -> Result<bool, PageError> {
    let current = login_session::current(state, req).await?;
    let mut ended: Vec<(String, String)> = Vec::new();
    if let Some(h) = hint
        && let Some(sid) = &h.sid
    {
        ended.push((sid.clone(), h.sub.clone()));
    }
    let mut clear_cookie = false;
    if let Some(s) = &current {
        // With a hint, only the session the hint names is ended here; without one the user
        // confirmed on our own page.
        let hinted_sid = hint.and_then(|h| h.sid.as_deref());
        if hint.is_none() || hinted_sid == Some(s.sid.as_str()) {
            clear_cookie = true;
            if !ended.iter().any(|(sid, _)| sid == &s.sid) {
                ended.push((s.sid.clone(), s.sub.clone()));
            }
        }
    }
    for (sid, sub) in &ended {
        login_session::end(state, sid, sub).await?;
        let revoked = grants::revoke_all(state, &grants::of_sid(state, sid).await?).await?;
        state.backchannel.notify_grants(state, &revoked);
        tracing::info!(grants = revoked.len(), "provider session ended");
    }
    Ok(clear_cookie)
}
