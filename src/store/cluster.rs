//! Redis Cluster back-end through deadpool-redis's cluster pool, with the same operations,
//! scripts and time bound as [`super::redis::RedisStore`].
//!
//! Keys get a hash tag: `kind:rest` is stored as `{namespace}:kind:{rest}`, so that the records
//! of one session (`session:{h}`, `tokens:{h}`, `refresh-lock:{h}`) live in one slot, on one
//! master. Every operation touches one key, so no command ever spans slots. Events use classic
//! PUBLISH/PSUBSCRIBE, which a cluster broadcasts to every node: one subscription on any node
//! (tried in turn) sees them all.

use super::StoreError;
use super::events::{EventBus, spawn_redis_subscriber_any};
use super::redis::{CAD, CAS, INCR, INDEX_ADD, INDEX_MEMBERS, INDEX_REMOVE, px};
use crate::config::{RedisUrl, StoreConfig};
use deadpool_redis::cluster::{Config, Connection, Pool};
use deadpool_redis::{PoolConfig, Runtime, Timeouts};
use redis::AsyncCommands;
use std::sync::Arc;
use std::time::Duration;

/// A pooled Redis Cluster store.
#[derive(Clone)]
pub struct ClusterStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    namespace: String,
    timeout: Duration,
    bus: EventBus,
    subscriber: Arc<tokio::task::JoinHandle<()>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.subscriber.abort();
    }
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

/// `kind:rest` → `namespace:kind:{rest}` (the hash tag is what follows the first colon).
fn tagged(namespace: &str, key: &str) -> String {
    match key.split_once(':') {
        Some((kind, rest)) => format!("{namespace}:{kind}:{{{rest}}}"),
        None => format!("{namespace}:{{{key}}}"),
    }
}

impl ClusterStore {
    /// Builds the pool over the seed nodes `urls`. Connections are opened on first use, as
    /// with a single Redis: a program starts while the cluster is down.
    pub async fn connect(urls: &[RedisUrl], config: &StoreConfig) -> Result<Self, StoreError> {
        let timeout = Duration::from_millis(config.redis_timeout_ms);
        let seeds: Vec<String> = urls.iter().map(|u| u.expose().to_string()).collect();
        let mut cfg = Config::from_urls(seeds.clone());
        cfg.pool = Some(PoolConfig {
            max_size: config.redis_pool_size,
            timeouts: Timeouts { wait: Some(timeout), create: Some(timeout), recycle: Some(timeout) },
            ..PoolConfig::default()
        });
        let pool = cfg.create_pool(Some(Runtime::Tokio1)).map_err(unavailable)?;
        let bus = EventBus::new();
        let subscriber = spawn_redis_subscriber_any(seeds, config.redis_namespace.clone(), bus.clone());
        Ok(Self {
            inner: Arc::new(Inner {
                pool,
                namespace: config.redis_namespace.clone(),
                timeout,
                bus,
                subscriber,
            }),
        })
    }

    fn key(&self, key: &str) -> String {
        tagged(&self.inner.namespace, key)
    }

    /// Runs `f` on a pooled cluster connection within the configured timeout.
    async fn run<T, F, Fut>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(Connection) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let work = async {
            let conn = self.inner.pool.get().await.map_err(unavailable)?;
            f(conn).await.map_err(unavailable)
        };
        tokio::time::timeout(self.inner.timeout, work).await.map_err(|_| StoreError::Timeout)?
    }

    pub(super) fn events(&self) -> &EventBus {
        &self.inner.bus
    }

    pub(super) async fn publish(&self, channel: &str, payload: &[u8]) -> Result<(), StoreError> {
        let ch = format!("{}:ev:{}", self.inner.namespace, channel);
        self.run(|mut c| async move { c.publish::<_, _, i64>(ch, payload).await.map(|_| ()) }).await
    }

    pub(super) async fn ping(&self) -> Result<(), StoreError> {
        self.run(|mut c| async move { redis::cmd("PING").query_async::<String>(&mut c).await.map(|_| ()) })
            .await
    }

    pub(super) async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let k = self.key(key);
        self.run(|mut c| async move { c.get(k).await }).await
    }

    /// Keys of different slots cannot share one `MGET`: the reads go out concurrently instead
    /// (one round trip of latency, one command per key).
    pub(super) async fn mget(&self, keys: &[&str]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        futures_util::future::try_join_all(keys.iter().map(|k| self.get(k))).await
    }

    pub(super) async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), StoreError> {
        let k = self.key(key);
        self.run(|mut c| async move { c.pset_ex(k, value, px(ttl)).await }).await
    }

    pub(super) async fn set_nx(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool, StoreError> {
        let k = self.key(key);
        self.run(|mut c| async move {
            let r: Option<String> = redis::cmd("SET")
                .arg(k)
                .arg(value)
                .arg("NX")
                .arg("PX")
                .arg(px(ttl))
                .query_async(&mut c)
                .await?;
            Ok(r.is_some())
        })
        .await
    }

    pub(super) async fn get_del(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let k = self.key(key);
        self.run(|mut c| async move { c.get_del(k).await }).await
    }

    pub(super) async fn del(&self, key: &str) -> Result<bool, StoreError> {
        let k = self.key(key);
        self.run(|mut c| async move { c.del::<_, i64>(k).await.map(|n| n > 0) }).await
    }

    pub(super) async fn compare_and_swap(
        &self,
        key: &str,
        expected: &[u8],
        new: &[u8],
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let k = self.key(key);
        self.run(|mut c| async move {
            CAS.key(k).arg(expected).arg(new).arg(px(ttl)).invoke_async::<i64>(&mut c).await.map(|n| n == 1)
        })
        .await
    }

    pub(super) async fn compare_and_delete(&self, key: &str, expected: &[u8]) -> Result<bool, StoreError> {
        let k = self.key(key);
        self.run(
            |mut c| async move { CAD.key(k).arg(expected).invoke_async::<i64>(&mut c).await.map(|n| n == 1) },
        )
        .await
    }

    pub(super) async fn expire(&self, key: &str, ttl: Duration) -> Result<bool, StoreError> {
        let k = self.key(key);
        self.run(|mut c| async move { c.pexpire::<_, bool>(k, px(ttl) as i64).await }).await
    }

    pub(super) async fn ttl(&self, key: &str) -> Result<Option<Duration>, StoreError> {
        let k = self.key(key);
        self.run(|mut c| async move {
            let ms: i64 = c.pttl(k).await?;
            Ok(match ms {
                -2 => None,
                -1 => Some(Duration::MAX),
                ms => Some(Duration::from_millis(ms.max(0) as u64)),
            })
        })
        .await
    }

    pub(super) async fn incr(&self, key: &str, window: Duration) -> Result<i64, StoreError> {
        let k = self.key(key);
        self.run(|mut c| async move { INCR.key(k).arg(px(window)).invoke_async(&mut c).await }).await
    }

    pub(super) async fn index_add(&self, key: &str, member: &str, expires_at: i64) -> Result<(), StoreError> {
        let k = self.key(key);
        let now = crate::clock::now();
        self.run(|mut c| async move {
            INDEX_ADD
                .key(k)
                .arg(expires_at)
                .arg(member)
                .arg(now)
                .invoke_async::<i64>(&mut c)
                .await
                .map(|_| ())
        })
        .await
    }

    pub(super) async fn index_remove(&self, key: &str, member: &str) -> Result<(), StoreError> {
        let k = self.key(key);
        let now = crate::clock::now();
        self.run(|mut c| async move {
            INDEX_REMOVE.key(k).arg(member).arg(now).invoke_async::<i64>(&mut c).await.map(|_| ())
        })
        .await
    }

    pub(super) async fn index_members(&self, key: &str) -> Result<Vec<String>, StoreError> {
        let k = self.key(key);
        let now = crate::clock::now();
        self.run(|mut c| async move {
            let mut v: Vec<String> = INDEX_MEMBERS.key(k).arg(now).invoke_async(&mut c).await?;
            v.sort();
            Ok(v)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::tagged;

    #[test]
    fn the_records_of_one_session_share_a_hash_tag() {
        assert_eq!(tagged("ns", "session:abc"), "ns:session:{abc}");
        assert_eq!(tagged("ns", "tokens:abc"), "ns:tokens:{abc}");
        assert_eq!(tagged("ns", "refresh-lock:abc"), "ns:refresh-lock:{abc}");
        assert_eq!(tagged("ns", "idx:sub:x"), "ns:idx:{sub:x}");
        assert_eq!(tagged("ns", "plain"), "ns:{plain}");
    }
}
