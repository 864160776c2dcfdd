//! Prometheus counters of the auth server.

use prometheus::{IntCounterVec, Opts, Registry};

/// Counters registered in the server's registry; cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    /// Token requests by `grant_type` and `outcome` (`ok` or the OAuth error code).
    pub token_requests: IntCounterVec,
    /// Login attempts by `outcome`.
    pub logins: IntCounterVec,
    /// Back-channel logout deliveries by `outcome`.
    pub backchannel: IntCounterVec,
}

impl Metrics {
    /// Creates and registers the counters.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let token_requests = IntCounterVec::new(
            Opts::new("cloakroom_auth_token_requests_total", "Token endpoint requests"),
            &["grant_type", "outcome"],
        )?;
        let logins =
            IntCounterVec::new(Opts::new("cloakroom_auth_logins_total", "Login attempts"), &["outcome"])?;
        let backchannel = IntCounterVec::new(
            Opts::new("cloakroom_auth_backchannel_logout_total", "Back-channel logout deliveries"),
            &["outcome"],
        )?;
        registry.register(Box::new(token_requests.clone()))?;
        registry.register(Box::new(logins.clone()))?;
        registry.register(Box::new(backchannel.clone()))?;
        Ok(Self { token_requests, logins, backchannel })
    }
}
