//! `ANY <route.path>/<rest>`: the proxy to the configured upstreams (a fixed allow-list; client
//! input never picks the host or scheme). Bodies stream both ways.

use super::csrf;
use super::metrics::ProxyOutcome;
use super::paths::{UpstreamPath, strip_route};
use super::session::TypedSession;
use super::state::BffState;
use super::upstream::{
    Outgoing, OutgoingBody, UpstreamError, WorkerClient, end_session_if_needed, forward_headers,
    payload_too_large, response_headers, send_with_token,
};
use super::upstream_client::{UpstreamBody, stream_body};
use crate::web::ApiError;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such resource")
}

/// Methods never proxied: `TRACE`/`TRACK` make an upstream reflect the request — with the
/// BFF's `Authorization: Bearer` header — back to the browser (cross-site tracing), `CONNECT`
/// asks for a tunnel. Methods are compared case-insensitively, as some servers do.
fn refused_method(method: &actix_web::http::Method) -> bool {
    ["TRACE", "TRACK", "CONNECT"].iter().any(|m| method.as_str().eq_ignore_ascii_case(m))
}

fn bad_path() -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", "the request path is not in normal form")
}

/// The default service: proxies when the path is under a configured route, 404 otherwise.
pub async fn proxy(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<BffState>,
    client: web::Data<WorkerClient>,
    session: TypedSession,
) -> Result<HttpResponse, ApiError> {
    let raw_path = req.uri().path();
    let Some((index, route, rest)) = state
        .config
        .routes
        .iter()
        .enumerate()
        .find_map(|(i, r)| strip_route(raw_path, r.path.as_str()).map(|rest| (i, r, rest)))
    else {
        return Err(not_found());
    };
    if refused_method(req.method()) {
        return Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "method not allowed",
        ));
    }
    csrf::check_api_call(&req, state.public_origin())?;
    let path = UpstreamPath::parse(rest).map_err(|_| bad_path())?;

    let content_length = match req.headers().get("content-length") {
        Some(v) => Some(v.to_str().ok().and_then(|s| s.parse::<usize>().ok()).ok_or_else(bad_length)?),
        None => None,
    };
    if content_length.is_some_and(|n| n > state.config.max_body_bytes) {
        return Err(payload_too_large());
    }
    let record = session.current(state.config.session.idle_timeout_secs)?.ok_or_else(unauthenticated)?;

    // The upstream's parsed URL with the path and query replaced: only those are parsed per
    // request, and the authority cannot change.
    let base = route.upstream.url();
    let mut url = base.clone();
    let mut full_path = String::with_capacity(base.path().len() + path.as_str().len());
    full_path.push_str(base.path().trim_end_matches('/'));
    full_path.push_str(path.as_str());
    url.set_path(&full_path);
    url.set_query(req.uri().query());
    let method = reqwest::Method::from_bytes(req.method().as_str().as_bytes()).map_err(|_| bad_path())?;
    let has_body = content_length.is_some_and(|n| n > 0) || req.headers().contains_key("transfer-encoding");
    let over_limit = Arc::new(AtomicBool::new(false));
    let body = if has_body {
        OutgoingBody::Stream(pump(payload, state.config.max_body_bytes, over_limit.clone()))
    } else {
        OutgoingBody::Empty
    };
    let headers = forward_headers(&req, &state, state.request_headers.route(index));
    let out = Outgoing { method, url, headers, body, over_limit };

    let started = Instant::now();
    // Boxed: this handler's future is moved (and boxed) by the framework; kept small, it does
    // not carry the whole upstream exchange's state through those copies.
    let result = Box::pin(send_with_token(&state, &client, &record.handle, out)).await;
    let outcome = match &result {
        Ok(res) => ProxyOutcome::Status(res.status().as_u16()),
        Err(UpstreamError::Token(_)) => ProxyOutcome::TokenError,
        Err(_) => ProxyOutcome::Error,
    };
    if let Some(metrics) = state.metrics.route(index) {
        metrics.observe(outcome, started.elapsed());
    }
    let res = result.map_err(|e| {
        if let UpstreamError::Token(t) = &e {
            end_session_if_needed(&session, t);
        }
        ApiError::from(e)
    })?;

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
    builder.append_header((
        actix_web::http::header::CONTENT_SECURITY_POLICY,
        actix_web::http::header::HeaderValue::from_static(crate::web::CONTENT_SECURITY_POLICY),
    ));
    Ok(builder.streaming(res.into_stream()))
}

fn bad_length() -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", "malformed Content-Length")
}

fn unauthenticated() -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", "no session")
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
