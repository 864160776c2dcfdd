//! The composition root's shared state: what the BFF's handlers reach through `web::Data`
//! (configuration, store, keys, the provider's HTTP client and metadata, token care, metrics).

use super::keys::Keys;
use super::metrics::BffMetrics;
use super::provider::Provider;
use super::proxy::headers::Forwarded;
use super::tokens::TokenCare;
use crate::config::BffConfig;
use crate::oidc::ClientCredentials;
use crate::store::Store;
use std::sync::Arc;

/// Shared application state (in `web::Data`).
pub struct BffState {
    /// The configuration.
    pub config: BffConfig,
    /// The store.
    pub store: Store,
    /// Derived keys.
    pub keys: Keys,
    /// The HTTP client for the provider (upstreams have one per worker:
    /// `proxy::WorkerClient`).
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
    /// Every route's and frontend server's upstream, resolved at start.
    pub upstreams: super::proxy::Upstreams,
    /// What relayed WebSockets share: their registry by session, limits, metrics.
    pub websockets: super::websocket::Sockets,
}

/// What requests need of `bff.public_url`, computed at start.
pub struct PublicUrlParts {
    /// `scheme://host[:port]`, compared exactly with `Origin`.
    pub origin: String,
    /// `X-Forwarded-Proto` and `X-Forwarded-Host` sent upstream.
    pub forwarded: Forwarded,
}

impl PublicUrlParts {
    /// The parts of `url`.
    pub fn of(url: &url::Url) -> Self {
        Self { origin: url.origin().ascii_serialization(), forwarded: Forwarded::of(url) }
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
