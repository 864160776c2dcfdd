//! The back-channel logout sender's parts: its HTTP client and counters. The state holds one;
//! what it sends and how (`backchannel.rs`) needs the state, so the type sits apart from both.

use super::metrics::Metrics;
use std::time::Duration;

/// Sends logout tokens (`backchannel.rs` has its methods).
pub struct BackchannelSender {
    pub(super) http: reqwest::Client,
    pub(super) metrics: Metrics,
}

impl BackchannelSender {
    /// A sender whose every attempt times out after `timeout`.
    pub fn new(timeout: Duration, metrics: Metrics) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self { http, metrics })
    }
}
