//! Server-rendered pages (`GET /`, `POST /notes-form`, error pages) and the single-page app's
//! static files (`/app/`).

use super::policy::ActiveSession;
use super::policy::csrf::CsrfError;
use super::proxy::{
    Outgoing, OutgoingBody, UpstreamError, UpstreamResponse, WorkerClient, end_session_if_needed,
    exchange_for, send_with_token,
};
use super::session::{SessionRecord, TypedSession};
use super::state::BffState;
use super::tokens::TokenError;
use crate::web::ApiError;
use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

#[derive(Template)]
#[template(path = "bff_error.html")]
struct ErrorPage<'a> {
    message: &'a str,
}

/// An HTML error page (the login callback's failures).
pub fn error_page(status: StatusCode, message: &str) -> HttpResponse {
    let body = ErrorPage { message }.render().unwrap_or_else(|_| "error".into());
    HttpResponse::build(status)
        .insert_header(crate::web::no_store())
        .content_type("text/html; charset=utf-8")
        .body(body)
}

/// A note as the resource server returns it.
#[derive(Debug, Deserialize)]
pub struct Note {
    /// The text.
    pub text: String,
}

/// What the index page shows of a signed-in user.
pub struct UserView {
    name: String,
    notes: Vec<Note>,
    csrf_token: String,
}

#[derive(Template)]
#[template(path = "bff_index.html")]
struct IndexPage {
    user: Option<UserView>,
    notice: Option<String>,
}

fn display_name(record: &SessionRecord) -> String {
    ["name", "preferred_username", "email"]
        .iter()
        .find_map(|k| record.claims.get(*k).and_then(|v| v.as_str()).map(str::to_string))
        .unwrap_or_else(|| record.sub.clone())
}

fn notes_url(state: &BffState) -> Option<url::Url> {
    let route = state.config.routes.first()?;
    url::Url::parse(&route.upstream.join("/notes")).ok()
}

async fn call_notes(
    state: &BffState,
    client: &WorkerClient,
    record: &SessionRecord,
    method: reqwest::Method,
    body: OutgoingBody,
) -> Result<UpstreamResponse, UpstreamError> {
    let url = notes_url(state).ok_or_else(|| UpstreamError::Unavailable("no route configured".into()))?;
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::ACCEPT, reqwest::header::HeaderValue::from_static("application/json"));
    headers
        .insert(reqwest::header::CONTENT_TYPE, reqwest::header::HeaderValue::from_static("application/json"));
    let out = Outgoing { method, url, headers, body, over_limit: Arc::new(AtomicBool::new(false)) };
    send_with_token(&exchange_for(state, client), &record.handle, out).await
}

fn html(page: IndexPage) -> Result<HttpResponse, ApiError> {
    let body = page.render().map_err(|e| ApiError::internal(&e))?;
    Ok(HttpResponse::Ok()
        .insert_header(crate::web::no_store())
        .content_type("text/html; charset=utf-8")
        .body(body))
}

/// `GET /` (policy: the session when there is one).
pub async fn index(
    state: web::Data<BffState>,
    client: web::Data<WorkerClient>,
    session: TypedSession,
    record: Option<ActiveSession>,
) -> Result<HttpResponse, ApiError> {
    let Some(record) = record else {
        return html(IndexPage { user: None, notice: None });
    };
    let (notes, notice) =
        match call_notes(&state, &client, &record, reqwest::Method::GET, OutgoingBody::Empty).await {
            Ok(res) if res.status().is_success() => {
                (res.json::<Vec<Note>>(state.config.max_body_bytes).await.unwrap_or_default(), None)
            }
            Ok(res) => (Vec::new(), Some(format!("The notes service answered {}.", res.status().as_u16()))),
            Err(UpstreamError::Token(e)) => {
                end_session_if_needed(&session, &e);
                if matches!(e, TokenError::Store(_)) {
                    return Err(e.into());
                }
                if matches!(e, TokenError::SessionExpired | TokenError::NoSession) {
                    return html(IndexPage { user: None, notice: None });
                }
                (
                    Vec::new(),
                    Some("The auth server is unavailable; your notes cannot be shown right now.".into()),
                )
            }
            Err(_) => (Vec::new(), Some("The notes service is unavailable.".into())),
        };
    let user =
        UserView { name: display_name(&record), notes, csrf_token: record.csrf_token.expose().to_string() };
    html(IndexPage { user: Some(user), notice })
}

/// The add-a-note form. Missing fields are empty rather than a parse error, so a form without
/// its token gets the contract's 403 `csrf`, not the form extractor's plain-text 400.
#[derive(Deserialize)]
pub struct NoteForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    text: String,
}

/// `POST /notes-form` (policy: same origin, session): adds a note through the same token
/// machinery, 303 back to `/`.
pub async fn notes_form(
    form: web::Form<NoteForm>,
    state: web::Data<BffState>,
    client: web::Data<WorkerClient>,
    session: TypedSession,
    record: ActiveSession,
) -> Result<HttpResponse, ApiError> {
    if !record.csrf_token_matches(&form.csrf_token) {
        return Err(CsrfError::BadFormToken.into());
    }
    let body =
        serde_json::to_vec(&serde_json::json!({ "text": form.text })).map_err(|e| ApiError::internal(&e))?;
    let res = call_notes(&state, &client, &record, reqwest::Method::POST, OutgoingBody::Bytes(body.into()))
        .await
        .map_err(|e| {
            if let UpstreamError::Token(t) = &e {
                end_session_if_needed(&session, t);
            }
            ApiError::from(e)
        })?;
    if !res.status().is_success() {
        tracing::info!(status = res.status().as_u16(), "adding a note failed upstream");
    }
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/"))
        .insert_header(crate::web::no_store())
        .finish())
}

/// `GET /app` → `/app/`.
pub async fn app_redirect() -> HttpResponse {
    HttpResponse::MovedPermanently().insert_header((header::LOCATION, "/app/")).finish()
}

/// `GET /app/`.
pub async fn app_index() -> HttpResponse {
    HttpResponse::Ok().content_type("text/html; charset=utf-8").body(include_str!("../../static/index.html"))
}

/// `GET /app/app.js`.
pub async fn app_js() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .body(include_str!("../../static/app.js"))
}

/// `GET /app/app.css`.
pub async fn app_css() -> HttpResponse {
    HttpResponse::Ok().content_type("text/css; charset=utf-8").body(include_str!("../../static/app.css"))
}

/// `GET /readyz`: the store answers and the provider's metadata is loaded.
pub async fn readyz(state: web::Data<BffState>) -> HttpResponse {
    let store_ok = state.store.ping().await.is_ok();
    let provider_ok = state.provider.metadata().await.is_ok();
    if store_ok && provider_ok {
        HttpResponse::Ok().content_type("text/plain").body("ready")
    } else {
        HttpResponse::ServiceUnavailable().content_type("text/plain").body(format!(
            "store: {}, provider metadata: {}",
            ok(store_ok),
            ok(provider_ok)
        ))
    }
}

fn ok(b: bool) -> &'static str {
    if b { "ok" } else { "unavailable" }
}
