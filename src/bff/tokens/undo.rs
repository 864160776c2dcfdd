//! Undoing a write-ahead whose store call failed.
//!
//! A compare-and-swap that timed out may still run once the store wakes up (a stalled Redis
//! reads the command later). For the write-ahead that takes the refresh token out of the
//! record before the provider is called, that would leave the record without its refresh token
//! although the provider never saw it: the session would end at the next refresh for nothing.
//! So the request answers 503, and before the refresh lock is released the token is put back
//! if the write-ahead turns out to have run.

use crate::store::Store;
use std::time::Duration;
use tokio::time::Instant;

/// A pending undo: swap `taken` back to `raw` under `key` if the store ever shows `taken`.
pub(super) struct Undo {
    pub(super) store: Store,
    pub(super) key: String,
    pub(super) taken: Vec<u8>,
    pub(super) raw: Vec<u8>,
    pub(super) ttl: Duration,
    /// Looked for until then (the refresh lock's budget: after it, others may refresh).
    pub(super) until: Instant,
}

impl Undo {
    /// Looks with growing pauses until the token is back or `until`. A swap that finds the
    /// record as it was is not the end: the late write-ahead may still arrive.
    pub(super) async fn run(self) {
        let mut pause = Duration::from_millis(50);
        loop {
            tokio::time::sleep(pause).await;
            if Instant::now() >= self.until {
                return;
            }
            if let Ok(true) = self.store.compare_and_swap(&self.key, &self.taken, &self.raw, self.ttl).await {
                tracing::info!("a refresh token taken by a store call that failed was put back");
                return;
            }
            pause = (pause * 2).min(Duration::from_secs(1));
        }
    }
}
