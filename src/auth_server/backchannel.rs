//! OpenID Connect Back-Channel Logout 1.0: POST `logout_token=<JWT>` to each client's
//! registered `backchannel_logout_uri`, in a background task with bounded retries, never in the
//! way of the user's request. Outcomes are logged; tokens never are.

use super::grants::Grant;
use super::metrics::Metrics;
use super::state::AppState;
use std::time::Duration;

const ATTEMPTS: u32 = 3;
const FIRST_BACKOFF: Duration = Duration::from_millis(200);

/// Sends logout tokens.
pub struct BackchannelSender {
    http: reqwest::Client,
    metrics: Metrics,
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

    /// Notifies `client_id` (if it registered a back-channel URI) that session `sid` of `sub`
    /// ended. Returns at once; delivery happens in a spawned task.
    pub fn notify(&self, state: &AppState, client_id: &str, sub: &str, sid: &str) {
        let Some(client) = state.clients.get(client_id) else { return };
        let Some(uri) = &client.backchannel_logout_uri else { return };
        let token = match super::tokens::logout_token(state, client_id, sub, sid) {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(error = %e, client_id, "could not sign a logout token");
                return;
            }
        };
        let http = self.http.clone();
        let metrics = self.metrics.clone();
        let url = uri.url().clone();
        let client_id = client_id.to_string();
        tokio::spawn(async move {
            let mut backoff = FIRST_BACKOFF;
            for attempt in 1..=ATTEMPTS {
                let res = http.post(url.clone()).form(&[("logout_token", token.as_str())]).send().await;
                match res {
                    Ok(r) if r.status().is_success() => {
                        tracing::info!(client_id, attempt, "back-channel logout delivered");
                        metrics.backchannel.with_label_values(&["delivered"]).inc();
                        return;
                    }
                    // A 4xx means the client refused this token; resending it will not help.
                    Ok(r) if r.status().is_client_error() => {
                        tracing::warn!(
                            client_id,
                            attempt,
                            status = r.status().as_u16(),
                            "back-channel logout refused"
                        );
                        metrics.backchannel.with_label_values(&["refused"]).inc();
                        return;
                    }
                    Ok(r) => {
                        tracing::warn!(
                            client_id,
                            attempt,
                            status = r.status().as_u16(),
                            "back-channel logout failed"
                        )
                    }
                    Err(e) => {
                        tracing::warn!(client_id, attempt, error = %e.without_url(), "back-channel logout failed")
                    }
                }
                if attempt < ATTEMPTS {
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                }
            }
            metrics.backchannel.with_label_values(&["failed"]).inc();
        });
    }

    /// Notifies the client of each grant (once per client).
    pub fn notify_grants(&self, state: &AppState, grants: &[Grant]) {
        let mut seen: Vec<(&str, &str)> = Vec::new();
        for g in grants {
            if seen.contains(&(g.client_id.as_str(), g.sid.as_str())) {
                continue;
            }
            seen.push((&g.client_id, &g.sid));
            self.notify(state, &g.client_id, &g.sub, &g.sid);
        }
    }
}
