//! The state store shared by the three programs: Redis (one server or a Sentinel-managed
//! master, over multiplexed connections; or a Cluster) in production, or an embedded in-memory
//! store for a single instance.
//!
//! The interface is deliberately small — bytes under namespaced keys with TTLs, atomic
//! compare-and-set, counters and expiring indexes — so that both back-ends can pass one
//! conformance suite (`tests/store_conformance.rs`). Callers serialise their own records and
//! never store a secret in the clear: they hash it or seal it first.

mod cluster;
mod events;
mod memory;
mod redis;
mod redis_ops;
mod sentinel;

pub use events::{Event, EventBus};

pub use cluster::ClusterStore;
pub use memory::MemoryStore;
pub use redis::RedisStore;

use crate::config::StoreConfig;
// The Redis back-ends' operations, for `dispatch!`.
use redis_ops::RedisOps as _;
use std::sync::Arc;
use std::time::Duration;

/// Why a store operation failed. Callers answer 503 `store_unavailable` for any of these;
/// a store error never means "logged out".
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store could not be reached or answered with an error.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The store did not answer within the configured time.
    #[error("store operation timed out")]
    Timeout,
    /// A write was made on the master, but fewer replicas than `redis_wait_replicas`
    /// acknowledged it in time: a failover now could lose it.
    #[error("store write acknowledged by {acked} of {wanted} replicas")]
    NotReplicated {
        /// Replicas that acknowledged it.
        acked: i64,
        /// `redis_wait_replicas`.
        wanted: u32,
    },
}

/// A handle to the configured store; cheap to clone.
#[derive(Clone)]
pub enum Store {
    /// Embedded, process-local.
    Memory(Arc<MemoryStore>),
    /// Redis over multiplexed connections: one server, or the master Sentinel names.
    Redis(RedisStore),
    /// Redis Cluster through a pool of cluster connections.
    Cluster(ClusterStore),
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Store::Memory(_) => f.write_str("Store::Memory"),
            Store::Redis(_) => f.write_str("Store::Redis"),
            Store::Cluster(_) => f.write_str("Store::Cluster"),
        }
    }
}

/// Dispatches one call to whichever back-end this store is, in a `store` span (a trace's
/// child span; `debug`, so logs at `info` never pay for it) naming the back-end and the
/// operation — never a key or a value.
macro_rules! dispatch {
    ($self:ident . $method:ident ( $($arg:expr),* )) => {{
        let span = tracing::debug_span!(
            "store",
            otel.kind = "client",
            db.system = $self.system(),
            db.operation = stringify!($method),
        );
        let call = async move {
            match $self {
                Store::Memory(m) => m.$method($($arg),*).await,
                Store::Redis(r) => r.$method($($arg),*).await,
                Store::Cluster(c) => c.$method($($arg),*).await,
            }
        };
        tracing::Instrument::instrument(call, span).await
    }};
}

impl Store {
    /// Connects to what `config` names; with no Redis configured, an in-memory store and a
    /// warning that it serves one instance only. `component` names the program in that warning.
    pub async fn connect(config: &StoreConfig, component: &str) -> Result<Store, StoreError> {
        // The configuration loader refuses these combinations with the key's name; this guards
        // stores built in code.
        config.check().map_err(|(key, why)| StoreError::Unavailable(format!("{key} {why}")))?;
        if let Some(url) = &config.redis_url {
            let store = RedisStore::connect(url, config).await?;
            return Ok(Store::Redis(store));
        }
        if !config.redis_cluster_urls.is_empty() {
            return Ok(Store::Cluster(ClusterStore::connect(&config.redis_cluster_urls, config).await?));
        }
        if let Some(master) = &config.redis_sentinel_master {
            let store = RedisStore::connect_sentinel(&config.redis_sentinel_urls, master, config).await?;
            return Ok(Store::Redis(store));
        }
        tracing::warn!(
            component,
            "no redis_url, redis_cluster_urls or redis_sentinel_urls configured: using the embedded in-memory store, which serves one instance only and forgets everything on restart"
        );
        Ok(Store::Memory(Arc::new(MemoryStore::new(&config.redis_namespace))))
    }

    /// A fresh in-memory store (tests, demo).
    pub fn memory(namespace: &str) -> Store {
        Store::Memory(Arc::new(MemoryStore::new(namespace)))
    }

    /// The back-end's name in trace spans (`db.system`).
    fn system(&self) -> &'static str {
        match self {
            Store::Memory(_) => "memory",
            Store::Redis(_) | Store::Cluster(_) => "redis",
        }
    }

    /// The local end of the event bus: every [`Event`] published by any instance sharing
    /// this store (and namespace), plus [`Event::Lost`] when the subscription broke.
    pub fn events(&self) -> &EventBus {
        match self {
            Store::Memory(m) => m.events(),
            Store::Redis(r) => r.events(),
            Store::Cluster(c) => c.events(),
        }
    }

    /// Publishes `payload` on `channel` to every instance's [`Store::events`].
    pub async fn publish(&self, channel: &str, payload: &[u8]) -> Result<(), StoreError> {
        dispatch!(self.publish(channel, payload))
    }

    /// Checks that the store answers (readiness).
    pub async fn ping(&self) -> Result<(), StoreError> {
        dispatch!(self.ping())
    }

    /// The value at `key`, if present and not expired.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        dispatch!(self.get(key))
    }

    /// The values at `keys`, in order, in one round trip (`None` where absent or expired).
    pub async fn mget(&self, keys: &[&str]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        dispatch!(self.mget(keys))
    }

    /// Stores `value` at `key` for `ttl`, replacing any value.
    pub async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), StoreError> {
        dispatch!(self.set(key, value, ttl))
    }

    /// Stores `value` only if `key` is absent; true when it was stored.
    pub async fn set_nx(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool, StoreError> {
        dispatch!(self.set_nx(key, value, ttl))
    }

    /// Removes and returns the value at `key`, atomically (single-use secrets).
    pub async fn get_del(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        dispatch!(self.get_del(key))
    }

    /// Deletes `key`; true if it existed.
    pub async fn del(&self, key: &str) -> Result<bool, StoreError> {
        dispatch!(self.del(key))
    }

    /// Replaces the value at `key` with `new` (and `ttl`) only if it is currently `expected`;
    /// true when replaced.
    pub async fn compare_and_swap(
        &self,
        key: &str,
        expected: &[u8],
        new: &[u8],
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        dispatch!(self.compare_and_swap(key, expected, new, ttl))
    }

    /// [`Store::compare_and_swap`] for a write that must survive a master failover: when
    /// `redis_wait_replicas` is set, a swap that took place counts only once that many replicas
    /// acknowledged it (`WAIT`); fewer in time is [`StoreError::NotReplicated`] — the swap may
    /// then still be on the master alone. The memory store has nothing to wait for.
    pub async fn compare_and_swap_replicated(
        &self,
        key: &str,
        expected: &[u8],
        new: &[u8],
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        dispatch!(self.compare_and_swap_replicated(key, expected, new, ttl))
    }

    /// Deletes `key` only if its value is `expected` (lock release); true when deleted.
    pub async fn compare_and_delete(&self, key: &str, expected: &[u8]) -> Result<bool, StoreError> {
        dispatch!(self.compare_and_delete(key, expected))
    }

    /// Sets a new TTL on an existing key; false if the key does not exist.
    pub async fn expire(&self, key: &str, ttl: Duration) -> Result<bool, StoreError> {
        dispatch!(self.expire(key, ttl))
    }

    /// Remaining lifetime of `key`, `None` if absent.
    pub async fn ttl(&self, key: &str) -> Result<Option<Duration>, StoreError> {
        dispatch!(self.ttl(key))
    }

    /// Increments the counter at `key` and returns the new value; a counter created by this
    /// call expires after `window` (fixed-window rate limiting).
    pub async fn incr(&self, key: &str, window: Duration) -> Result<i64, StoreError> {
        dispatch!(self.incr(key, window))
    }

    /// Adds `member` to the index at `key` until `expires_at` (Unix seconds). The index itself
    /// lives as long as its longest-lived member.
    pub async fn index_add(&self, key: &str, member: &str, expires_at: i64) -> Result<(), StoreError> {
        dispatch!(self.index_add(key, member, expires_at))
    }

    /// Removes `member` from the index at `key`.
    pub async fn index_remove(&self, key: &str, member: &str) -> Result<(), StoreError> {
        dispatch!(self.index_remove(key, member))
    }

    /// The members of the index at `key` that have not expired (expired ones are pruned).
    pub async fn index_members(&self, key: &str) -> Result<Vec<String>, StoreError> {
        dispatch!(self.index_members(key))
    }
}
