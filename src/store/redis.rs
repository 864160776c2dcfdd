//! Redis back-end over a few multiplexed connections, with a time bound on every operation:
//! one server (`redis_url`), or the master that Redis Sentinel names (`redis_sentinel_urls`;
//! see [`super::sentinel`]). Both speak to one master, so they share every operation.
//!
//! Why not a checkout pool: a pooled connection is exclusive to one operation, and deadpool-redis
//! sends `PING` (and `UNWATCH`) on every checkout to recycle it — two extra round trips per
//! command. A multiplexed connection pipelines every caller's commands on one socket, needs no
//! checkout, and is replaced when it fails or when the event bus saw the server go away.

use super::StoreError;
use super::events::{EventBus, Source};
use super::redis_ops::{Base, RedisOps, unavailable};
use super::sentinel;
use crate::config::{RedisUrl, StoreConfig};
use redis::AsyncConnectionConfig;
use redis::aio::MultiplexedConnection;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

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
    base: Base,
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
        let base = Base::new(config, source);
        let timeout = base.timeout();
        let count = config.redis_pool_size.clamp(1, MAX_CONNECTIONS);
        let connections = Connections {
            opener,
            config: AsyncConnectionConfig::new()
                .set_connection_timeout(timeout)
                .set_response_timeout(timeout),
            slots: (0..count).map(|_| Slot::default()).collect(),
            next: AtomicUsize::new(0),
        };
        Self { inner: Arc::new(Inner { connections, base }) }
    }
}

impl RedisOps for RedisStore {
    type Conn = MultiplexedConnection;

    fn base(&self) -> &Base {
        &self.inner.base
    }

    fn key(&self, key: &str) -> String {
        format!("{}:{}", self.inner.base.namespace(), key)
    }

    /// Runs `f` on a connection within the configured timeout; a connection that failed is
    /// dropped so that the next command opens a fresh one.
    async fn run<T, F, Fut>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send,
        F: FnOnce(MultiplexedConnection) -> Fut + Send,
        Fut: std::future::Future<Output = redis::RedisResult<T>> + Send,
    {
        let connections = &self.inner.connections;
        let work = async {
            let (slot, conn) = connections.get(self.events()).await?;
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
        self.inner.base.bounded(work).await
    }
}
