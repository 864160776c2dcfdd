//! OpenID Connect Back-Channel Logout 1.0: POST `logout_token=<JWT>` to each client's
//! registered `backchannel_logout_uri`, with bounded retries. The server sends them in
//! background tasks, never in the way of the user's request; the admin command, whose process
//! exits when it is done, waits for them. Outcomes are logged; tokens never are.

pub use super::delivery::BackchannelSender;
use super::grants::Grant;
use super::metrics::Metrics;
use super::state::AppState;
use std::time::Duration;

const ATTEMPTS: u32 = 3;
const FIRST_BACKOFF: Duration = Duration::from_millis(200);

/// What became of one logout notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// The client answered 2xx.
    Delivered,
    /// The client answered 4xx: it refused this token, resending would not help.
    Refused,
    /// Every attempt failed (network, timeout, 5xx), or the token could not be signed.
    Failed,
}

/// Counts of the outcomes of [`BackchannelSender::notify_grants_and_wait`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Deliveries {
    /// Notices the clients accepted.
    pub delivered: usize,
    /// Notices refused, undeliverable or unsigned.
    pub failed: usize,
}

/// One signed logout token on its way to one client.
struct Notice {
    http: reqwest::Client,
    metrics: Metrics,
    url: url::Url,
    client_id: String,
    token: String,
}

impl Notice {
    /// Posts the token, retrying transient failures with a doubling backoff; at most
    /// [`ATTEMPTS`] attempts, each bounded by the client's timeout.
    async fn deliver(self) -> Delivery {
        let Notice { http, metrics, url, client_id, token } = self;
        let mut backoff = FIRST_BACKOFF;
        for attempt in 1..=ATTEMPTS {
            let res = http.post(url.clone()).form(&[("logout_token", token.as_str())]).send().await;
            match res {
                Ok(r) if r.status().is_success() => {
                    tracing::info!(client_id, attempt, "back-channel logout delivered");
                    metrics.backchannel.with_label_values(&["delivered"]).inc();
                    return Delivery::Delivered;
                }
                Ok(r) if r.status().is_client_error() => {
                    tracing::warn!(
                        client_id,
                        attempt,
                        status = r.status().as_u16(),
                        "back-channel logout refused"
                    );
                    metrics.backchannel.with_label_values(&["refused"]).inc();
                    return Delivery::Refused;
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
        // Errors, so the admin command (which logs errors only) says which client missed it.
        tracing::error!(client_id, attempts = ATTEMPTS, "back-channel logout undeliverable");
        metrics.backchannel.with_label_values(&["failed"]).inc();
        Delivery::Failed
    }
}

impl BackchannelSender {
    /// The notice telling `client_id` (if it registered a back-channel URI) that session `sid`
    /// of `sub` ended: `None` when the client registered none, `Some(Err(()))` when the token
    /// could not be signed (logged).
    fn notice(&self, state: &AppState, client_id: &str, sub: &str, sid: &str) -> Option<Result<Notice, ()>> {
        let client = state.clients.get(client_id)?;
        let uri = client.backchannel_logout_uri.as_ref()?;
        let token = match super::tokens::logout_token(state, client_id, sub, sid) {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(error = %e, client_id, "could not sign a logout token");
                self.metrics.backchannel.with_label_values(&["failed"]).inc();
                return Some(Err(()));
            }
        };
        Some(Ok(Notice {
            http: self.http.clone(),
            metrics: self.metrics.clone(),
            url: uri.url().clone(),
            client_id: client_id.to_string(),
            token,
        }))
    }

    /// The notices for `grants`: one per client and provider session.
    fn notices(&self, state: &AppState, grants: &[Grant]) -> Vec<Result<Notice, ()>> {
        let mut seen: Vec<(&str, &str)> = Vec::new();
        let mut notices = Vec::new();
        for g in grants {
            if seen.contains(&(g.client_id.as_str(), g.sid.as_str())) {
                continue;
            }
            seen.push((&g.client_id, &g.sid));
            notices.extend(self.notice(state, &g.client_id, &g.sub, &g.sid));
        }
        notices
    }

    /// Notifies the client of each grant (once per client and session). Returns at once;
    /// delivery happens in spawned tasks.
    pub fn notify_grants(&self, state: &AppState, grants: &[Grant]) {
        for notice in self.notices(state, grants).into_iter().flatten() {
            tokio::spawn(notice.deliver());
        }
    }

    /// Like [`Self::notify_grants`], and waits until every delivery has ended (each is
    /// bounded: three attempts, each within the configured timeout). For a process that
    /// exits next, which would otherwise drop the deliveries in flight.
    pub async fn notify_grants_and_wait(&self, state: &AppState, grants: &[Grant]) -> Deliveries {
        let mut out = Deliveries::default();
        let mut tasks = Vec::new();
        for notice in self.notices(state, grants) {
            match notice {
                // Concurrently: one slow client does not delay the others' notices.
                Ok(n) => tasks.push(tokio::spawn(n.deliver())),
                Err(()) => out.failed += 1,
            }
        }
        for task in tasks {
            match task.await {
                Ok(Delivery::Delivered) => out.delivered += 1,
                Ok(Delivery::Refused | Delivery::Failed) | Err(_) => out.failed += 1,
            }
        }
        out
    }
}
