//! The nonces servers asked DPoP proofs to carry (`DPoP-Nonce`, RFC 9449 §8 and §9), kept per
//! origin in this process: every answer carrying one updates it, every proof to that origin
//! carries the latest. Bounded: past [`MAX_ORIGINS`] origins the oldest entries are dropped
//! (a dropped nonce costs one `use_dpop_nonce` retry, nothing more).

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

/// Most origins remembered.
pub const MAX_ORIGINS: usize = 256;

/// Nonces by origin (`scheme://host[:port]`).
#[derive(Default)]
pub struct NonceCache {
    inner: Mutex<Entries>,
}

#[derive(Default)]
struct Entries {
    by_origin: HashMap<String, (String, u64)>,
    counter: u64,
}

impl NonceCache {
    /// The process's cache, shared by the token endpoint calls and the upstream calls.
    pub fn global() -> &'static NonceCache {
        static CACHE: OnceLock<NonceCache> = OnceLock::new();
        CACHE.get_or_init(NonceCache::default)
    }

    /// The latest nonce of `origin`.
    pub fn get(&self, origin: &str) -> Option<String> {
        let entries = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        entries.by_origin.get(origin).map(|(nonce, _)| nonce.clone())
    }

    /// Remembers `nonce` for `origin` (a nonce longer than 512 bytes is ignored).
    pub fn put(&self, origin: &str, nonce: &str) {
        if nonce.is_empty() || nonce.len() > 512 {
            return;
        }
        let mut entries = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        entries.counter += 1;
        let stamp = entries.counter;
        if let Some(slot) = entries.by_origin.get_mut(origin) {
            if slot.0 != nonce {
                *slot = (nonce.to_string(), stamp);
            }
            return;
        }
        if entries.by_origin.len() >= MAX_ORIGINS {
            let oldest = entries.by_origin.iter().min_by_key(|(_, (_, s))| *s).map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                entries.by_origin.remove(&oldest);
            }
        }
        entries.by_origin.insert(origin.to_string(), (nonce.to_string(), stamp));
    }
}

/// `scheme://host[:port]` of `url`, the key of [`NonceCache`].
pub fn origin_of(url: &str) -> String {
    url::Url::parse(url).map(|u| u.origin().ascii_serialization()).unwrap_or_default()
}
