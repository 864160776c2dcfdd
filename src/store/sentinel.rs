//! Redis Sentinel: where the master is. The store itself is [`super::RedisStore`], whose
//! connections are opened through a [`SentinelClient`] — each asks the Sentinels for the
//! current master and checks (`ROLE`) that it really is one — and whose event subscription
//! asks the same way before every (re)subscription.
//!
//! The URLs are the Sentinels' own; the master is reached with default connection settings
//! (no password, database 0), at the address the Sentinels announce.

use super::StoreError;
use super::redis_ops::unavailable;
use crate::config::RedisUrl;
use redis::sentinel::{SentinelClient, SentinelServerType};

/// A client that finds the master the Sentinels at `urls` know as `master`, on demand.
pub(super) fn client(urls: &[RedisUrl], master: &str) -> Result<SentinelClient, StoreError> {
    let urls: Vec<String> = urls.iter().map(|u| u.expose().to_string()).collect();
    SentinelClient::build(urls, master.to_string(), None, SentinelServerType::Master).map_err(unavailable)
}
