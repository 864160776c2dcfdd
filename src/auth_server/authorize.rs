//! `GET /authorize`: the authorization code flow's front door (RFC 6749 §4.1.1, OIDC Core
//! §3.1.2, PKCE S256 required). Errors about the client or redirect URI are shown as a page and
//! never redirected; every other error goes back to the client's redirect URI with `iss`.

use super::errors::PageError;
use super::login_session::{self, LoginSession};
use super::pages::{self, LoginPage};
use super::params::{Params, split_scope};
use super::pending::{self, AuthRequest};
use super::pushed;
use super::rate_limit::authorize_blocked;
use super::resources;
use super::second_factor;
use super::state::{AppState, SUPPORTED_SCOPES};
use super::users::{self, Username};
use crate::config::GrantType;
use actix_web::http::StatusCode;
use actix_web::http::header::LOCATION;
use actix_web::{HttpRequest, HttpResponse, web};

/// Longest `state` accepted (bytes): it is stored with the pending request and the code.
const MAX_STATE: usize = 2048;
/// Longest `nonce` accepted (bytes): it is stored likewise and copied into the ID token.
const MAX_NONCE: usize = 512;

/// `GET /authorize`.
pub async fn authorize(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    // Counted before anything else: each request may leave a pending request or a code behind.
    if let Some(retry_after) = authorize_blocked(&state, &req).await? {
        tracing::info!("authorization requests throttled for a client address");
        return Err(PageError::TooManyRequests { retry_after });
    }
    let params = Params::parse(req.query_string().as_bytes())
        .map_err(|_| PageError::BadRequest("A request parameter is repeated."))?;
    let params = match params.get("request_uri") {
        Some(uri) => pushed_params(&state, &params, uri).await?,
        None => params,
    };
    let client_id = params.get("client_id").ok_or(PageError::BadRequest("The client_id is missing."))?;
    let client = state.clients.get(client_id).ok_or(PageError::BadRequest("The client is unknown."))?;
    let redirect_uri =
        params.get("redirect_uri").ok_or(PageError::BadRequest("The redirect_uri is missing."))?;
    if !client.redirect_uris.iter().any(|u| u == redirect_uri) {
        return Err(PageError::BadRequest("The redirect_uri is not registered for this client."));
    }

    // From here on the redirect URI is trusted: errors go back to the client.
    let client_state = params.get("state");
    let refuse = |(error, description): Refusal| {
        Ok(error_redirect(&state, redirect_uri, error, description, client_state))
    };
    if !client.grant_types.contains(&GrantType::AuthorizationCode) {
        return refuse(("unauthorized_client", "the client may not use the authorization code flow"));
    }
    let may_use = |r: &str| state.clients.may_use(client_id, r);
    let (auth, prompts) = match validate(&params, client_id, redirect_uri, may_use) {
        Ok(valid) => valid,
        Err(refusal) => return refuse(refusal),
    };
    let session = login_session::current(&state, &req).await?;
    let reauthenticate =
        prompts.contains(&"login") || session.as_ref().is_some_and(|s| too_old(s, auth.max_age));
    match session {
        Some(s) if !reauthenticate => {
            if !needs_second_factor(&state, &auth, &s).await? {
                return complete(&state, &auth, &s).await;
            }
            if prompts.contains(&"none") {
                return refuse(("interaction_required", "a second factor is needed"));
            }
            return pending_page(&state, &req, &auth, |id| {
                second_factor::page(StatusCode::OK, id, &s.username, None)
            })
            .await;
        }
        _ if prompts.contains(&"none") => return refuse(("login_required", "the user is not signed in")),
        _ => {}
    }
    login_page(&state, &req, &auth).await
}

/// Whether the login session is older than `max_age` allows (OIDC Core §3.1.2.1); `max_age=0`
/// asks for a fresh authentication every time.
fn too_old(session: &LoginSession, max_age: Option<u64>) -> bool {
    max_age.is_some_and(|m| m == 0 || crate::clock::now() - session.auth_time > m.min(i64::MAX as u64) as i64)
}

/// Whether this request asks for the second factor and the signed-in user, who has one, has not
/// given it in this login session.
async fn needs_second_factor(
    state: &AppState,
    auth: &AuthRequest,
    s: &LoginSession,
) -> Result<bool, PageError> {
    if !second_factor::asks_for_mfa(&auth.acr_values) || s.acr == second_factor::ACR_MFA {
        return Ok(false);
    }
    let Some(name) = Username::parse(&s.username) else { return Ok(false) };
    Ok(users::find(state, &name).await?.is_some_and(|u| u.totp_secret.is_some()))
}

/// The parameters pushed under `request_uri` (RFC 9126 §4): the request may carry nothing
/// but `client_id` and `request_uri`, the `client_id` must be the pusher's, and the
/// `request_uri` serves once. Refusals are pages: no redirect URI is trusted yet.
async fn pushed_params(state: &AppState, query: &Params, request_uri: &str) -> Result<Params, PageError> {
    if query.names().any(|n| n != "client_id" && n != "request_uri") {
        return Err(PageError::BadRequest("A pushed request cannot be mixed with other parameters."));
    }
    let client_id = query.get("client_id").ok_or(PageError::BadRequest("The client_id is missing."))?;
    pushed::take(state, client_id, request_uri).await.map_err(|e| match e {
        pushed::TakeError::Store(e) => PageError::Store(e),
        pushed::TakeError::Unusable => {
            PageError::BadRequest("The request_uri is unknown, expired, used already or another client's.")
        }
    })
}

/// An OAuth error code and its description, sent back to the client.
pub type Refusal = (&'static str, &'static str);

/// Checks the request's parameters (the client and redirect URI are checked already; the
/// client `may_use` the resources it names); returns the request to keep and its `prompt`
/// values. Also the check of a pushed request (`/par`).
pub fn validate<'a>(
    params: &'a Params,
    client_id: &str,
    redirect_uri: &str,
    may_use: impl Fn(&str) -> bool,
) -> Result<(AuthRequest, Vec<&'a str>), Refusal> {
    let challenge = code_flow_shape(params)?;
    let scope = split_scope(params.get("scope").unwrap_or(""));
    if !scope.iter().any(|s| s == "openid") {
        return Err(("invalid_scope", "scope must contain openid"));
    }
    if !scope.iter().all(|s| SUPPORTED_SCOPES.contains(&s.as_str())) {
        return Err(("invalid_scope", "a requested scope is not supported"));
    }
    let (client_state, nonce) = (params.get("state"), params.get("nonce"));
    if client_state.is_some_and(|s| s.len() > MAX_STATE) || nonce.is_some_and(|n| n.len() > MAX_NONCE) {
        return Err(("invalid_request", "state or nonce is too long"));
    }
    let Some((acr_values, max_age)) = authentication_asked(params) else {
        return Err(("invalid_request", "acr_values or max_age is malformed"));
    };
    let resources = resources::for_authorization(params, may_use).map_err(|d| ("invalid_target", d))?;
    let login_hint = params.get("login_hint").filter(|h| h.len() <= 256).map(str::to_string);
    let prompts: Vec<&str> =
        params.get("prompt").unwrap_or("").split(' ').filter(|p| !p.is_empty()).collect();
    if prompts.iter().any(|p| !matches!(*p, "none" | "login" | "consent"))
        || (prompts.contains(&"none") && prompts.len() > 1)
    {
        return Err(("invalid_request", "unsupported prompt value"));
    }
    let auth = AuthRequest {
        client_id: client_id.to_string(),
        redirect_uri: redirect_uri.to_string(),
        scope,
        state: client_state.map(str::to_string),
        nonce: nonce.map(str::to_string),
        code_challenge: challenge.to_string(),
        acr_values,
        max_age,
        login_hint,
        resources,
        binding_hash: None,
    };
    Ok((auth, prompts))
}

/// The code flow's shape: no request object, `response_type=code`, query response mode, PKCE
/// with S256. Returns the code challenge.
fn code_flow_shape(params: &Params) -> Result<&str, Refusal> {
    if params.has("request") || params.has("request_uri") {
        return Err(("request_not_supported", "request objects are not supported"));
    }
    if params.get("response_type") != Some("code") {
        return Err(("unsupported_response_type", "response_type must be code"));
    }
    if params.get("response_mode").is_some_and(|m| m != "query") {
        return Err(("invalid_request", "response_mode must be query"));
    }
    match params.get("code_challenge_method") {
        Some("S256") => {}
        Some(_) => return Err(("invalid_request", "code_challenge_method must be S256")),
        None => return Err(("invalid_request", "PKCE is required: code_challenge_method=S256")),
    }
    params
        .get("code_challenge")
        .filter(|c| valid_challenge(c))
        .ok_or(("invalid_request", "code_challenge must be a base64url SHA-256 (43 characters)"))
}

/// `acr_values` (space-separated, at most 8 values of at most 128 bytes) and `max_age` (a
/// non-negative integer); `None` when either is malformed.
fn authentication_asked(params: &Params) -> Option<(Vec<String>, Option<u64>)> {
    let acr_values = split_scope(params.get("acr_values").unwrap_or(""));
    if acr_values.len() > 8 || acr_values.iter().any(|a| a.len() > 128) {
        return None;
    }
    let max_age = match params.get("max_age") {
        Some(m) if !m.is_empty() && m.len() <= 10 && m.bytes().all(|b| b.is_ascii_digit()) => {
            Some(m.parse().ok()?)
        }
        Some(_) => return None,
        None => None,
    };
    Some((acr_values, max_age))
}

/// Keeps `auth` as a pending request bound to this browser and shows the login form (the
/// username prefilled from `login_hint`).
async fn login_page(
    state: &AppState,
    req: &HttpRequest,
    auth: &AuthRequest,
) -> Result<HttpResponse, PageError> {
    pending_page(state, req, auth, |request_id| {
        pages::render(
            StatusCode::OK,
            &LoginPage {
                request_id,
                client_id: &auth.client_id,
                username: auth.login_hint.as_deref().unwrap_or(""),
                error: None,
                allow_signup: state.config.allow_signup,
            },
        )
    })
    .await
}

/// Keeps `auth` as a pending request bound to this browser and shows the page `render` makes
/// for its id.
async fn pending_page(
    state: &AppState,
    req: &HttpRequest,
    auth: &AuthRequest,
    render: impl FnOnce(&str) -> HttpResponse,
) -> Result<HttpResponse, PageError> {
    let binding = pending::Binding::of(req);
    let request_id = pending::save(state, auth, &binding).await?;
    let mut res = render(&request_id);
    if let Some(cookie) = binding.cookie() {
        res.add_cookie(&cookie).map_err(|e| PageError::Internal(e.to_string()))?;
    }
    Ok(res)
}

fn valid_challenge(c: &str) -> bool {
    c.len() == 43 && c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Issues a code for `auth` in `session` and redirects to the client (RFC 9207 `iss` included).
pub async fn complete(
    state: &AppState,
    auth: &AuthRequest,
    session: &LoginSession,
) -> Result<HttpResponse, PageError> {
    let code = super::codes::issue(state, auth, session).await?;
    let mut params: Vec<(&str, &str)> = vec![("code", &code)];
    if let Some(s) = &auth.state {
        params.push(("state", s));
    }
    params.push(("iss", &state.issuer));
    let location = with_query(&auth.redirect_uri, &params)?;
    Ok(HttpResponse::Found()
        .insert_header(crate::web::no_store())
        .insert_header((LOCATION, location))
        .finish())
}

/// A redirect carrying an OAuth error to the client.
fn error_redirect(
    state: &AppState,
    redirect_uri: &str,
    error: &str,
    description: &str,
    client_state: Option<&str>,
) -> HttpResponse {
    let mut params = vec![("error", error), ("error_description", description)];
    if let Some(s) = client_state {
        params.push(("state", s));
    }
    params.push(("iss", &state.issuer));
    match with_query(redirect_uri, &params) {
        Ok(location) => HttpResponse::Found()
            .insert_header(crate::web::no_store())
            .insert_header((LOCATION, location))
            .finish(),
        Err(e) => actix_web::ResponseError::error_response(&e),
    }
}

/// `uri` with `params` appended to its query.
pub fn with_query(uri: &str, params: &[(&str, &str)]) -> Result<String, PageError> {
    let mut url =
        url::Url::parse(uri).map_err(|_| PageError::BadRequest("The redirect URI is malformed."))?;
    if params.is_empty() {
        return Ok(url.to_string());
    }
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in params {
            q.append_pair(k, v);
        }
    }
    Ok(url.to_string())
}
