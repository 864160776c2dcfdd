//! Token endpoint calls of a confidential client: authorization code exchange (RFC 6749 §4.1.3
//! with PKCE), refresh (§6) and revocation (RFC 7009), each authenticated as
//! [`ClientCredentials`] says (pushed authorization requests: [`super::par`]).

pub use super::client_auth::{ClientAuth, ClientCredentials, ClientKeys, PROVIDER_TIMEOUT};
use super::discovery::ProviderMetadata;
use crate::config::Secret;
use crate::jwt::dpop::{DPOP_HEADER, DpopKey, NONCE_HEADER, NonceCache, nonce::origin_of};
use serde::Deserialize;
use tracing::Instrument as _;
use tracing::field::Empty;

/// A successful token response. Tokens are [`Secret`]s: their `Debug` shows nothing.
#[derive(Debug, Clone, Deserialize)]
pub struct TokenResponse {
    /// The access token.
    pub access_token: Secret,
    /// `Bearer`, or `DPoP` for tokens bound to the DPoP key of the request.
    #[serde(default)]
    pub token_type: String,
    /// Lifetime of the access token in seconds.
    #[serde(default)]
    pub expires_in: Option<u64>,
    /// A refresh token, when the provider issued (or rotated) one.
    #[serde(default)]
    pub refresh_token: Option<Secret>,
    /// Lifetime of the refresh token (a common, non-standard member).
    #[serde(default)]
    pub refresh_expires_in: Option<u64>,
    /// The ID token (code exchange; some providers also on refresh).
    #[serde(default)]
    pub id_token: Option<Secret>,
    /// Granted scope.
    #[serde(default)]
    pub scope: Option<String>,
}

/// Why a token endpoint call failed, split by what the caller must do about it.
#[derive(Debug, thiserror::Error)]
pub enum TokenEndpointError {
    /// The provider refused the request with an OAuth error (`invalid_grant`, `invalid_client`…).
    /// The `description` comes from the provider and is for logs only.
    #[error("the provider refused the request: {error}")]
    Rejected {
        /// The OAuth error code.
        error: String,
        /// HTTP status of the answer.
        status: u16,
    },
    /// Network error, timeout, 5xx, 429 or an unreadable answer: try again later.
    #[error("the provider is unavailable: {0}")]
    Unavailable(String),
    /// This client could not authenticate the request (its assertion could not be signed).
    #[error(transparent)]
    ClientAuth(#[from] super::client_auth::ClientAuthError),
    /// The request carried a DPoP proof but the provider answered with a `token_type` other
    /// than `DPoP`: it consumed the grant without binding the tokens, which are not used.
    #[error("the provider answered token_type {0} to a DPoP-bound request")]
    NotDpopBound(String),
}

impl TokenEndpointError {
    /// True when the grant (or this client) is dead for good: `invalid_grant` / `invalid_client`.
    pub fn is_grant_dead(&self) -> bool {
        matches!(self, Self::Rejected { error, .. } if error == "invalid_grant" || error == "invalid_client")
    }

    /// True when the provider refused the token's audience or scopes (RFC 8707 `invalid_target`,
    /// `invalid_scope`) or this client the grant type (`unauthorized_client`,
    /// `unsupported_grant_type`): the grant itself lives on, and asking again gives the same
    /// answer.
    pub fn is_audience_refused(&self) -> bool {
        const REFUSALS: [&str; 4] =
            ["invalid_target", "invalid_scope", "unauthorized_client", "unsupported_grant_type"];
        matches!(self, Self::Rejected { error, .. } if REFUSALS.contains(&error.as_str()))
    }
}

#[derive(Deserialize)]
struct OAuthErrorBody {
    error: String,
}

/// What an authorization code grant sends besides the client's credentials.
#[derive(Debug)]
pub struct CodeGrant<'a> {
    /// The code the callback received.
    pub code: &'a str,
    /// The redirect URI of the authorization request.
    pub redirect_uri: &'a str,
    /// The PKCE verifier.
    pub code_verifier: &'a str,
    /// More parameters (the login's `resource`).
    pub extra: &'a [(&'a str, &'a str)],
}

/// Exchanges an authorization code (with its PKCE verifier and `extra` parameters: the login's
/// `resource`, RFC 8707 §2.2) for tokens, bound to `dpop` when given (RFC 9449 §5).
pub async fn exchange_code(
    http: &reqwest::Client,
    meta: &ProviderMetadata,
    creds: &ClientCredentials,
    grant: &CodeGrant<'_>,
    dpop: Option<&DpopKey>,
) -> Result<TokenResponse, TokenEndpointError> {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", grant.code),
        ("redirect_uri", grant.redirect_uri),
        ("code_verifier", grant.code_verifier),
    ];
    form.extend_from_slice(grant.extra);
    token_call(http, meta, creds, &form, dpop).await
}

/// Redeems a refresh token (RFC 6749 §6) with `extra` parameters (a route's `resource` and
/// `scope`: RFC 8707 §2.2, RFC 6749 §6), with a proof of `dpop` when the tokens are bound to it.
pub async fn refresh(
    http: &reqwest::Client,
    meta: &ProviderMetadata,
    creds: &ClientCredentials,
    refresh_token: &str,
    extra: &[(&str, &str)],
    dpop: Option<&DpopKey>,
) -> Result<TokenResponse, TokenEndpointError> {
    let mut form = vec![("grant_type", "refresh_token"), ("refresh_token", refresh_token)];
    form.extend_from_slice(extra);
    token_call(http, meta, creds, &form, dpop).await
}

/// A client-credentials grant (RFC 6749 §4.4) with `extra` (`resource`, `scope`): the
/// application's own token, bound to `dpop` when given.
pub async fn client_credentials(
    http: &reqwest::Client,
    meta: &ProviderMetadata,
    creds: &ClientCredentials,
    extra: &[(&str, &str)],
    dpop: Option<&DpopKey>,
) -> Result<TokenResponse, TokenEndpointError> {
    let mut form = vec![("grant_type", "client_credentials")];
    form.extend_from_slice(extra);
    token_call(http, meta, creds, &form, dpop).await
}

/// Revokes a token (RFC 7009) at the provider's `revocation_endpoint`. 200 is success
/// whatever the token was.
pub async fn revoke(
    http: &reqwest::Client,
    meta: &ProviderMetadata,
    creds: &ClientCredentials,
    token: &str,
    token_type_hint: &str,
) -> Result<(), TokenEndpointError> {
    let Some(endpoint) = meta.revocation_endpoint.as_deref() else {
        return Err(TokenEndpointError::Unavailable("the provider offers no revocation".into()));
    };
    let form = [("token", token), ("token_type_hint", token_type_hint)];
    let span =
        tracing::debug_span!("provider revocation", otel.kind = "client", http.response.status_code = Empty);
    let res = creds
        .post(http, endpoint, &meta.issuer, &form)?
        .headers(trace_context(&span))
        .send()
        .instrument(span.clone())
        .await
        .map_err(|e| TokenEndpointError::Unavailable(e.without_url().to_string()))?;
    span.record("http.response.status_code", res.status().as_u16());
    if res.status().is_success() {
        return Ok(());
    }
    Err(error_from(res).await)
}

/// The `traceparent` (and `tracestate`) of `span` when traces are on; empty otherwise.
pub(super) fn trace_context(span: &tracing::Span) -> reqwest::header::HeaderMap {
    let mut headers = reqwest::header::HeaderMap::new();
    span.in_scope(|| crate::telemetry::inject_current(&mut headers));
    headers
}

/// One token request; with `dpop`, a fresh proof (with the endpoint's latest nonce) and one
/// retry when the provider asks for a nonce (`use_dpop_nonce`, RFC 9449 §8).
async fn token_call(
    http: &reqwest::Client,
    meta: &ProviderMetadata,
    creds: &ClientCredentials,
    form: &[(&str, &str)],
    dpop: Option<&DpopKey>,
) -> Result<TokenResponse, TokenEndpointError> {
    // The grant type is the only detail of the request in its span: never the form's code,
    // verifier or refresh token, never a header.
    let grant_type = form.iter().find(|(k, _)| *k == "grant_type").map(|(_, v)| *v).unwrap_or_default();
    let span = tracing::debug_span!(
        "provider token request",
        otel.kind = "client",
        oauth.grant_type = grant_type,
        http.response.status_code = Empty,
    );
    let mut res = token_request(http, meta, creds, form, dpop, &span).await?;
    if !res.status().is_success() {
        let error = error_from(res).await;
        if dpop.is_none()
            || !matches!(&error, TokenEndpointError::Rejected { error, .. } if error == "use_dpop_nonce")
        {
            return Err(error);
        }
        res = token_request(http, meta, creds, form, dpop, &span).await?;
        if !res.status().is_success() {
            return Err(error_from(res).await);
        }
    }
    let tokens: TokenResponse = res.json().await.map_err(|e| {
        TokenEndpointError::Unavailable(format!("unreadable token response: {}", e.without_url()))
    })?;
    let expected = if dpop.is_some() { "dpop" } else { "bearer" };
    if dpop.is_some() && !tokens.token_type.eq_ignore_ascii_case(expected) {
        tracing::warn!(token_type = %tokens.token_type, "the provider did not bind the tokens to the DPoP key");
        return Err(TokenEndpointError::NotDpopBound(tokens.token_type));
    }
    if !tokens.token_type.is_empty() && !tokens.token_type.eq_ignore_ascii_case(expected) {
        return Err(TokenEndpointError::Unavailable(format!("unsupported token_type {}", tokens.token_type)));
    }
    Ok(tokens)
}

/// Sends one token request (with a fresh DPoP proof when `dpop`) and keeps the nonce the
/// answer carries.
async fn token_request(
    http: &reqwest::Client,
    meta: &ProviderMetadata,
    creds: &ClientCredentials,
    form: &[(&str, &str)],
    dpop: Option<&DpopKey>,
    span: &tracing::Span,
) -> Result<reqwest::Response, TokenEndpointError> {
    let mut req = creds.post(http, &meta.token_endpoint, &meta.issuer, form)?.headers(trace_context(span));
    let origin = dpop.map(|_| origin_of(&meta.token_endpoint));
    if let (Some(key), Some(origin)) = (dpop, &origin) {
        let nonce = NonceCache::global().get(origin);
        req = req.header(DPOP_HEADER, key.proof("POST", &meta.token_endpoint, None, nonce.as_deref()));
    }
    let res = req
        .send()
        .instrument(span.clone())
        .await
        .map_err(|e| TokenEndpointError::Unavailable(e.without_url().to_string()))?;
    span.record("http.response.status_code", res.status().as_u16());
    if let Some(origin) = &origin
        && let Some(nonce) = res.headers().get(NONCE_HEADER).and_then(|v| v.to_str().ok())
    {
        NonceCache::global().put(origin, nonce);
    }
    Ok(res)
}

/// The error of a refused call: an OAuth error code, or unavailable.
pub(super) async fn error_from(res: reqwest::Response) -> TokenEndpointError {
    let status = res.status();
    if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
        return TokenEndpointError::Unavailable(format!("provider answered {status}"));
    }
    match res.json::<OAuthErrorBody>().await {
        Ok(body) => TokenEndpointError::Rejected { error: body.error, status: status.as_u16() },
        Err(_) => {
            TokenEndpointError::Unavailable(format!("provider answered {status} without an OAuth error"))
        }
    }
}
