//! Store events: a small publish/subscribe bus over the store, so instances can wake each
//! other (a refresh finished, a session ended) instead of polling.
//!
//! Every instance keeps ONE subscription (a pattern subscription on Redis) and fans messages
//! out locally through a broadcast channel. When that subscription breaks, subscribers receive
//! [`Event::Lost`]: they must assume they missed messages (flush caches, re-read state).

use super::StoreError;
use futures_util::StreamExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::broadcast;

/// Something that happened on the bus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A message published on `channel`.
    Message {
        /// The channel, without the store's namespace.
        channel: String,
        /// What was published.
        payload: Vec<u8>,
    },
    /// The subscription was interrupted; messages may have been missed.
    Lost,
}

/// The local fan-out of the bus; cheap to clone.
#[derive(Clone)]
pub struct EventBus {
    tx: broadcast::Sender<Event>,
    /// Odd while subscribed, even while not; bumped on every change, so a value read before
    /// some work and compared after it tells whether the subscription stayed up meanwhile.
    generation: Arc<AtomicU64>,
}

impl EventBus {
    /// A bus that is not listening yet (Redis: until the first subscription is made).
    pub(super) fn new() -> Self {
        let (tx, _) = broadcast::channel(4096);
        Self { tx, generation: Arc::new(AtomicU64::new(0)) }
    }

    /// A bus that is always listening (in-process delivery cannot lose messages).
    pub(super) fn new_live() -> Self {
        let bus = Self::new();
        bus.set_live(true);
        bus
    }

    /// The subscription's generation: changes whenever it is made or lost. Odd means live.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// True while the subscription is up, i.e. every message published now will be delivered
    /// (or a gap announced with [`Event::Lost`] and a new generation).
    pub fn is_live(&self) -> bool {
        Self::is_live_generation(self.generation())
    }

    /// True when `generation` (from [`EventBus::generation`]) is one of a live subscription.
    pub fn is_live_generation(generation: u64) -> bool {
        generation % 2 == 1
    }

    fn set_live(&self, live: bool) {
        // Only the subscriber task changes the state, so load-then-add cannot race.
        if self.is_live() != live {
            self.generation.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// A receiver of every event from now on. A receiver that lags behind gets
    /// `RecvError::Lagged`, which callers must treat like [`Event::Lost`].
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }

    pub(super) fn deliver(&self, event: Event) {
        // No receiver is not an error: nobody is waiting.
        let _ = self.tx.send(event);
    }
}

/// Where the subscription connects, asked again before every (re)subscription.
pub(super) enum Source {
    /// Any of these nodes, in turn.
    Nodes(Vec<String>),
    /// The master that the Sentinels name at that moment, so that after a failover the
    /// subscription follows the new master (Sentinel disconnects every client of a demoted
    /// master, which ends the old subscription).
    Sentinel(Box<redis::sentinel::SentinelClient>),
}

impl Source {
    async fn client(&mut self, attempt: usize) -> Result<redis::Client, StoreError> {
        let unavailable = |e: redis::RedisError| StoreError::Unavailable(e.to_string());
        match self {
            Source::Nodes(urls) => {
                let url = urls
                    .get(attempt % urls.len().max(1))
                    .ok_or_else(|| StoreError::Unavailable("no redis node configured".into()))?;
                redis::Client::open(url.as_str()).map_err(unavailable)
            }
            Source::Sentinel(sentinel) => sentinel.async_get_client().await.map_err(unavailable),
        }
    }
}

/// Keeps one pattern subscription on `{namespace}:ev:*` on whatever `source` names, for the
/// life of the process, reconnecting with backoff and announcing [`Event::Lost`] after every
/// break.
pub(super) fn spawn_subscriber(
    mut source: Source,
    namespace: String,
    bus: EventBus,
) -> Arc<tokio::task::JoinHandle<()>> {
    let prefix = format!("{namespace}:ev:");
    let handle = tokio::spawn(async move {
        let mut backoff = Duration::from_millis(50);
        for attempt in 0.. {
            let subscribed = match source.client(attempt).await {
                Ok(client) => subscribe_once(client, &prefix, &bus).await,
                Err(e) => Err(e),
            };
            match subscribed {
                Ok(()) => backoff = Duration::from_millis(50),
                Err(e) => tracing::warn!(error = %e, "store event subscription failed; retrying"),
            }
            bus.set_live(false);
            bus.deliver(Event::Lost);
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    });
    Arc::new(handle)
}

async fn subscribe_once(client: redis::Client, prefix: &str, bus: &EventBus) -> Result<(), StoreError> {
    let unavailable = |e: redis::RedisError| StoreError::Unavailable(e.to_string());
    let mut pubsub = client.get_async_pubsub().await.map_err(unavailable)?;
    pubsub.psubscribe(format!("{prefix}*")).await.map_err(unavailable)?;
    // Subscribed: anything published from now on reaches us. Announce a gap so that state
    // cached while we were not listening is re-read.
    bus.set_live(true);
    bus.deliver(Event::Lost);
    let mut stream = pubsub.into_on_message();
    while let Some(msg) = stream.next().await {
        let channel = msg.get_channel_name();
        if let Some(channel) = channel.strip_prefix(prefix) {
            bus.deliver(Event::Message {
                channel: channel.to_string(),
                payload: msg.get_payload_bytes().to_vec(),
            });
        }
    }
    Ok(())
}
