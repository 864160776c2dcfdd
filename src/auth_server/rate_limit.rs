//! Failed-login throttling, per user and per client address, in fixed windows kept in the
//! store (so every instance counts together, see [`crate::web::RateLimit`]). Once a limit is
//! reached, every further attempt in the window is refused with 429 before the password is
//! looked at — even a right one. Sign-ups and authorization requests are limited per client
//! address with the same piece.

use super::state::{AppState, keys};
use crate::crypto::sha256_b64;
use crate::store::StoreError;
use crate::web::RateLimit;
use actix_web::HttpRequest;

/// The counters one login attempt touches. The user counter is keyed by the canonical login
/// name ([`super::users::Username`]) when the typed name has one, so that no other spelling
/// of an account counts (or clears) apart from it. Names are hashed into keys (they are user
/// input of any shape).
pub struct LoginLimiter {
    user: String,
    ip: String,
}

impl LoginLimiter {
    /// Counters for `username` from the client address (bucket) `ip`, as
    /// [`crate::web::rate_limit::client_bucket`] gives it.
    pub fn new(username: &str, ip: &str) -> Self {
        Self { user: sha256_b64(username.to_lowercase().as_bytes()), ip: sha256_b64(ip.as_bytes()) }
    }

    /// Seconds until the attempt may be made, or `None` when it may be made now.
    pub async fn blocked(&self, state: &AppState) -> Result<Option<u64>, StoreError> {
        for (kind, who) in [("user", &self.user), ("ip", &self.ip)] {
            let key = keys::lockout(kind, who);
            if state.store.get(&key).await?.is_some() {
                let left = state.store.ttl(&key).await?.map(|d| d.as_secs().max(1)).unwrap_or(1);
                return Ok(Some(left));
            }
        }
        Ok(None)
    }

    /// Counts a failed attempt; reaching a limit locks out for the rest of the window.
    pub async fn record_failure(&self, state: &AppState) -> Result<(), StoreError> {
        let window = state.config.login_failure_window_secs;
        let limits = [
            ("user", &self.user, state.config.login_max_failures_per_user),
            ("ip", &self.ip, state.config.login_max_failures_per_ip),
        ];
        for (kind, who, max) in limits {
            // The counter cannot be read without counting, so reaching the limit leaves a
            // lock-out marker for the rest of the window, which `blocked` reads.
            if let Some(left) =
                RateLimit::new(max, window).spend(&state.store, &keys::failures(kind, who)).await?
            {
                state
                    .store
                    .set(&keys::lockout(kind, who), b"1", std::time::Duration::from_secs(left))
                    .await?;
                tracing::warn!(kind, "login lock-out reached");
            }
        }
        Ok(())
    }

    /// A successful login clears the user's counter (not the address's).
    pub async fn record_success(&self, state: &AppState) -> Result<(), StoreError> {
        state.store.del(&keys::failures("user", &self.user)).await.map(|_| ())
    }
}

/// Counts a sign-up attempt from the client of `req`: `Ok(Some(secs))` when this address has
/// used up `signup_max_per_ip` for the window (every attempt counts, successful or not: each
/// one costs a password hash, and each success an account).
pub async fn signup_blocked(state: &AppState, req: &HttpRequest) -> Result<Option<u64>, StoreError> {
    RateLimit::new(state.config.signup_max_per_ip, state.config.signup_window_secs)
        .admit(&state.store, &keys::signups(&crate::web::rate_limit::client_key(req)))
        .await
}

/// Counts an authorization request from the client of `req`: `Ok(Some(secs))` when this
/// address has used up `authorize_max_per_ip` for the window. Every counted request may leave
/// a pending request or a code in the store, so this bounds what one address can store.
pub async fn authorize_blocked(state: &AppState, req: &HttpRequest) -> Result<Option<u64>, StoreError> {
    RateLimit::new(state.config.authorize_max_per_ip, state.config.authorize_window_secs)
        .admit(&state.store, &keys::authorizations(&crate::web::rate_limit::client_key(req)))
        .await
}
