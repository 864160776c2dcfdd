//! The notes API: each user's notes in one store record, updated with compare-and-swap.

use super::auth::BearerToken;
use super::metrics::Metrics;
use crate::store::{Store, StoreError};
use crate::web::ApiError;
use crate::web::ErrorCode;
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Scope every notes route needs.
pub const SCOPE: &str = "notes";
/// Longest note, in characters.
pub const MAX_TEXT: usize = 2000;
/// Notes one user may keep.
pub const MAX_NOTES: usize = 1000;
/// Largest `POST /notes` body: 2000 characters, each escaped as `\uXXXX` at worst, plus JSON.
pub const MAX_BODY: usize = 16 * 1024;
/// Notes are kept this long after the user's last change.
const RETENTION: Duration = Duration::from_secs(365 * 24 * 3600);

/// A note.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Note {
    /// Random id.
    pub id: String,
    /// The text.
    pub text: String,
    /// Unix seconds.
    pub created_at: i64,
}

/// Body of `POST /notes`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewNote {
    text: String,
}

fn key(sub: &str) -> String {
    format!("rs:notes:{}", crate::crypto::sha256_b64(sub.as_bytes()))
}

fn store_error(e: StoreError) -> ApiError {
    ApiError::store_unavailable(&e)
}

async fn load(store: &Store, sub: &str) -> Result<(Option<Vec<u8>>, Vec<Note>), ApiError> {
    let raw = store.get(&key(sub)).await.map_err(store_error)?;
    let notes = match &raw {
        Some(bytes) => serde_json::from_slice(bytes).map_err(|e| ApiError::internal(&e))?,
        None => Vec::new(),
    };
    Ok((raw, notes))
}

/// Applies `change` to the user's notes atomically, retrying when another request won the race.
async fn update<T>(
    store: &Store,
    sub: &str,
    mut change: impl FnMut(&mut Vec<Note>) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    for _ in 0..16 {
        let (raw, mut notes) = load(store, sub).await?;
        let out = change(&mut notes)?;
        let new = serde_json::to_vec(&notes).map_err(|e| ApiError::internal(&e))?;
        let written = match raw {
            Some(old) => store.compare_and_swap(&key(sub), &old, &new, RETENTION).await,
            None => store.set_nx(&key(sub), &new, RETENTION).await,
        }
        .map_err(store_error)?;
        if written {
            return Ok(out);
        }
    }
    Err(ApiError::new(ErrorCode::Conflict, "too many concurrent changes; try again"))
}

/// Counts one notes request by operation and outcome (`ok` or the error code).
fn record(metrics: &Metrics, op: &str, r: Result<HttpResponse, ApiError>) -> Result<HttpResponse, ApiError> {
    let outcome = match &r {
        Ok(_) => "ok",
        Err(e) => e.code().as_str(),
    };
    metrics.notes.with_label_values(&[op, outcome]).inc();
    r
}

/// Reads at most [`MAX_BODY`] bytes of the request body.
async fn read_body(mut payload: web::Payload) -> Result<Vec<u8>, ApiError> {
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| ApiError::new(ErrorCode::InvalidRequest, "unreadable body"))?;
        if body.len() + chunk.len() > MAX_BODY {
            return Err(ApiError::new(
                ErrorCode::PayloadTooLarge,
                format!("the body must not exceed {MAX_BODY} bytes"),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// `GET /notes`: the caller's notes, oldest first (in the order they were created).
pub async fn list(
    token: BearerToken,
    store: web::Data<Store>,
    metrics: web::Data<Metrics>,
) -> Result<HttpResponse, ApiError> {
    record(&metrics, "list", list_notes(token, &store).await)
}

async fn list_notes(token: BearerToken, store: &Store) -> Result<HttpResponse, ApiError> {
    let claims = token.require_scope(SCOPE)?;
    let notes = notes_of(store, &claims.sub).await?;
    Ok(HttpResponse::Ok().insert_header(crate::web::no_store()).json(notes))
}

/// The notes of `sub`, oldest first.
pub async fn notes_of(store: &Store, sub: &str) -> Result<Vec<Note>, ApiError> {
    Ok(load(store, sub).await?.1)
}

/// `POST /notes` with `{"text": "…"}` (JSON only, 1 to 2000 characters after trimming): 201
/// and the note. Other content types: 415; bad JSON or text: 400; over [`MAX_BODY`]: 413.
pub async fn create(
    token: BearerToken,
    store: web::Data<Store>,
    metrics: web::Data<Metrics>,
    req: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    record(&metrics, "create", create_note(token, &store, &req, body).await)
}

async fn create_note(
    token: BearerToken,
    store: &Store,
    req: &HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let claims = token.require_scope(SCOPE)?;
    let is_json = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(ApiError::new(ErrorCode::UnsupportedMediaType, "send application/json"));
    }
    let body = read_body(body).await?;
    let new: NewNote = serde_json::from_slice(&body)
        .map_err(|_| ApiError::new(ErrorCode::InvalidRequest, "expected {\"text\": \"…\"}"))?;
    let note = add_note(store, &claims.sub, &new.text).await?;
    Ok(HttpResponse::Created().insert_header(crate::web::no_store()).json(note))
}

/// Adds a note with `text` (1 to [`MAX_TEXT`] characters after trimming, else 400) for `sub`,
/// within [`MAX_NOTES`].
pub async fn add_note(store: &Store, sub: &str, text: &str) -> Result<Note, ApiError> {
    let text = text.trim().to_string();
    if text.is_empty() || text.chars().count() > MAX_TEXT {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            format!("text must be 1 to {MAX_TEXT} characters"),
        ));
    }
    let note = Note { id: uuid::Uuid::new_v4().to_string(), text, created_at: crate::clock::now() };
    let added = note.clone();
    update(store, sub, move |notes| {
        if notes.len() >= MAX_NOTES {
            return Err(ApiError::new(ErrorCode::TooManyNotes, "note limit reached"));
        }
        notes.push(added.clone());
        Ok(())
    })
    .await?;
    Ok(note)
}

/// `DELETE /notes/{id}`: 204; unknown or another user's note: 404.
pub async fn delete(
    token: BearerToken,
    store: web::Data<Store>,
    metrics: web::Data<Metrics>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    record(&metrics, "delete", delete_note(token, &store, id.into_inner()).await)
}

async fn delete_note(token: BearerToken, store: &Store, id: String) -> Result<HttpResponse, ApiError> {
    let claims = token.require_scope(SCOPE)?;
    update(store, &claims.sub, |notes| {
        let before = notes.len();
        notes.retain(|n| n.id != id);
        if notes.len() == before {
            return Err(ApiError::new(ErrorCode::NotFound, "no such note"));
        }
        Ok(())
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `GET /whoami`: the verified token's main claims.
pub async fn whoami(token: BearerToken) -> HttpResponse {
    let c = token.0;
    HttpResponse::Ok().insert_header(crate::web::no_store()).json(serde_json::json!({
        "sub": c.sub, "scope": c.scope, "jti": c.jti, "exp": c.exp, "iss": c.iss, "aud": c.aud,
        "cnf_jkt": c.dpop_jkt(),
    }))
}
