//! Redis Sentinel: where the master is. The store itself is [`super::RedisStore`] over a
//! deadpool-redis Sentinel pool — every new connection asks the Sentinels for the current
//! master and checks (`ROLE`) that it really is one — and its event subscription asks the
//! same way before every (re)subscription.
//!
//! The URLs are the Sentinels' own; the master is reached with default connection settings
//! (no password, database 0), the way the Sentinels announce it.

use super::StoreError;
use super::redis::unavailable;
use crate::config::RedisUrl;
use deadpool_redis::sentinel::{Config, Pool, SentinelServerType};
use deadpool_redis::{PoolConfig, Runtime};
use redis::sentinel::SentinelClient;

fn urls_of(urls: &[RedisUrl]) -> Vec<String> {
    urls.iter().map(|u| u.expose().to_string()).collect()
}

/// A pool of connections to the master the Sentinels at `urls` know as `master`.
pub(super) fn pool(urls: &[RedisUrl], master: &str, pool: PoolConfig) -> Result<Pool, StoreError> {
    let mut cfg = Config::from_urls(urls_of(urls), master.to_string(), SentinelServerType::Master);
    cfg.pool = Some(pool);
    cfg.create_pool(Some(Runtime::Tokio1)).map_err(unavailable)
}

/// A client that finds the current master on demand (for the event subscription).
pub(super) fn client(urls: &[RedisUrl], master: &str) -> Result<SentinelClient, StoreError> {
    SentinelClient::build(
        urls_of(urls),
        master.to_string(),
        None,
        redis::sentinel::SentinelServerType::Master,
    )
    .map_err(unavailable)
}
