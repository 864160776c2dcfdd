//! The user's sessions: `GET /bff/sessions` lists them, `DELETE /bff/sessions/{id}` ends one,
//! and the helpers behind `POST /bff/logout?scope=all` and `cloakroom sessions`.
//!
//! A session is named by its record's random `public_id`, never by its cookie value or store
//! key. Listing reads the `idx:sub:…` index and prunes members whose session is gone (idle
//! expiry, logout elsewhere), so the index never keeps dead entries once it is read.

use super::account::revoke_session_tokens;
use super::backchannel::SESSION_ENDED_CHANNEL;
use super::csrf;
use super::session::{SessionRecord, TypedSession};
use super::session_store::{BffSessionStore, sub_index_key};
use super::state::BffState;
use crate::store::{Store, StoreError};
use crate::web::ApiError;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;

/// Length of a public session id: 16 random bytes, base64url without padding.
const PUBLIC_ID_LEN: usize = 22;

/// A live session found through an index.
#[derive(Debug, Clone)]
pub struct LiveSession {
    /// The keyed hash of the session id (suffix of its `session:` store key).
    pub hashed: String,
    /// Its record.
    pub record: SessionRecord,
}

/// What `GET /bff/sessions` and `cloakroom sessions list` show of a session.
#[derive(Debug, Serialize)]
pub struct SessionView {
    /// The public id (for `DELETE /bff/sessions/{id}`).
    pub id: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds of the last recorded activity.
    pub last_seen: i64,
    /// User-agent family.
    pub user_agent: String,
    /// Network range (IPv4 /24, IPv6 /48).
    pub ip_range: String,
    /// Absolute expiry.
    pub expires_at: i64,
    /// Idle expiry.
    pub idle_expires_at: i64,
    /// True for the session making the request.
    pub current: bool,
}

impl SessionView {
    /// The view of `record`; `current` marks the caller's own session.
    pub fn of(record: &SessionRecord, current: bool) -> Self {
        Self {
            id: record.public_id.clone(),
            created_at: record.created_at,
            last_seen: record.last_seen.max(record.created_at),
            user_agent: record.client.ua_family.clone(),
            ip_range: record.client.ip_range.clone(),
            expires_at: record.expires_at,
            idle_expires_at: record.idle_expires_at,
            current,
        }
    }
}

/// The live sessions indexed under `index_key`, oldest first. Members whose session no longer
/// exists are removed from the index on the way.
pub async fn live_sessions(
    store: &Store,
    sessions: &BffSessionStore,
    index_key: &str,
) -> Result<Vec<LiveSession>, StoreError> {
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
pub async fn sessions_of(
    store: &Store,
    sessions: &BffSessionStore,
    sub: &str,
) -> Result<Vec<LiveSession>, StoreError> {
    let mut live = live_sessions(store, sessions, &sub_index_key(sub)).await?;
    live.retain(|s| s.record.sub == sub);
    Ok(live)
}

/// Deletes a session (with its tokens and index entries) and announces it on the store bus.
pub async fn delete_and_announce(
    store: &Store,
    sessions: &BffSessionStore,
    hashed: &str,
) -> Result<(), StoreError> {
    sessions.delete_by_key(&BffSessionStore::key_of_hashed(hashed)).await?;
    if let Err(e) = store.publish(SESSION_ENDED_CHANNEL, hashed.as_bytes()).await {
        // Advisory (near caches): the session is already gone from the store.
        tracing::warn!(error = %e, "could not announce an ended session");
    }
    tracing::info!(session = %hashed, "session ended by its user");
    Ok(())
}

/// Ends `other`, a session of the caller that is not the current one: its refresh token is
/// revoked like at logout, then it is deleted everywhere.
async fn end_other(
    state: &BffState,
    sessions: &BffSessionStore,
    other: &LiveSession,
) -> Result<(), ApiError> {
    revoke_session_tokens(state, &other.record).await?;
    delete_and_announce(&state.store, sessions, &other.hashed)
        .await
        .map_err(|e| ApiError::store_unavailable(&e))
}

/// Ends every session of `current.sub` except `current` itself (logout `?scope=all`; the
/// caller ends the current one).
pub(super) async fn end_other_sessions(
    state: &BffState,
    sessions: &BffSessionStore,
    current: &SessionRecord,
) -> Result<usize, ApiError> {
    let all = sessions_of(&state.store, sessions, &current.sub)
        .await
        .map_err(|e| ApiError::store_unavailable(&e))?;
    let mut ended = 0;
    for other in all.iter().filter(|s| s.record.public_id != current.public_id) {
        end_other(state, sessions, other).await?;
        ended += 1;
    }
    Ok(ended)
}

fn unauthenticated() -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", "no session")
}

fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such session")
}

/// `GET /bff/sessions` (+ `X-CSRF: 1`): 200 `{"sessions":[…]}`, the caller's own marked
/// `current`.
pub async fn list(
    req: HttpRequest,
    state: web::Data<BffState>,
    sessions: web::Data<BffSessionStore>,
    session: TypedSession,
) -> Result<HttpResponse, ApiError> {
    csrf::check_api_call(&req, state.public_origin())?;
    let me = session.current(state.config.session.idle_timeout_secs)?.ok_or_else(unauthenticated)?;
    let all =
        sessions_of(&state.store, &sessions, &me.sub).await.map_err(|e| ApiError::store_unavailable(&e))?;
    let now = crate::clock::now();
    let views: Vec<SessionView> = all
        .iter()
        .map(|s| {
            let current = !me.public_id.is_empty() && s.record.public_id == me.public_id;
            let mut view = SessionView::of(&s.record, current);
            if current {
                view.last_seen = now;
            }
            view
        })
        .collect();
    Ok(HttpResponse::Ok()
        .insert_header(crate::web::no_store())
        .json(serde_json::json!({ "sessions": views })))
}

/// `DELETE /bff/sessions/{id}` (+ `X-CSRF: 1`): ends one of the caller's sessions (its refresh
/// token revoked) → 204; an id that is not one of theirs → 404 and nothing is touched.
pub async fn delete(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<BffState>,
    sessions: web::Data<BffSessionStore>,
    session: TypedSession,
) -> Result<HttpResponse, ApiError> {
    csrf::check_api_call(&req, state.public_origin())?;
    let me = session.current(state.config.session.idle_timeout_secs)?.ok_or_else(unauthenticated)?;
    let id = path.into_inner();
    let well_formed =
        id.len() == PUBLIC_ID_LEN && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !well_formed {
        return Err(not_found());
    }
    let all =
        sessions_of(&state.store, &sessions, &me.sub).await.map_err(|e| ApiError::store_unavailable(&e))?;
    let target = all
        .iter()
        .find(|s| crate::crypto::constant_time_eq(s.record.public_id.as_bytes(), id.as_bytes()))
        .ok_or_else(not_found)?;
    if target.record.public_id == me.public_id {
        revoke_session_tokens(&state, &me).await?;
        session.purge();
    } else {
        end_other(&state, &sessions, target).await?;
    }
    Ok(HttpResponse::NoContent().insert_header(crate::web::no_store()).finish())
}
