//! The user's sessions: `GET /bff/sessions` lists them, `DELETE /bff/sessions/{id}` ends one.
//!
//! A session is named by its record's random `public_id`, never by its cookie value or store
//! key.

use super::policy::ActiveSession;
use super::session::{BffSessionStore, SessionEnder, SessionRecord, TypedSession, sessions_of};
use crate::web::{ApiError, ErrorCode};
use actix_web::{HttpResponse, web};
use serde::Serialize;

/// Length of a public session id: 16 random bytes, base64url without padding.
const PUBLIC_ID_LEN: usize = 22;

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

fn not_found() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no such session")
}

/// `GET /bff/sessions` (policy: session, `X-CSRF: 1`): 200 `{"sessions":[…]}`, the caller's
/// own marked `current`.
pub async fn list(sessions: web::Data<BffSessionStore>, me: ActiveSession) -> Result<HttpResponse, ApiError> {
    let all = sessions_of(&sessions, &me.sub).await.map_err(|e| ApiError::store_unavailable(&e))?;
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

/// `DELETE /bff/sessions/{id}` (policy: session, `X-CSRF: 1`): ends one of the caller's
/// sessions (its refresh token revoked) → 204; an id that is not one of theirs → 404 and
/// nothing is touched.
pub async fn delete(
    path: web::Path<String>,
    ender: web::Data<SessionEnder>,
    session: TypedSession,
    me: ActiveSession,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let well_formed =
        id.len() == PUBLIC_ID_LEN && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !well_formed {
        return Err(not_found());
    }
    let all = sessions_of(ender.sessions(), &me.sub).await.map_err(|e| ApiError::store_unavailable(&e))?;
    let target = all
        .iter()
        .find(|s| crate::crypto::constant_time_eq(s.record.public_id.as_bytes(), id.as_bytes()))
        .ok_or_else(not_found)?;
    let ended = if target.record.public_id == me.public_id {
        ender.end_current(&session, &me).await.map(|_| ())
    } else {
        ender.end_other(target).await
    };
    ended.map_err(|e| ApiError::store_unavailable(&e))?;
    Ok(HttpResponse::NoContent().insert_header(crate::web::no_store()).finish())
}
