//! The near cache: session state and token records kept in this instance, so that a proxied
//! request in steady state makes no store round trip at all.
//!
//! Coherence rides on the store's event bus rather than on Redis client-side caching (RESP3
//! `CLIENT TRACKING`): the bus already exists, works with the in-process store and behind any
//! Redis proxy, and tells us when it lost messages. The rules:
//!
//! - every write or delete of a cached key is announced on [`INVALIDATE_CHANNEL`] after it
//!   happened ([`NearCache::announce`]), and forgotten locally at once;
//! - each instance forgets the announced keys when the message arrives, and everything when the
//!   bus reports a gap (`Event::Lost`, or a lagging receiver);
//! - nothing is served while the bus is down, and an entry filled under an earlier bus
//!   generation is never served (a flush is therefore instantaneous, without waiting for the
//!   listener task);
//! - a read that misses first leaves a `Loading` marker with a fresh ticket; the value it read is
//!   kept only if that same marker is still there afterwards. An invalidation that arrives while
//!   the read is under way removes the marker, so a read that raced a delete can never put the
//!   deleted record back (no resurrection).
//!
//! Entries live until their record's own expiry, at most [`MAX_AGE`] (a bound on staleness if
//! a writer could write but not announce), and the cache holds at most `capacity` keys. Dead
//! entries (expired values, links of expired sessions, markers of reads that never finished)
//! are swept every [`SWEEP_EVERY`], so what an instance holds follows its live sessions, not
//! how many it has seen.

mod bus;

pub use bus::{INVALIDATE_CHANNEL, LINK_CHANNEL};

use crate::store::{EventBus, Store};
use prometheus::{IntCounter, IntCounterVec};
use std::any::Any;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

/// Longest an entry is served without being read again.
pub const MAX_AGE: Duration = Duration::from_secs(60);

/// How often dead entries are swept (by the next read that misses).
pub const SWEEP_EVERY: Duration = Duration::from_secs(30);

type Value = Arc<dyn Any + Send + Sync>;

enum Slot {
    /// A read is under way (since `since`); only the read holding this ticket may fill the slot.
    Loading { ticket: u64, since: Instant },
    /// A value, valid until `expires` and only under bus generation `generation`.
    Ready { value: Value, expires: Instant, generation: u64 },
}

struct Inner {
    hits: IntCounter,
    misses: IntCounter,
    store: Store,
    bus: EventBus,
    capacity: usize,
    /// Read-locked on the hot path (lookups), write-locked by reads that miss and by invalidations.
    slots: RwLock<HashMap<String, Slot>>,
    /// Session key → its token record's key, until the session's absolute expiry. Immutable
    /// for a session's life, so it survives invalidations and lets a reload fetch both records
    /// in one round trip.
    links: Mutex<HashMap<String, Link>>,
    /// How long a link announced by another instance is kept (the absolute session lifetime).
    link_age: Duration,
    /// When dead entries were last swept.
    swept: Mutex<Instant>,
    tickets: AtomicU64,
    listener: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(listener) = lock(&self.listener).take() {
            listener.abort();
        }
    }
}

// The guarded maps stay consistent whatever panicked: every change is one insert or remove.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
fn read<T>(m: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(|p| p.into_inner())
}
fn write<T>(m: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    m.write().unwrap_or_else(|p| p.into_inner())
}

struct Link {
    tokens_key: String,
    expires: Instant,
}

/// Proof that a read started while the bus was live; hands the result to [`NearCache::fill`].
#[derive(Debug)]
pub struct Ticket {
    ticket: u64,
    generation: u64,
}

/// The cache; cheap to clone. Disabled (every lookup misses, nothing is kept) on the
/// in-process store, which is as near as a cache, or with a capacity of 0. A disabled cache
/// over a store still announces writes: other instances (or the running BFFs, when the writer
/// is the admin CLI) may well cache what it changes.
#[derive(Clone)]
pub struct NearCache {
    inner: Option<Arc<Inner>>,
    /// Where a disabled cache announces changes.
    announcer: Option<Store>,
}

impl std::fmt::Debug for NearCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.inner.is_some() { "NearCache" } else { "NearCache(disabled)" })
    }
}

impl NearCache {
    /// A cache of at most `capacity` entries over `store`, listening to its event bus, counting
    /// lookups in `lookups{outcome}`; `session_lifetime` bounds how long links announced by
    /// other instances are kept. Must be called inside a Tokio runtime.
    pub fn new(store: &Store, capacity: usize, session_lifetime: Duration, lookups: &IntCounterVec) -> Self {
        if capacity == 0 || matches!(store, Store::Memory(_)) {
            return Self::announcing_only(store);
        }
        Self::listening(store, capacity, session_lifetime, lookups)
    }

    /// A cache over any store, the in-process one included (unit tests).
    fn listening(store: &Store, capacity: usize, link_age: Duration, lookups: &IntCounterVec) -> Self {
        let bus = store.events().clone();
        // Subscribed before the first lookup can happen: no message is missed in between.
        let rx = bus.subscribe();
        let inner = Arc::new(Inner {
            hits: lookups.with_label_values(&["hit"]),
            misses: lookups.with_label_values(&["miss"]),
            store: store.clone(),
            bus,
            capacity,
            slots: RwLock::default(),
            links: Mutex::default(),
            link_age,
            swept: Mutex::new(Instant::now()),
            tickets: AtomicU64::new(0),
            listener: Mutex::default(),
        });
        let listener = tokio::spawn(bus::listen(Arc::downgrade(&inner), rx));
        *lock(&inner.listener) = Some(listener);
        Self { inner: Some(inner), announcer: None }
    }

    /// A cache that keeps nothing but still announces every change made through it on `store`'s
    /// bus, so caches elsewhere forget the changed records.
    pub fn announcing_only(store: &Store) -> Self {
        Self { inner: None, announcer: Some(store.clone()) }
    }

    /// The value cached under `key`, if it is fresh and the bus is live.
    pub fn get<T: Any + Send + Sync>(&self, key: &str) -> Option<Arc<T>> {
        let inner = self.inner.as_ref()?;
        // A trace's child span (`debug`: free while traces are off); never the key.
        let span = tracing::debug_span!("near cache lookup", cache.hit = tracing::field::Empty);
        let _entered = span.enter();
        let found = self.peek::<T>(key);
        span.record("cache.hit", found.is_some());
        if found.is_some() {
            inner.hits.inc()
        } else {
            inner.misses.inc()
        }
        found
    }

    /// [`NearCache::get`] without counting the lookup.
    pub fn peek<T: Any + Send + Sync>(&self, key: &str) -> Option<Arc<T>> {
        let inner = self.inner.as_ref()?;
        let generation = inner.bus.generation();
        if !EventBus::is_live_generation(generation) {
            return None;
        }
        let slots = read(&inner.slots);
        match slots.get(key)? {
            Slot::Ready { value, expires, generation: g }
                if *g == generation && *expires > Instant::now() =>
            {
                value.clone().downcast::<T>().ok()
            }
            _ => None,
        }
    }

    /// Starts a read of `key` from the store; `None` when the result must not be kept.
    pub fn begin(&self, key: &str) -> Option<Ticket> {
        let inner = self.inner.as_ref()?;
        let generation = inner.bus.generation();
        if !EventBus::is_live_generation(generation) {
            return None;
        }
        let ticket = inner.tickets.fetch_add(1, Ordering::Relaxed);
        inner.sweep_if_due();
        let mut slots = write(&inner.slots);
        make_room(&mut slots, inner.capacity);
        slots.insert(key.to_string(), Slot::Loading { ticket, since: Instant::now() });
        Some(Ticket { ticket, generation })
    }

    /// Keeps `value`, read under `ticket`, until `expires_at` (Unix seconds; at most
    /// [`MAX_AGE`]) — unless `key` was invalidated or the bus lost messages since the read began.
    pub fn fill<T: Any + Send + Sync>(
        &self,
        key: &str,
        ticket: Option<Ticket>,
        value: Arc<T>,
        expires_at: i64,
    ) {
        let (Some(inner), Some(ticket)) = (self.inner.as_ref(), ticket) else { return };
        if inner.bus.generation() != ticket.generation {
            return;
        }
        let left = (expires_at - crate::clock::now()).max(0) as u64;
        let expires = Instant::now() + MAX_AGE.min(Duration::from_secs(left));
        let mut slots = write(&inner.slots);
        if let Some(slot) = slots.get_mut(key)
            && matches!(slot, Slot::Loading { ticket: t, .. } if *t == ticket.ticket)
        {
            *slot = Slot::Ready { value, expires, generation: ticket.generation };
        }
    }

    /// Drops `keys` from this instance's cache (and any read of them under way).
    pub fn forget(&self, keys: &[&str]) {
        let Some(inner) = &self.inner else { return };
        let mut slots = write(&inner.slots);
        for key in keys {
            slots.remove(*key);
        }
    }

    /// The token record key linked to the session key `session_key`, if known.
    pub fn link(&self, session_key: &str) -> Option<String> {
        let inner = self.inner.as_ref()?;
        lock(&inner.links).get(session_key).map(|l| l.tokens_key.clone())
    }

    /// Remembers which token record belongs to the session at `session_key`, until the
    /// session's absolute expiry `expires_at` (Unix seconds; `None`: the longest a session lives).
    pub fn set_link(&self, session_key: &str, tokens_key: String, expires_at: Option<i64>) {
        let Some(inner) = &self.inner else { return };
        let expires = match expires_at {
            Some(at) => Instant::now() + Duration::from_secs((at - crate::clock::now()).max(0) as u64),
            None => Instant::now() + inner.link_age,
        };
        let mut links = lock(&inner.links);
        if links.len() >= inner.capacity && !links.contains_key(session_key) {
            // Links are hints; losing some only costs a second round trip on a later miss.
            links.clear();
        }
        links.insert(session_key.to_string(), Link { tokens_key, expires });
    }

    /// Forgets everything (a gap on the bus).
    fn flush(&self) {
        if let Some(inner) = &self.inner {
            write(&inner.slots).clear();
        }
    }
}

impl Inner {
    /// Drops dead entries when the last sweep is [`SWEEP_EVERY`] ago: expired values, markers
    /// of reads older than [`MAX_AGE`] (a read that failed never fills its slot), and links of
    /// sessions past their absolute expiry.
    fn sweep_if_due(&self) {
        self.sweep_if_due_at(Instant::now());
    }

    fn sweep_if_due_at(&self, now: Instant) {
        {
            let mut swept = lock(&self.swept);
            if now.duration_since(*swept) < SWEEP_EVERY {
                return;
            }
            *swept = now;
        }
        write(&self.slots).retain(|_, slot| match slot {
            Slot::Ready { expires, .. } => *expires > now,
            Slot::Loading { since, .. } => now.duration_since(*since) < MAX_AGE,
        });
        lock(&self.links).retain(|_, link| link.expires > now);
    }
}

/// Keeps the map under `capacity`: expired values and markers of reads go first (a read whose
/// marker is gone just does not keep its result), then arbitrary entries (an eighth of the
/// capacity at once, so that eviction is amortised).
fn make_room(slots: &mut HashMap<String, Slot>, capacity: usize) {
    if slots.len() < capacity {
        return;
    }
    let now = Instant::now();
    slots.retain(|_, s| matches!(s, Slot::Ready { expires, .. } if *expires > now));
    if slots.len() >= capacity {
        let excess: Vec<String> = slots.keys().take((capacity / 8).max(1)).cloned().collect();
        for key in excess {
            slots.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(capacity: usize) -> NearCache {
        cache_on(&Store::memory("t"), capacity)
    }

    fn cache_on(store: &Store, capacity: usize) -> NearCache {
        let lookups = IntCounterVec::new(prometheus::Opts::new("l", "l"), &["outcome"]).unwrap();
        NearCache::listening(store, capacity, Duration::from_secs(3600), &lookups)
    }

    fn later() -> i64 {
        crate::clock::now() + 600
    }

    #[tokio::test]
    async fn a_filled_value_is_served_until_it_is_forgotten() {
        let c = cache(10);
        let t = c.begin("k");
        c.fill("k", t, Arc::new(7u32), later());
        assert_eq!(c.get::<u32>("k").as_deref(), Some(&7));
        c.forget(&["k"]);
        assert_eq!(c.get::<u32>("k"), None);
    }

    #[tokio::test]
    async fn a_read_that_raced_an_invalidation_is_never_kept() {
        let c = cache(10);
        let stale = c.begin("k");
        c.forget(&["k"]);
        c.fill("k", stale, Arc::new(1u32), later());
        assert_eq!(c.get::<u32>("k"), None, "a deleted record must not come back");
    }

    #[tokio::test]
    async fn of_two_overlapping_reads_only_the_later_one_is_kept() {
        let c = cache(10);
        let first = c.begin("k");
        let second = c.begin("k");
        c.fill("k", second, Arc::new(2u32), later());
        c.fill("k", first, Arc::new(1u32), later());
        assert_eq!(c.get::<u32>("k").as_deref(), Some(&2));
    }

    #[tokio::test]
    async fn a_record_past_its_own_expiry_is_not_served() {
        let c = cache(10);
        let t = c.begin("gone");
        c.fill("gone", t, Arc::new(1u32), crate::clock::now() - 1);
        assert_eq!(c.get::<u32>("gone"), None);
    }

    #[tokio::test]
    async fn a_key_announced_by_one_instance_is_forgotten_by_another() {
        let store = Store::memory("t");
        let (here, there) = (cache_on(&store, 10), cache_on(&store, 10));
        let t = there.begin("a");
        there.fill("a", t, Arc::new(1u32), later());
        assert!(there.get::<u32>("a").is_some());

        here.announce(&["b", "a"]).await;

        for _ in 0..100 {
            if there.get::<u32>("a").is_none() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        panic!("the other instance still serves the announced key");
    }

    #[tokio::test]
    async fn the_cache_never_holds_more_than_its_capacity() {
        let c = cache(16);
        for i in 0..100 {
            let key = format!("k{i}");
            let t = c.begin(&key);
            c.fill(&key, t, Arc::new(i), later());
        }
        let held = c.inner.as_ref().map(|i| read(&i.slots).len()).unwrap_or(0);
        assert!(held <= 16, "{held}");
        assert_eq!(c.get::<i32>("k99").as_deref(), Some(&99), "the newest entry is kept");
    }

    #[tokio::test]
    async fn dead_entries_are_swept_and_live_ones_kept() {
        let c = cache(100);
        let inner = c.inner.clone().unwrap();
        let t = c.begin("served");
        c.fill("served", t, Arc::new(1u32), later());
        let _never_filled = c.begin("failed read");
        c.set_link("short", "tokens:short".into(), Some(crate::clock::now() + 10));
        c.set_link("long", "tokens:long".into(), Some(crate::clock::now() + 3000));
        let held = || (read(&inner.slots).len(), lock(&inner.links).len());

        inner.sweep_if_due_at(Instant::now() + Duration::from_secs(5));
        assert_eq!(held(), (2, 2), "nothing is swept before SWEEP_EVERY");

        inner.sweep_if_due_at(Instant::now() + MAX_AGE + SWEEP_EVERY);
        assert_eq!(held(), (0, 1), "expired values, stale read markers and expired links go");
        assert_eq!(c.link("long").as_deref(), Some("tokens:long"));
    }
}
