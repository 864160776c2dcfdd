//! The typed view of a browser session: one [`SessionRecord`] under one key of actix-session's
//! state, with idle (sliding) and absolute (fixed) expiry enforced here, server-side. Handlers
//! use [`TypedSession`] only — never raw `session.get("…")`.

use super::client_info::ClientInfo;
use super::record::{RECORD_KEY, SessionRecord};
use super::scope;
use crate::config::ClientBinding;
use actix_session::{Session, SessionExt, SessionStatus};
use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};
use std::future::{Ready, ready};
use std::sync::Arc;

/// What the typed view needs of `bff.session`, kept in app data (read per request, built at start).
#[derive(Debug, Clone, Copy)]
pub struct SessionSettings {
    /// `bff.session.idle_timeout_secs`.
    pub idle_timeout_secs: u64,
    /// `bff.session.client_binding`.
    pub binding: ClientBinding,
}

impl SessionSettings {
    /// The settings of `config`.
    pub fn of(config: &crate::config::BffConfig) -> Self {
        Self { idle_timeout_secs: config.session.idle_timeout_secs, binding: config.session.client_binding }
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

/// A typed wrapper around actix-session's `Session`, with the coarse client of this request and
/// the client-binding policy.
pub struct TypedSession {
    session: Session,
    /// For the coarse client, worked out only when asked for (login, client binding).
    req: HttpRequest,
    client: std::cell::OnceCell<ClientInfo>,
    settings: SessionSettings,
}

impl TypedSession {
    /// Starts a session for `record` under a fresh id (fixation defence: whatever id the browser
    /// brought is dropped).
    pub fn start(&self, record: &SessionRecord) -> Result<(), SessionError> {
        self.session.renew();
        self.session.clear();
        self.session.insert(RECORD_KEY, record).map_err(|e| SessionError::Write(e.to_string()))
    }

    /// Ends the session: the store entry (and its tokens) are deleted and the cookie expired.
    pub fn purge(&self) {
        self.session.purge();
    }

    /// The current record, or `None` when there is no live session. An expired one is purged.
    /// Activity slides the idle expiry forward (written back when it moved by at least a tenth
    /// of the idle timeout, so busy sessions do not rewrite their state on every request).
    pub fn current(&self) -> Result<Option<Arc<SessionRecord>>, SessionError> {
        let idle_timeout_secs = self.settings.idle_timeout_secs;
        let Some(record) = self.record() else { return Ok(None) };
        let now = crate::clock::now();
        if now >= record.expires_at || now >= record.idle_expires_at {
            self.session.purge();
            return Ok(None);
        }
        if !self.client_matches(&record) {
            self.session.purge();
            return Ok(None);
        }
        let slid = (now + idle_timeout_secs as i64).min(record.expires_at);
        if slid - record.idle_expires_at >= (idle_timeout_secs / 10) as i64 && slid > record.idle_expires_at {
            // "Last seen" rides on this throttled write: no store write per request.
            let record = SessionRecord { idle_expires_at: slid, last_seen: now, ..(*record).clone() };
            self.session.insert(RECORD_KEY, &record).map_err(|e| SessionError::Write(e.to_string()))?;
            return Ok(Some(Arc::new(record)));
        }
        Ok(Some(record))
    }

    /// The record in the session state: the one the store loaded and parsed for this request
    /// while the state is as loaded, else parsed here. An unreadable record ends the session.
    fn record(&self) -> Option<Arc<SessionRecord>> {
        // `Renewed` is not enough: inserts after a renewal keep that status.
        if self.session.status() == SessionStatus::Unchanged {
            if !self.session.contains_key(RECORD_KEY) {
                return None;
            }
            if let Some(record) = scope::loaded_record() {
                return Some(record);
            }
        }
        match self.session.get::<SessionRecord>(RECORD_KEY) {
            Ok(record) => record.map(Arc::new),
            Err(_) => {
                self.session.purge();
                None
            }
        }
    }
}

impl TypedSession {
    /// The coarse client of this request.
    pub fn client(&self) -> &ClientInfo {
        self.client.get_or_init(|| ClientInfo::of(&self.req))
    }

    /// Applies `bff.session.client_binding`: false when the session must end. A change of
    /// network range or user-agent family is logged as a security event (coarse values only).
    fn client_matches(&self, record: &SessionRecord) -> bool {
        if self.settings.binding == ClientBinding::Off
            || record.client.is_unknown()
            || record.client == *self.client()
        {
            return true;
        }
        let client = self.client();
        let end = self.settings.binding == ClientBinding::End;
        tracing::warn!(
            target: "security_event",
            security_event = "session_client_changed",
            session = %record.public_id,
            ua_changed = record.client.ua_family != client.ua_family,
            ip_changed = record.client.ip_range != client.ip_range,
            from_range = %record.client.ip_range,
            to_range = %client.ip_range,
            action = if end { "end" } else { "flag" },
            "a session is used by a different client"
        );
        !end
    }
}

impl TypedSession {
    /// The typed view of `req`'s session (inside actix-session's middleware).
    pub fn of(req: &HttpRequest) -> Self {
        let settings = req
            .app_data::<actix_web::web::Data<SessionSettings>>()
            .map(|s| *s.get_ref())
            // The BFF always registers its settings; without them nothing slides and no client is bound.
            .unwrap_or(SessionSettings { idle_timeout_secs: 0, binding: ClientBinding::default() });
        Self { session: req.get_session(), req: req.clone(), client: std::cell::OnceCell::new(), settings }
    }
}

impl FromRequest for TypedSession {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        ready(Ok(Self::of(req)))
    }
}
