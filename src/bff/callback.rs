//! `GET /bff/callback`: finishes the code flow. Any failure is a 400 page with no session and no
//! session cookie; success starts a session under a fresh id and redirects to `returnTo`.

use super::id_token::{IdTokenClaims, IdTokenError, LEEWAY_SECS, validate_id_token};
use super::login::{LOGIN_COOKIE_PREFIX, LoginAttempt, attempt_key, login_cookie, login_cookies};
use super::pages::error_page;
use super::session::{SessionRecord, TypedSession};
use super::state::BffState;
use super::tokens::{TokenHandle, TokenRecord};
use crate::config::Secret;
use crate::jwt::dpop::DpopKey;
use crate::oidc::{ProviderMetadata, TokenEndpointError, TokenResponse, client};
use crate::store::StoreError;
use crate::web::ApiError;
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use std::collections::HashMap;

/// Why a callback failed.
#[derive(Debug, thiserror::Error)]
pub enum CallbackError {
    /// The provider answered with `error=…`.
    #[error("the login was not completed at the auth server")]
    Provider,
    /// `state` missing, unknown, replayed, or bound to another browser (which leaves it alone).
    #[error("this login attempt is unknown, expired or belongs to another browser")]
    State,
    /// `iss` missing or not our issuer (RFC 9207).
    #[error("the authorization response came from an unexpected issuer")]
    Issuer,
    /// No `code`, or the code was refused.
    #[error("the authorization code was refused")]
    Code,
    /// The ID token is missing or invalid.
    #[error("the ID token is invalid")]
    IdToken,
    /// `max_age` was asked for and the ID token's `auth_time` is missing or too old.
    #[error("the auth server did not confirm a recent enough sign-in; please sign in again")]
    AuthTooOld,
    /// `acr_values` were asked for and the ID token's `acr` is none of them.
    #[error("the auth server did not authenticate you as strongly as required; please sign in again")]
    AcrNotMet,
    /// The provider could not be reached.
    #[error("the auth server is unavailable")]
    Unavailable,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl CallbackError {
    fn into_response(self) -> HttpResponse {
        match self {
            CallbackError::Store(e) => ApiError::store_unavailable(&e).error_response(),
            CallbackError::Unavailable => error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "The auth server is unavailable. Please try again.",
            ),
            other => error_page(StatusCode::BAD_REQUEST, &other.to_string()),
        }
    }
}

/// `GET /bff/callback?code=…&state=…[&iss=…]`.
pub async fn callback(req: HttpRequest, state: web::Data<BffState>, session: TypedSession) -> HttpResponse {
    let params: HashMap<String, String> = url::form_urlencoded::parse(req.query_string().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    // The attempt is taken out of the store first, so whatever happens it cannot be replayed;
    // but only by the browser it is bound to, so that whoever learns a `state` cannot void it.
    let attempt = take_attempt(&req, &state, &params).await;
    let mut res = match finish(&state, &session, &params, attempt.as_ref()).await {
        Ok(return_to) => HttpResponse::Found()
            .insert_header((header::LOCATION, return_to))
            .insert_header(crate::web::no_store())
            .finish(),
        Err(e) => {
            tracing::info!(error = %e, "login callback refused");
            e.into_response()
        }
    };
    if let Ok(Some(a)) = &attempt {
        let _ =
            res.add_cookie(&login_cookie(format!("{LOGIN_COOKIE_PREFIX}{}", a.cookie_id), String::new(), 0));
    }
    res
}

async fn take_attempt(
    req: &HttpRequest,
    state: &BffState,
    params: &HashMap<String, String>,
) -> Result<Option<LoginAttempt>, StoreError> {
    let Some(oauth_state) = params.get("state") else { return Ok(None) };
    let key = attempt_key(oauth_state);
    let Some(sealed) = state.store.get(&key).await? else { return Ok(None) };
    let attempt = state
        .keys
        .sealer
        .open(key.as_bytes(), &sealed)
        .ok()
        .and_then(|plain| serde_json::from_slice::<LoginAttempt>(&plain).ok());
    let Some(attempt) = attempt.filter(|a| is_bound(req, a)) else { return Ok(None) };
    // Of two callbacks racing with one attempt, only the one that deletes it goes on.
    if !state.store.compare_and_delete(&key, &sealed).await? {
        return Ok(None);
    }
    Ok(Some(attempt))
}

/// Whether this browser holds the attempt's login cookie with the right binding value.
fn is_bound(req: &HttpRequest, attempt: &LoginAttempt) -> bool {
    let name = format!("{LOGIN_COOKIE_PREFIX}{}", attempt.cookie_id);
    login_cookies(req).into_iter().any(|(cookie, _, binding)| {
        cookie == name
            && crate::crypto::constant_time_eq(
                crate::crypto::sha256_b64(binding.as_bytes()).as_bytes(),
                attempt.binding_hash.as_bytes(),
            )
    })
}

/// The code exchange's `resource` (`bff.oidc.resource`), if any.
fn login_resource_form(state: &BffState) -> Vec<(&'static str, &str)> {
    state.config.oidc.resource.iter().map(|r| ("resource", r.as_str())).collect()
}

/// The code grant with the attempt's PKCE verifier.
async fn redeem(
    state: &BffState,
    meta: &ProviderMetadata,
    code: &str,
    attempt: &LoginAttempt,
    dpop: Option<&DpopKey>,
) -> Result<TokenResponse, CallbackError> {
    let (redirect_uri, extra) = (state.redirect_uri(), login_resource_form(state));
    let grant = client::CodeGrant {
        code,
        redirect_uri: &redirect_uri,
        code_verifier: attempt.verifier.expose(),
        extra: &extra,
    };
    client::exchange_code(&state.http, meta, &state.creds, &grant, dpop).await.map_err(|e| match e {
        TokenEndpointError::Rejected { .. } => CallbackError::Code,
        // A provider that does not bind the tokens it was asked to bind is as good as absent.
        TokenEndpointError::Unavailable(_)
        | TokenEndpointError::ClientAuth(_)
        | TokenEndpointError::NotDpopBound(_) => CallbackError::Unavailable,
    })
}

/// The record of a new session for `claims`: fresh handle, form token and public id; absolute
/// expiry no later than the refresh token's.
fn new_record(
    state: &BffState,
    session: &TypedSession,
    claims: &IdTokenClaims,
    refresh_expires_in: Option<u64>,
) -> SessionRecord {
    let now = crate::clock::now();
    let cfg = &state.config.session;
    let mut expires_at = now + cfg.absolute_timeout_secs as i64;
    if let Some(refresh_secs) = refresh_expires_in.filter(|s| *s > 0) {
        expires_at = expires_at.min(now + refresh_secs as i64);
    }
    SessionRecord {
        handle: TokenHandle::random(),
        sub: claims.sub.clone(),
        sid: claims.sid.clone(),
        claims: claims.profile(),
        created_at: now,
        expires_at,
        idle_expires_at: (now + cfg.idle_timeout_secs as i64).min(expires_at),
        csrf_token: Secret::new(crate::crypto::random_token(32)),
        public_id: crate::crypto::random_token(16),
        last_seen: now,
        client: session.client().clone(),
        acr: claims.acr.clone(),
        amr: claims.amr.clone(),
        auth_time: claims.auth_time,
    }
}

/// Most `amr` values kept, and the longest one: the record stays small whatever the provider
/// puts into its tokens.
const MAX_AMR: (usize, usize) = (10, 64);

/// What the login asked of the authentication (`max_age`, `acr_values`, OIDC Core §3.1.2.1,
/// §3.1.3.7), checked on the ID token's claims; also the claims' size.
fn check_authentication(claims: &IdTokenClaims, attempt: &LoginAttempt) -> Result<(), CallbackError> {
    let acr_ok = claims.acr.as_deref().is_none_or(crate::bff::login_params::is_acr_value);
    let amr_ok = claims.amr.as_ref().is_none_or(|amr| {
        amr.len() <= MAX_AMR.0 && amr.iter().all(|m| !m.is_empty() && m.len() <= MAX_AMR.1)
    });
    if !acr_ok || !amr_ok {
        return Err(CallbackError::IdToken);
    }
    if let Some(max_age) = attempt.max_age {
        // Authenticated no earlier than `max_age` before the login started, give or take the
        // clocks' difference.
        let earliest = attempt.started_at - max_age.min(i64::MAX as u64 / 2) as i64 - LEEWAY_SECS as i64;
        if claims.auth_time.is_none_or(|t| t < earliest) {
            return Err(CallbackError::AuthTooOld);
        }
    }
    if !attempt.acr_values.is_empty()
        && !claims.acr.as_ref().is_some_and(|acr| attempt.acr_values.contains(acr))
    {
        return Err(CallbackError::AcrNotMet);
    }
    Ok(())
}

async fn finish(
    state: &BffState,
    session: &TypedSession,
    params: &HashMap<String, String>,
    attempt: Result<&Option<LoginAttempt>, &StoreError>,
) -> Result<String, CallbackError> {
    if params.contains_key("error") {
        return Err(CallbackError::Provider);
    }
    let attempt = match attempt {
        Ok(Some(a)) => a,
        Ok(None) => return Err(CallbackError::State),
        Err(e) => return Err(CallbackError::Store(StoreError::Unavailable(e.to_string()))),
    };
    let meta = state.provider.metadata().await.map_err(|_| CallbackError::Unavailable)?;
    match params.get("iss") {
        Some(iss) if iss != &meta.issuer => return Err(CallbackError::Issuer),
        None if meta.authorization_response_iss_parameter_supported => return Err(CallbackError::Issuer),
        _ => {}
    }
    let code = params.get("code").filter(|c| !c.is_empty()).ok_or(CallbackError::Code)?;
    // The session's DPoP key (`bff.oidc.dpop`), made before the code is redeemed with it.
    let alg = state.provider.dpop_alg().await.map_err(|_| CallbackError::Unavailable)?;
    let dpop = alg.map(DpopKey::generate);
    let tokens = redeem(state, &meta, code, attempt, dpop.as_ref()).await?;
    let id_token = tokens.id_token.as_ref().ok_or(CallbackError::IdToken)?;
    let claims = validate_id_token(
        state.provider.verifier(),
        id_token.expose(),
        &state.creds.client_id,
        attempt.nonce.expose(),
    )
    .await
    .map_err(|e| match e {
        IdTokenError::KeysUnavailable => CallbackError::Unavailable,
        other => {
            tracing::info!(error = %other, "ID token refused");
            CallbackError::IdToken
        }
    })?;
    check_authentication(&claims, attempt)?;
    let record = new_record(state, session, &claims, tokens.refresh_expires_in);
    let expires_at = record.expires_at;
    let mut token_record =
        TokenRecord::from_response(&tokens, expires_at, None, state.config.logout_id_token_hint);
    token_record.dpop_key = dpop;
    state.tokens.store_new(&record.handle, &token_record).await?;
    session.start(&record).map_err(|e| CallbackError::Store(StoreError::Unavailable(e.to_string())))?;
    Ok(attempt.return_to.clone())
}
