//! `cloakroom sessions list|revoke`: session administration straight in the BFF's store, for
//! operators. Revocation takes the back-channel logout path ([`end_target`]), so every instance
//! sees it at once and near caches hear `session-ended`.

use super::backchannel::{LogoutTarget, end_target};
use super::session_store::BffSessionStore;
use super::sessions::{SessionView, sessions_of};
use super::state::Keys;
use crate::cli::SessionsAction;
use crate::config::{BffConfig, ConfigError};
use crate::startup::StartupError;
use crate::store::Store;
use std::io::Write;

fn store_error(e: crate::store::StoreError) -> StartupError {
    StartupError::Other(format!("session store: {e}"))
}

/// Runs one `cloakroom sessions` action against the store of `cfg`; prints to stdout.
pub async fn run(cfg: BffConfig, action: SessionsAction) -> Result<(), StartupError> {
    let Some(keys) = &cfg.session_key else {
        return Err(ConfigError::new("bff.session_key", "is required to read sessions").into());
    };
    if cfg.store.redis_url.is_none() && cfg.store.redis_cluster_urls.is_empty() {
        return Err(ConfigError::new(
            "bff.redis_url",
            "is required: the in-memory store has no sessions to administer",
        )
        .into());
    }
    let store = Store::connect(&cfg.store, "bff").await?;
    let sessions = BffSessionStore::new(
        store.clone(),
        Keys::derive(&keys.0, cfg.session_id_hash_key.as_ref().and_then(|k| k.0.first())),
    );
    let mut out = std::io::stdout().lock();
    match action {
        SessionsAction::List { sub } => {
            for s in sessions_of(&store, &sessions, &sub).await.map_err(store_error)? {
                let line = serde_json::to_string(&SessionView::of(&s.record, false))
                    .map_err(|e| StartupError::Other(e.to_string()))?;
                let _ = writeln!(out, "{line}");
            }
        }
        SessionsAction::Revoke { sub, sid } => {
            let target = match (sid, sub) {
                (Some(sid), _) => LogoutTarget::Sid(sid),
                (None, Some(sub)) => LogoutTarget::Sub(sub),
                (None, None) => return Err(StartupError::Other("give --sub or --sid".into())),
            };
            let ended = end_target(&store, &sessions, &target).await.map_err(store_error)?;
            let _ = writeln!(out, "ended {ended} session(s)");
        }
    }
    Ok(())
}
