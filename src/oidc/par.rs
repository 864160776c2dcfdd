//! Pushed authorization requests (RFC 9126): the authorization parameters go to the provider
//! over the back channel, authenticated as this client; the browser then carries only
//! `client_id` and the `request_uri` the provider answered.

use super::client::{ClientCredentials, TokenEndpointError, error_from, trace_context};
use super::discovery::ProviderMetadata;
use serde::Deserialize;
use tracing::Instrument;

/// The provider's answer to a pushed request (RFC 9126 §2.2).
#[derive(Debug, Deserialize)]
pub struct PushedRequest {
    /// The reference the browser takes to the authorization endpoint.
    pub request_uri: String,
    /// Its lifetime in seconds.
    pub expires_in: u64,
}

/// Longest `request_uri` accepted from a provider (it ends up in a redirect URL).
const MAX_REQUEST_URI: usize = 2048;

/// Pushes `params` (the authorization request's parameters, without `client_id`) to the
/// provider's `pushed_authorization_request_endpoint`.
pub async fn push(
    http: &reqwest::Client,
    meta: &ProviderMetadata,
    creds: &ClientCredentials,
    params: &[(&str, &str)],
) -> Result<PushedRequest, TokenEndpointError> {
    let Some(endpoint) = meta.pushed_authorization_request_endpoint.as_deref() else {
        return Err(TokenEndpointError::Unavailable("the provider offers no pushed requests".into()));
    };
    let mut form: Vec<(&str, &str)> = params.to_vec();
    // The secret-post and assertion methods add `client_id` themselves; Basic does not.
    if matches!(creds.auth, super::client::ClientAuth::SecretBasic(_)) {
        form.push(("client_id", creds.client_id.as_str()));
    }
    let span = tracing::debug_span!("provider pushed request", otel.kind = "client");
    let res = creds
        .post(http, endpoint, &meta.issuer, &form)?
        .headers(trace_context(&span))
        .send()
        .instrument(span)
        .await
        .map_err(|e| TokenEndpointError::Unavailable(e.without_url().to_string()))?;
    if !res.status().is_success() {
        return Err(error_from(res).await);
    }
    let pushed: PushedRequest = res.json().await.map_err(|e| {
        TokenEndpointError::Unavailable(format!("unreadable pushed-request response: {}", e.without_url()))
    })?;
    if pushed.request_uri.is_empty() || pushed.request_uri.len() > MAX_REQUEST_URI {
        return Err(TokenEndpointError::Unavailable(
            "unusable request_uri in the pushed-request response".into(),
        ));
    }
    Ok(pushed)
}
