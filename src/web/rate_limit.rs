//! Fixed-window rate limiting in the store, shared by the programs: every instance on the same
//! store counts together, and a counter dies with its window, so a flood leaves at most one
//! key per client behind.

use crate::store::{Store, StoreError};
use actix_web::HttpRequest;
use std::time::Duration;

/// At most `max` events per `window`, per counter key.
#[derive(Debug, Clone, Copy)]
pub struct RateLimit {
    max: u32,
    window: Duration,
}

impl RateLimit {
    /// `max` events per `window_secs` (a zero window counts as one second).
    pub fn new(max: u32, window_secs: u64) -> Self {
        Self { max, window: Duration::from_secs(window_secs.max(1)) }
    }

    /// Counts one request under `key`. `Ok(None)`: admitted (at most `max` counted in this
    /// window, this one included). `Ok(Some(secs))`: refused; the window ends in `secs`.
    pub async fn admit(&self, store: &Store, key: &str) -> Result<Option<u64>, StoreError> {
        self.count_past(store, key, i64::from(self.max) + 1).await
    }

    /// Counts one event under `key` and reports whether that spent the window's budget
    /// (`max` events counted): `Ok(Some(secs))` with the seconds the window still runs. For
    /// limits that lock out once reached, such as failed logins.
    pub async fn spend(&self, store: &Store, key: &str) -> Result<Option<u64>, StoreError> {
        self.count_past(store, key, i64::from(self.max)).await
    }

    /// The window length.
    pub fn window(&self) -> Duration {
        self.window
    }

    async fn count_past(&self, store: &Store, key: &str, threshold: i64) -> Result<Option<u64>, StoreError> {
        let n = store.incr(key, self.window).await?;
        if n < threshold {
            return Ok(None);
        }
        let left = store.ttl(key).await?.filter(|d| !d.is_zero()).unwrap_or(self.window).min(self.window);
        Ok(Some(left.as_secs().max(1)))
    }
}

/// The store-key part naming the client that sent `req`: a hash of the connection's peer
/// address. A forwarding header is not trusted (any client can send one); behind a reverse
/// proxy every client shares the proxy's address, so limits must be sized for that.
pub fn client_key(req: &HttpRequest) -> String {
    crate::crypto::sha256_b64(client_ip(req).as_bytes())
}

/// The client address as the connection saw it (empty when unknown).
pub fn client_ip(req: &HttpRequest) -> String {
    req.peer_addr().map(|a| a.ip().to_string()).unwrap_or_default()
}
