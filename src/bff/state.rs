//! What every handler shares: configuration, store, keys, HTTP client, provider cache, token care
//! and metrics.

use super::metrics::BffMetrics;
use super::provider::Provider;
use super::tokens::TokenCare;
use crate::config::BffConfig;
use crate::crypto::Sealer;
use crate::oidc::ClientCredentials;
use crate::store::Store;
use std::sync::Arc;

/// Keys derived from `bff.session_key` (a list: the first is current, the others are being
/// rotated out) and `bff.session_id_hash_key`: one seals records, one hashes ids, one signs
/// cookies.
///
/// Rotation logs nobody out: records sealed under an older key still open (and are sealed
/// under the current key when next written); cookies signed with an older key are accepted and
/// re-signed ([`super::guard`]); and the id hash — every store key — does not depend on
/// `session_key` at all, so rotating it never moves a record.
#[derive(Clone)]
pub struct Keys {
    /// Seals session state, token records and login attempts.
    pub sealer: Sealer,
    /// The keyed hash applied to every id before it becomes a store key or a log field.
    id_hasher: crate::crypto::KeyedHasher,
    /// Signs the session cookie (actix-session `CookieContentSecurity::Signed`).
    pub cookie_key: actix_web::cookie::Key,
    /// Cookie keys of the older session keys: signatures made with them are still accepted.
    pub old_cookie_keys: Vec<actix_web::cookie::Key>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys([redacted])")
    }
}

impl Keys {
    /// Derives all keys from the configured list (the first one is current) and the id-hash
    /// key. Without an id-hash key ids are hashed under a fixed key: session ids are 256 random
    /// bits, so their hashes still reveal nothing, and store keys stay put across rotations.
    pub fn derive(keys: &[[u8; 32]], id_hash_key: Option<&[u8; 32]>) -> Self {
        let first = keys.first().copied().unwrap_or_else(crate::crypto::random_bytes::<32>);
        let id_hash_key = match id_hash_key {
            Some(k) => crate::crypto::keyed_hash(k, b"cloakroom-bff id hash"),
            None => crate::crypto::keyed_hash(b"cloakroom-bff fixed id hash key", b"cloakroom-bff id hash"),
        };
        let mut cookie_keys = std::iter::once(&first).chain(keys.iter().skip(1)).map(cookie_key_of);
        let cookie_key = cookie_keys.next().unwrap_or_else(|| cookie_key_of(&first));
        Self {
            sealer: Sealer::new(keys),
            id_hasher: crate::crypto::KeyedHasher::new(id_hash_key.as_bytes()),
            cookie_key,
            old_cookie_keys: cookie_keys.collect(),
        }
    }

    /// The keyed hash of an id: what appears in store keys and logs instead of the id.
    pub fn hash_id(&self, id: &str) -> String {
        self.id_hasher.hash(id.as_bytes())
    }

    /// `prefix` followed by [`Keys::hash_id`] of `id` (a store key), in one allocation.
    pub fn hashed_key(&self, prefix: &str, id: &str) -> String {
        self.id_hasher.hash_after(prefix, id.as_bytes())
    }
}

fn cookie_key_of(key: &[u8; 32]) -> actix_web::cookie::Key {
    let signing_master = format!(
        "{}{}",
        crate::crypto::keyed_hash(key, b"cloakroom-bff cookie signing 1"),
        crate::crypto::keyed_hash(key, b"cloakroom-bff cookie signing 2")
    );
    actix_web::cookie::Key::derive_from(signing_master.as_bytes())
}

/// Shared application state (in `web::Data`).
pub struct BffState {
    /// The configuration.
    pub config: BffConfig,
    /// The store.
    pub store: Store,
    /// Derived keys.
    pub keys: Keys,
    /// The HTTP client for the provider (upstreams have one per worker:
    /// [`super::upstream::WorkerClient`]).
    pub http: reqwest::Client,
    /// Provider metadata cache.
    pub provider: Provider,
    /// This client's credentials.
    pub creds: ClientCredentials,
    /// Token refresh machinery.
    pub tokens: TokenCare,
    /// Prometheus metrics.
    pub metrics: Arc<BffMetrics>,
    /// Values derived from the public URL once, not per request.
    pub public: PublicUrlParts,
    /// The request headers each route forwards, built at start.
    pub request_headers: super::header_policy::RoutePolicies,
}

/// What requests need of `bff.public_url`, computed at start.
pub struct PublicUrlParts {
    /// `scheme://host[:port]`, compared exactly with `Origin`.
    pub origin: String,
    /// `X-Forwarded-Proto` sent upstream.
    pub forwarded_proto: Option<reqwest::header::HeaderValue>,
    /// `X-Forwarded-Host` sent upstream.
    pub forwarded_host: Option<reqwest::header::HeaderValue>,
}

impl PublicUrlParts {
    /// The parts of `url`.
    pub fn of(url: &url::Url) -> Self {
        let host = match url.port() {
            Some(p) => format!("{}:{p}", url.host_str().unwrap_or("")),
            None => url.host_str().unwrap_or("").to_string(),
        };
        let value = |v: &str| reqwest::header::HeaderValue::from_str(v).ok().filter(|v| !v.is_empty());
        Self {
            origin: url.origin().ascii_serialization(),
            forwarded_proto: value(url.scheme()),
            forwarded_host: value(&host),
        }
    }
}

impl BffState {
    /// `public_url + "/bff/callback"`.
    pub fn redirect_uri(&self) -> String {
        self.config.public_url.join("/bff/callback")
    }

    /// The public origin (`scheme://host[:port]`), compared exactly with `Origin`.
    pub fn public_origin(&self) -> &str {
        &self.public.origin
    }
}
