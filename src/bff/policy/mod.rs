//! Route policy: what each BFF endpoint and each configured route asks of a request (a session,
//! CSRF proof, methods), built once at start ([`PolicyTable::new`]) and enforced for every request
//! in one middleware ([`enforce`]), inside actix-session's. Handlers do not repeat these checks:
//! one that needs the session takes [`ActiveSession`] (the middleware has already answered 401
//! where a session is required) or `Option<ActiveSession>`.
//!
//! Adding a policy value (a new CSRF mode, a session rule) touches this module only.

pub mod csrf;
mod table;
pub mod upgrade;

pub use table::{PolicyTable, Resolved, Target};

use crate::bff::frontend::{FrontendRequest, is_navigation};
use crate::bff::paths::UpstreamPath;
use crate::bff::session::{SessionRecord, TypedSession};
use crate::web::{ApiError, ErrorCode};
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, ResponseError, web};
use std::future::{Ready, ready};
use std::sync::Arc;

/// Whether a request needs a live session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionRule {
    /// No live session → 401 `unauthenticated`.
    Required,
    /// The session is read when there is one; its absence is no error.
    Optional,
    /// Like `Required`, except that a page navigation without a session is redirected to
    /// `/bff/login?returnTo=<that page>` (frontends with `login = "required"`).
    Login,
    /// The session is never read (probes, the provider's back-channel calls).
    Ignored,
}

/// What proves a request is not a cross-site forgery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsrfRule {
    /// JSON APIs: `X-CSRF: 1` on every method (it forces a CORS preflight that never succeeds),
    /// a same-origin `Origin`/`Sec-Fetch-Site` on unsafe methods, and no form content type.
    Header,
    /// Unsafe methods as with `Header`; safe methods only a same-origin or absent
    /// `Origin`/`Sec-Fetch-Site` (downloads, `<img>`, `EventSource` send no custom header).
    UnsafeMethods,
    /// Same-origin on unsafe methods, plus either `X-CSRF: 1` or, for a form post, the session's
    /// form token — which the handler compares, since only it reads the body (`POST /bff/logout`).
    HeaderOrFormToken,
    /// Frontend servers: unsafe methods (a server-rendered app's form posts) only with every
    /// `Origin` exactly the BFF's and `Sec-Fetch-Site` `same-origin` (or absent; the SameSite
    /// cookie keeps a cross-site post anonymous); safe methods — navigations — freely.
    SameOrigin,
    /// None: navigations (login, callback, pages) and server-to-server calls (back-channel logout).
    None,
}

/// What one endpoint or route asks of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoutePolicy {
    /// Session rule.
    pub session: SessionRule,
    /// CSRF rule.
    pub csrf: CsrfRule,
    /// Refuse `TRACE`, `TRACK` and `CONNECT` (405): on a proxied route they would make an
    /// upstream reflect the request — with the BFF's `Authorization` header — back to the browser
    /// (cross-site tracing), or ask for a tunnel.
    pub refuse_tunnel_methods: bool,
    /// A proxied route's request shape: the path below the route's prefix in normal form (400)
    /// and a declared `Content-Length` well-formed (400) and within this many bytes (413).
    /// Checked before the session, so a malformed request is refused as such.
    pub proxied: Option<ProxiedShape>,
}

/// What a proxied route asks of the request's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxiedShape {
    /// `bff.max_body_bytes`.
    pub max_body_bytes: usize,
}

impl RoutePolicy {
    /// A JSON API endpoint of the BFF or a proxied route: session and `X-CSRF: 1` required.
    pub const API: Self = Self {
        session: SessionRule::Required,
        csrf: CsrfRule::Header,
        refuse_tunnel_methods: true,
        proxied: None,
    };
    /// Nothing asked: probes, login and callback navigations, the back-channel logout.
    pub const OPEN: Self = Self {
        session: SessionRule::Ignored,
        csrf: CsrfRule::None,
        refuse_tunnel_methods: false,
        proxied: None,
    };
}

/// The session of a request whose policy read it: the record, already checked for expiry and
/// client binding.
#[derive(Debug, Clone)]
pub struct ActiveSession(pub Arc<SessionRecord>);

impl std::ops::Deref for ActiveSession {
    type Target = SessionRecord;
    fn deref(&self) -> &SessionRecord {
        &self.0
    }
}

impl FromRequest for ActiveSession {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        ready(req.extensions().get::<ActiveSession>().cloned().ok_or_else(unauthenticated))
    }
}

/// 401 `unauthenticated`.
pub fn unauthenticated() -> ApiError {
    ApiError::new(ErrorCode::Unauthenticated, "no session")
}

/// The middleware function (`actix_web::middleware::from_fn`): resolves the request's policy in
/// the [`PolicyTable`] of app data and enforces it; a proxied request's checked shape
/// ([`Proxied`]) and the active session go into the request's extensions.
pub async fn enforce(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let table = req.app_data::<web::Data<PolicyTable>>().cloned();
    if let Some(table) = table
        && let Some(resolved) = table.resolve(req.method(), req.path())
        && let Err(refusal) = check(req.request(), &resolved, &table)
    {
        let res = match refusal {
            Refusal::Error(e) => e.error_response(),
            Refusal::Login => login_redirect(req.request()),
        };
        return Ok(req.into_response(res));
    }
    next.call(req).await.map(ServiceResponse::map_into_boxed_body)
}

/// Why the policy turned a request away.
enum Refusal {
    /// The contract's JSON error.
    Error(ApiError),
    /// A page navigation that needs a session: to the login.
    Login,
}

impl<E: Into<ApiError>> From<E> for Refusal {
    fn from(e: E) -> Self {
        Refusal::Error(e.into())
    }
}

/// Methods, CSRF, a proxied request's shape, then the session, in that order; what was found
/// (a proxied request's shape, the session, a frontend's match) goes into the extensions.
fn check(req: &HttpRequest, resolved: &Resolved, table: &PolicyTable) -> Result<(), Refusal> {
    let (policy, origin) = (&resolved.policy, table.origin());
    if !is_origin_or_absolute_form(req.uri()) {
        return Err(ApiError::new(ErrorCode::InvalidRequest, "the request target must be a path").into());
    }
    let refused = (policy.refuse_tunnel_methods && is_tunnel_method(req.method()))
        || !table.takes(resolved.target, req.method());
    if refused {
        return Err(ApiError::new(ErrorCode::MethodNotAllowed, "method not allowed").into());
    }
    // A WebSocket upgrade cannot carry `X-CSRF`: on a route or frontend server that relays
    // WebSockets it needs the BFF's own `Origin` instead, and must be a well-formed handshake.
    let websocket = table.relays_websockets(resolved.target) && upgrade::is_attempt(req);
    if websocket {
        csrf::require_own_origin(req, origin)?;
        upgrade::check_handshake(req)?;
    } else {
        check_csrf(req, policy.csrf, origin)?;
    }
    match (resolved.target, &policy.proxied) {
        (Target::Route(_) | Target::Frontend(_), Some(shape)) => {
            let below = req.path().get(resolved.below..).unwrap_or("");
            let proxied = Proxied { websocket, ..check_proxied_shape(req, resolved.target, below, shape)? };
            req.extensions_mut().insert(proxied);
        }
        (Target::Frontend(site), _) => {
            req.extensions_mut().insert(FrontendRequest(site));
        }
        _ => {}
    }
    if policy.session == SessionRule::Ignored {
        return Ok(());
    }
    match TypedSession::of(req).current()? {
        Some(record) => {
            req.extensions_mut().insert(ActiveSession(record));
            Ok(())
        }
        None if policy.session == SessionRule::Login && is_navigation(req) => Err(Refusal::Login),
        None if policy.session == SessionRule::Optional => Ok(()),
        None => Err(unauthenticated().into()),
    }
}

/// The policy's CSRF rule.
fn check_csrf(req: &HttpRequest, rule: CsrfRule, origin: &str) -> Result<(), csrf::CsrfError> {
    match rule {
        CsrfRule::Header => csrf::check_api_call(req, origin),
        CsrfRule::UnsafeMethods => csrf::check_unsafe_methods(req, origin),
        CsrfRule::HeaderOrFormToken => {
            csrf::require_same_origin(req, origin)?;
            if !crate::web::is_form(req) {
                csrf::require_header(req)?;
            }
            Ok(())
        }
        CsrfRule::SameOrigin if crate::web::is_unsafe(req.method()) => {
            csrf::require_same_origin_any_method(req, origin)
        }
        CsrfRule::SameOrigin | CsrfRule::None => Ok(()),
    }
}

/// 302 to `/bff/login?returnTo=<this request's path and query>`.
pub fn login_redirect(req: &HttpRequest) -> HttpResponse {
    HttpResponse::Found()
        .insert_header((header::LOCATION, login_url(req)))
        .insert_header(crate::web::no_store())
        .finish()
}

/// `/bff/login?returnTo=<this request's path and query>`.
fn login_url(req: &HttpRequest) -> String {
    let target = match req.uri().query() {
        Some(q) => format!("{}?{q}", req.path()),
        None => req.path().to_owned(),
    };
    let encoded: String = url::form_urlencoded::byte_serialize(target.as_bytes()).collect();
    format!("/bff/login?returnTo={encoded}")
}

/// A request for a proxied route or frontend server as the policy checked it: which one, the
/// path to send in normal form (below a route's prefix; a frontend server's whole path), and
/// the declared body length. The proxy handler takes it as an
/// extractor (404 when the request is for no route).
#[derive(Debug)]
pub struct Proxied {
    /// The route or frontend.
    pub target: Target,
    /// The path to send below the upstream's base path.
    pub path: UpstreamPath,
    /// The declared `Content-Length`, within `bff.max_body_bytes`.
    pub content_length: Option<usize>,
    /// A well-formed WebSocket upgrade with the BFF's own `Origin`, on a route or frontend
    /// server that relays WebSockets: the handler opens a relay instead of an HTTP exchange.
    pub websocket: bool,
}

impl FromRequest for Proxied {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let proxied = req.extensions_mut().remove::<Proxied>();
        ready(proxied.ok_or_else(|| ApiError::new(ErrorCode::NotFound, "no such resource")))
    }
}

/// The path to send is in normal form; a `Content-Length` is a number within the limit.
fn check_proxied_shape(
    req: &HttpRequest,
    target: Target,
    path: &str,
    shape: &ProxiedShape,
) -> Result<Proxied, ApiError> {
    let path = UpstreamPath::parse(path)
        .map_err(|_| ApiError::new(ErrorCode::InvalidRequest, "the request path is not in normal form"))?;
    let content_length = declared_length(req)?;
    if content_length.is_some_and(|n| n > shape.max_body_bytes) {
        return Err(payload_too_large());
    }
    Ok(Proxied { target, path, content_length, websocket: false })
}

/// The request's `Content-Length`, if it declares one; a malformed one is 400.
fn declared_length(req: &HttpRequest) -> Result<Option<usize>, ApiError> {
    match req.headers().get(actix_web::http::header::CONTENT_LENGTH) {
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| s.parse::<usize>().ok())
            .map(Some)
            .ok_or_else(|| ApiError::new(ErrorCode::InvalidRequest, "malformed Content-Length")),
        None => Ok(None),
    }
}

/// 413 `payload_too_large`.
pub fn payload_too_large() -> ApiError {
    ApiError::new(ErrorCode::PayloadTooLarge, "the request body is too large")
}

/// `TRACE`, `TRACK` and `CONNECT`, compared case-insensitively, as some servers do.
fn is_tunnel_method(method: &actix_web::http::Method) -> bool {
    ["TRACE", "TRACK", "CONNECT"].iter().any(|m| method.as_str().eq_ignore_ascii_case(m))
}

/// A request target in origin form (`/path?q`) or absolute form (`http://host/path`, whose
/// authority is ignored); not the authority form of `CONNECT` (`host:port`) nor `*`.
fn is_origin_or_absolute_form(uri: &actix_web::http::Uri) -> bool {
    uri.path().starts_with('/') && (uri.scheme().is_some() || uri.authority().is_none())
}
