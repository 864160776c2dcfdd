//! The `[resource_server]` section.

use super::types::{ListenAddr, PublicUrl, StoreConfig};
use serde::Deserialize;

/// Configuration of the reference resource server (notes API).
#[derive(Debug, Clone, Deserialize)]
pub struct ResourceServerConfig {
    /// Address to listen on.
    #[serde(default = "default_listen")]
    pub listen: ListenAddr,
    /// Where `/metrics` is served instead of `listen` (unset: on `listen`).
    #[serde(default)]
    pub metrics_listen: Option<ListenAddr>,
    /// On SIGTERM: stop accepting, then give in-flight requests this long to finish.
    #[serde(default = "super::types::default_shutdown_timeout_secs")]
    pub shutdown_timeout_secs: u64,
    /// Traces (OpenTelemetry): `resource_server.telemetry.otlp_endpoint`, `….trust_incoming_traceparent`.
    #[serde(default)]
    pub telemetry: super::TelemetryConfig,
    /// Issuer whose tokens are accepted; its JWKS is found by discovery.
    #[serde(default = "default_issuer")]
    pub issuer: PublicUrl,
    /// This server's identifier, required in `aud`.
    #[serde(default = "default_audience")]
    pub audience: String,
    /// Clock leeway for `exp`/`nbf`/`iat`.
    #[serde(default = "default_leeway")]
    pub leeway_secs: u64,
    /// An unknown `kid` triggers a JWKS refetch at most this often.
    #[serde(default = "default_refetch")]
    pub jwks_min_refetch_secs: u64,
    /// Where the notes demo's server-rendered pages are served (a frontend server for the BFF:
    /// `[[bff.frontends]] upstream`); unset: no pages.
    #[serde(default)]
    pub pages_listen: Option<ListenAddr>,
    /// The URL clients reach this server at: a DPoP proof's `htu` must be it plus the request's
    /// path. Unset: `http://` plus the request's `Host` header (for local and test setups).
    #[serde(default)]
    pub public_url: Option<PublicUrl>,
    /// Require DPoP proofs to carry a nonce this server issued (RFC 9449 §9): a proof without
    /// the current one is answered 401 `use_dpop_nonce` with a fresh `DPoP-Nonce`.
    #[serde(default)]
    pub dpop_nonce: bool,
    /// The `acr` every token must carry (RFC 9470); a token without it gets 401
    /// `insufficient_user_authentication` naming it in `WWW-Authenticate`. Unset: any.
    #[serde(default)]
    pub required_acr: Option<String>,
    /// The longest time since the user authenticated (`auth_time`) a token may carry; an older
    /// one gets the same 401 with `max_age`. Unset: any.
    #[serde(default)]
    pub max_auth_age_secs: Option<u64>,
    /// Where notes are kept.
    #[serde(flatten)]
    pub store: StoreConfig,
}

fn default_listen() -> ListenAddr {
    ListenAddr(([127, 0, 0, 1], 8082).into())
}
fn default_issuer() -> PublicUrl {
    PublicUrl::parse("http://localhost:8081").unwrap_or_else(|_| unreachable!())
}
fn default_audience() -> String {
    "http://localhost:8082".into()
}
fn default_leeway() -> u64 {
    10
}
fn default_refetch() -> u64 {
    30
}
