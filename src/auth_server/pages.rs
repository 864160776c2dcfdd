//! Server-rendered pages (askama templates `templates/auth_*.html`). Every page is
//! `Cache-Control: no-store`: they carry per-request identifiers and user data.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use askama::Template;

/// The login form.
#[derive(Template)]
#[template(path = "auth_login.html")]
pub struct LoginPage<'a> {
    /// Id of the pending authorization request (hidden input).
    pub request_id: &'a str,
    /// Who asks for the login.
    pub client_id: &'a str,
    /// Username to prefill after a failed attempt.
    pub username: &'a str,
    /// A generic error line.
    pub error: Option<&'a str>,
    /// Whether to offer the sign-up link.
    pub allow_signup: bool,
}

/// The second-factor form (a TOTP code), after the password or for a step-up.
#[derive(Template)]
#[template(path = "auth_totp.html")]
pub struct TotpPage<'a> {
    /// Id of the pending authorization request (hidden input).
    pub request_id: &'a str,
    /// Who is signing in.
    pub username: &'a str,
    /// An error line.
    pub error: Option<&'a str>,
}

/// The sign-up form.
#[derive(Template)]
#[template(path = "auth_signup.html")]
pub struct SignupPage<'a> {
    /// Id of the pending authorization request, if any (hidden input).
    pub request_id: &'a str,
    /// Username to prefill.
    pub username: &'a str,
    /// An error line.
    pub error: Option<&'a str>,
}

/// A message page (errors, "signed out", "account created").
#[derive(Template)]
#[template(path = "auth_message.html")]
pub struct MessagePage<'a> {
    /// Page title.
    pub title: &'a str,
    /// The message.
    pub message: &'a str,
}

/// The "sign out?" confirmation, used when logout arrives without an `id_token_hint`.
#[derive(Template)]
#[template(path = "auth_logout_confirm.html")]
pub struct LogoutConfirmPage<'a> {
    /// Hidden fields to post back.
    pub fields: Vec<(&'a str, &'a str)>,
}

/// `GET /app.css`: the demo's stylesheet (`static/app.css`, also the BFF's `/app/app.css`),
/// served from the provider's own origin because the pages' CSP allows only same-origin styles.
pub async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok().content_type("text/css; charset=utf-8").body(include_str!("../../static/app.css"))
}

/// Renders `template` with `status` as an uncacheable HTML response.
pub fn render<T: Template>(status: StatusCode, template: &T) -> HttpResponse {
    match template.render() {
        Ok(body) => HttpResponse::build(status)
            .insert_header(crate::web::no_store())
            .content_type("text/html; charset=utf-8")
            .body(body),
        Err(e) => {
            tracing::error!(error = %e, "template rendering failed");
            HttpResponse::InternalServerError()
                .insert_header(crate::web::no_store())
                .content_type("text/plain; charset=utf-8")
                .body("internal error")
        }
    }
}

/// An error page with `message`.
pub fn error_page(status: StatusCode, message: &str) -> HttpResponse {
    let title = if status.is_server_error() { "Unavailable" } else { "Request refused" };
    render(status, &MessagePage { title, message })
}
