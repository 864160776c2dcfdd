//! The provider's metadata, loaded lazily with retry and cached (`/readyz` is 503 until it is
//! loaded), and the verifier of its ID tokens over the shared `jwt::JwksCache`.

use crate::config::PublicUrl;
use crate::jwt::dpop::DpopAlg;
use crate::jwt::{JwksCache, Verifier};
use crate::oidc::client_auth::PROVIDER_TIMEOUT;
use crate::oidc::{DiscoveryError, ProviderMetadata, discover};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::RwLock;

/// Why the provider's documents are not available.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// Discovery failed.
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    /// The provider does not offer PKCE S256.
    #[error("the provider does not support PKCE S256")]
    NoS256,
    /// `bff.oidc.par = "required"` and the provider offers no pushed authorization requests.
    #[error(
        "configuration key `bff.oidc.par` is \"required\" but the provider's metadata has no pushed_authorization_request_endpoint"
    )]
    NoPar,
    /// `bff.oidc.dpop = "on"` and the provider accepts neither EdDSA nor ES256 proofs.
    #[error(
        "configuration key `bff.oidc.dpop` is \"on\" but the provider's metadata lists neither EdDSA nor ES256 in dpop_signing_alg_values_supported"
    )]
    NoDpop,
}

/// Cached provider metadata and JWKS; cheap to clone.
#[derive(Clone)]
pub struct Provider {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    issuer: PublicUrl,
    metadata: RwLock<Option<Arc<ProviderMetadata>>>,
    verifier: Verifier,
    par_required: bool,
    dpop: bool,
}

/// An unknown `kid` triggers a JWKS refetch at most this often.
const JWKS_REFETCH_INTERVAL: Duration = Duration::from_secs(10);

impl Provider {
    /// A cache for `issuer`; nothing is fetched yet. With `par_required`, metadata without a
    /// pushed-request endpoint is refused (and `/readyz` stays 503).
    pub fn new(http: reqwest::Client, issuer: PublicUrl, par_required: bool) -> Self {
        Self::build(http, issuer, par_required, false)
    }

    /// With `dpop`, metadata that accepts no DPoP algorithm of ours is refused (`/readyz`
    /// stays 503, the log names `bff.oidc.dpop`). Called before anything is fetched.
    pub fn requiring_dpop(self, dpop: bool) -> Self {
        let inner = &self.inner;
        Self::build(inner.http.clone(), inner.issuer.clone(), inner.par_required, dpop)
    }

    fn build(http: reqwest::Client, issuer: PublicUrl, par_required: bool, dpop: bool) -> Self {
        let jwks = JwksCache::for_issuer(http.clone(), issuer.clone(), JWKS_REFETCH_INTERVAL);
        let verifier = Verifier::new(jwks, crate::bff::id_token::LEEWAY_SECS);
        let metadata = RwLock::new(None);
        Self { inner: Arc::new(Inner { http, issuer, metadata, verifier, par_required, dpop }) }
    }

    /// The algorithm of new sessions' DPoP keys: the faster one the provider accepts; `None`
    /// when DPoP is off.
    pub async fn dpop_alg(&self) -> Result<Option<DpopAlg>, ProviderError> {
        if !self.inner.dpop {
            return Ok(None);
        }
        let meta = self.metadata().await?;
        DpopAlg::choose(&meta.dpop_signing_alg_values_supported).map(Some).ok_or(ProviderError::NoDpop)
    }

    /// True once the metadata has been loaded.
    pub async fn is_loaded(&self) -> bool {
        self.inner.metadata.read().await.is_some()
    }

    /// The metadata, fetching it if it is not cached yet.
    pub async fn metadata(&self) -> Result<Arc<ProviderMetadata>, ProviderError> {
        if let Some(m) = self.inner.metadata.read().await.as_ref() {
            return Ok(m.clone());
        }
        let mut slot = self.inner.metadata.write().await;
        if let Some(m) = slot.as_ref() {
            return Ok(m.clone());
        }
        let meta = tokio::time::timeout(PROVIDER_TIMEOUT, discover(&self.inner.http, &self.inner.issuer))
            .await
            .map_err(|_| DiscoveryError::Fetch("timed out".into()))??;
        // An absent list is tolerated (many providers omit it); a list without S256 is not.
        if !meta.code_challenge_methods_supported.is_empty()
            && !meta.code_challenge_methods_supported.iter().any(|m| m == "S256")
        {
            return Err(ProviderError::NoS256);
        }
        if self.inner.par_required && meta.pushed_authorization_request_endpoint.is_none() {
            return Err(ProviderError::NoPar);
        }
        if self.inner.dpop && DpopAlg::choose(&meta.dpop_signing_alg_values_supported).is_none() {
            return Err(ProviderError::NoDpop);
        }
        let meta = Arc::new(meta);
        *slot = Some(meta.clone());
        Ok(meta)
    }

    /// Keeps trying to load the metadata in the background until it succeeds.
    pub fn load_in_background(&self) {
        let this = self.clone();
        tokio::spawn(async move {
            let mut delay = Duration::from_millis(200);
            loop {
                match this.metadata().await {
                    Ok(_) => return,
                    Err(e) => tracing::warn!(error = %e, "provider metadata not loaded yet; retrying"),
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(10));
            }
        });
    }

    /// The verifier of this provider's tokens.
    pub fn verifier(&self) -> &Verifier {
        &self.inner.verifier
    }
}
