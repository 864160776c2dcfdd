//! Token care: each session's tokens live in their own sealed record (`tokens:{hashed handle}`),
//! separate from actix-session's state so that concurrent requests saving that state never
//! overwrite a freshly refreshed token pair; new tokens are written with compare-and-swap.
//!
//! Refresh is single-flight per session in this process: a `tokio::sync::Mutex` per session,
//! and after acquiring it the record is READ AGAIN before deciding to refresh (a waiter uses
//! the winner's tokens). [`TokenCare::refresh_locked`] is the one place where a cross-instance
//! Redis lock would be taken as well.
//!
//! If the provider rotated the refresh token but the new tokens cannot be stored, the consumed
//! refresh token is never used again: the session ends (401 `session_expired`).

use super::metrics::BffMetrics;
use super::provider::Provider;
use super::state::Keys;
use crate::config::Secret;
use crate::oidc::{ClientCredentials, TokenResponse, client};
use crate::store::{Store, StoreError};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A session's tokens.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenRecord {
    /// The access token sent upstream.
    pub access_token: Secret,
    /// When it expires (Unix seconds).
    pub access_expires_at: i64,
    /// When it was obtained.
    pub access_issued_at: i64,
    /// The refresh token, if any.
    #[serde(default)]
    pub refresh_token: Option<Secret>,
    /// When the refresh token expires, if the provider said.
    #[serde(default)]
    pub refresh_expires_at: Option<i64>,
    /// The latest ID token (`id_token_hint` at logout).
    #[serde(default)]
    pub id_token: Option<Secret>,
    /// The session's absolute expiry: the record's TTL.
    pub session_expires_at: i64,
}

/// Access token lifetime assumed when the provider does not say.
const DEFAULT_EXPIRES_IN: u64 = 60;

impl TokenRecord {
    /// The record for a token response; members the response lacks are kept from `previous`.
    pub fn from_response(
        res: &TokenResponse,
        session_expires_at: i64,
        previous: Option<&TokenRecord>,
    ) -> Self {
        let now = crate::clock::now();
        let refresh_expires_at = match (res.refresh_expires_in, res.refresh_token.is_some()) {
            (Some(secs), _) if secs > 0 => Some(now + secs as i64),
            (_, true) => None,
            _ => previous.and_then(|p| p.refresh_expires_at),
        };
        Self {
            access_token: res.access_token.clone(),
            access_expires_at: now + res.expires_in.unwrap_or(DEFAULT_EXPIRES_IN) as i64,
            access_issued_at: now,
            refresh_token: res
                .refresh_token
                .clone()
                .or_else(|| previous.and_then(|p| p.refresh_token.clone())),
            refresh_expires_at,
            id_token: res.id_token.clone().or_else(|| previous.and_then(|p| p.id_token.clone())),
            session_expires_at,
        }
    }

    /// True when the access token expires within `min(skew, lifetime / 2)`.
    pub fn refresh_due(&self, now: i64, skew_secs: u64) -> bool {
        let lifetime = (self.access_expires_at - self.access_issued_at).max(0);
        let margin = (skew_secs as i64).min(lifetime / 2);
        self.access_expires_at - now <= margin
    }

    fn ttl(&self) -> Duration {
        Duration::from_secs((self.session_expires_at - crate::clock::now()).max(1) as u64)
    }
}

/// Store key of the token record of the session with `handle`.
pub fn tokens_key(keys: &Keys, handle: &str) -> String {
    format!("tokens:{}", keys.hash_id(handle))
}

/// Why no usable access token could be had.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The token record is gone (logged out elsewhere).
    #[error("no tokens for this session")]
    NoSession,
    /// The provider refused the refresh (or the rotated tokens were lost): the session must end.
    #[error("the session's grant has ended")]
    SessionExpired,
    /// The provider could not be reached while a refresh was due; the session is kept.
    #[error("the auth server is unavailable")]
    AuthServerUnavailable,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<TokenError> for crate::web::ApiError {
    fn from(e: TokenError) -> Self {
        use actix_web::http::StatusCode;
        match e {
            TokenError::NoSession => Self::new(StatusCode::UNAUTHORIZED, "unauthenticated", "no session"),
            TokenError::SessionExpired => {
                Self::new(StatusCode::UNAUTHORIZED, "session_expired", "the session has ended; log in again")
            }
            TokenError::AuthServerUnavailable => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "auth_server_unavailable",
                "the auth server is unavailable; try again",
            )
            .with_retry_after(2),
            TokenError::Store(e) => Self::store_unavailable(&e),
        }
    }
}

type LockMap = Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>;

/// Reads, stores and refreshes session tokens.
#[derive(Clone)]
pub struct TokenCare {
    store: Store,
    keys: Keys,
    http: reqwest::Client,
    provider: Provider,
    creds: ClientCredentials,
    skew_secs: u64,
    locks: Arc<LockMap>,
    metrics: Arc<BffMetrics>,
}

impl TokenCare {
    /// Token care over `store`.
    pub fn new(
        store: Store,
        keys: Keys,
        http: reqwest::Client,
        provider: Provider,
        creds: ClientCredentials,
        skew_secs: u64,
        metrics: Arc<BffMetrics>,
    ) -> Self {
        Self { store, keys, http, provider, creds, skew_secs, locks: Arc::default(), metrics }
    }

    fn key(&self, handle: &Secret) -> String {
        tokens_key(&self.keys, handle.expose())
    }

    /// Stores the tokens of a new session.
    pub async fn store_new(&self, handle: &Secret, record: &TokenRecord) -> Result<(), StoreError> {
        let key = self.key(handle);
        let sealed = self.keys.sealer.seal(key.as_bytes(), &serde_json::to_vec(record).unwrap_or_default());
        self.store.set(&key, &sealed, record.ttl()).await
    }

    /// The session's tokens with the raw stored bytes (for compare-and-swap).
    pub async fn read(&self, handle: &Secret) -> Result<Option<(Vec<u8>, TokenRecord)>, StoreError> {
        let key = self.key(handle);
        let Some(raw) = self.store.get(&key).await? else { return Ok(None) };
        let record = self
            .keys
            .sealer
            .open(key.as_bytes(), &raw)
            .ok()
            .and_then(|plain| serde_json::from_slice::<TokenRecord>(&plain).ok());
        Ok(record.map(|r| (raw, r)))
    }

    /// An access token that is not about to expire, refreshing first when due.
    pub async fn valid_access_token(&self, handle: &Secret) -> Result<Secret, TokenError> {
        let (_, record) = self.read(handle).await?.ok_or(TokenError::NoSession)?;
        let now = crate::clock::now();
        if !record.refresh_due(now, self.skew_secs) {
            return Ok(record.access_token);
        }
        let skew = self.skew_secs;
        self.refresh_locked(handle, true, move |r| r.refresh_due(crate::clock::now(), skew)).await
    }

    /// After an upstream refused `rejected` as `invalid_token`: refresh unless another request
    /// already replaced that token.
    pub async fn refresh_after_rejection(
        &self,
        handle: &Secret,
        rejected: &Secret,
    ) -> Result<Secret, TokenError> {
        let rejected = rejected.clone();
        self.refresh_locked(handle, false, move |r| r.access_token == rejected).await
    }

    /// Single-flight refresh. `needed` is evaluated on the record read AFTER the lock is held.
    async fn refresh_locked(
        &self,
        handle: &Secret,
        current_usable: bool,
        needed: impl Fn(&TokenRecord) -> bool,
    ) -> Result<Secret, TokenError> {
        let key = self.key(handle);
        let lock = {
            let mut map = self.locks.lock().unwrap_or_else(|p| p.into_inner());
            map.entry(key.clone()).or_default().clone()
        };
        let result = {
            let _guard = lock.lock().await;
            self.refresh_once(handle, &key, current_usable, needed).await
        };
        let mut map = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        if Arc::strong_count(&lock) <= 2 {
            map.remove(&key);
        }
        result
    }

    async fn refresh_once(
        &self,
        handle: &Secret,
        key: &str,
        current_usable: bool,
        needed: impl Fn(&TokenRecord) -> bool,
    ) -> Result<Secret, TokenError> {
        let (raw, record) = self.read(handle).await?.ok_or(TokenError::NoSession)?;
        if !needed(&record) {
            return Ok(record.access_token);
        }
        let now = crate::clock::now();
        let still_valid = current_usable && record.access_expires_at > now;
        let refresh_dead = record.refresh_expires_at.is_some_and(|t| t <= now);
        let Some(refresh_token) = record.refresh_token.clone().filter(|_| !refresh_dead) else {
            if still_valid {
                return Ok(record.access_token);
            }
            self.count("session_expired");
            let _ = self.store.del(key).await;
            return Err(TokenError::SessionExpired);
        };
        let unavailable = |this: &Self| {
            this.count("unavailable");
            if still_valid { Ok(record.access_token.clone()) } else { Err(TokenError::AuthServerUnavailable) }
        };
        let Ok(meta) = self.provider.metadata().await else { return unavailable(self) };
        let response = match client::refresh(
            &self.http,
            &meta.token_endpoint,
            &self.creds,
            refresh_token.expose(),
        )
        .await
        {
            Ok(r) => r,
            Err(e) if e.is_grant_dead() => {
                tracing::info!(error = %e, "refresh refused; ending the session");
                self.count("session_expired");
                let _ = self.store.del(key).await;
                return Err(TokenError::SessionExpired);
            }
            Err(e) => {
                tracing::warn!(error = %e, "refresh failed; keeping the session");
                return unavailable(self);
            }
        };
        let rotated = response.refresh_token.as_ref().is_some_and(|new| *new != refresh_token);
        let mut new = TokenRecord::from_response(&response, record.session_expires_at, Some(&record));
        if let Some(t) = new.refresh_expires_at {
            new.session_expires_at = new.session_expires_at.min(t);
        }
        let sealed = self.keys.sealer.seal(key.as_bytes(), &serde_json::to_vec(&new).unwrap_or_default());
        match self.store.compare_and_swap(key, &raw, &sealed, new.ttl()).await {
            Ok(true) => {
                self.count("success");
                Ok(new.access_token)
            }
            Ok(false) if !rotated => {
                self.count("success");
                Ok(new.access_token)
            }
            Ok(false) => {
                // Someone replaced or deleted the record meanwhile; our rotated pair cannot be
                // kept consistently, so the session ends rather than risk a reuse.
                self.count("store_error");
                let _ = self.store.del(key).await;
                Err(TokenError::SessionExpired)
            }
            Err(e) => {
                tracing::warn!(error = %e, rotated, "refreshed tokens could not be stored");
                self.count("store_error");
                if rotated {
                    let _ = self.store.del(key).await;
                    Err(TokenError::SessionExpired)
                } else {
                    Ok(new.access_token)
                }
            }
        }
    }

    fn count(&self, outcome: &str) {
        self.metrics.refresh.with_label_values(&[outcome]).inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(issued: i64, expires: i64) -> TokenRecord {
        TokenRecord {
            access_token: Secret::new("a"),
            access_expires_at: expires,
            access_issued_at: issued,
            refresh_token: None,
            refresh_expires_at: None,
            id_token: None,
            session_expires_at: expires + 1000,
        }
    }

    #[test]
    fn a_refresh_is_due_within_the_skew_but_never_earlier_than_half_the_lifetime() {
        let r = record(1000, 1300);
        assert!(!r.refresh_due(1200, 30));
        assert!(r.refresh_due(1271, 30));
        let short = record(1000, 1010);
        assert!(!short.refresh_due(1004, 30), "half of 10 s is 5 s");
        assert!(short.refresh_due(1005, 30));
    }
}
