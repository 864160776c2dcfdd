//! Redis back-end over a few multiplexed connections, with a time bound on every operation:
//! one server (`redis_url`), or the master that Redis Sentinel names (`redis_sentinel_urls`;
//! see [`super::sentinel`]). Both speak to one master, so they share every operation.
//!
//! Why not a checkout pool: a pooled connection is exclusive to one operation, and deadpool-redis
//! sends `PING` (and `UNWATCH`) on every checkout to recycle it — two extra round trips per
//! command. A multiplexed connection pipelines every caller's commands on one socket, needs no
//! checkout, and is replaced when it fails or when the event bus saw the server go away.

use super::StoreError;
use super::events::{EventBus, Source, spawn_subscriber};
use super::sentinel;
use crate::config::{RedisUrl, StoreConfig};
use redis::aio::MultiplexedConnection;
use redis::{AsyncCommands, AsyncConnectionConfig, Script};
use std::sync::atomic::{AtomicUsize, Ordering};
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

/// A Redis store.
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

/// One lazily opened multiplexed connection, tagged with the event bus generation it was
/// opened under: once the bus has lost its subscription (the server went away or the network
/// broke) the connection is presumed dead too and reopened, instead of failing one command.
type Slot = tokio::sync::Mutex<Option<(u64, MultiplexedConnection)>>;

/// Multiplexed connections that commands are spread over, round robin.
struct Connections {
    opener: Opener,
    config: AsyncConnectionConfig,
    slots: Vec<Slot>,
    next: AtomicUsize,
}

/// How a connection is opened: to one server, or to whichever server the Sentinels name as
/// master at that moment (checked with `ROLE`). After a failover the Sentinels close every
/// client of the demoted master, the event subscription breaks, and every slot reopens —
/// through the Sentinels, on the new master.
enum Opener {
    Direct(redis::Client),
    Sentinel(tokio::sync::Mutex<redis::sentinel::SentinelClient>),
}

impl Opener {
    async fn open(&self, config: &AsyncConnectionConfig) -> redis::RedisResult<MultiplexedConnection> {
        match self {
            Opener::Direct(client) => client.get_multiplexed_async_connection_with_config(config).await,
            Opener::Sentinel(sentinel) => {
                sentinel.lock().await.get_async_connection_with_config(config).await
            }
        }
    }
}

/// Most connections opened per store: one multiplexed connection already carries tens of
/// thousands of commands per second; a few spread the parsing over the runtime's threads.
const MAX_CONNECTIONS: usize = 4;

impl Connections {
    /// A connection from the next slot, opening it when absent or stale.
    async fn get(&self, bus: &EventBus) -> Result<(usize, MultiplexedConnection), StoreError> {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len();
        let generation = bus.generation();
        let mut slot = self.slots[i].lock().await;
        if let Some((g, conn)) = slot.as_ref()
            && *g == generation
        {
            return Ok((i, conn.clone()));
        }
        let conn = self.opener.open(&self.config).await.map_err(unavailable)?;
        *slot = Some((generation, conn.clone()));
        Ok((i, conn))
    }

    /// Forgets the connection of slot `i` after it failed, so the next command reconnects.
    async fn discard(&self, i: usize) {
        *self.slots[i].lock().await = None;
    }
}

struct Inner {
    connections: Connections,
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

pub(super) fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

pub(super) fn px(ttl: Duration) -> u64 {
    (ttl.as_millis() as u64).max(1)
}

impl RedisStore {
    /// Prepares the connections. They are opened on first use: a program starts while Redis is
    /// down, and its operations (and readiness) fail with [`StoreError`] until Redis is back.
    pub async fn connect(url: &RedisUrl, config: &StoreConfig) -> Result<Self, StoreError> {
        let client = redis::Client::open(url.expose()).map_err(unavailable)?;
        let source = Source::Nodes(vec![url.expose().to_string()]);
        Ok(Self::open_with(Opener::Direct(client), source, config))
    }

    /// Like [`RedisStore::connect`], on the master that the Sentinels at `urls` know as
    /// `master`; the connections and the event subscription follow it through failovers.
    pub async fn connect_sentinel(
        urls: &[RedisUrl],
        master: &str,
        config: &StoreConfig,
    ) -> Result<Self, StoreError> {
        let opener = Opener::Sentinel(tokio::sync::Mutex::new(sentinel::client(urls, master)?));
        let source = Source::Sentinel(Box::new(sentinel::client(urls, master)?));
        Ok(Self::open_with(opener, source, config))
    }

    fn open_with(opener: Opener, source: Source, config: &StoreConfig) -> Self {
        let timeout = Duration::from_millis(config.redis_timeout_ms);
        let count = config.redis_pool_size.clamp(1, MAX_CONNECTIONS);
        let connections = Connections {
            opener,
            config: AsyncConnectionConfig::new()
                .set_connection_timeout(timeout)
                .set_response_timeout(timeout),
            slots: (0..count).map(|_| Slot::default()).collect(),
            next: AtomicUsize::new(0),
        };
        let bus = EventBus::new();
        let subscriber = spawn_subscriber(source, config.redis_namespace.clone(), bus.clone());
        Self {
            inner: Arc::new(Inner {
                connections,
                namespace: config.redis_namespace.clone(),
                timeout,
                bus,
                subscriber,
            }),
        }
    }

    fn key(&self, key: &str) -> String {
        format!("{}:{}", self.inner.namespace, key)
    }

    /// Runs `f` on a connection within the configured timeout; a connection that failed is
    /// dropped so that the next command opens a fresh one.
    async fn run<T, F, Fut>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(MultiplexedConnection) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let connections = &self.inner.connections;
        let work = async {
            let (slot, conn) = connections.get(&self.inner.bus).await?;
            match f(conn).await {
                Ok(v) => Ok(v),
                Err(e) if e.is_timeout() => Err(StoreError::Timeout),
                Err(e) => {
                    if e.is_unrecoverable_error() || e.is_connection_dropped() || e.is_io_error() {
                        connections.discard(slot).await;
                    }
                    Err(unavailable(e))
                }
            }
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

    pub(super) async fn mget(&self, keys: &[&str]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        let ks: Vec<String> = keys.iter().map(|k| self.key(k)).collect();
        let n = ks.len();
        let values: Vec<Option<Vec<u8>>> =
            self.run(|mut c| async move { redis::cmd("MGET").arg(ks).query_async(&mut c).await }).await?;
        if values.len() != n {
            return Err(StoreError::Unavailable("MGET answered with the wrong number of values".into()));
        }
        Ok(values)
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
