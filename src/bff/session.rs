//! The typed view of a browser session: one [`SessionRecord`] under one key of actix-session's
//! state, with idle (sliding) and absolute (fixed) expiry enforced here, server-side. Handlers
//! use [`TypedSession`] only — never raw `session.get("…")`.

use crate::config::Secret;
use actix_session::{Session, SessionExt};
use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::future::{Ready, ready};

const RECORD_KEY: &str = "rec";

/// What the BFF knows about a logged-in browser. Tokens are elsewhere (`tokens.rs`), reached
/// through `handle`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionRecord {
    /// Random reference to this session's token record (never shown to the browser).
    pub handle: Secret,
    /// Subject at the provider.
    pub sub: String,
    /// The provider's session id (`sid` of the ID token), for back-channel logout.
    #[serde(default)]
    pub sid: Option<String>,
    /// Profile claims shown by `/bff/user`.
    pub claims: serde_json::Map<String, serde_json::Value>,
    /// Unix seconds.
    pub created_at: i64,
    /// Absolute expiry, never extended (and never beyond the refresh token's).
    pub expires_at: i64,
    /// Idle expiry, extended by activity up to `expires_at`.
    pub idle_expires_at: i64,
    /// Token for form posts (logout, notes form), compared in constant time.
    pub csrf_token: Secret,
}

impl SessionRecord {
    /// The record inside an actix-session state map, if any.
    pub fn from_state(state: &HashMap<String, String>) -> Option<Self> {
        state.get(RECORD_KEY).and_then(|s| serde_json::from_str(s).ok())
    }

    /// True when `token` is this session's form token.
    pub fn csrf_token_matches(&self, token: &str) -> bool {
        crate::crypto::constant_time_eq(self.csrf_token.expose().as_bytes(), token.as_bytes())
    }
}

/// Why the session could not be read or written (serialisation only: store failures surface
/// from the middleware as 503).
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The record could not be stored in the session state.
    #[error("session state could not be written: {0}")]
    Write(String),
}

impl From<SessionError> for crate::web::ApiError {
    fn from(e: SessionError) -> Self {
        crate::web::ApiError::internal(&e)
    }
}

/// A typed wrapper around actix-session's `Session`.
pub struct TypedSession(Session);

impl TypedSession {
    /// Starts a session for `record` under a fresh id (fixation defence: whatever id the browser
    /// brought is dropped).
    pub fn start(&self, record: &SessionRecord) -> Result<(), SessionError> {
        self.0.renew();
        self.0.clear();
        self.0.insert(RECORD_KEY, record).map_err(|e| SessionError::Write(e.to_string()))
    }

    /// Ends the session: the store entry (and its tokens) are deleted and the cookie expired.
    pub fn purge(&self) {
        self.0.purge();
    }

    /// The current record, or `None` when there is no live session. An expired one is purged.
    /// Activity slides the idle expiry forward (written back when it moved by at least a tenth
    /// of the idle timeout, so busy sessions do not rewrite their state on every request).
    pub fn current(&self, idle_timeout_secs: u64) -> Result<Option<SessionRecord>, SessionError> {
        let record = match self.0.get::<SessionRecord>(RECORD_KEY) {
            Ok(Some(r)) => r,
            Ok(None) => return Ok(None),
            Err(_) => {
                self.0.purge();
                return Ok(None);
            }
        };
        let now = crate::clock::now();
        if now >= record.expires_at || now >= record.idle_expires_at {
            self.0.purge();
            return Ok(None);
        }
        let slid = (now + idle_timeout_secs as i64).min(record.expires_at);
        if slid - record.idle_expires_at >= (idle_timeout_secs / 10) as i64 && slid > record.idle_expires_at {
            let record = SessionRecord { idle_expires_at: slid, ..record };
            self.0.insert(RECORD_KEY, &record).map_err(|e| SessionError::Write(e.to_string()))?;
            return Ok(Some(record));
        }
        Ok(Some(record))
    }
}

impl FromRequest for TypedSession {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        ready(Ok(Self(req.get_session())))
    }
}
