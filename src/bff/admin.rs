//! `cloakroom sessions list|revoke`: session administration straight in the BFF's store, for
//! operators. Revocation takes the back-channel logout path ([`end_target`]), so every instance
//! sees it at once and near caches hear `session-ended`.

use super::keys::Keys;
use super::session::{BffSessionStore, EndTarget, SessionEnder, sessions_of};
use super::sessions::SessionView;
use crate::config::{BffConfig, ConfigError};
use crate::startup::StartupError;
use crate::store::Store;
use std::io::Write;

fn store_error(e: crate::store::StoreError) -> StartupError {
    StartupError::Other(format!("session store: {e}"))
}

/// What an operator does with sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionsCommand {
    /// Print the live sessions of this subject, one JSON object per line.
    List {
        /// The subject at the provider.
        sub: String,
    },
    /// End these sessions on every instance.
    Revoke(EndTarget),
}

/// Runs one `cloakroom sessions` command against the store of `cfg`; prints to stdout.
pub async fn run(cfg: BffConfig, command: SessionsCommand) -> Result<(), StartupError> {
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
        store,
        Keys::derive(&keys.0, cfg.session_id_hash_key.as_ref().and_then(|k| k.0.first())),
    );
    let mut out = std::io::stdout().lock();
    match command {
        SessionsCommand::List { sub } => {
            for s in sessions_of(&sessions, &sub).await.map_err(store_error)? {
                let line = serde_json::to_string(&SessionView::of(&s.record, false))
                    .map_err(|e| StartupError::Other(e.to_string()))?;
                let _ = writeln!(out, "{line}");
            }
        }
        SessionsCommand::Revoke(target) => {
            // No provider client here: the operator revokes at the provider separately
            // (`cloakroom auth-server revoke` for the reference server).
            let ended = SessionEnder::new(sessions, None).end_target(&target).await.map_err(store_error)?;
            let _ = writeln!(out, "ended {ended} session(s)");
        }
    }
    Ok(())
}
