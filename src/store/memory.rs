//! The embedded store: a mutex-guarded map with lazy expiry plus a periodic sweep.

use super::StoreError;
use super::events::{Event, EventBus};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

enum Value {
    Bytes(Vec<u8>),
    Counter(i64),
    /// member -> expiry (Unix seconds)
    Index(HashMap<String, i64>),
}

struct Entry {
    value: Value,
    expires: Option<Instant>,
}

impl Entry {
    fn live(&self, now: Instant) -> bool {
        self.expires.is_none_or(|e| e > now)
    }
}

/// When an index whose members expire at `members` (Unix seconds) should itself expire: with
/// its longest-lived member. `wall` is the Unix time at `now`.
fn index_expiry(members: &HashMap<String, i64>, now: Instant, wall: i64) -> Instant {
    let longest = members.values().copied().max().unwrap_or(wall);
    now + Duration::from_secs((longest - wall).max(1) as u64)
}

/// A process-local store for single-instance deployments and the demo.
pub struct MemoryStore {
    namespace: String,
    map: Mutex<HashMap<String, Entry>>,
    bus: EventBus,
}

impl MemoryStore {
    /// An empty store whose keys are prefixed with `namespace`.
    pub fn new(namespace: &str) -> Self {
        Self { namespace: namespace.to_string(), map: Mutex::new(HashMap::new()), bus: EventBus::new_live() }
    }

    fn key(&self, key: &str) -> String {
        format!("{}:{}", self.namespace, key)
    }

    fn with<R>(&self, f: impl FnOnce(&mut HashMap<String, Entry>, Instant) -> R) -> Result<R, StoreError> {
        let mut map = self.map.lock().map_err(|_| StoreError::Unavailable("memory store poisoned".into()))?;
        let now = Instant::now();
        // Amortised sweep: the map never holds much more than its live entries.
        if map.len() > 1024 && map.len().is_power_of_two() {
            map.retain(|_, e| e.live(now));
        }
        Ok(f(&mut map, now))
    }

    fn live_bytes<'a>(map: &'a HashMap<String, Entry>, key: &str, now: Instant) -> Option<&'a Vec<u8>> {
        match map.get(key) {
            Some(e) if e.live(now) => match &e.value {
                Value::Bytes(b) => Some(b),
                _ => None,
            },
            _ => None,
        }
    }

    pub(super) fn events(&self) -> &EventBus {
        &self.bus
    }

    pub(super) async fn publish(&self, channel: &str, payload: &[u8]) -> Result<(), StoreError> {
        self.bus.deliver(Event::Message { channel: channel.to_string(), payload: payload.to_vec() });
        Ok(())
    }

    pub(super) async fn ping(&self) -> Result<(), StoreError> {
        self.with(|_, _| ())
    }

    pub(super) async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let k = self.key(key);
        self.with(|m, now| Self::live_bytes(m, &k, now).cloned())
    }

    pub(super) async fn mget(&self, keys: &[&str]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        let ks: Vec<String> = keys.iter().map(|k| self.key(k)).collect();
        self.with(|m, now| ks.iter().map(|k| Self::live_bytes(m, k, now).cloned()).collect())
    }

    pub(super) async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), StoreError> {
        let k = self.key(key);
        self.with(|m, now| {
            m.insert(k, Entry { value: Value::Bytes(value.to_vec()), expires: Some(now + ttl) });
        })
    }

    pub(super) async fn set_nx(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool, StoreError> {
        let k = self.key(key);
        self.with(|m, now| {
            if m.get(&k).is_some_and(|e| e.live(now)) {
                return false;
            }
            m.insert(k, Entry { value: Value::Bytes(value.to_vec()), expires: Some(now + ttl) });
            true
        })
    }

    pub(super) async fn get_del(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let k = self.key(key);
        self.with(|m, now| match m.remove(&k) {
            Some(Entry { value: Value::Bytes(b), expires }) if expires.is_none_or(|e| e > now) => Some(b),
            _ => None,
        })
    }

    pub(super) async fn del(&self, key: &str) -> Result<bool, StoreError> {
        let k = self.key(key);
        self.with(|m, now| m.remove(&k).is_some_and(|e| e.live(now)))
    }

    /// Nothing to replicate: the plain swap.
    pub(super) async fn compare_and_swap_replicated(
        &self,
        key: &str,
        expected: &[u8],
        new: &[u8],
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        self.compare_and_swap(key, expected, new, ttl).await
    }

    pub(super) async fn compare_and_swap(
        &self,
        key: &str,
        expected: &[u8],
        new: &[u8],
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let k = self.key(key);
        self.with(|m, now| {
            if Self::live_bytes(m, &k, now).map(Vec::as_slice) != Some(expected) {
                return false;
            }
            m.insert(k, Entry { value: Value::Bytes(new.to_vec()), expires: Some(now + ttl) });
            true
        })
    }

    pub(super) async fn compare_and_delete(&self, key: &str, expected: &[u8]) -> Result<bool, StoreError> {
        let k = self.key(key);
        self.with(|m, now| {
            if Self::live_bytes(m, &k, now).map(Vec::as_slice) != Some(expected) {
                return false;
            }
            m.remove(&k);
            true
        })
    }

    pub(super) async fn expire(&self, key: &str, ttl: Duration) -> Result<bool, StoreError> {
        let k = self.key(key);
        self.with(|m, now| match m.get_mut(&k) {
            Some(e) if e.live(now) => {
                e.expires = Some(now + ttl);
                true
            }
            _ => false,
        })
    }

    pub(super) async fn ttl(&self, key: &str) -> Result<Option<Duration>, StoreError> {
        let k = self.key(key);
        self.with(|m, now| match m.get(&k) {
            Some(e) if e.live(now) => Some(e.expires.map_or(Duration::MAX, |x| x - now)),
            _ => None,
        })
    }

    pub(super) async fn incr(&self, key: &str, window: Duration) -> Result<i64, StoreError> {
        let k = self.key(key);
        self.with(|m, now| match m.get_mut(&k) {
            Some(Entry { value: Value::Counter(n), expires }) if expires.is_none_or(|e| e > now) => {
                *n += 1;
                *n
            }
            _ => {
                m.insert(k, Entry { value: Value::Counter(1), expires: Some(now + window) });
                1
            }
        })
    }

    pub(super) async fn index_add(&self, key: &str, member: &str, expires_at: i64) -> Result<(), StoreError> {
        let k = self.key(key);
        let wall = crate::clock::now();
        self.with(|m, now| {
            let entry = m
                .entry(k)
                .and_modify(|e| {
                    if !e.live(now) || !matches!(e.value, Value::Index(_)) {
                        *e = Entry { value: Value::Index(HashMap::new()), expires: None };
                    }
                })
                .or_insert_with(|| Entry { value: Value::Index(HashMap::new()), expires: None });
            if let Value::Index(members) = &mut entry.value {
                members.insert(member.to_string(), expires_at);
                members.retain(|_, exp| *exp > wall);
                entry.expires = Some(index_expiry(members, now, wall));
            }
        })
    }

    pub(super) async fn index_remove(&self, key: &str, member: &str) -> Result<(), StoreError> {
        let k = self.key(key);
        let wall = crate::clock::now();
        self.with(|m, now| {
            if let Some(Entry { value: Value::Index(members), expires }) = m.get_mut(&k) {
                members.remove(member);
                members.retain(|_, exp| *exp > wall);
                if members.is_empty() {
                    m.remove(&k);
                } else {
                    // The index lives only as long as its longest remaining member.
                    *expires = Some(index_expiry(members, now, wall));
                }
            }
        })
    }

    pub(super) async fn index_members(&self, key: &str) -> Result<Vec<String>, StoreError> {
        let k = self.key(key);
        let wall = crate::clock::now();
        self.with(|m, now| match m.get_mut(&k) {
            Some(e) if e.live(now) => match &mut e.value {
                Value::Index(members) => {
                    members.retain(|_, exp| *exp > wall);
                    let mut v: Vec<String> = members.keys().cloned().collect();
                    v.sort();
                    v
                }
                _ => Vec::new(),
            },
            _ => Vec::new(),
        })
    }
}
