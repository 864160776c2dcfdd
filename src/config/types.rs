//! Typed configuration values: each parses (and so validates) itself when read.

use base64::Engine;
use serde::{Deserialize, Deserializer};
use std::net::SocketAddr;

/// A secret string (client secret, password). Its `Debug` never shows the value.
#[derive(Clone, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    /// The secret itself, for the few places that must send or verify it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// A socket address to listen on.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(transparent)]
pub struct ListenAddr(pub SocketAddr);

/// An absolute `http`/`https` URL with no query or fragment (issuers, public origins, upstreams).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrl(url::Url);

impl PublicUrl {
    /// Parses and checks an `http(s)` URL without query or fragment.
    pub fn parse(s: &str) -> Result<Self, String> {
        let url = url::Url::parse(s).map_err(|e| format!("`{s}` is not a URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("`{s}` must be an http or https URL"));
        }
        if url.host_str().is_none() || url.query().is_some() || url.fragment().is_some() {
            return Err(format!("`{s}` must have a host and no query or fragment"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(format!("`{s}` must not carry credentials"));
        }
        Ok(Self(url))
    }
    /// The URL.
    pub fn url(&self) -> &url::Url {
        &self.0
    }
    /// The URL as text without a trailing slash (`http://localhost:8081`), the form issuers
    /// are compared in.
    pub fn as_str(&self) -> &str {
        self.0.as_str().trim_end_matches('/')
    }
    /// This URL with `path` appended (`path` starts with `/`).
    pub fn join(&self, path: &str) -> String {
        format!("{}{}", self.as_str(), path)
    }
}

impl std::fmt::Display for PublicUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for PublicUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        PublicUrl::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl serde::Serialize for PublicUrl {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A `redis://` or `rediss://` URL. Its `Debug` hides any password.
#[derive(Clone, Deserialize)]
#[serde(try_from = "String")]
pub struct RedisUrl(String);

impl RedisUrl {
    /// The URL as given.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for RedisUrl {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let url = url::Url::parse(&s).map_err(|e| format!("not a URL: {e}"))?;
        if !matches!(url.scheme(), "redis" | "rediss") {
            return Err("must be a redis:// or rediss:// URL".into());
        }
        Ok(Self(s))
    }
}

impl std::fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match url::Url::parse(&self.0) {
            Ok(mut u) => {
                if u.password().is_some() {
                    let _ = u.set_password(Some("redacted"));
                }
                write!(f, "RedisUrl({u})")
            }
            Err(_) => f.write_str("RedisUrl(?)"),
        }
    }
}

/// Where a program keeps its state. Flattened into each program's section, so the keys are
/// `bff.redis_url`, `auth_server.redis_url`, ….
#[derive(Debug, Clone, Deserialize)]
pub struct StoreConfig {
    /// A single Redis server. None of this, `redis_cluster_urls` and `redis_sentinel_urls`:
    /// the in-memory store.
    #[serde(default)]
    pub redis_url: Option<RedisUrl>,
    /// Seed nodes of a Redis Cluster.
    #[serde(default)]
    pub redis_cluster_urls: Vec<RedisUrl>,
    /// Redis Sentinels that know the master named `redis_sentinel_master`.
    #[serde(default)]
    pub redis_sentinel_urls: Vec<RedisUrl>,
    /// The name the Sentinels monitor the master under (`sentinel monitor NAME …`).
    #[serde(default)]
    pub redis_sentinel_master: Option<String>,
    /// Prefix of every key this program writes, so programs (and tests) can share one Redis.
    #[serde(default = "default_namespace")]
    pub redis_namespace: String,
    /// Upper bound for one store operation (connect, wait for a pooled connection, command).
    #[serde(default = "default_store_timeout_ms")]
    pub redis_timeout_ms: u64,
    /// Connections kept in the pool.
    #[serde(default = "default_pool_size")]
    pub redis_pool_size: usize,
    /// Replicas that must acknowledge a write that has to survive a master failover (the
    /// refresh write-ahead, `WAIT`) before it counts; 0: none (Redis replication is
    /// asynchronous, so a crashed master may take its last writes with it).
    #[serde(default)]
    pub redis_wait_replicas: u32,
    /// How long such a write waits for those replicas; below `redis_timeout_ms`, which bounds
    /// the whole operation.
    #[serde(default = "default_wait_timeout_ms")]
    pub redis_wait_timeout_ms: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            redis_url: None,
            redis_cluster_urls: Vec::new(),
            redis_sentinel_urls: Vec::new(),
            redis_sentinel_master: None,
            redis_namespace: default_namespace(),
            redis_timeout_ms: default_store_timeout_ms(),
            redis_pool_size: default_pool_size(),
            redis_wait_replicas: 0,
            redis_wait_timeout_ms: default_wait_timeout_ms(),
        }
    }
}

impl StoreConfig {
    /// Checks the combination of store keys: at most one kind of Redis, and a master name
    /// exactly when Sentinels are given. The error names the offending key (without the
    /// section) and says why.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        let set: Vec<&'static str> = [
            ("redis_url", self.redis_url.is_some()),
            ("redis_cluster_urls", !self.redis_cluster_urls.is_empty()),
            ("redis_sentinel_urls", !self.redis_sentinel_urls.is_empty()),
        ]
        .into_iter()
        .filter_map(|(key, on)| on.then_some(key))
        .collect();
        if let [first, second, ..] = set[..] {
            return Err((
                second,
                format!(
                    "conflicts with {first}: set only one of redis_url, redis_cluster_urls, redis_sentinel_urls"
                ),
            ));
        }
        if self.redis_wait_replicas > 0 && set.is_empty() {
            return Err(("redis_wait_replicas", "needs a Redis store with replicas".to_string()));
        }
        if self.redis_wait_replicas > 0 && self.redis_wait_timeout_ms >= self.redis_timeout_ms {
            let message = format!(
                "must be less than redis_timeout_ms ({}), which bounds the whole operation",
                self.redis_timeout_ms
            );
            return Err(("redis_wait_timeout_ms", message));
        }
        match (&self.redis_sentinel_master, self.redis_sentinel_urls.is_empty()) {
            (None, false) => {
                Err(("redis_sentinel_master", "is required with redis_sentinel_urls".to_string()))
            }
            (Some(name), false) if name.trim().is_empty() => {
                Err(("redis_sentinel_master", "must not be empty".to_string()))
            }
            (Some(_), true) => {
                Err(("redis_sentinel_master", "is only meaningful with redis_sentinel_urls".to_string()))
            }
            _ => Ok(()),
        }
    }
}

fn default_namespace() -> String {
    "cloakroom".into()
}
fn default_store_timeout_ms() -> u64 {
    200
}
fn default_wait_timeout_ms() -> u64 {
    100
}

/// Default of every section's `shutdown_timeout_secs`.
pub(super) fn default_shutdown_timeout_secs() -> u64 {
    10
}
fn default_pool_size() -> usize {
    32
}

/// The keys that encrypt data at rest: one base64 string, or a list whose first entry encrypts
/// and all of which decrypt (rotation). Each must decode to exactly 32 bytes.
#[derive(Clone)]
pub struct SessionKeys(pub Vec<[u8; 32]>);

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SessionKeys([{} redacted])", self.0.len())
    }
}

impl<'de> Deserialize<'de> for SessionKeys {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum OneOrMany {
            One(String),
            Many(Vec<String>),
        }
        let list = match OneOrMany::deserialize(d)? {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        };
        if list.is_empty() {
            return Err(serde::de::Error::custom("needs at least one key"));
        }
        let mut keys = Vec::with_capacity(list.len());
        for s in list {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(s.trim())
                .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s.trim()))
                .map_err(|_| serde::de::Error::custom("must be base64 of 32 random bytes"))?;
            let key: [u8; 32] =
                bytes.try_into().map_err(|_| serde::de::Error::custom("must decode to exactly 32 bytes"))?;
            keys.push(key);
        }
        Ok(Self(keys))
    }
}

/// A route prefix: starts with `/`, no trailing slash, plain path characters only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutePath(String);

impl RoutePath {
    /// The prefix, e.g. `/api`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The shape every local path prefix shares: leading slash, no trailing slash, plain path
/// characters, no dot segments.
fn prefix_shape(s: &str) -> Result<(), String> {
    let ok = s.starts_with('/')
        && s.len() > 1
        && !s.ends_with('/')
        && !s.contains("//")
        && s.split('/').all(|seg| seg != "." && seg != "..")
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"/-_.~".contains(&b));
    if ok {
        Ok(())
    } else {
        Err("must be a path like `/api`: leading slash, no trailing slash, letters, digits, - _ . ~".into())
    }
}

/// True when `s` is `prefix` or below it.
fn is_at_or_below(s: &str, prefix: &str) -> bool {
    s == prefix || s.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('/'))
}

/// Paths cloakroom serves itself, whatever is configured.
const OWN_PATHS: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

impl<'de> Deserialize<'de> for RoutePath {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        prefix_shape(&s).map_err(serde::de::Error::custom)?;
        if s.starts_with("/bff") || OWN_PATHS.iter().any(|p| is_at_or_below(&s, p)) {
            return Err(serde::de::Error::custom(
                "`/bff`, `/healthz`, `/readyz` and `/metrics` are reserved by cloakroom",
            ));
        }
        Ok(Self(s))
    }
}

/// A frontend's path prefix: `/`, or a prefix shaped like a route's (`/admin`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrontendPath(String);

impl FrontendPath {
    /// The prefix, e.g. `/` or `/admin`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for FrontendPath {
    fn default() -> Self {
        Self("/".into())
    }
}

impl<'de> Deserialize<'de> for FrontendPath {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s != "/" {
            prefix_shape(&s).map_err(serde::de::Error::custom)?;
        }
        if s.starts_with("/bff") || OWN_PATHS.iter().any(|p| is_at_or_below(&s, p)) {
            return Err(serde::de::Error::custom(
                "`/bff`, `/healthz`, `/readyz` and `/metrics` are reserved by cloakroom",
            ));
        }
        Ok(Self(s))
    }
}
