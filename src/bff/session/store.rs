//! actix-session's `SessionStore` over the project's [`Store`]: the store key is the keyed hash
//! of the session id (the raw id never reaches Redis or a log line), the state is sealed with the
//! hashed key as associated data, and the store key's TTL follows the session's own idle and
//! absolute expiry. A store failure is flagged for [`watch_store_failures`], which turns it into
//! 503 `store_unavailable` instead of actix-session's opaque 500 — never into a logout.

use super::record::SessionRecord;
use super::scope::{note_store_failure, remember_loaded};
use super::stored::{SessionState, decode_state, encode_state};
use crate::bff::keys::Keys;
use crate::bff::near_cache::NearCache;
use crate::bff::tokens::{CachedTokens, cache_tokens};
use crate::store::{Store, StoreError};
use actix_session::storage::{LoadError, SaveError, SessionKey, SessionStore, UpdateError};
use actix_web::cookie::time::Duration as CookieDuration;
use std::sync::Arc;
use std::time::Duration;

fn note_failure(e: &StoreError) {
    tracing::warn!(error = %e, "session store call failed");
    note_store_failure();
}

/// What the near cache keeps of a session: the state handed to actix-session and its record,
/// parsed once per load rather than once per request.
struct CachedSession {
    state: SessionState,
    record: Arc<SessionRecord>,
}

/// Channel on the store bus announcing ended sessions; each payload is one hashed session id
/// (the suffix of its `session:` store key). Every end of a session is announced, whatever ended
/// it, for whatever on any instance holds something of that session.
pub const SESSION_ENDED_CHANNEL: &str = "session-ended";

/// Store keys of sessions start with this, followed by the keyed hash of the session id.
const SESSION_KEY_PREFIX: &str = "session:";

/// Length of a session id: 32 random bytes, base64url without padding.
pub const SESSION_ID_LEN: usize = 43;

/// True when `id` has the exact shape of an id this BFF issues (checked before any lookup).
pub fn is_well_formed_id(id: &str) -> bool {
    id.len() == SESSION_ID_LEN && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Store key of the index of sessions by subject.
pub fn sub_index_key(sub: &str) -> String {
    format!("idx:sub:{}", crate::crypto::sha256_b64(sub.as_bytes()))
}

/// Store key of the index of sessions by provider session id.
pub fn sid_index_key(sid: &str) -> String {
    format!("idx:sid:{}", crate::crypto::sha256_b64(sid.as_bytes()))
}

/// The session store.
#[derive(Clone)]
pub struct BffSessionStore {
    store: Store,
    keys: Keys,
    cache: NearCache,
}

impl BffSessionStore {
    /// A session store over `store` without a near cache of its own (its changes are still
    /// announced to the caches of running instances).
    pub fn new(store: Store, keys: Keys) -> Self {
        let cache = NearCache::announcing_only(&store);
        Self { store, keys, cache }
    }

    /// Keeps what the session middleware reads in `cache` (announcing every write to it).
    pub fn with_near_cache(mut self, cache: NearCache) -> Self {
        self.cache = cache;
        self
    }

    /// The store it reads and writes.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Store key of the session with the (already hashed) id.
    pub fn key_of_hashed(hashed: &str) -> String {
        format!("{SESSION_KEY_PREFIX}{hashed}")
    }

    fn key_of(&self, id: &str) -> String {
        self.keys.hashed_key(SESSION_KEY_PREFIX, id)
    }

    fn seal(&self, key: &str, state: &SessionState) -> Result<Vec<u8>, serde_json::Error> {
        Ok(self.keys.sealer.seal(key.as_bytes(), &encode_state(state)?))
    }

    fn ttl_for(state: &SessionState, fallback: &CookieDuration) -> Duration {
        let now = crate::clock::now();
        match SessionRecord::from_state(state) {
            Some(r) => {
                Duration::from_secs(r.idle_expires_at.min(r.expires_at).saturating_sub(now).max(1) as u64)
            }
            None => Duration::from_secs(fallback.whole_seconds().max(1) as u64),
        }
    }

    /// Opens a sealed session state, with the record in it (resealing it under the current key
    /// when an older one sealed it; the content is unchanged, so caches need not hear of it).
    async fn open_state(&self, key: &str, sealed: &[u8]) -> Option<(SessionState, Option<SessionRecord>)> {
        let Ok((plain, old_key)) = self.keys.sealer.open_noting_key(key.as_bytes(), sealed) else {
            tracing::warn!("a session record could not be opened; treating it as absent");
            return None;
        };
        let opened = decode_state(&plain);
        if old_key && let Some(Ok(plain)) = opened.as_ref().map(|(state, _)| encode_state(state)) {
            crate::bff::sealed::reseal(&self.store, &self.keys, key, sealed, &plain).await;
        }
        opened
    }

    /// Reads and opens a session's state by its store key (from the store, not the cache).
    pub async fn read_state(&self, key: &str) -> Result<Option<SessionState>, StoreError> {
        let Some(sealed) = self.store.get(key).await? else { return Ok(None) };
        Ok(self.open_state(key, &sealed).await.map(|(state, _)| state))
    }

    /// A session's state from the near cache, else from the store (then cached). When this
    /// instance knows the session's token record key but does not hold the record, both are
    /// read in one round trip, so a miss costs one round trip, not two. The parsed record is
    /// handed to the request's scope either way.
    async fn read_state_cached(&self, key: &str) -> Result<Option<SessionState>, StoreError> {
        if let Some(cached) = self.cache.get::<CachedSession>(key) {
            remember_loaded(cached.record.clone());
            return Ok(Some(cached.state.clone()));
        }
        // Boxed: store futures are large, and the hit above is the common case.
        Box::pin(self.read_state_uncached(key)).await
    }

    async fn read_state_uncached(&self, key: &str) -> Result<Option<SessionState>, StoreError> {
        let ticket = self.cache.begin(key);
        let linked = self.cache.link(key).filter(|t| self.cache.peek::<CachedTokens>(t).is_none());
        let sealed = match &linked {
            Some(tokens) => {
                let tokens_ticket = self.cache.begin(tokens);
                let mut values = self.store.mget(&[key, tokens]).await?.into_iter();
                let (sealed, raw_tokens) = (values.next().flatten(), values.next().flatten());
                if let Some(raw) = raw_tokens {
                    cache_tokens(&self.store, &self.cache, &self.keys, tokens, tokens_ticket, raw).await;
                }
                sealed
            }
            None => self.store.get(key).await?,
        };
        let Some(sealed) = sealed else { return Ok(None) };
        let Some((state, record)) = self.open_state(key, &sealed).await else { return Ok(None) };
        if let Some(record) = record.map(Arc::new) {
            if linked.is_none() {
                self.cache.set_link(key, record.handle.key(&self.keys).to_owned(), Some(record.expires_at));
            }
            let expires_at = record.idle_expires_at.min(record.expires_at);
            remember_loaded(record.clone());
            let cached = CachedSession { state: state.clone(), record };
            self.cache.fill(key, ticket, Arc::new(cached), expires_at);
        }
        Ok(Some(state))
    }

    /// Slides the idle expiry of the session at `key` as a request would (to `idle_timeout_secs`
    /// from now, never past its absolute expiry, written only when that moves it by a tenth of
    /// the idle timeout or more), by compare-and-swap: a session deleted or changed meanwhile is
    /// neither brought back nor overwritten. For activity that is not a request (a relayed
    /// WebSocket with `bff.websocket_slides_session`). Returns whether it was written.
    pub async fn slide_idle(&self, key: &str, idle_timeout_secs: u64) -> Result<bool, StoreError> {
        let Some(sealed) = self.store.get(key).await? else { return Ok(false) };
        let Some((mut state, Some(record))) = self.open_state(key, &sealed).await else { return Ok(false) };
        let now = crate::clock::now();
        let slid = (now + idle_timeout_secs as i64).min(record.expires_at);
        let live = now < record.expires_at && now < record.idle_expires_at;
        if !live || slid - record.idle_expires_at < (idle_timeout_secs / 10).max(1) as i64 {
            return Ok(false);
        }
        let record = SessionRecord { idle_expires_at: slid, last_seen: now, ..record };
        let Ok(json) = serde_json::to_string(&record) else { return Ok(false) };
        state.insert(super::record::RECORD_KEY.to_owned(), json);
        let Ok(new) = self.seal(key, &state) else { return Ok(false) };
        let ttl = Self::ttl_for(&state, &CookieDuration::seconds(1));
        let written = self.store.compare_and_swap(key, &sealed, &new, ttl).await?;
        if written {
            self.cache.announce(&[key]).await;
        }
        Ok(written)
    }

    /// Deletes a session by its store key, with its token record and index entries; every
    /// instance's near cache forgets both records, and the end is announced on
    /// [`SESSION_ENDED_CHANNEL`]. Every way a session ends comes through here.
    pub async fn delete_by_key(&self, key: &str) -> Result<(), StoreError> {
        let state = self.read_state(key).await?;
        let record = state.as_ref().and_then(SessionRecord::from_state);
        let tokens = record.as_ref().map(|r| r.handle.key(&self.keys).to_owned());
        let deleted = async {
            self.store.del(key).await?;
            if let Some(tokens) = &tokens {
                self.store.del(tokens).await?;
            }
            Ok::<_, StoreError>(())
        }
        .await;
        // Announced even after a failed delete: whatever was deleted must not be served.
        let changed: Vec<&str> = std::iter::once(key).chain(tokens.as_deref()).collect();
        self.cache.announce(&changed).await;
        deleted?;
        let member = key.trim_start_matches(SESSION_KEY_PREFIX);
        if let Some(record) = record {
            self.store.index_remove(&sub_index_key(&record.sub), member).await?;
            if let Some(sid) = &record.sid {
                self.store.index_remove(&sid_index_key(sid), member).await?;
            }
        }
        // Advisory: the session is already gone from the store.
        if let Err(e) = self.store.publish(SESSION_ENDED_CHANNEL, member.as_bytes()).await {
            tracing::warn!(error = %e, "could not announce an ended session");
        }
        Ok(())
    }
}

fn other(e: StoreError) -> anyhow::Error {
    note_failure(&e);
    anyhow::Error::new(e)
}

impl SessionStore for BffSessionStore {
    async fn load(&self, session_key: &SessionKey) -> Result<Option<SessionState>, LoadError> {
        if !is_well_formed_id(session_key.as_ref()) {
            return Ok(None);
        }
        let key = self.key_of(session_key.as_ref());
        self.read_state_cached(&key).await.map_err(|e| LoadError::Other(other(e)))
    }

    async fn save(&self, state: SessionState, ttl: &CookieDuration) -> Result<SessionKey, SaveError> {
        let id = crate::crypto::random_token(32);
        let hashed = self.keys.hash_id(&id);
        let key = Self::key_of_hashed(&hashed);
        let sealed = self.seal(&key, &state).map_err(|e| SaveError::Serialization(e.into()))?;
        let ttl = Self::ttl_for(&state, ttl);
        let stored = self.store.set_nx(&key, &sealed, ttl).await.map_err(|e| SaveError::Other(other(e)))?;
        if !stored {
            return Err(SaveError::Other(anyhow::anyhow!("session id collision")));
        }
        if let Some(record) = SessionRecord::from_state(&state) {
            let tokens = record.handle.key(&self.keys).to_owned();
            self.cache.announce_link(&key, tokens, record.expires_at).await;
            let index = async {
                self.store.index_add(&sub_index_key(&record.sub), &hashed, record.expires_at).await?;
                if let Some(sid) = &record.sid {
                    self.store.index_add(&sid_index_key(sid), &hashed, record.expires_at).await?;
                }
                Ok::<_, StoreError>(())
            };
            index.await.map_err(|e| SaveError::Other(other(e)))?;
        }
        tracing::info!(session = %hashed, "session created");
        SessionKey::try_from(id).map_err(|e| SaveError::Other(anyhow::Error::new(e)))
    }

    async fn update(
        &self,
        session_key: SessionKey,
        state: SessionState,
        ttl: &CookieDuration,
    ) -> Result<SessionKey, UpdateError> {
        if !is_well_formed_id(session_key.as_ref()) {
            return Err(UpdateError::Other(anyhow::anyhow!("malformed session id")));
        }
        let key = self.key_of(session_key.as_ref());
        // Never resurrect a session deleted (logout, back-channel) while this request ran.
        let alive = self.store.ttl(&key).await.map_err(|e| UpdateError::Other(other(e)))?.is_some();
        if alive {
            let sealed = self.seal(&key, &state).map_err(|e| UpdateError::Serialization(e.into()))?;
            let ttl = Self::ttl_for(&state, ttl);
            let written = self.store.set(&key, &sealed, ttl).await;
            self.cache.announce(&[&key]).await;
            written.map_err(|e| UpdateError::Other(other(e)))?;
        }
        Ok(session_key)
    }

    async fn update_ttl(&self, session_key: &SessionKey, ttl: &CookieDuration) -> Result<(), anyhow::Error> {
        if !is_well_formed_id(session_key.as_ref()) {
            return Ok(());
        }
        let key = self.key_of(session_key.as_ref());
        let ttl = Duration::from_secs(ttl.whole_seconds().max(1) as u64);
        let extended = self.store.expire(&key, ttl).await;
        self.cache.announce(&[&key]).await;
        extended.map_err(other)?;
        Ok(())
    }

    async fn delete(&self, session_key: &SessionKey) -> Result<(), anyhow::Error> {
        if !is_well_formed_id(session_key.as_ref()) {
            return Ok(());
        }
        let key = self.key_of(session_key.as_ref());
        self.delete_by_key(&key).await.map_err(other)?;
        tracing::info!(session = %self.keys.hash_id(session_key.as_ref()), "session deleted");
        Ok(())
    }
}
