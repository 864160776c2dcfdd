//! `GET /bff/login`: starts an authorization code flow (PKCE S256, state, nonce). The attempt is
//! stored under the hash of `state` and bound to this browser by a per-attempt
//! `__Host-cloakroom-login-<id>` cookie, so parallel logins in several tabs do not collide;
//! at most [`MAX_LOGIN_COOKIES`] such cookies are kept (the oldest are expired, so their
//! callbacks fail). Any caller can start one, so attempts are bounded: they live
//! `bff.login_attempt_ttl_secs`, and one client address may start
//! `bff.login_rate_limit_per_ip` per window (then 429 `too_many_requests`). With pushed
//! authorization requests (`bff.oidc.par`, RFC 9126) the parameters go to the provider over
//! the back channel and the browser carries only `client_id` and `request_uri`.

use super::login_params::{LoginParamError, LoginQuery};
use super::state::BffState;
use crate::config::{ParMode, Secret};
use crate::oidc::{Pkce, ProviderMetadata, par};
use crate::store::StoreError;
use crate::web::ApiError;
use crate::web::ErrorCode;
use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Prefix of the per-attempt login cookies.
pub const LOGIN_COOKIE_PREFIX: &str = "__Host-cloakroom-login-";
/// How many login attempts one browser may have in flight.
pub const MAX_LOGIN_COOKIES: usize = 5;

/// A login attempt, sealed in the store under `login:{sha256(state)}`.
#[derive(Debug, Serialize, Deserialize)]
pub struct LoginAttempt {
    /// PKCE verifier.
    pub verifier: Secret,
    /// The nonce the ID token must carry.
    pub nonce: Secret,
    /// Where to go after login.
    pub return_to: String,
    /// SHA-256 of the browser binding value held in the login cookie.
    pub binding_hash: String,
    /// Suffix of the login cookie's name.
    pub cookie_id: String,
    /// When the attempt started (Unix seconds): `max_age` counts back from here.
    #[serde(default)]
    pub started_at: i64,
    /// The `acr_values` asked for: the ID token's `acr` must be one of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub acr_values: Vec<String>,
    /// The `max_age` asked for: the ID token's `auth_time` must be recent enough.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<u64>,
}

/// Why a login could not start.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// `returnTo` or a login parameter was refused.
    #[error(transparent)]
    Query(#[from] LoginParamError),
    /// This client address started too many login attempts; retry after the seconds given.
    #[error("too many login attempts from this address; try again later")]
    TooManyAttempts(u64),
    /// The provider's metadata is not available.
    #[error("the auth server is unavailable")]
    Provider,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<LoginError> for ApiError {
    fn from(e: LoginError) -> Self {
        match e {
            LoginError::Query(LoginParamError::BadReturnTo) => {
                ApiError::new(ErrorCode::InvalidRequest, e.to_string())
            }
            LoginError::Query(q) => ApiError::new(ErrorCode::InvalidLoginParameter, q.to_string()),
            LoginError::TooManyAttempts(retry_after) => {
                ApiError::new(ErrorCode::TooManyRequests, e.to_string()).with_retry_after(retry_after)
            }
            LoginError::Provider => {
                ApiError::new(ErrorCode::AuthServerUnavailable, e.to_string()).with_retry_after(2)
            }
            LoginError::Store(e) => ApiError::store_unavailable(&e),
        }
    }
}

/// Store key of the login-attempt counter of a client address (hashed).
fn rate_key(client: &str) -> String {
    format!("ratelimit:login:{client}")
}

/// Store key of the attempt with `state`.
pub fn attempt_key(state: &str) -> String {
    format!("login:{}", crate::crypto::sha256_b64(state.as_bytes()))
}

/// A login cookie with the attributes every one of them carries.
pub fn login_cookie(name: String, value: String, max_age: i64) -> Cookie<'static> {
    Cookie::build(name, value)
        .path("/")
        .secure(true)
        .http_only(true)
        .same_site(SameSite::Lax)
        .max_age(CookieDuration::seconds(max_age))
        .finish()
}

/// The login cookies this request carries: (name, created_at in µs, binding value). Names are read
/// as sent, never percent-decoded: `%5F_Host-cloakroom-login-…` (which a sibling domain can
/// set, unlike a `__Host-` cookie) must not pass for a login cookie and bind a callback.
pub fn login_cookies(req: &HttpRequest) -> Vec<(String, i64, String)> {
    let Ok(cookies) = req.cookies_raw() else { return Vec::new() };
    cookies
        .iter()
        .filter(|c| c.name().starts_with(LOGIN_COOKIE_PREFIX))
        .map(|c| {
            let (ts, binding) = c.value().split_once('.').unwrap_or(("0", c.value()));
            (c.name().to_string(), ts.parse().unwrap_or(0), binding.to_string())
        })
        .collect()
}

/// `GET /bff/login?returnTo=/local/path`.
pub async fn login(req: HttpRequest, state: web::Data<BffState>) -> Result<HttpResponse, ApiError> {
    let query =
        LoginQuery::parse(req.query_string(), &state.config.login_parameters).map_err(LoginError::from)?;
    let limit = crate::web::RateLimit::new(
        state.config.login_rate_limit_per_ip,
        state.config.login_rate_limit_window_secs,
    );
    let client = crate::web::rate_limit::client_key(&req);
    if let Some(retry_after) =
        limit.admit(&state.store, &rate_key(&client)).await.map_err(LoginError::from)?
    {
        tracing::debug!("login attempts throttled for a client address");
        return Err(LoginError::TooManyAttempts(retry_after).into());
    }
    let meta = state.provider.metadata().await.map_err(|e| {
        tracing::warn!(error = %e, "login without provider metadata");
        LoginError::Provider
    })?;

    let oauth_state = crate::crypto::random_token(32);
    let nonce = crate::crypto::random_token(32);
    let pkce = Pkce::generate();
    let (redirect_uri, scope) = (state.redirect_uri(), state.config.oidc.scopes.join(" "));
    let mut params = vec![
        ("response_type", "code"),
        ("redirect_uri", redirect_uri.as_str()),
        ("scope", scope.as_str()),
        ("state", oauth_state.as_str()),
        ("nonce", nonce.as_str()),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let prompt = prompt_for(&state.config.oidc.scopes, &query.prompt);
    if let Some(p) = &prompt {
        params.push(("prompt", p.as_str()));
    }
    let extra = query.provider_params();
    params.extend(extra.iter().map(|(k, v)| (*k, v.as_str())));
    params.extend(state.upstreams.login_resources().iter().map(|r| ("resource", r.as_str())));
    let url = authorization_url(&state, &meta, &params).await?;

    let binding = crate::crypto::random_token(32);
    let cookie_id = crate::crypto::random_token(6);
    let attempt = LoginAttempt {
        verifier: pkce.verifier.clone(),
        nonce: Secret::new(nonce.clone()),
        return_to: query.return_to.clone(),
        binding_hash: crate::crypto::sha256_b64(binding.as_bytes()),
        cookie_id: cookie_id.clone(),
        started_at: crate::clock::now(),
        acr_values: query.acr_values.clone(),
        max_age: query.max_age,
    };
    let key = attempt_key(&oauth_state);
    let plain = serde_json::to_vec(&attempt).map_err(|e| ApiError::internal(&e))?;
    let sealed = state.keys.sealer.seal(key.as_bytes(), &plain);
    let ttl = state.config.login_attempt_ttl_secs;
    state.store.set(&key, &sealed, Duration::from_secs(ttl)).await.map_err(LoginError::from)?;
    Ok(redirect_with_cookie(&req, url, &cookie_id, &binding, ttl))
}

/// The 302 to the provider, with this attempt's login cookie.
fn redirect_with_cookie(
    req: &HttpRequest,
    url: String,
    cookie_id: &str,
    binding: &str,
    ttl: u64,
) -> HttpResponse {
    let mut res = HttpResponse::Found();
    res.insert_header((header::LOCATION, url)).insert_header(crate::web::no_store());
    // Keep at most MAX_LOGIN_COOKIES attempts per browser, this one included: the oldest go
    // (their callbacks then fail with 400), so cookies never pile up into a 431. Microsecond
    // stamps order tabs opened within one second.
    let mut existing = login_cookies(req);
    existing.sort_by_key(|(_, ts, _)| *ts);
    let excess = (existing.len() + 1).saturating_sub(MAX_LOGIN_COOKIES);
    for (name, _, _) in existing.into_iter().take(excess) {
        res.cookie(login_cookie(name, String::new(), 0));
    }
    let value = format!("{}.{}", crate::clock::now_micros(), binding);
    res.cookie(login_cookie(format!("{LOGIN_COOKIE_PREFIX}{cookie_id}"), value, ttl as i64));
    res.finish()
}

/// Whether this login pushes its request (RFC 9126): `par = "required"` (the provider's metadata
/// was refused without an endpoint), or `"auto"` when the provider offers or requires it.
fn pushes(mode: ParMode, meta: &ProviderMetadata) -> bool {
    match mode {
        ParMode::Off => false,
        ParMode::Required => true,
        ParMode::Auto => {
            meta.pushed_authorization_request_endpoint.is_some() || meta.require_pushed_authorization_requests
        }
    }
}

/// The URL the browser is sent to: the authorization endpoint with `client_id` and either
/// every parameter, or only the `request_uri` of the pushed request. A refused or failed push is
/// 503 `auth_server_unavailable`; the provider's answer is logged by its error code only.
async fn authorization_url(
    state: &BffState,
    meta: &ProviderMetadata,
    params: &[(&str, &str)],
) -> Result<String, ApiError> {
    let mut url = url::Url::parse(&meta.authorization_endpoint).map_err(|e| ApiError::internal(&e))?;
    url.query_pairs_mut().append_pair("client_id", &state.creds.client_id);
    if pushes(state.config.oidc.par, meta) {
        let pushed = par::push(&state.http, meta, &state.creds, params).await.map_err(|e| {
            tracing::warn!(error = %e, "the pushed authorization request failed");
            LoginError::Provider
        })?;
        url.query_pairs_mut().append_pair("request_uri", &pushed.request_uri);
    } else {
        url.query_pairs_mut().extend_pairs(params);
    }
    Ok(url.to_string())
}

/// The `prompt` sent: the page's values, plus `consent` when `offline_access` is asked for —
/// OIDC Core §11: such a request MUST carry `prompt=consent`, and strict providers
/// (node-oidc-provider) issue no refresh token without it — except beside `none`, which must
/// stand alone.
fn prompt_for(scopes: &[String], asked: &[String]) -> Option<String> {
    let mut prompt: Vec<&str> = asked.iter().map(String::as_str).collect();
    let offline = scopes.iter().any(|s| s == "offline_access");
    if offline && !prompt.contains(&"consent") && !prompt.contains(&"none") {
        prompt.push("consent");
    }
    (!prompt.is_empty()).then(|| prompt.join(" "))
}
