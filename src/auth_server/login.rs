//! `POST /login` and `GET/POST /signup`: the provider's own sign-in, throttled per user and
//! per client address (sign-ups per client address), ending in a provider login session and
//! the code redirect.

use super::authorize::complete;
use super::errors::PageError;
use super::login_session;
use super::pages::{self, LoginPage, MessagePage, SignupPage};
use super::params::Params;
use super::pending;
use super::rate_limit::{LoginLimiter, signup_blocked};
use super::second_factor;
use super::state::AppState;
use super::users::{self, Password, UserError, Username};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

const GENERIC_FAILURE: &str = "Incorrect username or password.";

impl From<UserError> for PageError {
    fn from(e: UserError) -> Self {
        match e {
            UserError::Store(s) => PageError::Store(s),
            UserError::Internal(i) => PageError::Internal(i),
        }
    }
}

fn form(req: &HttpRequest, body: &[u8]) -> Result<Params, PageError> {
    if !crate::web::is_form(req) {
        return Err(PageError::BadRequest("Please submit the form."));
    }
    Params::parse(body).map_err(|_| PageError::BadRequest("A form field is repeated."))
}

/// Login CSRF defence (OWASP CSRF cheat sheet, "login forms"): the sign-in, sign-up and
/// sign-out confirmation forms are taken only from the provider's own pages, or a page
/// elsewhere could sign the visitor in as the attacker (every later single sign-on would be the
/// attacker's) or out. Browsers mark a cross-site post with `Sec-Fetch-Site: cross-site` or a
/// foreign `Origin` (the same rule as the BFF's unsafe requests); a sign-in without either
/// still needs a valid pending request id.
pub(super) fn same_origin(req: &HttpRequest, state: &AppState) -> Result<(), PageError> {
    let origin = state.config.issuer.url().origin().ascii_serialization();
    crate::web::require_same_origin(req, &origin).map_err(|_| PageError::CrossSite)
}

/// `POST /login`.
pub async fn login(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    same_origin(&req, &state)?;
    let params = form(&req, &body)?;
    let request_id = params.get("request").unwrap_or("");
    let expired = PageError::BadRequest(
        "This sign-in request has expired or is unknown. Go back to the application and start again.",
    );
    let Some(auth) = pending::load(&state, request_id, &req).await? else { return Err(expired) };
    let typed_name = params.get("username").unwrap_or("");
    let relogin = |status: StatusCode, error: &str| {
        pages::render(
            status,
            &LoginPage {
                request_id,
                client_id: &auth.client_id,
                username: typed_name,
                error: Some(error),
                allow_signup: state.config.allow_signup,
            },
        )
    };
    let (Some(_), Some(password)) =
        (params.get("username"), params.get("password").and_then(Password::parse))
    else {
        return Ok(relogin(StatusCode::BAD_REQUEST, "Enter your username and password."));
    };

    let (name, limiter) = counted(typed_name, &req);
    if let Some(retry_after) = limiter.blocked(&state).await? {
        state.metrics.logins.with_label_values(&["throttled"]).inc();
        return Err(PageError::TooManyAttempts { retry_after });
    }
    let user = match &name {
        Some(name) => users::find(&state, name).await?,
        None => None,
    };
    if !state.passwords.verify(user.as_ref().map(|u| u.password_hash.as_str()), password).await {
        limiter.record_failure(&state).await?;
        state.metrics.logins.with_label_values(&["failed"]).inc();
        tracing::info!("login failed");
        return Ok(relogin(StatusCode::UNAUTHORIZED, GENERIC_FAILURE));
    }
    let Some(user) = user else { return Ok(relogin(StatusCode::UNAUTHORIZED, GENERIC_FAILURE)) };
    limiter.record_success(&state).await?;
    if second_factor::asks_for_mfa(&auth.acr_values) && user.totp_secret.is_some() {
        return code_form_after_password(&state, request_id, &user).await;
    }
    // The request is completed once: a second submission of the same form finds nothing.
    let Some(auth) = pending::take(&state, request_id, &req).await? else { return Err(expired) };
    let (session, cookie) = login_session::create(&state, &user.sub, &user.username).await?;
    state.metrics.logins.with_label_values(&["ok"]).inc();
    tracing::info!(client_id = %auth.client_id, "login succeeded");
    let mut res = complete(&state, &auth, &session).await?;
    res.add_cookie(&cookie).map_err(|e| PageError::Internal(e.to_string()))?;
    Ok(res)
}

/// A password login session for `user`, and the code form: the code raises the session and
/// completes the pending request `request_id`.
async fn code_form_after_password(
    state: &AppState,
    request_id: &str,
    user: &users::UserRecord,
) -> Result<HttpResponse, PageError> {
    let (_, cookie) = login_session::create(state, &user.sub, &user.username).await?;
    let mut res = second_factor::page(StatusCode::OK, request_id, &user.username, None);
    res.add_cookie(&cookie).map_err(|e| PageError::Internal(e.to_string()))?;
    Ok(res)
}

/// The canonical form of a typed name and the counters of the attempt. Counted under the
/// canonical name: every spelling of one account shares one counter, and a success can only
/// clear the counter of the account it signed in to.
fn counted(typed_name: &str, req: &HttpRequest) -> (Option<Username>, LoginLimiter) {
    let name = Username::parse(typed_name);
    let counted_as = name.as_ref().map_or(typed_name, Username::as_str);
    let limiter = LoginLimiter::new(counted_as, &crate::web::rate_limit::client_bucket(req));
    (name, limiter)
}

/// `GET /signup?request=…`.
pub async fn signup_form(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    if !state.config.allow_signup {
        return Err(PageError::BadRequest("Sign-up is disabled."));
    }
    let params = Params::parse(req.query_string().as_bytes())
        .map_err(|_| PageError::BadRequest("A request parameter is repeated."))?;
    let request_id = params.get("request").filter(|r| pending::valid_id(r)).unwrap_or("");
    Ok(pages::render(StatusCode::OK, &SignupPage { request_id, username: "", error: None }))
}

/// `POST /signup`: creates the account, signs the user in and continues the pending
/// authorization request, if there is one.
pub async fn signup(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    if !state.config.allow_signup {
        return Err(PageError::BadRequest("Sign-up is disabled."));
    }
    same_origin(&req, &state)?;
    let params = form(&req, &body)?;
    if let Some(retry_after) = signup_blocked(&state, &req).await? {
        tracing::info!("sign-up throttled for a client address");
        return Err(PageError::TooManySignups { retry_after });
    }
    let request_id = params.get("request").filter(|r| pending::valid_id(r)).unwrap_or("");
    let typed_name = params.get("username").unwrap_or("");
    let again = |status: StatusCode, error: &str| {
        pages::render(status, &SignupPage { request_id, username: typed_name, error: Some(error) })
    };
    let Some(name) = Username::parse(typed_name) else {
        return Ok(again(
            StatusCode::BAD_REQUEST,
            "Choose a username of 1 to 64 letters a-z, digits, dots, dashes, underscores or @.",
        ));
    };
    let Some(password) = params.get("password").and_then(Password::parse_new) else {
        return Ok(again(StatusCode::BAD_REQUEST, "Choose a password of at least 8 characters."));
    };
    let Some(user) = users::create(&state, &name, password).await? else {
        return Ok(again(StatusCode::CONFLICT, "That username is taken."));
    };
    tracing::info!("account created");
    let (session, cookie) = login_session::create(&state, &user.sub, &user.username).await?;
    let mut res = match pending::take(&state, request_id, &req).await? {
        Some(auth) => complete(&state, &auth, &session).await?,
        None => pages::render(
            StatusCode::OK,
            &MessagePage {
                title: "Account created",
                message: "Your account is ready and you are signed in.",
            },
        ),
    };
    res.add_cookie(&cookie).map_err(|e| PageError::Internal(e.to_string()))?;
    Ok(res)
}
