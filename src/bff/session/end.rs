//! Ending sessions before their time: the one service behind logout (this session, or
//! `?scope=all`), `DELETE /bff/sessions/{id}`, back-channel logout and `cloakroom sessions
//! revoke`. Idle and absolute expiry need no service: the store's TTL and
//! [`super::TypedSession::current`] end those.
//!
//! Every end goes through [`BffSessionStore::delete_by_key`] on the shared store, so it holds on
//! every instance: the session record, its token record and its index entries are deleted, every
//! near cache forgets them, and `session-ended` is published. Ends the user asks for also revoke
//! the refresh token at the provider; ends the provider asked for (back-channel logout: it ended
//! the grant itself) and an operator's (`cloakroom sessions revoke`, run without the provider's
//! client credentials) do not.

use super::index::{LiveSession, sessions_of};
use super::record::SessionRecord;
use super::store::{BffSessionStore, sid_index_key, sub_index_key};
use super::typed::TypedSession;
use crate::bff::tokens::{TokenCare, TokenRecord};
use crate::store::StoreError;

/// Whose sessions end, as the provider or an operator names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndTarget {
    /// Every session of this provider session id.
    Sid(String),
    /// Every session of this subject.
    Sub(String),
}

impl EndTarget {
    /// The store key of the index listing the target's sessions.
    pub fn index_key(&self) -> String {
        match self {
            EndTarget::Sid(sid) => sid_index_key(sid),
            EndTarget::Sub(sub) => sub_index_key(sub),
        }
    }
}

/// Ends sessions; cheap to clone.
#[derive(Clone)]
pub struct SessionEnder {
    sessions: BffSessionStore,
    /// Revokes refresh tokens at the provider; `None` where no provider client is configured
    /// (the operator's CLI).
    tokens: Option<TokenCare>,
}

impl SessionEnder {
    /// Ends sessions in `sessions`, revoking refresh tokens through `tokens` when given.
    pub fn new(sessions: BffSessionStore, tokens: Option<TokenCare>) -> Self {
        Self { sessions, tokens }
    }

    /// The session store it ends sessions in.
    pub fn sessions(&self) -> &BffSessionStore {
        &self.sessions
    }

    /// Ends every session of `target` (back-channel logout, operator); returns how many.
    pub async fn end_target(&self, target: &EndTarget) -> Result<usize, StoreError> {
        let members = self.sessions.store().index_members(&target.index_key()).await?;
        for hashed in &members {
            self.sessions.delete_by_key(&BffSessionStore::key_of_hashed(hashed)).await?;
            tracing::info!(session = %hashed, "session ended by the provider or an operator");
        }
        Ok(members.len())
    }

    /// Ends the session making the request: its refresh token is revoked, and actix-session
    /// deletes it (and expires the cookie) when the response goes out. Returns the tokens read,
    /// for the logout URL.
    pub async fn end_current(
        &self,
        session: &TypedSession,
        record: &SessionRecord,
    ) -> Result<Option<TokenRecord>, StoreError> {
        let tokens = self.revoke(record).await?;
        session.purge();
        Ok(tokens)
    }

    /// Ends `other`, another session of the same user: its refresh token is revoked, then it is
    /// deleted everywhere.
    pub async fn end_other(&self, other: &LiveSession) -> Result<(), StoreError> {
        self.revoke(&other.record).await?;
        self.sessions.delete_by_key(&BffSessionStore::key_of_hashed(&other.hashed)).await?;
        tracing::info!(session = %other.hashed, "session ended by its user");
        Ok(())
    }

    /// Ends every session of `current.sub` except `current` itself (logout `?scope=all`; the
    /// caller ends the current one). Returns how many.
    pub async fn end_others_of(&self, current: &SessionRecord) -> Result<usize, StoreError> {
        let all = sessions_of(&self.sessions, &current.sub).await?;
        let mut ended = 0;
        for other in all.iter().filter(|s| s.record.public_id != current.public_id) {
            self.end_other(other).await?;
            ended += 1;
        }
        Ok(ended)
    }

    async fn revoke(&self, record: &SessionRecord) -> Result<Option<TokenRecord>, StoreError> {
        match &self.tokens {
            Some(tokens) => tokens.revoke_at_provider(&record.handle).await,
            None => Ok(None),
        }
    }
}
