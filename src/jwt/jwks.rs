//! The issuer's signing keys: found by discovery, cached, refetched on an unknown `kid` at most
//! once per interval. Each key carries the ONE algorithm it may verify (see [`parse`]).
//! Symmetric keys are never accepted, and nothing in a token's header (`jku`, `x5u`, `jwk`)
//! ever selects a key: only `kid`, looked up here.
//!
//! Fetching is lazy (the issuer may start after us) and so is discovery, which is retried until
//! it succeeds. Concurrent misses wait for one fetch; a failed fetch keeps the keys we had.

mod parse;
#[cfg(test)]
mod tests;

pub use parse::{MIN_RSA_BITS, VerifyingKey, parse_jwks, verifying_key};

use super::JwtError;
use crate::config::PublicUrl;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Largest JWKS document read; a provider's key set is a few kilobytes.
pub const MAX_JWKS_BYTES: usize = 256 * 1024;

/// While no key has ever loaded (issuer not up yet), retry at least this often.
const RETRY_WHILE_EMPTY: Duration = Duration::from_secs(1);

/// Where the keys come from.
#[derive(Clone)]
enum Source {
    /// Discovery at `issuer`, then its `jwks_uri`.
    Issuer { http: reqwest::Client, issuer: PublicUrl },
    /// A known `jwks_uri` (a client's keys, registered with it): no discovery.
    JwksUri { http: reqwest::Client },
    /// A fixed set (tests, embedding).
    Fixed,
}

#[derive(Default)]
struct Cached {
    keys: Arc<HashMap<String, VerifyingKey>>,
    /// The issuer exactly as the provider's metadata spells it.
    issuer: Option<String>,
    jwks_uri: Option<String>,
    /// Last fetch attempt, successful or not.
    last_fetch: Option<Instant>,
    /// Bumped by every fetch attempt, so that waiters know one happened while they waited.
    generation: u64,
}

/// A cache of one issuer's keys; cheap to clone (everything shared sits behind `Arc`s).
#[derive(Clone)]
pub struct JwksCache {
    source: Source,
    min_refetch: Duration,
    cached: Arc<Mutex<Cached>>,
    /// Serialises fetches so that concurrent misses cause one request.
    fetching: Arc<tokio::sync::Mutex<()>>,
    fetch_counter: Option<prometheus::IntCounterVec>,
}

impl JwksCache {
    /// Keys of `issuer`, discovered lazily; an unknown `kid` refetches at most once per
    /// `min_refetch`.
    pub fn for_issuer(http: reqwest::Client, issuer: PublicUrl, min_refetch: Duration) -> Self {
        Self {
            source: Source::Issuer { http, issuer },
            min_refetch,
            cached: Arc::default(),
            fetching: Arc::default(),
            fetch_counter: None,
        }
    }

    /// The keys published at `jwks_uri` for tokens whose `iss` is `issuer` (a client's
    /// `client_id` for its assertions); an unknown `kid` refetches at most once per
    /// `min_refetch`.
    pub fn at_jwks_uri(http: reqwest::Client, issuer: &str, jwks_uri: &str, min_refetch: Duration) -> Self {
        let cached = Cached {
            issuer: Some(issuer.to_string()),
            jwks_uri: Some(jwks_uri.to_string()),
            ..Cached::default()
        };
        Self {
            source: Source::JwksUri { http },
            min_refetch,
            cached: Arc::new(Mutex::new(cached)),
            fetching: Arc::default(),
            fetch_counter: None,
        }
    }

    /// A fixed key set (a JWKS document) for `issuer`, never refetched (tests, embedding).
    pub fn fixed(issuer: &str, jwks: &serde_json::Value) -> Self {
        let cached = Cached {
            keys: Arc::new(parse_jwks(jwks).unwrap_or_default()),
            issuer: Some(issuer.to_string()),
            jwks_uri: None,
            last_fetch: Some(Instant::now()),
            generation: 0,
        };
        Self {
            source: Source::Fixed,
            min_refetch: Duration::MAX,
            cached: Arc::new(Mutex::new(cached)),
            fetching: Arc::default(),
            fetch_counter: None,
        }
    }

    /// Counts every fetch attempt in `counter`, labelled `outcome` = `ok` | `error`.
    pub fn with_fetch_counter(mut self, counter: prometheus::IntCounterVec) -> Self {
        self.fetch_counter = Some(counter);
        self
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cached> {
        self.cached.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The issuer identifier exactly as the provider's metadata spells it (the expected `iss`);
    /// discovers it on first use.
    pub async fn issuer(&self) -> Result<String, JwtError> {
        if let Some(i) = self.lock().issuer.clone() {
            return Ok(i);
        }
        self.refresh().await;
        self.lock().issuer.clone().ok_or(JwtError::KeysUnavailable)
    }

    /// Ok once the issuer is known and at least one key is loaded; otherwise tries to load
    /// them (rate-limited like any refetch).
    pub async fn ensure_loaded(&self) -> Result<(), JwtError> {
        let loaded = |c: &Cached| c.issuer.is_some() && !c.keys.is_empty();
        if loaded(&self.lock()) {
            return Ok(());
        }
        self.refresh().await;
        if loaded(&self.lock()) { Ok(()) } else { Err(JwtError::KeysUnavailable) }
    }

    /// The key for `kid`. An unknown `kid` refetches the set if the last attempt is old
    /// enough; still unknown: [`JwtError::UnknownKey`], or [`JwtError::KeysUnavailable`] while
    /// no key could ever be loaded.
    pub async fn key(&self, kid: &str) -> Result<VerifyingKey, JwtError> {
        if let Some(k) = self.lock().keys.get(kid) {
            return Ok(k.clone());
        }
        self.refresh().await;
        let c = self.lock();
        match c.keys.get(kid) {
            Some(k) => Ok(k.clone()),
            None if c.keys.is_empty() && !matches!(self.source, Source::Fixed) => {
                Err(JwtError::KeysUnavailable)
            }
            None => Err(JwtError::UnknownKey),
        }
    }

    /// Fetches the key set unless the last attempt is younger than the refetch interval or
    /// another caller fetched while this one waited for its turn.
    async fn refresh(&self) {
        let (http, issuer) = match &self.source {
            Source::Issuer { http, issuer } => (http, Some(issuer)),
            Source::JwksUri { http } => (http, None),
            Source::Fixed => return,
        };
        let seen = self.lock().generation;
        let _turn = self.fetching.lock().await;
        let known_uri = {
            let c = self.lock();
            if c.generation != seen {
                return;
            }
            let interval =
                if c.keys.is_empty() { self.min_refetch.min(RETRY_WHILE_EMPTY) } else { self.min_refetch };
            if c.last_fetch.is_some_and(|t| t.elapsed() < interval) {
                return;
            }
            c.jwks_uri.clone()
        };
        let outcome = fetch(http, issuer, known_uri).await;
        if let Some(counter) = &self.fetch_counter {
            counter.with_label_values(&[if outcome.is_ok() { "ok" } else { "error" }]).inc();
        }
        let mut c = self.lock();
        // Even a failed attempt counts: a flood of unknown kids must not become a flood of fetches.
        c.last_fetch = Some(Instant::now());
        c.generation += 1;
        match outcome {
            Ok(Fetched { issuer, jwks_uri, keys }) => {
                if let Some(i) = issuer {
                    c.issuer = Some(i);
                    c.jwks_uri = Some(jwks_uri);
                }
                tracing::debug!(keys = keys.len(), "loaded the issuer's JWKS");
                c.keys = Arc::new(keys);
            }
            Err(FetchError::Discovery { issuer }) => {
                // The metadata is fine but its JWKS is not: remember where it is anyway.
                if let Some((i, uri)) = issuer {
                    c.issuer = Some(i);
                    c.jwks_uri = Some(uri);
                }
                tracing::warn!(reason = "jwks", "fetching the issuer's keys failed; keeping the keys we had");
            }
            Err(FetchError::NoMetadata) => {
                tracing::warn!(reason = "discovery", "discovering the issuer failed; will retry");
            }
        }
    }
}

struct Fetched {
    /// Set when this fetch ran discovery.
    issuer: Option<String>,
    jwks_uri: String,
    keys: HashMap<String, VerifyingKey>,
}

enum FetchError {
    /// Discovery failed (logged where it happened).
    NoMetadata,
    /// The JWKS could not be fetched or parsed; carries what discovery found, if it ran.
    Discovery { issuer: Option<(String, String)> },
}

async fn fetch(
    http: &reqwest::Client,
    issuer: Option<&PublicUrl>,
    known_uri: Option<String>,
) -> Result<Fetched, FetchError> {
    let (discovered, jwks_uri) = match (known_uri, issuer) {
        (Some(u), _) => (None, u),
        (None, None) => return Err(FetchError::NoMetadata),
        (None, Some(issuer)) => {
            let meta = crate::oidc::discover(http, issuer).await.map_err(|e| {
                tracing::warn!(error = %e, "discovery failed");
                FetchError::NoMetadata
            })?;
            (Some(meta.issuer), meta.jwks_uri)
        }
    };
    let fail = |discovered: Option<String>, uri: &str| FetchError::Discovery {
        issuer: discovered.map(|i| (i, uri.to_string())),
    };
    let Some(doc) = get_json(http, &jwks_uri).await else { return Err(fail(discovered, &jwks_uri)) };
    let Some(keys) = parse_jwks(&doc) else {
        tracing::warn!("the issuer's jwks_uri did not answer a JWK set");
        return Err(fail(discovered, &jwks_uri));
    };
    Ok(Fetched { issuer: discovered, jwks_uri, keys })
}

/// GETs `url` and parses at most [`MAX_JWKS_BYTES`] of JSON.
async fn get_json(http: &reqwest::Client, url: &str) -> Option<serde_json::Value> {
    let mut res = match http.get(url).send().await {
        Ok(r) if r.status().is_success() => r,
        Ok(r) => {
            tracing::warn!(status = r.status().as_u16(), "the JWKS endpoint refused");
            return None;
        }
        Err(e) => {
            tracing::warn!(error = %e.without_url(), "the JWKS endpoint is unreachable");
            return None;
        }
    };
    let mut body = Vec::new();
    while let Some(chunk) = res.chunk().await.ok()? {
        if body.len() + chunk.len() > MAX_JWKS_BYTES {
            tracing::warn!("the JWKS document is too large");
            return None;
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body).ok()
}
