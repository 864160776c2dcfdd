//! What the near caches of all instances tell each other over the store's event bus: which
//! keys changed (every instance forgets them), which token record belongs to a new session (a
//! hint), and — from the bus itself — when messages may have been lost (everything is forgotten).

use super::{Inner, NearCache};
use crate::store::{Event, Store};
use std::sync::Weak;
use tokio::sync::broadcast::error::RecvError;

/// Bus channel of invalidations; the payload is the changed store keys, one per line.
pub const INVALIDATE_CHANNEL: &str = "near-cache-invalidate";

/// Bus channel announcing which token record belongs to a new session:
/// `{session key}\n{token record key}` (store keys, hashes only). A hint: a wrong link costs
/// one useless read, since every record is looked up under the key its own session derives.
pub const LINK_CHANNEL: &str = "near-cache-link";

impl NearCache {
    /// The store announcements go through: this cache's, or the announcing-only one's.
    fn announcer_store(&self) -> Option<&Store> {
        self.inner.as_ref().map(|inner| &inner.store).or(self.announcer.as_ref())
    }

    /// After `keys` were written or deleted: forgets them here and tells every other instance
    /// to. A failed announcement is logged; the entries elsewhere then live at most
    /// [`MAX_AGE`](super::MAX_AGE) (a store that cannot publish usually also broke the bus,
    /// which flushes).
    pub async fn announce(&self, keys: &[&str]) {
        let Some(store) = self.announcer_store() else { return };
        self.forget(keys);
        publish_invalidation(store, keys.join("\n")).await;
    }

    /// Like [`Self::announce`], but the other instances are told in the background: for a
    /// change that is not a revocation (a refresh), so the request that made it does not wait
    /// for the publication. Forgotten here at once.
    pub fn announce_in_background(&self, keys: &[&str]) {
        let Some(store) = self.announcer_store().cloned() else { return };
        self.forget(keys);
        let payload = keys.join("\n");
        tokio::spawn(async move { publish_invalidation(&store, payload).await });
    }

    /// Tells every instance which token record belongs to the new session at `session_key`
    /// (absolute expiry `expires_at`, Unix seconds), so that even its first request there reads
    /// both in one round trip.
    pub async fn announce_link(&self, session_key: &str, tokens_key: String, expires_at: i64) {
        let Some(inner) = &self.inner else { return };
        let payload = format!("{session_key}\n{tokens_key}");
        self.set_link(session_key, tokens_key, Some(expires_at));
        if let Err(e) = inner.store.publish(LINK_CHANNEL, payload.as_bytes()).await {
            tracing::warn!(error = %e, "a near-cache link could not be announced");
        }
    }
}

async fn publish_invalidation(store: &Store, payload: String) {
    if let Err(e) = store.publish(INVALIDATE_CHANNEL, payload.as_bytes()).await {
        tracing::warn!(error = %e, "a near-cache invalidation could not be announced");
    }
}

/// Applies the bus to the cache until the cache is gone.
pub(super) async fn listen(cache: Weak<Inner>, mut rx: tokio::sync::broadcast::Receiver<Event>) {
    loop {
        let event = rx.recv().await;
        let Some(inner) = cache.upgrade() else { return };
        let cache = NearCache { inner: Some(inner), announcer: None };
        match event {
            Ok(Event::Message { channel, payload }) if channel == INVALIDATE_CHANNEL => {
                let text = String::from_utf8_lossy(&payload);
                let keys: Vec<&str> = text.split('\n').collect();
                cache.forget(&keys);
            }
            Ok(Event::Message { channel, payload }) if channel == LINK_CHANNEL => {
                if let Some((session, tokens)) = String::from_utf8_lossy(&payload).split_once('\n') {
                    // A new session: it lives at most the configured absolute lifetime.
                    cache.set_link(session, tokens.to_string(), None);
                }
            }
            Ok(Event::Message { .. }) => {}
            Ok(Event::Lost) | Err(RecvError::Lagged(_)) => cache.flush(),
            Err(RecvError::Closed) => return,
        }
    }
}
