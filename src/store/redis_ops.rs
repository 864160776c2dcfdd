//! The store operations both Redis back-ends share ([`super::RedisStore`] on one master, plain or
//! found through Sentinel, and [`super::ClusterStore`]): the commands, the Lua scripts and the
//! mapping of their answers. A back-end supplies only what differs — how a key is laid out
//! (the cluster's hash tag), and how a connection is had and an operation bounded in time
//! ([`RedisOps::run`]) — so that the conformance suite's verdict on one holds for the other.

use super::StoreError;
use super::events::{EventBus, Source, spawn_subscriber};
use crate::config::StoreConfig;
use redis::aio::ConnectionLike;
use redis::{AsyncCommands, RedisResult, Script};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

static CAS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"if redis.call('GET', KEYS[1]) == ARGV[1] then
            redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) return 1
          end return 0",
    )
});
static CAD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0",
    )
});
static INCR: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"local n = redis.call('INCR', KEYS[1])
          if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end return n",
    )
});
static INDEX_ADD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
          redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
          local top = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
          if top[2] then redis.call('EXPIREAT', KEYS[1], math.floor(tonumber(top[2])) + 1) end
          return 1",
    )
});
static INDEX_REMOVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"redis.call('ZREM', KEYS[1], ARGV[1])
          redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
          local top = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
          if top[2] then redis.call('EXPIREAT', KEYS[1], math.floor(tonumber(top[2])) + 1) end
          return 1",
    )
});
static INDEX_MEMBERS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
          return redis.call('ZRANGE', KEYS[1], 0, -1)",
    )
});

/// Any failure of the connection or of a command, as the store reports it.
pub(super) fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

/// A TTL in milliseconds; never 0, which Redis refuses (and which would mean "no expiry" to a
/// caller who rounded down).
fn px(ttl: Duration) -> u64 {
    (ttl.as_millis() as u64).max(1)
}

/// What every Redis back-end keeps besides its connections: the namespace, the time bound,
/// and the event bus with the task that feeds it (stopped with the store).
pub(super) struct Base {
    namespace: String,
    timeout: Duration,
    /// `redis_wait_replicas` and `redis_wait_timeout_ms`, when replicas are waited for.
    wait: Option<(u32, u64)>,
    bus: EventBus,
    subscriber: Arc<tokio::task::JoinHandle<()>>,
}

impl Base {
    /// The configured namespace and time bound, and an event subscription on `source`.
    pub(super) fn new(config: &StoreConfig, source: Source) -> Self {
        let bus = EventBus::new();
        let subscriber = spawn_subscriber(source, config.redis_namespace.clone(), bus.clone());
        Self {
            namespace: config.redis_namespace.clone(),
            timeout: Duration::from_millis(config.redis_timeout_ms),
            wait: (config.redis_wait_replicas > 0)
                .then_some((config.redis_wait_replicas, config.redis_wait_timeout_ms)),
            bus,
            subscriber,
        }
    }

    /// The store's namespace.
    pub(super) fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The time bound of one operation, connecting included.
    pub(super) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// `work`, or [`StoreError::Timeout`] once the time bound has passed.
    pub(super) async fn bounded<T>(
        &self,
        work: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        tokio::time::timeout(self.timeout, work).await.map_err(|_| StoreError::Timeout)?
    }
}

impl Drop for Base {
    fn drop(&mut self) {
        self.subscriber.abort();
    }
}

/// A Redis back-end: the three things it supplies, and every store operation on top of them.
///
/// The futures are spelled out as `Send` (rather than `async fn`) so that a caller anywhere,
/// spawned tasks included, may hold one across an `.await` without naming the back-end.
pub(super) trait RedisOps: Sync {
    /// The connection an operation runs on.
    type Conn: ConnectionLike + Send + Sync;

    /// Namespace, time bound and event bus.
    fn base(&self) -> &Base;

    /// Where the caller's `key` is stored.
    fn key(&self, key: &str) -> String;

    /// Runs `f` on a connection within the store's time bound.
    fn run<T, F, Fut>(&self, f: F) -> impl Future<Output = Result<T, StoreError>> + Send
    where
        T: Send,
        F: FnOnce(Self::Conn) -> Fut + Send,
        Fut: Future<Output = RedisResult<T>> + Send;

    /// See [`super::Store::events`].
    fn events(&self) -> &EventBus {
        &self.base().bus
    }

    /// See [`super::Store::publish`].
    fn publish(&self, channel: &str, payload: &[u8]) -> impl Future<Output = Result<(), StoreError>> + Send {
        let ch = format!("{}:ev:{}", self.base().namespace(), channel);
        self.run(move |mut c| async move { c.publish::<_, _, i64>(ch, payload).await.map(|_| ()) })
    }

    /// See [`super::Store::ping`].
    fn ping(&self) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.run(
            move |mut c| async move { redis::cmd("PING").query_async::<String>(&mut c).await.map(|_| ()) },
        )
    }

    /// See [`super::Store::get`].
    fn get(&self, key: &str) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> + Send {
        let k = self.key(key);
        self.run(move |mut c| async move { c.get(k).await })
    }

    /// See [`super::Store::mget`]: one `MGET`, which needs every key on one server.
    fn mget(&self, keys: &[&str]) -> impl Future<Output = Result<Vec<Option<Vec<u8>>>, StoreError>> + Send {
        let ks: Vec<String> = keys.iter().map(|k| self.key(k)).collect();
        async move {
            let n = ks.len();
            let values: Vec<Option<Vec<u8>>> = self
                .run(move |mut c| async move { redis::cmd("MGET").arg(ks).query_async(&mut c).await })
                .await?;
            if values.len() != n {
                return Err(StoreError::Unavailable("MGET answered with the wrong number of values".into()));
            }
            Ok(values)
        }
    }

    /// See [`super::Store::set`].
    fn set(
        &self,
        key: &str,
        value: &[u8],
        ttl: Duration,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        let k = self.key(key);
        self.run(move |mut c| async move { c.pset_ex(k, value, px(ttl)).await })
    }

    /// See [`super::Store::set_nx`].
    fn set_nx(
        &self,
        key: &str,
        value: &[u8],
        ttl: Duration,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        let k = self.key(key);
        self.run(move |mut c| async move {
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
    }

    /// See [`super::Store::get_del`].
    fn get_del(&self, key: &str) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> + Send {
        let k = self.key(key);
        self.run(move |mut c| async move { c.get_del(k).await })
    }

    /// See [`super::Store::del`].
    fn del(&self, key: &str) -> impl Future<Output = Result<bool, StoreError>> + Send {
        let k = self.key(key);
        self.run(move |mut c| async move { c.del::<_, i64>(k).await.map(|n| n > 0) })
    }

    /// See [`super::Store::compare_and_swap`].
    fn compare_and_swap(
        &self,
        key: &str,
        expected: &[u8],
        new: &[u8],
        ttl: Duration,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        self.swap_then_wait(key, expected, new, ttl, None)
    }

    /// See [`super::Store::compare_and_swap_replicated`].
    fn compare_and_swap_replicated(
        &self,
        key: &str,
        expected: &[u8],
        new: &[u8],
        ttl: Duration,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        self.swap_then_wait(key, expected, new, ttl, self.base().wait)
    }

    /// The compare-and-swap script, then, when `wait` names replicas and the swap took place,
    /// `WAIT` on the same connection, which covers every write sent on it before (Redis Cluster
    /// asks every master and keeps the lowest count).
    fn swap_then_wait(
        &self,
        key: &str,
        expected: &[u8],
        new: &[u8],
        ttl: Duration,
        wait: Option<(u32, u64)>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        let k = self.key(key);
        let swapped_and_acked = self.run(move |mut c| async move {
            let swapped =
                CAS.key(k).arg(expected).arg(new).arg(px(ttl)).invoke_async::<i64>(&mut c).await? == 1;
            let acked = match wait {
                Some((replicas, ms)) if swapped => {
                    Some(redis::cmd("WAIT").arg(replicas).arg(ms).query_async::<i64>(&mut c).await?)
                }
                _ => None,
            };
            Ok((swapped, acked))
        });
        async move {
            match (swapped_and_acked.await?, wait) {
                ((_, Some(acked)), Some((wanted, _))) if acked < i64::from(wanted) => {
                    Err(StoreError::NotReplicated { acked, wanted })
                }
                ((swapped, _), _) => Ok(swapped),
            }
        }
    }

    /// See [`super::Store::compare_and_delete`].
    fn compare_and_delete(
        &self,
        key: &str,
        expected: &[u8],
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        let k = self.key(key);
        self.run(move |mut c| async move {
            CAD.key(k).arg(expected).invoke_async::<i64>(&mut c).await.map(|n| n == 1)
        })
    }

    /// See [`super::Store::expire`].
    fn expire(&self, key: &str, ttl: Duration) -> impl Future<Output = Result<bool, StoreError>> + Send {
        let k = self.key(key);
        self.run(move |mut c| async move { c.pexpire::<_, bool>(k, px(ttl) as i64).await })
    }

    /// See [`super::Store::ttl`].
    fn ttl(&self, key: &str) -> impl Future<Output = Result<Option<Duration>, StoreError>> + Send {
        let k = self.key(key);
        self.run(move |mut c| async move {
            let ms: i64 = c.pttl(k).await?;
            Ok(match ms {
                -2 => None,
                -1 => Some(Duration::MAX),
                ms => Some(Duration::from_millis(ms.max(0) as u64)),
            })
        })
    }

    /// See [`super::Store::incr`].
    fn incr(&self, key: &str, window: Duration) -> impl Future<Output = Result<i64, StoreError>> + Send {
        let k = self.key(key);
        self.run(move |mut c| async move { INCR.key(k).arg(px(window)).invoke_async(&mut c).await })
    }

    /// See [`super::Store::index_add`].
    fn index_add(
        &self,
        key: &str,
        member: &str,
        expires_at: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        let k = self.key(key);
        let now = crate::clock::now();
        self.run(move |mut c| async move {
            INDEX_ADD
                .key(k)
                .arg(expires_at)
                .arg(member)
                .arg(now)
                .invoke_async::<i64>(&mut c)
                .await
                .map(|_| ())
        })
    }

    /// See [`super::Store::index_remove`]. The index's lifetime shrinks to its longest remaining
    /// member (an empty one is gone).
    fn index_remove(&self, key: &str, member: &str) -> impl Future<Output = Result<(), StoreError>> + Send {
        let k = self.key(key);
        let now = crate::clock::now();
        self.run(move |mut c| async move {
            INDEX_REMOVE.key(k).arg(member).arg(now).invoke_async::<i64>(&mut c).await.map(|_| ())
        })
    }

    /// See [`super::Store::index_members`].
    fn index_members(&self, key: &str) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send {
        let k = self.key(key);
        let now = crate::clock::now();
        self.run(move |mut c| async move {
            let mut v: Vec<String> = INDEX_MEMBERS.key(k).arg(now).invoke_async(&mut c).await?;
            v.sort();
            Ok(v)
        })
    }
}
