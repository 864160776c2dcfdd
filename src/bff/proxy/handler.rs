//! The proxy's request handler: what the route policy left to check, the upstream request built
//! from the route's base URL, the exchange, and the response streamed back.

use super::client::{UpstreamBody, UpstreamResponse, WorkerClient, stream_body};
use super::exchange::{
    Exchange, Outgoing, OutgoingBody, UpstreamError, end_session_if_needed, send_anonymous, send_with_token,
};
use super::headers::{forward_headers, response_headers};
use super::upstreams::{FORM_TOKEN_HEADER, Upstream, UpstreamKind};
use crate::bff::frontend::is_navigation;
use crate::bff::metrics::ProxyOutcome;
use crate::bff::paths::UpstreamPath;
use crate::bff::policy::{ActiveSession, Proxied, login_redirect, unauthenticated};
use crate::bff::session::SessionRecord;
use crate::bff::session::{TypedSession, hashed_id};
use crate::bff::state::BffState;
use crate::bff::step_up::{AuthRequirement, return_to_of};
use crate::bff::tokens::{Credential, TokenError, TokenSource};
use crate::bff::websocket::{self, SessionWatch, UpstreamTarget};
use crate::config::RouteSession;
use crate::web::{ApiError, ErrorCode};
use actix_web::http::StatusCode;
use actix_web::http::header::HeaderValue;
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

fn not_found() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no such resource")
}

fn bad_path() -> ApiError {
    ApiError::new(ErrorCode::InvalidRequest, "the request path is not in normal form")
}

/// What an exchange needs of the BFF's state, with this worker's client.
pub fn exchange_for<'a>(state: &'a BffState, client: &'a WorkerClient) -> Exchange<'a> {
    Exchange {
        client,
        tokens: &state.tokens,
        timeout: std::time::Duration::from_secs(state.config.upstream_timeout_secs),
        retries: &state.metrics.upstream_retries,
    }
}

/// The default service: proxies a request the route policy matched to a configured route or
/// frontend server (it has checked methods, CSRF, the path, the declared length and the
/// session by then), with the user's access token when the policy read a session; any other
/// request is 404.
pub async fn proxy(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<BffState>,
    client: web::Data<WorkerClient>,
    session: TypedSession,
    target: Proxied,
    active: Option<ActiveSession>,
) -> Result<HttpResponse, ApiError> {
    let upstream = state.upstreams.get(target.target).ok_or_else(not_found)?;
    // The request span's `http.route`: the configured prefix, never the path with its ids.
    actix_web::HttpMessage::extensions_mut(&req).insert(crate::web::HttpRoute(upstream.label.clone()));
    let active = admitted_session(&req, &state, upstream, active)?;
    if target.websocket {
        let url = upstream_url(&upstream.base, &target.path, req.uri().query());
        return Box::pin(relay_websocket(&req, payload, &state, upstream, url, active, &session)).await;
    }
    let out = outgoing(&req, payload, &state, upstream, &target)?;
    // A page of a frontend server whose session turns out to have ended (its grant revoked at
    // the provider) is served as to a visitor without one; kept only for such navigations.
    let as_visitor = (upstream.kind == UpstreamKind::Frontend && active.is_some() && is_navigation(&req))
        .then(|| out.replayable_copy())
        .flatten();
    let out = with_form_token(out, upstream, active.as_deref());
    let exchange = exchange_for(&state, &client);

    let started = Instant::now();
    // Boxed: this handler's future is moved (and boxed) by the framework; kept small, it does
    // not carry the whole upstream exchange's state through those copies.
    let mut result = match credential(upstream, active.as_deref()) {
        Some(credential) => Box::pin(send_with_token(&exchange, credential, out)).await,
        None => Box::pin(send_anonymous(&exchange, out)).await,
    };
    if let (Err(UpstreamError::Token(e)), Some(visitor)) = (&result, as_visitor)
        && matches!(e, TokenError::SessionExpired | TokenError::NoSession)
    {
        end_session_if_needed(&session, e);
        if upstream.session == RouteSession::Required {
            return Ok(login_redirect(&req));
        }
        result = Box::pin(send_anonymous(&exchange, visitor)).await;
    }
    observe(&state, upstream, &result, started);
    if let (Ok(res), Some(_)) = (&result, &active)
        && let Some(step_up) = step_up_asked(&state, res)
    {
        return Err(step_up.into_error(&return_to_of(&req, state.public_origin())));
    }
    let res = result.map_err(|e| {
        if let UpstreamError::Token(t) = &e {
            end_session_if_needed(&session, t);
        }
        ApiError::from(e)
    })?;

    Ok(respond(res, &upstream.csp, Duration::from_secs(state.config.upstream_idle_timeout_secs)))
}

/// The session a request to `upstream` goes on with: none where the route reads none (so no
/// user token, whatever the request holds); refused when the route requires one that is
/// missing, or one stronger than the session's authentication.
fn admitted_session(
    req: &HttpRequest,
    state: &BffState,
    upstream: &Upstream,
    active: Option<ActiveSession>,
) -> Result<Option<ActiveSession>, ApiError> {
    let active = active.filter(|_| upstream.session != RouteSession::None);
    if active.is_none() && upstream.session == RouteSession::Required {
        return Err(unauthenticated());
    }
    if let Some(step_up) = route_step_up(upstream, active.as_deref()) {
        return Err(step_up.into_error(&return_to_of(req, state.public_origin())));
    }
    Ok(active)
}

/// The token a request to `upstream` carries: the application's on a client route, else the
/// session's (for the route's audience) when there is one, else none.
fn credential<'a>(upstream: &'a Upstream, active: Option<&'a SessionRecord>) -> Option<Credential<'a>> {
    match (&upstream.token, active) {
        (TokenSource::Client(audience), _) => Some(Credential::Client(audience)),
        (TokenSource::User(audience), Some(record)) => {
            Some(Credential::Session(&record.handle, audience.as_deref()))
        }
        (TokenSource::User(_), None) => None,
    }
}

/// The route's authentication requirement, when the session does not meet it.
fn route_step_up(upstream: &Upstream, active: Option<&SessionRecord>) -> Option<AuthRequirement> {
    let (record, required) = (active?, upstream.requirement.as_ref()?);
    let met = required.is_met(record.acr.as_deref(), record.auth_time, crate::clock::now());
    (!met).then(|| required.clone())
}

/// The step-up an upstream's 401 asks for (RFC 9470), when it is well-formed and its login
/// parameters are allowed; otherwise the upstream's 401 goes to the browser as it is.
fn step_up_asked(state: &BffState, res: &UpstreamResponse) -> Option<AuthRequirement> {
    if res.status() != reqwest::StatusCode::UNAUTHORIZED {
        return None;
    }
    let values = res.headers().get_all(reqwest::header::WWW_AUTHENTICATE).iter().map(|v| v.as_bytes());
    let asked = AuthRequirement::from_challenges(values)?;
    if let Some(missing) = asked.unallowed(&state.config.login_parameters) {
        tracing::info!(
            parameter = missing,
            "an upstream asked for a step-up the login parameters do not allow"
        );
        return None;
    }
    Some(asked)
}

/// Counts the exchange in the upstream's series.
fn observe(
    state: &BffState,
    upstream: &Upstream,
    result: &Result<UpstreamResponse, UpstreamError>,
    started: Instant,
) {
    let outcome = match result {
        Ok(res) => ProxyOutcome::Status(res.status().as_u16()),
        Err(UpstreamError::Token(_)) => ProxyOutcome::TokenError,
        Err(_) => ProxyOutcome::Error,
    };
    if let Some(metrics) = state.metrics.route(upstream.metrics) {
        metrics.observe(outcome, started.elapsed());
    }
}

/// The upstream request for `req`: URL, method, the headers that cross, the body streamed.
fn outgoing(
    req: &HttpRequest,
    payload: web::Payload,
    state: &BffState,
    upstream: &Upstream,
    target: &Proxied,
) -> Result<Outgoing, ApiError> {
    let url = upstream_url(&upstream.base, &target.path, req.uri().query());
    let method = reqwest::Method::from_bytes(req.method().as_str().as_bytes()).map_err(|_| bad_path())?;
    let has_body =
        target.content_length.is_some_and(|n| n > 0) || req.headers().contains_key("transfer-encoding");
    let over_limit = Arc::new(AtomicBool::new(false));
    let body = if has_body {
        OutgoingBody::Stream(pump(payload, state.config.max_body_bytes, over_limit.clone()))
    } else {
        OutgoingBody::Empty
    };
    let headers = forward_headers(req, &state.public.forwarded, &upstream.headers);
    Ok(Outgoing { method, url, headers, body, over_limit })
}

/// A frontend server gets the session's form token, for the forms of its pages.
fn with_form_token(mut out: Outgoing, upstream: &Upstream, active: Option<&SessionRecord>) -> Outgoing {
    if let (UpstreamKind::Frontend, Some(record)) = (upstream.kind, active)
        && let Ok(token) = reqwest::header::HeaderValue::from_str(record.csrf_token.expose())
    {
        out.headers.insert(FORM_TOKEN_HEADER, token);
    }
    out
}

/// A WebSocket upgrade the policy accepted on a route with `websocket = true`: the session's
/// access token obtained as for any proxied request (refreshed when due), then
/// [`websocket::open`] connects upstream and answers the browser.
async fn relay_websocket(
    req: &HttpRequest,
    payload: web::Payload,
    state: &BffState,
    upstream: &Upstream,
    url: url::Url,
    active: Option<ActiveSession>,
    session: &TypedSession,
) -> Result<HttpResponse, ApiError> {
    let token = match credential(upstream, active.as_deref()) {
        Some(credential) => Some(state.tokens.token_for(credential).await.map_err(|e| {
            end_session_if_needed(session, &e);
            ApiError::from(e)
        })?),
        None => None,
    };
    let watch = match &active {
        Some(record) => {
            let hashed = hashed_id(req, &state.keys).ok_or_else(unauthenticated)?;
            let deadline = record.idle_expires_at.min(record.expires_at);
            Some(SessionWatch { hashed, deadline })
        }
        None => None,
    };
    let protocols = req
        .headers()
        .get_all(actix_web::http::header::SEC_WEBSOCKET_PROTOCOL)
        .filter_map(|v| http::HeaderValue::from_bytes(v.as_bytes()).ok())
        .collect();
    let headers = forward_headers(req, &state.public.forwarded, &upstream.headers);
    let target = UpstreamTarget { url, token, protocols, headers };
    Ok(websocket::open(req, payload, target, watch, &state.websockets).await?)
}

/// The upstream's parsed base URL with the path and query replaced: only those are parsed per
/// request, and the authority cannot change.
fn upstream_url(base: &url::Url, path: &UpstreamPath, query: Option<&str>) -> url::Url {
    let mut url = base.clone();
    let mut full_path = String::with_capacity(base.path().len() + path.as_str().len());
    full_path.push_str(base.path().trim_end_matches('/'));
    full_path.push_str(path.as_str());
    url.set_path(&full_path);
    url.set_query(query);
    url
}

/// The browser's response: the upstream's status, the headers that may cross, `no-store`, and
/// the body streamed chunk by chunk as it arrives (server-sent events, long downloads), ended
/// when the upstream pauses longer than `idle`.
fn respond(res: super::client::UpstreamResponse, csp: &HeaderValue, idle: Duration) -> HttpResponse {
    let status = StatusCode::from_u16(res.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut builder = HttpResponse::build(status);
    for (name, value) in response_headers(&res) {
        if let (Ok(n), Ok(v)) = (
            actix_web::http::header::HeaderName::from_bytes(name.as_bytes()),
            actix_web::http::header::HeaderValue::from_bytes(value),
        ) {
            builder.append_header((n, v));
        }
    }
    builder.insert_header(crate::web::no_store());
    // Always the BFF's policy, beside any of the upstream's: a browser enforces every one.
    builder.append_header((actix_web::http::header::CONTENT_SECURITY_POLICY, csp.clone()));
    builder.streaming(res.into_stream(idle))
}

/// Moves the browser's body (not `Send`) into a channel the upstream client can stream from,
/// counting bytes: crossing `limit` flags `over_limit` and aborts the upload.
fn pump(mut payload: web::Payload, limit: usize, over_limit: Arc<AtomicBool>) -> UpstreamBody {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(8);
    actix_web::rt::spawn(async move {
        let mut total = 0usize;
        while let Some(chunk) = payload.next().await {
            let item = match chunk {
                Ok(b) => {
                    total += b.len();
                    if total > limit {
                        over_limit.store(true, Ordering::SeqCst);
                        let _ = tx.send(Err(std::io::Error::other("request body too large"))).await;
                        return;
                    }
                    Ok(b)
                }
                Err(e) => Err(std::io::Error::other(e.to_string())),
            };
            let failed = item.is_err();
            if tx.send(item).await.is_err() || failed {
                return;
            }
        }
    });
    let mut rx = rx;
    stream_body(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)))
}
