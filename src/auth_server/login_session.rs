//! The provider's own login session (single sign-on): a `__Host-` cookie holding a random
//! value, stored only as its hash, with the subject, a `sid` and the time of authentication.

use super::state::{AppState, keys};
use crate::crypto::{random_token, sha256_b64};
use crate::store::StoreError;
use actix_web::HttpRequest;
use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The cookie's name.
pub const COOKIE: &str = "__Host-cloakroom-op";

/// A signed-in browser at the provider.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoginSession {
    /// The user's subject identifier.
    pub sub: String,
    /// The user's login name.
    pub username: String,
    /// Session id, shared with clients in tokens (`sid`).
    pub sid: String,
    /// When the user authenticated (Unix seconds).
    pub auth_time: i64,
    /// How (`urn:cloakroom:pwd` or `urn:cloakroom:mfa`).
    #[serde(default = "default_acr")]
    pub acr: String,
    /// With which methods (RFC 8176).
    #[serde(default = "super::second_factor::amr_pwd")]
    pub amr: Vec<String>,
}

fn default_acr() -> String {
    super::second_factor::ACR_PWD.to_string()
}

/// A cookie value. `Debug` never shows it.
pub struct CookieValue(String);

impl std::fmt::Debug for CookieValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CookieValue([redacted])")
    }
}

/// Starts a login session for `sub` and returns the cookie to set.
pub async fn create(
    state: &AppState,
    sub: &str,
    username: &str,
) -> Result<(LoginSession, Cookie<'static>), StoreError> {
    let value = CookieValue(random_token(32));
    let hash = sha256_b64(value.0.as_bytes());
    let now = crate::clock::now();
    let session = LoginSession {
        sub: sub.to_string(),
        username: username.to_string(),
        sid: random_token(16),
        auth_time: now,
        acr: default_acr(),
        amr: super::second_factor::amr_pwd(),
    };
    let ttl = Duration::from_secs(state.config.login_session_ttl_secs);
    let bytes = serde_json::to_vec(&session).unwrap_or_default();
    state.store.set(&keys::login(&hash), &bytes, ttl).await?;
    state.store.set(&keys::sid_login(&session.sid), hash.as_bytes(), ttl).await?;
    state.store.index_add(&keys::sub_logins(sub), &session.sid, now + ttl.as_secs() as i64).await?;
    Ok((session, cookie(value, state.config.login_session_ttl_secs)))
}

/// The login session the request's cookie names, if any and still live. A malformed cookie
/// value is never looked up.
pub async fn current(state: &AppState, req: &HttpRequest) -> Result<Option<LoginSession>, StoreError> {
    let Some(c) = req.cookie(COOKIE) else { return Ok(None) };
    let value = c.value();
    if value.len() != 43 || !value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        return Ok(None);
    }
    let Some(bytes) = state.store.get(&keys::login(&sha256_b64(value.as_bytes()))).await? else {
        return Ok(None);
    };
    Ok(serde_json::from_slice(&bytes).ok())
}

/// Raises the login session the request's cookie names to `urn:cloakroom:mfa` after a second
/// factor: same cookie and `sid`, a new `auth_time`. `None` when it is gone.
pub async fn strengthen(
    state: &AppState,
    req: &HttpRequest,
    session: &LoginSession,
) -> Result<Option<LoginSession>, StoreError> {
    let Some(c) = req.cookie(COOKIE) else { return Ok(None) };
    let key = keys::login(&sha256_b64(c.value().as_bytes()));
    let stronger = LoginSession {
        auth_time: crate::clock::now(),
        acr: super::second_factor::ACR_MFA.to_string(),
        amr: super::second_factor::amr_mfa(),
        ..session.clone()
    };
    let bytes = serde_json::to_vec(&stronger).unwrap_or_default();
    let ttl = Duration::from_secs(state.config.login_session_ttl_secs);
    if state.store.get(&key).await?.is_none() {
        return Ok(None);
    }
    state.store.set(&key, &bytes, ttl).await?;
    Ok(Some(stronger))
}

/// Ends the login session with this `sid` (wherever its browser is); true when it was alive.
pub async fn end(state: &AppState, sid: &str, sub: &str) -> Result<bool, StoreError> {
    let mut ended = false;
    if let Some(hash) = state.store.get_del(&keys::sid_login(sid)).await?
        && let Ok(hash) = String::from_utf8(hash)
    {
        ended = state.store.del(&keys::login(&hash)).await?;
    }
    state.store.index_remove(&keys::sub_logins(sub), sid).await?;
    Ok(ended)
}

/// Ends the login session with this `sid` when only the `sid` is known; returns its subject
/// when it was alive.
pub async fn end_sid(state: &AppState, sid: &str) -> Result<Option<String>, StoreError> {
    let Some(hash) = state.store.get_del(&keys::sid_login(sid)).await? else { return Ok(None) };
    let Ok(hash) = String::from_utf8(hash) else { return Ok(None) };
    let Some(bytes) = state.store.get_del(&keys::login(&hash)).await? else { return Ok(None) };
    let Ok(session) = serde_json::from_slice::<LoginSession>(&bytes) else { return Ok(None) };
    state.store.index_remove(&keys::sub_logins(&session.sub), sid).await?;
    Ok(Some(session.sub))
}

/// The `sid`s of the live login sessions of `sub`.
pub async fn of_sub(state: &AppState, sub: &str) -> Result<Vec<String>, StoreError> {
    state.store.index_members(&keys::sub_logins(sub)).await
}

fn cookie(value: CookieValue, max_age_secs: u64) -> Cookie<'static> {
    Cookie::build(COOKIE, value.0)
        .path("/")
        .secure(true)
        .http_only(true)
        .same_site(SameSite::Lax)
        .max_age(CookieDuration::seconds(max_age_secs.min(i64::MAX as u64) as i64))
        .finish()
}

/// A cookie that removes the login cookie.
pub fn removal_cookie() -> Cookie<'static> {
    let mut c =
        Cookie::build(COOKIE, "").path("/").secure(true).http_only(true).same_site(SameSite::Lax).finish();
    c.make_removal();
    c
}
