//! `cloakroom auth-server revoke --sub S | --sid X`: an operator ends a user's access at the
//! provider, straight in the auth server's store. Every grant of the subject (or of the
//! provider session) is revoked — each refresh token of each family dies — the provider login
//! sessions end (no single sign-on back in), and each client that registered a
//! `backchannel_logout_uri` gets a logout token, so a BFF ends its sessions at once.
//!
//! Unlike the server, which sends logout tokens in the background, this command waits for the
//! (bounded) deliveries before it exits: a process that ends drops whatever is in flight.

use super::grants::{self, Grant};
use super::login_session;
use super::metrics::Metrics;
use super::state::AppState;
use crate::config::{AuthServerConfig, ConfigError};
use crate::startup::StartupError;
use crate::store::StoreError;
use serde::Serialize;
use std::collections::BTreeSet;
use std::io::Write;

/// What one revocation did; printed as one JSON line.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Revocation {
    /// Grants (refresh-token families) that were alive and are now revoked.
    pub grants_revoked: usize,
    /// Provider login sessions ended.
    pub login_sessions_ended: usize,
    /// Logout tokens the clients accepted.
    pub notices_delivered: usize,
    /// Logout tokens refused or undeliverable after every attempt.
    pub notices_failed: usize,
}

fn store_error(e: StoreError) -> StartupError {
    StartupError::Other(format!("auth server store: {e}"))
}

/// Whose access an operator revokes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevokeTarget {
    /// Every grant and login session of this subject.
    Sub(String),
    /// The login session with this provider session id, and its grants.
    Sid(String),
}

/// Revokes `target`'s access in the store of `cfg`; prints the summary to stdout.
pub async fn run(cfg: AuthServerConfig, target: RevokeTarget) -> Result<(), StartupError> {
    let store = &cfg.store;
    if store.redis_url.is_none()
        && store.redis_cluster_urls.is_empty()
        && store.redis_sentinel_urls.is_empty()
    {
        return Err(ConfigError::new(
            "auth_server.redis_url",
            "is required: the in-memory store has no grants to revoke",
        )
        .into());
    }
    // A generated key would sign logout tokens no client can verify.
    if cfg.signing_key_file.is_none() {
        return Err(ConfigError::new(
            "auth_server.signing_key_file",
            "is required: clients accept only logout tokens signed with the servers' key",
        )
        .into());
    }
    let metrics =
        Metrics::register(&prometheus::Registry::new()).map_err(|e| StartupError::Other(e.to_string()))?;
    let state = AppState::connect(cfg, metrics).await?;
    // The store is opened lazily: ask it first, so an unreachable one is one clear error
    // before anything was done.
    state.store.ping().await.map_err(store_error)?;
    let summary = match target {
        RevokeTarget::Sid(sid) => revoke_session(&state, &sid).await,
        RevokeTarget::Sub(sub) => revoke_subject(&state, &sub).await,
    }
    .map_err(store_error)?;
    let line = serde_json::to_string(&summary).map_err(|e| StartupError::Other(e.to_string()))?;
    let _ = writeln!(std::io::stdout().lock(), "{line}");
    Ok(())
}

/// Ends every login session and revokes every grant of `sub`, then notifies the clients and
/// waits for the deliveries.
pub(crate) async fn revoke_subject(state: &AppState, sub: &str) -> Result<Revocation, StoreError> {
    // Sessions first: the user cannot be handed a new grant through single sign-on meanwhile.
    let sids = login_session::of_sub(state, sub).await?;
    let mut ended = 0;
    for sid in &sids {
        ended += usize::from(login_session::end(state, sid, sub).await?);
    }
    // Grants issued before the subject index existed are found through their sessions.
    let mut gids: BTreeSet<String> = grants::of_sub(state, sub).await?.into_iter().collect();
    for sid in &sids {
        gids.extend(grants::of_sid(state, sid).await?);
    }
    let revoked = grants::revoke_all(state, &gids.into_iter().collect::<Vec<_>>()).await?;
    Ok(notify(state, revoked, ended).await)
}

/// Ends the login session `sid` and revokes its grants, then notifies the clients and waits
/// for the deliveries.
pub(crate) async fn revoke_session(state: &AppState, sid: &str) -> Result<Revocation, StoreError> {
    let ended = login_session::end_sid(state, sid).await?.is_some();
    let revoked = grants::revoke_all(state, &grants::of_sid(state, sid).await?).await?;
    Ok(notify(state, revoked, usize::from(ended)).await)
}

async fn notify(state: &AppState, revoked: Vec<Grant>, sessions_ended: usize) -> Revocation {
    let deliveries = state.backchannel.notify_grants_and_wait(state, &revoked).await;
    tracing::info!(
        grants = revoked.len(),
        sessions = sessions_ended,
        delivered = deliveries.delivered,
        failed = deliveries.failed,
        "revoked by an administrator"
    );
    Revocation {
        grants_revoked: revoked.len(),
        login_sessions_ended: sessions_ended,
        notices_delivered: deliveries.delivered,
        notices_failed: deliveries.failed,
    }
}
