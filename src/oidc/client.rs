//! Token endpoint calls of a confidential client: authorization code exchange (RFC 6749 §4.1.3
//! with PKCE), refresh (§6) and revocation (RFC 7009), each authenticated as
//! [`ClientCredentials`] says (pushed authorization requests: [`super::par`]).

pub use super::client_auth::{ClientAuth, ClientCredentials, ClientKeys, PROVIDER_TIMEOUT};
use super::discovery::ProviderMetadata;
use crate::config::Secret;
use serde::Deserialize;
use tracing::Instrument as _;
use tracing::field::Empty;

/// A successful token response. Tokens are [`Secret`]s: their `Debug` shows nothing.
#[derive(Debug, Clone, Deserialize)]
pub struct TokenResponse {
    /// The access token.
    pub access_token: Secret,
    /// Usually `Bearer`.
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
}

impl TokenEndpointError {
    /// True when the grant (or this client) is dead for good: `invalid_grant` / `invalid_client`.
    pub fn is_grant_dead(&self) -> bool {
        matches!(self, Self::Rejected { error, .. } if error == "invalid_grant" || error == "invalid_client")
    }
}

#[derive(Deserialize)]
struct OAuthErrorBody {
    error: String,
}

/// Exchanges an authorization code (with its PKCE verifier) for tokens.
pub async fn exchange_code(
    http: &reqwest::Client,
    meta: &ProviderMetadata,
    creds: &ClientCredentials,
    code: &str,
    redirect_uri: &str,
    code_verifier: &str,
) -> Result<TokenResponse, TokenEndpointError> {
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", redirect_uri),
        ("code_verifier", code_verifier),
    ];
    token_call(http, meta, creds, &form).await
}

/// Redeems a refresh token (RFC 6749 §6).
pub async fn refresh(
    http: &reqwest::Client,
    meta: &ProviderMetadata,
    creds: &ClientCredentials,
    refresh_token: &str,
) -> Result<TokenResponse, TokenEndpointError> {
    let form = [("grant_type", "refresh_token"), ("refresh_token", refresh_token)];
    token_call(http, meta, creds, &form).await
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

async fn token_call(
    http: &reqwest::Client,
    meta: &ProviderMetadata,
    creds: &ClientCredentials,
    form: &[(&str, &str)],
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
    let res = creds
        .post(http, &meta.token_endpoint, &meta.issuer, form)?
        .headers(trace_context(&span))
        .send()
        .instrument(span.clone())
        .await
        .map_err(|e| TokenEndpointError::Unavailable(e.without_url().to_string()))?;
    span.record("http.response.status_code", res.status().as_u16());
    if !res.status().is_success() {
        return Err(error_from(res).await);
    }
    let tokens: TokenResponse = res.json().await.map_err(|e| {
        TokenEndpointError::Unavailable(format!("unreadable token response: {}", e.without_url()))
    })?;
    if !tokens.token_type.is_empty() && !tokens.token_type.eq_ignore_ascii_case("bearer") {
        return Err(TokenEndpointError::Unavailable(format!("unsupported token_type {}", tokens.token_type)));
    }
    Ok(tokens)
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
