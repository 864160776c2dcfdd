//! The issuer's signing keys: found by discovery, cached, refetched on an unknown `kid` at most
//! once per interval. Each key carries the ONE algorithm it may verify (RFC 8725 §3.1): the JWK's
//! own `alg` when present, else the only sensible one for its type and curve. Symmetric keys are
//! never accepted, and nothing in a token's header (`jku`, `x5u`, `jwk`) ever selects a key.

use super::JwtError;
use crate::config::PublicUrl;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A verification key and the algorithm bound to it.
#[derive(Clone)]
pub struct VerifyingKey {
    /// The key.
    pub key: DecodingKey,
    /// The only algorithm a token signed with this key may use.
    pub alg: Algorithm,
}

/// Where the keys come from.
#[derive(Clone)]
enum Source {
    /// Discovery at `issuer`, then its `jwks_uri`.
    Issuer { http: reqwest::Client, issuer: PublicUrl },
    /// A fixed set (tests, embedding).
    Fixed,
}

#[derive(Default)]
struct Cached {
    keys: Arc<HashMap<String, VerifyingKey>>,
    /// The issuer exactly as the provider's metadata spells it.
    issuer: Option<String>,
    jwks_uri: Option<String>,
    last_fetch: Option<Instant>,
}

/// A cache of one issuer's keys; cheap to clone.
#[derive(Clone)]
pub struct JwksCache {
    source: Source,
    min_refetch: Duration,
    cached: Arc<Mutex<Cached>>,
    /// Serialises fetches so that concurrent misses cause one request.
    fetching: Arc<tokio::sync::Mutex<()>>,
}

impl JwksCache {
    /// Keys of `issuer`, discovered lazily (the issuer may start later than we do).
    pub fn for_issuer(http: reqwest::Client, issuer: PublicUrl, min_refetch: Duration) -> Self {
        Self {
            source: Source::Issuer { http, issuer },
            min_refetch,
            cached: Arc::default(),
            fetching: Arc::default(),
        }
    }

    /// A fixed key set for `issuer` (no fetching).
    pub fn fixed(issuer: &str, jwks: &serde_json::Value) -> Self {
        let cached = Cached {
            keys: Arc::new(parse_jwks(jwks)),
            issuer: Some(issuer.to_string()),
            jwks_uri: None,
            last_fetch: Some(Instant::now()),
        };
        Self {
            source: Source::Fixed,
            min_refetch: Duration::MAX,
            cached: Arc::new(Mutex::new(cached)),
            fetching: Arc::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cached> {
        self.cached.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The issuer identifier as the provider spells it (fetches metadata on first use).
    pub async fn issuer(&self) -> Result<String, JwtError> {
        if let Some(i) = self.lock().issuer.clone() {
            return Ok(i);
        }
        self.refresh().await?;
        self.lock().issuer.clone().ok_or(JwtError::KeysUnavailable)
    }

    /// Ok once the issuer is known and at least one key is loaded; otherwise tries to load
    /// them (at most once per refetch interval after the first attempt).
    pub async fn ensure_loaded(&self) -> Result<(), JwtError> {
        let loaded = |c: &Cached| c.issuer.is_some() && !c.keys.is_empty();
        if loaded(&self.lock()) {
            return Ok(());
        }
        self.refresh().await?;
        if loaded(&self.lock()) { Ok(()) } else { Err(JwtError::KeysUnavailable) }
    }

    /// The key for `kid`; an unknown `kid` refetches the set if the last fetch is old enough.
    pub async fn key(&self, kid: &str) -> Result<VerifyingKey, JwtError> {
        if let Some(k) = self.lock().keys.get(kid) {
            return Ok(k.clone());
        }
        self.refresh().await?;
        self.lock().keys.get(kid).cloned().ok_or(JwtError::UnknownKey)
    }

    /// Fetches the key set unless the last fetch (successful or not) is younger than the
    /// refetch interval.
    async fn refresh(&self) -> Result<(), JwtError> {
        let Source::Issuer { http, issuer } = &self.source else { return Ok(()) };
        let _guard = self.fetching.lock().await;
        let (due, known_uri) = {
            let c = self.lock();
            // With no keys at all (issuer not up yet), retry sooner: nothing can be verified.
            let interval = if c.keys.is_empty() {
                self.min_refetch.min(Duration::from_secs(1))
            } else {
                self.min_refetch
            };
            let due = c.last_fetch.is_none_or(|t| t.elapsed() >= interval);
            (due, c.jwks_uri.clone())
        };
        if !due {
            return Ok(());
        }
        let (exact_issuer, uri) = match known_uri {
            Some(u) => (None, u),
            None => {
                let meta = crate::oidc::discover(http, issuer).await.map_err(|e| {
                    tracing::warn!(error = %e, "discovery failed");
                    JwtError::KeysUnavailable
                })?;
                (Some(meta.issuer), meta.jwks_uri)
            }
        };
        let fetched = async {
            let res = http.get(&uri).send().await.ok()?;
            if !res.status().is_success() {
                return None;
            }
            res.json::<serde_json::Value>().await.ok()
        }
        .await;
        let mut c = self.lock();
        if let Some(i) = exact_issuer {
            c.issuer = Some(i);
            c.jwks_uri = Some(uri);
        }
        // Even a failed fetch counts: a flood of unknown kids must not become a flood of fetches.
        c.last_fetch = Some(Instant::now());
        match fetched {
            Some(doc) => {
                c.keys = Arc::new(parse_jwks(&doc));
                Ok(())
            }
            None => {
                tracing::warn!("fetching the JWKS failed; keeping the keys we had");
                if c.keys.is_empty() { Err(JwtError::KeysUnavailable) } else { Ok(()) }
            }
        }
    }
}

/// The usable signing keys of a JWK set, by `kid`. Keys without `kid`, encryption keys,
/// symmetric keys and unsupported types are skipped one by one.
pub fn parse_jwks(doc: &serde_json::Value) -> HashMap<String, VerifyingKey> {
    let mut out = HashMap::new();
    for raw in doc.get("keys").and_then(|k| k.as_array()).into_iter().flatten() {
        let Ok(jwk) = serde_json::from_value::<Jwk>(raw.clone()) else { continue };
        let Some(kid) = jwk.common.key_id.clone() else { continue };
        if matches!(&jwk.common.public_key_use, Some(u) if *u != PublicKeyUse::Signature) {
            continue;
        }
        let Some(alg) = bound_algorithm(&jwk) else { continue };
        let Ok(key) = DecodingKey::from_jwk(&jwk) else { continue };
        out.insert(kid, VerifyingKey { key, alg });
    }
    out
}

/// The algorithm a JWK may verify, or `None` when the key must not be used for signatures.
fn bound_algorithm(jwk: &Jwk) -> Option<Algorithm> {
    let by_type = match &jwk.algorithm {
        AlgorithmParameters::EllipticCurve(p) => match p.curve {
            EllipticCurve::P256 => vec![Algorithm::ES256],
            EllipticCurve::P384 => vec![Algorithm::ES384],
            _ => vec![],
        },
        AlgorithmParameters::RSA(_) => vec![
            Algorithm::RS256,
            Algorithm::RS384,
            Algorithm::RS512,
            Algorithm::PS256,
            Algorithm::PS384,
            Algorithm::PS512,
        ],
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => vec![Algorithm::EdDSA],
        // Symmetric keys would let anyone who knows them mint tokens.
        _ => vec![],
    };
    let declared = match jwk.common.key_algorithm {
        None => None,
        Some(a) => Some(signature_algorithm(a)?),
    };
    match declared {
        Some(a) => by_type.contains(&a).then_some(a),
        // RSA without `alg`: RS256, the default of OpenID Connect.
        None => by_type.first().copied(),
    }
}

fn signature_algorithm(a: KeyAlgorithm) -> Option<Algorithm> {
    Some(match a {
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        KeyAlgorithm::PS384 => Algorithm::PS384,
        KeyAlgorithm::PS512 => Algorithm::PS512,
        KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        _ => return None,
    })
}
