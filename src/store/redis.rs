//! Redis back-end through a deadpool connection pool, with a time bound on every operation:
//! one server (`redis_url`), or the master that Redis Sentinel names (`redis_sentinel_urls`;
//! see [`super::sentinel`]). Both speak to one master, so they share every operation.

use super::StoreError;
use super::events::{EventBus, Source, spawn_subscriber};
use super::sentinel;
use crate::config::{RedisUrl, StoreConfig};
use deadpool_redis::{Config, PoolConfig, Runtime, Timeouts};
use redis::aio::ConnectionLike;
use redis::{AsyncCommands, Script};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

pub(super) static CAS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"if redis.call('GET', KEYS[1]) == ARGV[1] then
            redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) return 1
          end return 0",
    )
});
pub(super) static CAD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0",
    )
});
pub(super) static INCR: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"local n = redis.call('INCR', KEYS[1])
          if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end return n",
    )
});
pub(super) static INDEX_ADD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
          redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
          local top = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
          if top[2] then redis.call('EXPIREAT', KEYS[1], math.floor(tonumber(top[2])) + 1) end
          return 1",
    )
});
pub(super) static INDEX_REMOVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"redis.call('ZREM', KEYS[1], ARGV[1])
          redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
          local top = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
          if top[2] then redis.call('EXPIREAT', KEYS[1], math.floor(tonumber(top[2])) + 1) end
          return 1",
    )
});
pub(super) static INDEX_MEMBERS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
          return redis.call('ZRANGE', KEYS[1], 0, -1)",
    )
});

/// A pooled Redis store.
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

/// The pool: connections to one server, or to whichever server Sentinel names as master when
/// the connection is made (a connection to a demoted master is closed by Sentinel, fails its
/// recycle check, and is replaced by one to the new master).
enum Pool {
    Single(deadpool_redis::Pool),
    Sentinel(deadpool_redis::sentinel::Pool),
}

/// A pooled connection of either [`Pool`].
pub(super) enum Connection {
    Single(deadpool_redis::Connection),
    Sentinel(deadpool_redis::sentinel::Connection),
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a redis::Cmd) -> redis::RedisFuture<'a, redis::Value> {
        match self {
            Connection::Single(c) => c.req_packed_command(cmd),
            Connection::Sentinel(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        match self {
            Connection::Single(c) => c.req_packed_commands(cmd, offset, count),
            Connection::Sentinel(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Connection::Single(c) => c.get_db(),
            Connection::Sentinel(c) => c.get_db(),
        }
    }
}

impl Pool {
    async fn get(&self) -> Result<Connection, StoreError> {
        match self {
            Pool::Single(p) => p.get().await.map(Connection::Single).map_err(unavailable),
            Pool::Sentinel(p) => p.get().await.map(Connection::Sentinel).map_err(unavailable),
        }
    }
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

/// The pool settings every back-end shares: `redis_pool_size` connections, and
/// `redis_timeout_ms` for waiting, connecting and recycling.
pub(super) fn pool_config(config: &StoreConfig) -> PoolConfig {
    let timeout = Some(Duration::from_millis(config.redis_timeout_ms));
    PoolConfig {
        max_size: config.redis_pool_size,
        timeouts: Timeouts { wait: timeout, create: timeout, recycle: timeout },
        ..PoolConfig::default()
    }
}

pub(super) fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

pub(super) fn px(ttl: Duration) -> u64 {
    (ttl.as_millis() as u64).max(1)
}

impl RedisStore {
    /// Builds the pool. Connections are opened on first use: a program starts while Redis is
    /// down, and its operations (and readiness) fail with [`StoreError`] until Redis is back.
    pub async fn connect(url: &RedisUrl, config: &StoreConfig) -> Result<Self, StoreError> {
        let mut cfg = Config::from_url(url.expose());
        cfg.pool = Some(pool_config(config));
        let pool = cfg.create_pool(Some(Runtime::Tokio1)).map_err(unavailable)?;
        let source = Source::Nodes(vec![url.expose().to_string()]);
        Ok(Self::with_pool(Pool::Single(pool), source, config))
    }

    /// Builds a pool over the master that the Sentinels at `urls` know as `master`, and an
    /// event subscription that follows that master through failovers. Like
    /// [`RedisStore::connect`], nothing is contacted until first use.
    pub async fn connect_sentinel(
        urls: &[RedisUrl],
        master: &str,
        config: &StoreConfig,
    ) -> Result<Self, StoreError> {
        let pool = sentinel::pool(urls, master, pool_config(config))?;
        let source = Source::Sentinel(Box::new(sentinel::client(urls, master)?));
        Ok(Self::with_pool(Pool::Sentinel(pool), source, config))
    }

    fn with_pool(pool: Pool, source: Source, config: &StoreConfig) -> Self {
        let bus = EventBus::new();
        let subscriber = spawn_subscriber(source, config.redis_namespace.clone(), bus.clone());
        Self {
            inner: Arc::new(Inner {
                pool,
                namespace: config.redis_namespace.clone(),
                timeout: Duration::from_millis(config.redis_timeout_ms),
                bus,
                subscriber,
            }),
        }
    }

    fn key(&self, key: &str) -> String {
        format!("{}:{}", self.inner.namespace, key)
    }

    /// Runs `f` on a pooled connection within the configured timeout.
    async fn run<T, F, Fut>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(Connection) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let work = async {
            let conn = self.inner.pool.get().await?;
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
        // The index's lifetime shrinks to its longest remaining member (an empty one is gone).
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
