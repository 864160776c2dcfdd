//! Prometheus counters of the resource server.

use prometheus::{IntCounterVec, Opts, Registry};

/// Counters registered in the server's registry; cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    /// Bearer token checks by `outcome`: `ok`, `missing` (no or a malformed `Authorization`
    /// header), `invalid`, `keys_unavailable`.
    pub token_checks: IntCounterVec,
    /// JWKS fetch attempts by `outcome`: `ok` or `error`.
    pub jwks_fetches: IntCounterVec,
    /// Notes operations by `op` (`list`, `create`, `delete`) and `outcome` (`ok` or an error code).
    pub notes: IntCounterVec,
}

impl Metrics {
    /// Creates and registers the counters.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let token_checks = IntCounterVec::new(
            Opts::new("cloakroom_rs_token_checks_total", "Bearer token verifications"),
            &["outcome"],
        )?;
        let jwks_fetches = IntCounterVec::new(
            Opts::new("cloakroom_rs_jwks_fetches_total", "Fetches of the issuer's JWKS"),
            &["outcome"],
        )?;
        let notes = IntCounterVec::new(
            Opts::new("cloakroom_rs_notes_requests_total", "Notes API requests"),
            &["op", "outcome"],
        )?;
        registry.register(Box::new(token_checks.clone()))?;
        registry.register(Box::new(jwks_fetches.clone()))?;
        registry.register(Box::new(notes.clone()))?;
        Ok(Self { token_checks, jwks_fetches, notes })
    }
}
