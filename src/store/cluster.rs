//! Redis Cluster back-end through deadpool-redis's cluster pool, with the operations of
//! [`super::redis_ops`] (but `mget`) and a time bound like [`super::redis::RedisStore`].
//!
//! Keys get a hash tag: `kind:rest` is stored as `{namespace}:kind:{rest}`, so that the records
//! of one session (`session:{h}`, `tokens:{h}`, `refresh-lock:{h}`) live in one slot, on one
//! master. Every operation touches one key, so no command ever spans slots. Events use classic
//! PUBLISH/PSUBSCRIBE, which a cluster broadcasts to every node: one subscription on any node
//! (tried in turn) sees them all.

use super::StoreError;
use super::events::Source;
use super::redis_ops::{Base, RedisOps, unavailable};
use crate::config::{RedisUrl, StoreConfig};
use deadpool_redis::cluster::{Config, Connection, Pool};
use deadpool_redis::{PoolConfig, Runtime, Timeouts};
use std::sync::Arc;
use std::time::Duration;

/// A pooled Redis Cluster store.
#[derive(Clone)]
pub struct ClusterStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    base: Base,
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
        // A cluster broadcasts classic PUBLISH to every node: a subscription on any seed (the
        // next one after each break) hears every instance.
        let base = Base::new(config, Source::Nodes(seeds));
        Ok(Self { inner: Arc::new(Inner { pool, base }) })
    }
}

impl RedisOps for ClusterStore {
    type Conn = Connection;

    fn base(&self) -> &Base {
        &self.inner.base
    }

    fn key(&self, key: &str) -> String {
        tagged(self.inner.base.namespace(), key)
    }

    /// Runs `f` on a pooled cluster connection within the configured timeout.
    async fn run<T, F, Fut>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send,
        F: FnOnce(Connection) -> Fut + Send,
        Fut: std::future::Future<Output = redis::RedisResult<T>> + Send,
    {
        let work = async {
            let conn = self.inner.pool.get().await.map_err(unavailable)?;
            f(conn).await.map_err(unavailable)
        };
        self.inner.base.bounded(work).await
    }

    /// Keys of different slots cannot share one `MGET`: the reads go out concurrently instead
    /// (one round trip of latency, one command per key).
    fn mget(&self, keys: &[&str]) -> impl Future<Output = Result<Vec<Option<Vec<u8>>>, StoreError>> + Send {
        futures_util::future::try_join_all(keys.iter().map(|k| self.get(k)))
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
