//! Token care: each session's tokens live in their own sealed record (`tokens:{hashed handle}`),
//! separate from actix-session's state so that concurrent requests saving that state never
//! overwrite a freshly refreshed token pair; new tokens are written with compare-and-swap.
//!
//! This module reads and writes the record (through the near cache on the hot path); when the
//! access token is due, the `refresh` submodule renews it, once per session across requests and instances.

mod audience;
mod client;
mod lock;
mod record;
mod refresh;
mod revoke;
mod undo;
mod write_ahead;

use super::keys::Keys;
use super::metrics::BffMetrics;
use super::near_cache::NearCache;
use super::provider::Provider;
use crate::config::Secret;
use crate::oidc::ClientCredentials;
use crate::store::{Store, StoreError};
use crate::web::ErrorCode;
pub use audience::{Audience, TokenSource, login_resources};
use lock::RefreshLock;
pub use record::{AudienceToken, CachedTokens, TokenHandle, TokenRecord, cache_tokens, open_tokens};
use refresh::LockMap;
pub use refresh::RefreshTiming;
use std::sync::Arc;

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
    /// The provider would not issue a token for the route's resource or scopes, or the
    /// application's own token (the session is kept).
    #[error("the provider refused a token for this audience")]
    AudienceRefused,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<TokenError> for crate::web::ApiError {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::NoSession => Self::new(ErrorCode::Unauthenticated, "no session"),
            TokenError::SessionExpired => {
                Self::new(ErrorCode::SessionExpired, "the session has ended; log in again")
            }
            TokenError::AuthServerUnavailable => {
                Self::new(ErrorCode::AuthServerUnavailable, "the auth server is unavailable; try again")
                    .with_retry_after(2)
            }
            TokenError::AudienceRefused => Self::new(
                ErrorCode::TokenRefused,
                "the auth server does not issue a token for this route; see the BFF's log",
            ),
            TokenError::Store(e) => Self::store_unavailable(&e),
        }
    }
}

/// What an upstream call sends: the access token, and the DPoP key to sign its proof with
/// when the session's tokens are bound (`bff.oidc.dpop`; `None` costs nothing).
#[derive(Debug, Clone)]
pub struct UpstreamToken {
    /// The access token.
    pub token: Secret,
    /// The session's DPoP key.
    pub dpop: Option<crate::jwt::dpop::DpopKey>,
}

/// Which token an upstream call carries.
#[derive(Debug, Clone, Copy)]
pub enum Credential<'a> {
    /// The session's token for an audience (the login's for `None`).
    Session(&'a TokenHandle, Option<&'a Audience>),
    /// The application's own token for an audience.
    Client(&'a Audience),
}

/// Reads, stores and refreshes session tokens, and the application's own.
#[derive(Clone)]
pub struct TokenCare {
    store: Store,
    keys: Keys,
    http: reqwest::Client,
    provider: Provider,
    creds: ClientCredentials,
    skew_secs: u64,
    locks: Arc<LockMap>,
    lock: RefreshLock,
    metrics: Arc<BffMetrics>,
    cache: NearCache,
    keep_id_token: bool,
    client_memo: Arc<client::ClientMemo>,
    /// The login token's `resource` (`bff.oidc.resource`), sent with its refreshes.
    login_resource: Option<Arc<Audience>>,
}

impl TokenCare {
    /// Token care over `store`.
    pub fn new(
        store: Store,
        keys: Keys,
        http: reqwest::Client,
        provider: Provider,
        creds: ClientCredentials,
        timing: RefreshTiming,
        metrics: Arc<BffMetrics>,
    ) -> Self {
        let lock = RefreshLock::new(store.clone(), timing.lock_ttl, timing.wait);
        let cache = NearCache::announcing_only(&store);
        Self {
            store,
            keys,
            http,
            provider,
            creds,
            skew_secs: timing.skew_secs,
            locks: Arc::default(),
            lock,
            metrics,
            cache,
            keep_id_token: false,
            client_memo: Arc::default(),
            login_resource: None,
        }
    }

    /// Keeps the ID token in refreshed records (`bff.logout_id_token_hint`).
    pub fn keeping_id_token(mut self, keep: bool) -> Self {
        self.keep_id_token = keep;
        self
    }

    /// Refreshes the login's token for `resource` (`bff.oidc.resource`).
    pub fn with_login_resource(mut self, resource: Option<&crate::config::ResourceIndicator>) -> Self {
        self.login_resource = resource.map(|r| Arc::new(Audience::of_resource(r)));
        self
    }

    /// Keeps token records read on the hot path in `cache` (announcing every write to it).
    pub fn with_near_cache(mut self, cache: NearCache) -> Self {
        self.cache = cache;
        self
    }

    fn key<'h>(&self, handle: &'h TokenHandle) -> &'h str {
        handle.key(&self.keys)
    }

    /// Stores the tokens of a new session.
    pub async fn store_new(&self, handle: &TokenHandle, record: &TokenRecord) -> Result<(), StoreError> {
        let key = self.key(handle);
        let sealed = self.keys.sealer.seal(key.as_bytes(), &record.to_stored());
        self.store.set(key, &sealed, record.ttl()).await
    }

    /// The session's tokens with the raw stored bytes (for compare-and-swap).
    pub async fn read(&self, handle: &TokenHandle) -> Result<Option<(Vec<u8>, TokenRecord)>, StoreError> {
        let key = self.key(handle);
        let Some(raw) = self.store.get(key).await? else { return Ok(None) };
        let Ok((plain, old_key)) = self.keys.sealer.open_noting_key(key.as_bytes(), &raw) else {
            return Ok(None);
        };
        let Some(record) = TokenRecord::from_stored(&plain) else { return Ok(None) };
        if old_key {
            super::sealed::reseal(&self.store, &self.keys, key, &raw, &record.to_stored()).await;
            // The caller compares against what is stored now: read it again.
            let Some(raw) = self.store.get(key).await? else { return Ok(None) };
            let record = self
                .keys
                .sealer
                .open(key.as_bytes(), &raw)
                .ok()
                .and_then(|plain| TokenRecord::from_stored(&plain));
            return Ok(record.map(|r| (raw, r)));
        }
        Ok(Some((raw, record)))
    }

    /// The session's tokens from the near cache, else from the store (and then cached).
    async fn read_cached(&self, handle: &TokenHandle) -> Result<Option<Arc<CachedTokens>>, StoreError> {
        let key = self.key(handle);
        if let Some(cached) = self.cache.get::<CachedTokens>(key) {
            return Ok(Some(cached));
        }
        // Boxed: store futures are large, and the hit above is the common case.
        Box::pin(async {
            let ticket = self.cache.begin(key);
            let Some(raw) = self.store.get(key).await? else { return Ok(None) };
            Ok(cache_tokens(&self.store, &self.cache, &self.keys, key, ticket, raw).await)
        })
        .await
    }

    /// Deletes the token record at `key` (the grant ended) everywhere, caches included.
    async fn delete(&self, key: &str) {
        if let Err(e) = self.store.del(key).await {
            tracing::warn!(error = %e, "an ended token record could not be deleted");
        }
        self.cache.announce(&[key]).await;
    }

    /// An access token that is not about to expire, refreshing first when due, with the
    /// session's DPoP key when its tokens are bound. In steady state the record comes from the
    /// near cache; a stale copy there can only hold an older access token (an upstream 401
    /// then refreshes from the store), never a refresh token that is used: refreshes read the
    /// store. The key never changes during a session, so any copy's is right.
    ///
    /// `audience` is a route's own (`resource`/`scopes`), or `None` for the login's token; a
    /// missing audience token is obtained like a due one.
    pub async fn valid_access_token(
        &self,
        handle: &TokenHandle,
        audience: Option<&Audience>,
    ) -> Result<UpstreamToken, TokenError> {
        let cached = self.read_cached(handle).await?.ok_or(TokenError::NoSession)?;
        let record = &cached.1;
        let dpop = record.dpop_key.clone();
        let now = crate::clock::now();
        if let Some(access) = record.access(audience)
            && !access.due(now, self.skew_secs)
        {
            return Ok(UpstreamToken { token: access.token.clone(), dpop });
        }
        let skew = self.skew_secs;
        // Boxed: the refresh's state (lock, provider call, store writes) is large, and every
        // proxied request's future would otherwise carry — and copy — it.
        let due = move |r: &TokenRecord| r.due_for(audience, crate::clock::now(), skew);
        let token = Box::pin(self.refresh_locked(handle, audience, true, due)).await?;
        Ok(UpstreamToken { token, dpop })
    }

    /// After an upstream refused `rejected` as `invalid_token`: refresh unless another request
    /// already replaced that token.
    pub async fn refresh_after_rejection(
        &self,
        handle: &TokenHandle,
        audience: Option<&Audience>,
        rejected: &Secret,
    ) -> Result<Secret, TokenError> {
        let rejected = rejected.clone();
        let needed = move |r: &TokenRecord| r.access(audience).is_none_or(|a| *a.token == rejected);
        Box::pin(self.refresh_locked(handle, audience, false, needed)).await
    }

    /// The token `credential` names, obtained or refreshed when due.
    pub async fn token_for(&self, credential: Credential<'_>) -> Result<UpstreamToken, TokenError> {
        match credential {
            Credential::Session(handle, audience) => self.valid_access_token(handle, audience).await,
            Credential::Client(audience) => self.client_token(audience).await,
        }
    }

    /// After an upstream refused `rejected` (`invalid_token`): a new token for `credential`
    /// unless another request already replaced it.
    pub async fn renew_after_rejection(
        &self,
        credential: Credential<'_>,
        rejected: &UpstreamToken,
    ) -> Result<UpstreamToken, TokenError> {
        match credential {
            Credential::Session(handle, audience) => {
                let token = self.refresh_after_rejection(handle, audience, &rejected.token).await?;
                Ok(UpstreamToken { token, dpop: rejected.dpop.clone() })
            }
            Credential::Client(audience) => {
                self.client_token_after_rejection(audience, &rejected.token).await
            }
        }
    }
}
