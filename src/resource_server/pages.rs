//! The notes demo's server-rendered pages (`GET /`, `POST /notes-form`): a small app that runs
//! behind the BFF as a frontend server (`[[bff.frontends]] upstream = …`), on its own listener
//! (`resource_server.pages_listen`) so that the notes API is never reachable through it.
//!
//! It keeps no session and sets no cookie: the BFF sends the signed-in user's access token as
//! `Authorization: Bearer` (checked by the same verifier as the API) and the session's form
//! token as `X-Cloakroom-Csrf-Token`, which the page puts into its forms — the add-a-note form
//! here and the logout form that posts to `/bff/logout`. A request without a token is an
//! anonymous visitor and gets the login link.

use super::auth::BearerToken;
use super::notes::{Note, SCOPE, add_note, notes_of};
use crate::config::PublicUrl;
use crate::store::Store;
use crate::web::{ApiError, ErrorCode};
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

/// The header the BFF puts the session's form token in.
const FORM_TOKEN_HEADER: &str = "x-cloakroom-csrf-token";

/// Where the pages find the user's display name: the provider's userinfo endpoint, found by
/// discovery on first use.
pub struct UserInfo {
    http: reqwest::Client,
    issuer: PublicUrl,
    endpoint: tokio::sync::OnceCell<String>,
}

impl UserInfo {
    /// For `issuer`'s users.
    pub fn new(http: reqwest::Client, issuer: PublicUrl) -> Self {
        Self { http, issuer, endpoint: tokio::sync::OnceCell::new() }
    }

    /// The user's `name` (or `preferred_username`) as userinfo returns it for `token`; `None`
    /// when the provider has none or cannot be reached (the page shows the subject instead).
    async fn display_name(&self, token: &str) -> Option<String> {
        let endpoint = self
            .endpoint
            .get_or_try_init(|| async {
                let meta = crate::oidc::discover(&self.http, &self.issuer).await.map_err(|_| ())?;
                meta.userinfo_endpoint.ok_or(())
            })
            .await
            .ok()?;
        let res = self.http.get(endpoint).bearer_auth(token).send().await.ok()?;
        let claims: serde_json::Value = res.error_for_status().ok()?.json().await.ok()?;
        ["name", "preferred_username"].iter().find_map(|k| claims[*k].as_str().map(str::to_string))
    }
}

#[derive(Template)]
#[template(path = "notes_index.html")]
struct IndexPage {
    user: Option<UserView>,
}

struct UserView {
    name: String,
    notes: Vec<Note>,
    csrf_token: String,
}

fn html(page: IndexPage) -> Result<HttpResponse, ApiError> {
    let body = page.render().map_err(|e| ApiError::internal(&e))?;
    Ok(HttpResponse::Ok()
        .insert_header(crate::web::no_store())
        .content_type("text/html; charset=utf-8")
        .body(body))
}

/// The request's form token, as the BFF sent it.
fn form_token(req: &HttpRequest) -> Option<&str> {
    req.headers().get(FORM_TOKEN_HEADER).and_then(|v| v.to_str().ok()).filter(|t| !t.is_empty())
}

/// The raw access token (already verified by [`BearerToken`]).
fn raw_token(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    value.split_once(' ').map(|(_, t)| t.trim())
}

/// `GET /`: the login link, or the user's name, notes and the two forms.
pub async fn index(
    req: HttpRequest,
    token: Option<BearerToken>,
    store: web::Data<Store>,
    userinfo: web::Data<UserInfo>,
) -> Result<HttpResponse, ApiError> {
    let Some(token) = token else {
        return html(IndexPage { user: None });
    };
    let claims = token.require_scope(SCOPE)?;
    let notes = notes_of(&store, &claims.sub).await?;
    let name = match raw_token(&req) {
        Some(raw) => userinfo.display_name(raw).await,
        None => None,
    };
    let user = UserView {
        name: name.unwrap_or_else(|| claims.sub.clone()),
        notes,
        csrf_token: form_token(&req).unwrap_or_default().to_string(),
    };
    html(IndexPage { user: Some(user) })
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

/// `POST /notes-form`: the form's token must equal the session's (sent by the BFF), then the
/// note is added and the browser goes back to `/` (303).
pub async fn notes_form(
    req: HttpRequest,
    form: web::Form<NoteForm>,
    token: Option<BearerToken>,
    store: web::Data<Store>,
) -> Result<HttpResponse, ApiError> {
    let token = token.ok_or_else(|| ApiError::new(ErrorCode::Unauthenticated, "sign in first"))?;
    let expected = form_token(&req).unwrap_or_default();
    if expected.is_empty()
        || !crate::crypto::constant_time_eq(expected.as_bytes(), form.csrf_token.as_bytes())
    {
        return Err(ApiError::new(ErrorCode::Csrf, "the form token is missing or wrong"));
    }
    let claims = token.require_scope(SCOPE)?;
    add_note(&store, &claims.sub, &form.text).await?;
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/"))
        .insert_header(crate::web::no_store())
        .finish())
}
