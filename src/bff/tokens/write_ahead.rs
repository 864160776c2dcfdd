//! The write-ahead around a refresh-token grant, under the session's refresh lock: the refresh
//! token leaves the stored record before it is sent ([`TokenCare::take_refresh_token`]), goes
//! back when the provider was not reached ([`TokenCare::put_back`]), and the new tokens replace
//! the taken copy by compare-and-swap ([`TokenCare::store_refreshed`]). See [`super::refresh`]
//! for why.

use super::lock::Notice;
use super::refresh::{Flight, LOCK_MARGIN};
use super::undo::Undo;
use super::{TokenCare, TokenError, TokenRecord};
use crate::config::Secret;
use crate::oidc::TokenResponse;

impl TokenCare {
    /// Stores the refreshed tokens over the write-ahead copy (`taken`) by compare-and-swap.
    pub(super) async fn store_refreshed(
        &self,
        flight: &Flight<'_>,
        taken: &[u8],
        record: &TokenRecord,
        response: &TokenResponse,
        refresh_token: &Secret,
    ) -> (Result<Secret, TokenError>, Notice) {
        let key = flight.key;
        let rotated = response.refresh_token.as_ref().is_some_and(|new| new != refresh_token);
        let mut new = match flight.audience {
            None => TokenRecord::from_response(
                response,
                record.session_expires_at,
                Some(record),
                self.keep_id_token,
            ),
            Some(a) => record.with_audience_response(a, response, self.keep_id_token),
        };
        if let Some(t) = new.refresh_expires_at {
            new.session_expires_at = new.session_expires_at.min(t);
        }
        let sealed = self.keys.sealer.seal(key.as_bytes(), &new.to_stored());
        match self.store.compare_and_swap(key, taken, &sealed, new.ttl()).await {
            Ok(true) => {
                // Other instances' copies hold the old pair, which a request there would only
                // send once (an upstream 401 refreshes from the store): no need to wait.
                self.cache.announce_in_background(&[key]);
                self.count("success");
                (Ok(response.access_token.clone()), Notice::Done)
            }
            Ok(false) if !rotated => {
                self.count("success");
                (Ok(response.access_token.clone()), Notice::Done)
            }
            Ok(false) => {
                // Someone replaced or deleted the record meanwhile; our rotated pair cannot be
                // kept consistently, so the session ends rather than risk a reuse.
                self.count("store_error");
                self.delete(key).await;
                (Err(TokenError::SessionExpired), Notice::Ended)
            }
            Err(e) => {
                // The store holds the record without a refresh token (the write-ahead): once
                // it is back, the session ends there instead of reusing the consumed token.
                tracing::warn!(error = %e, rotated, "refreshed tokens could not be stored");
                self.count("store_error");
                (Err(e.into()), Notice::Done)
            }
        }
    }

    /// Replaces the stored record (`raw`) by a copy without its refresh token. Returns the new
    /// raw record, or the answer when that is impossible (nothing was sent to the provider);
    /// when the store call failed, `undo` is set to put the token back should it have run.
    pub(super) async fn take_refresh_token(
        &self,
        key: &str,
        raw: &[u8],
        record: &TokenRecord,
        undo: &mut Option<Undo>,
    ) -> Result<Vec<u8>, (Result<Secret, TokenError>, Notice)> {
        let mut without = record.clone();
        without.refresh_token = None;
        let sealed = self.keys.sealer.seal(key.as_bytes(), &without.to_stored());
        // Replicated before the provider sees the token: a failover must not bring back a record
        // that still holds it (with `redis_wait_replicas`; otherwise the swap is on the master).
        match self.store.compare_and_swap_replicated(key, raw, &sealed, record.ttl()).await {
            Ok(true) => Ok(sealed),
            // Only a logout (or an expired lock) changes the record under the lock: re-read.
            Ok(false) => Err((Err(TokenError::AuthServerUnavailable), Notice::Done)),
            Err(e) => {
                *undo = Some(Undo {
                    store: self.store.clone(),
                    key: key.to_string(),
                    taken: sealed,
                    raw: raw.to_vec(),
                    ttl: record.ttl(),
                    until: tokio::time::Instant::now() + self.lock.ttl.saturating_sub(LOCK_MARGIN),
                });
                Err((Err(e.into()), Notice::Done))
            }
        }
    }

    /// The provider was not reached: the refresh token was not consumed, so it goes back.
    pub(super) async fn put_back(&self, key: &str, taken: &[u8], raw: &[u8], record: &TokenRecord) {
        if let Err(e) = self.store.compare_and_swap(key, taken, raw, record.ttl()).await {
            // The session will end when its access token expires; never a reuse.
            tracing::warn!(error = %e, "the refresh token could not be put back");
        }
    }
}
