//! The indexes of sessions by subject (`idx:sub:…`) and by provider session id (`idx:sid:…`):
//! how a user's sessions are listed and how a provider's logout finds the sessions it ends.
//! Reading an index prunes members whose session is gone (idle expiry, logout elsewhere), so it
//! never keeps dead entries once it is read.

use super::record::SessionRecord;
use super::store::{BffSessionStore, sub_index_key};
use crate::store::StoreError;

/// A live session found through an index.
#[derive(Debug, Clone)]
pub struct LiveSession {
    /// The keyed hash of the session id (suffix of its `session:` store key).
    pub hashed: String,
    /// Its record.
    pub record: SessionRecord,
}

/// The live sessions indexed under `index_key`, oldest first. Members whose session no longer
/// exists are removed from the index on the way.
pub async fn live_sessions(
    sessions: &BffSessionStore,
    index_key: &str,
) -> Result<Vec<LiveSession>, StoreError> {
    let store = sessions.store();
    let mut live = Vec::new();
    for hashed in store.index_members(index_key).await? {
        let state = sessions.read_state(&BffSessionStore::key_of_hashed(&hashed)).await?;
        match state.as_ref().and_then(SessionRecord::from_state) {
            Some(record) => live.push(LiveSession { hashed, record }),
            None => {
                store.index_remove(index_key, &hashed).await?;
                tracing::debug!(session = %hashed, "pruned a dead index member");
            }
        }
    }
    live.sort_by_key(|s| s.record.created_at);
    Ok(live)
}

/// The live sessions of subject `sub`.
pub async fn sessions_of(sessions: &BffSessionStore, sub: &str) -> Result<Vec<LiveSession>, StoreError> {
    let mut live = live_sessions(sessions, &sub_index_key(sub)).await?;
    live.retain(|s| s.record.sub == sub);
    Ok(live)
}
