//! Refreshing a session's tokens when they are due.
//!
//! Refresh is single-flight per session: in this process a `tokio::sync::Mutex` per session lets
//! one request go on; across instances that request takes the store lock of
//! [`super::lock`] or waits to be woken by its holder. After every wait and again
//! after taking the store lock the record is READ AGAIN before deciding to refresh (a waiter uses
//! the winner's tokens; Duende #1286). A waiter that runs out of time answers 503, never refreshes.
//!
//! The crash window is closed by a write-ahead: before the refresh token is sent, the holder of
//! the lock replaces the record with a copy WITHOUT the refresh token (compare-and-swap). If the
//! provider answers but the new tokens cannot be stored (Redis gone, the instance killed), the
//! store never again holds the refresh token the provider consumed: the request answers 503
//! `store_unavailable`, and once the store is back the session ends cleanly (401
//! `session_expired`) — never a reused refresh token. When the provider cannot be reached the
//! token is put back.

use super::audience::Audience;
use super::lock::{Notice, Wake};
use super::undo::Undo;
use super::{TokenCare, TokenError, TokenHandle, TokenRecord};
use crate::config::Secret;
use crate::jwt::dpop::DpopKey;
use crate::oidc::{TokenEndpointError, TokenResponse, client};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Per-session in-process lock; the guarded value is what the requests queued on it share
/// instead of each asking the provider again.
pub(super) type SessionLock = Arc<tokio::sync::Mutex<Queue>>;

/// What a request under a session's in-process lock leaves to the ones queued behind it. The
/// lock (and this with it) is dropped once nobody holds or waits for it, so the next burst asks
/// afresh.
#[derive(Debug, Default)]
pub(super) struct Queue {
    /// When this instance last failed to reach the provider for the session.
    failed_at: Option<Instant>,
    /// The route audiences the provider refused for the session, and when.
    refused: Vec<(String, Instant)>,
}

impl Queue {
    /// Whether the provider refused `audience` since `since`.
    fn refused_since(&self, audience: Option<&Audience>, since: Instant) -> bool {
        audience.is_some_and(|a| self.refused.iter().any(|(id, at)| *id == a.id && *at >= since))
    }

    /// Keeps what the requests queued behind this one share of its `result` for `audience`.
    fn remember(&mut self, result: &Result<Secret, TokenError>, audience: Option<&Audience>) {
        match (result, audience) {
            (Err(TokenError::AuthServerUnavailable), _) => self.failed_at = Some(Instant::now()),
            (Err(TokenError::AudienceRefused), Some(a)) => self.refused.push((a.id.clone(), Instant::now())),
            _ => {}
        }
    }
}
pub(super) type LockMap = Mutex<HashMap<String, SessionLock>>;

/// Refresh timing from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct RefreshTiming {
    /// Refresh this long before the access token expires.
    pub skew_secs: u64,
    /// Expiry of the cross-instance lock.
    pub lock_ttl: Duration,
    /// How long a request waits for someone else's refresh.
    pub wait: Duration,
}

impl RefreshTiming {
    /// The `bff.refresh_*` settings.
    pub fn from_config(config: &crate::config::BffConfig) -> Self {
        Self {
            skew_secs: config.refresh_skew_secs,
            lock_ttl: Duration::from_millis(config.refresh_lock_ttl_ms.max(1)),
            wait: Duration::from_millis(config.refresh_wait_ms),
        }
    }
}

/// Left of the lock's lifetime when the holder stops waiting for the provider, so that the
/// lock never expires while its holder may still be using the refresh token.
pub(super) const LOCK_MARGIN: Duration = Duration::from_millis(500);

/// Why a refresh-token grant gave no tokens.
enum ProviderCall {
    /// The provider refused the grant (`invalid_grant`…): the session ends.
    GrantDead,
    /// The provider could not be reached, or failed, in time: the session is kept.
    Unavailable,
    /// The provider refused a token for this audience (`invalid_target`, `invalid_scope`):
    /// nothing was consumed, the session is kept, the route cannot be called.
    Refused,
    /// The provider consumed the refresh token but did not bind the new tokens to the
    /// session's DPoP key (`token_type` not `DPoP`): they are not used, the session is kept
    /// until its access token expires, and the consumed token is never put back.
    NotBound,
}

impl TokenCare {
    /// Single-flight refresh: in this process first (one request per session goes on), then
    /// across instances ([`RefreshLock`](super::lock::RefreshLock)). `needed` is
    /// evaluated on records read after each wait and again after the store lock is held. One
    /// lock per session whatever the `audience`: every audience's token comes from the same
    /// refresh token, whose rotation must never race itself.
    #[tracing::instrument(name = "token refresh", level = "debug", skip_all, fields(outcome))]
    pub(super) async fn refresh_locked(
        &self,
        handle: &TokenHandle,
        audience: Option<&Audience>,
        current_usable: bool,
        needed: impl Fn(&TokenRecord) -> bool,
    ) -> Result<Secret, TokenError> {
        let started = Instant::now();
        let key = self.key(handle);
        let lock = self.process_lock(key);
        let result = {
            let mut queue = lock.lock().await;
            if queue.refused_since(audience, started) {
                // Refused for a request queued with this one: the provider's answer stands.
                Err(TokenError::AudienceRefused)
            } else {
                let recent_failure = queue.failed_at.is_some_and(|t| t >= started);
                let flight = Flight { handle, key, audience, current_usable };
                let result = self.refresh_once(&flight, recent_failure, &needed).await;
                queue.remember(&result, audience);
                result
            }
        };
        self.release_process_lock(key, &lock);
        self.metrics.refresh_wait.observe(started.elapsed().as_secs_f64());
        tracing::Span::current().record("outcome", refresh_outcome(&result));
        result
    }

    /// Under the in-process lock: uses fresh tokens if someone else stored them, else takes the
    /// store lock and refreshes, else waits for the holder (never refreshing without the lock).
    async fn refresh_once(
        &self,
        flight: &Flight<'_>,
        recent_failure: bool,
        needed: &impl Fn(&TokenRecord) -> bool,
    ) -> Result<Secret, TokenError> {
        let hashed = self.keys.hash_id(flight.handle.expose());
        let deadline = tokio::time::Instant::now() + self.lock.wait;
        let mut rx = self.lock.subscribe();
        let mut last_notice = recent_failure.then_some(Notice::Unavailable);
        loop {
            // The lock first: its holder reads the record anyway, so in the usual case (nobody
            // else refreshing) the record is read once, not once before and once after.
            // `Refused` is for client tokens; on a session's lock it would name no audience.
            if matches!(last_notice, Some(Notice::Done | Notice::Refused) | None)
                && let Some(held) = self.lock.try_acquire(&hashed).await?
            {
                let mut undo = None;
                let (result, notice) = self.refresh_holding_lock(flight, needed, &mut undo).await;
                // Waiters hear of it right after; this request does not wait for the release
                // (nor for the undo of a failed write-ahead, which must come before it).
                let lock = self.lock.clone();
                tokio::spawn(async move {
                    if let Some(undo) = undo {
                        undo.run().await;
                    }
                    lock.release(held, notice).await
                });
                return result;
            }
            let (_, record) = self.read(flight.handle).await?.ok_or(TokenError::NoSession)?;
            let current = flight.current(&record);
            if !needed(&record)
                && let Some(token) = current.clone()
            {
                return Ok(token);
            }
            let still_valid = flight.still_valid(&record, crate::clock::now());
            match last_notice {
                Some(Notice::Unavailable) => {
                    return current.filter(|_| still_valid).ok_or(TokenError::AuthServerUnavailable);
                }
                Some(Notice::Ended) => return Err(TokenError::SessionExpired),
                Some(Notice::Done | Notice::Refused) | None => {}
            }
            if let Some(token) = current.filter(|_| still_valid) {
                // Another instance is refreshing; the current token is still good meanwhile.
                return Ok(token);
            }
            match self.lock.wait(&hashed, &mut rx, deadline).await? {
                Wake::Notice(n) => last_notice = Some(n),
                Wake::Recheck => last_notice = None,
                Wake::TimedOut => {
                    tracing::warn!("gave up waiting for another refresh of this session");
                    self.count("wait_timeout");
                    return Err(TokenError::AuthServerUnavailable);
                }
            }
        }
    }

    /// This process's lock for the tokens stored under `key`.
    pub(super) fn process_lock(&self, key: &str) -> SessionLock {
        let mut map = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(key.to_owned()).or_default().clone()
    }

    /// Forgets `lock` when no other request holds or waits for it.
    pub(super) fn release_process_lock(&self, key: &str, lock: &SessionLock) {
        let mut map = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        if Arc::strong_count(lock) <= 2 {
            map.remove(key);
        }
    }

    /// Holding the store lock: re-reads the record (it may have been refreshed just before the
    /// lock was taken) and refreshes if still needed. Returns what to tell the waiters.
    async fn refresh_holding_lock(
        &self,
        flight: &Flight<'_>,
        needed: &impl Fn(&TokenRecord) -> bool,
        undo: &mut Option<Undo>,
    ) -> (Result<Secret, TokenError>, Notice) {
        let key = flight.key;
        let (raw, record) = match self.read(flight.handle).await {
            Ok(Some(r)) => r,
            Ok(None) => return (Err(TokenError::NoSession), Notice::Done),
            Err(e) => return (Err(e.into()), Notice::Done),
        };
        let current = flight.current(&record);
        if !needed(&record)
            && let Some(token) = current.clone()
        {
            return (Ok(token), Notice::Done);
        }
        let now = crate::clock::now();
        let still_valid = flight.still_valid(&record, now);
        let refresh_dead = record.refresh_expires_at.is_some_and(|t| t <= now);
        let Some(refresh_token) = record.refresh_token.clone().filter(|_| !refresh_dead) else {
            let usable = current.filter(|_| still_valid);
            return self.without_refresh_token(flight, &record, usable, now).await;
        };

        // Write-ahead: the refresh token leaves the store before it is used.
        let taken = match self.take_refresh_token(key, &raw, &record, undo).await {
            Ok(taken) => taken,
            // The store failed (or no replica acknowledged); nothing went to the provider: a
            // token that is still valid still serves.
            Err((Err(TokenError::Store(e)), notice)) => {
                return (current.filter(|_| still_valid).ok_or(TokenError::Store(e)), notice);
            }
            Err(result) => return result,
        };
        let response =
            match self.call_provider(&refresh_token, record.dpop_key.as_ref(), flight.audience).await {
                Ok(response) => response,
                Err(ProviderCall::GrantDead) => {
                    self.count("session_expired");
                    self.delete(key).await;
                    return (Err(TokenError::SessionExpired), Notice::Ended);
                }
                Err(ProviderCall::Refused) => {
                    self.put_back(key, &taken, &raw, &record).await;
                    self.count("refused");
                    return (Err(TokenError::AudienceRefused), Notice::Done);
                }
                Err(call @ (ProviderCall::Unavailable | ProviderCall::NotBound)) => {
                    // Not bound: the provider consumed the token, which must never be sent again.
                    if matches!(call, ProviderCall::Unavailable) {
                        self.put_back(key, &taken, &raw, &record).await;
                    }
                    self.count("unavailable");
                    let result = current.filter(|_| still_valid).ok_or(TokenError::AuthServerUnavailable);
                    return (result, Notice::Unavailable);
                }
            };
        self.store_refreshed(flight, &taken, &record, &response, &refresh_token).await
    }

    /// No usable refresh token is left: the current token while it lasts; for a route's own
    /// audience, a refusal while the session lives on with its login token; else the end.
    async fn without_refresh_token(
        &self,
        flight: &Flight<'_>,
        record: &TokenRecord,
        usable: Option<Secret>,
        now: i64,
    ) -> (Result<Secret, TokenError>, Notice) {
        if let Some(token) = usable {
            return (Ok(token), Notice::Done);
        }
        if flight.audience.is_some() && record.access_expires_at > now {
            return (Err(TokenError::AudienceRefused), Notice::Done);
        }
        self.count("session_expired");
        self.delete(flight.key).await;
        (Err(TokenError::SessionExpired), Notice::Ended)
    }

    /// One refresh-token grant at the provider, within what is left of the lock's life.
    #[tracing::instrument(name = "refresh provider call", level = "debug", skip_all)]
    async fn call_provider(
        &self,
        refresh_token: &Secret,
        dpop: Option<&DpopKey>,
        audience: Option<&Audience>,
    ) -> Result<TokenResponse, ProviderCall> {
        let budget = self.lock.ttl.saturating_sub(LOCK_MARGIN);
        let extra = audience.or(self.login_resource.as_deref()).map(Audience::form).unwrap_or_default();
        let call = async {
            let meta = self.provider.metadata().await.map_err(|_| None)?;
            client::refresh(&self.http, &meta, &self.creds, refresh_token.expose(), &extra, dpop)
                .await
                .map_err(Some)
        };
        match tokio::time::timeout(budget, call).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(Some(e))) if e.is_grant_dead() => {
                tracing::info!(error = %e, "refresh refused; ending the session");
                Err(ProviderCall::GrantDead)
            }
            Ok(Err(Some(e))) if e.is_audience_refused() => {
                tracing::warn!(error = %e, "the provider refused a token for a route's resource or scopes");
                Err(ProviderCall::Refused)
            }
            Ok(Err(Some(e @ TokenEndpointError::NotDpopBound(_)))) => {
                tracing::error!(error = %e, "refresh not bound to the session's DPoP key; not used");
                Err(ProviderCall::NotBound)
            }
            Ok(Err(Some(e))) => {
                tracing::warn!(error = %e, "refresh failed; keeping the session");
                Err(ProviderCall::Unavailable)
            }
            // The provider's metadata is not loaded.
            Ok(Err(None)) => Err(ProviderCall::Unavailable),
            Err(_) => {
                tracing::warn!("refresh took longer than the refresh lock lives; keeping the session");
                Err(ProviderCall::Unavailable)
            }
        }
    }

    pub(super) fn count(&self, outcome: &str) {
        self.metrics.refresh.with_label_values(&[outcome]).inc();
    }
}

/// One refresh in flight: whose tokens, under which store key, for which audience, and whether
/// the current token may still be used while the provider is unreachable.
pub(super) struct Flight<'a> {
    handle: &'a TokenHandle,
    pub(super) key: &'a str,
    pub(super) audience: Option<&'a Audience>,
    current_usable: bool,
}

impl Flight<'_> {
    /// The record's token for this flight's audience.
    fn current(&self, record: &TokenRecord) -> Option<Secret> {
        record.access(self.audience).map(|a| a.token.clone())
    }

    /// True when that token may be used while someone else refreshes or the provider is away.
    fn still_valid(&self, record: &TokenRecord, now: i64) -> bool {
        self.current_usable && record.access(self.audience).is_some_and(|a| a.expires_at > now)
    }
}

/// The `outcome` of a `token refresh` span.
fn refresh_outcome(result: &Result<Secret, TokenError>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(TokenError::SessionExpired) => "session_expired",
        Err(TokenError::AuthServerUnavailable) => "auth_server_unavailable",
        Err(_) => "error",
    }
}
