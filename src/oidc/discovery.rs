//! OpenID Connect Discovery 1.0: fetch and check `/.well-known/openid-configuration`.

use crate::config::PublicUrl;
use serde::{Deserialize, Serialize};

/// The provider metadata cloakroom uses. Unknown members are ignored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProviderMetadata {
    /// Must equal the configured issuer exactly.
    pub issuer: String,
    /// Where the browser is sent to log in.
    pub authorization_endpoint: String,
    /// Where codes and refresh tokens are redeemed.
    pub token_endpoint: String,
    /// The provider's signing keys.
    pub jwks_uri: String,
    /// OIDC UserInfo.
    #[serde(default)]
    pub userinfo_endpoint: Option<String>,
    /// RFC 7009 token revocation.
    #[serde(default)]
    pub revocation_endpoint: Option<String>,
    /// RP-initiated logout.
    #[serde(default)]
    pub end_session_endpoint: Option<String>,
    /// PKCE methods; cloakroom requires `S256`.
    #[serde(default)]
    pub code_challenge_methods_supported: Vec<String>,
    /// RFC 9207: the provider sends `iss` with the authorization response.
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: bool,
    /// Algorithms the provider signs ID tokens with.
    #[serde(default)]
    pub id_token_signing_alg_values_supported: Vec<String>,
    /// Client authentication methods at the token endpoint.
    #[serde(default)]
    pub token_endpoint_auth_methods_supported: Option<Vec<String>>,
    /// RFC 9126: where authorization requests are pushed.
    #[serde(default)]
    pub pushed_authorization_request_endpoint: Option<String>,
    /// RFC 9126 §5: the provider accepts authorization requests only through that endpoint.
    #[serde(default)]
    pub require_pushed_authorization_requests: bool,
    /// RFC 9449 §5.1: the algorithms the provider accepts DPoP proofs signed with.
    #[serde(default)]
    pub dpop_signing_alg_values_supported: Vec<String>,
    /// OIDC Back-Channel Logout 1.0.
    #[serde(default)]
    pub backchannel_logout_supported: bool,
    /// Back-channel logout tokens carry `sid`.
    #[serde(default)]
    pub backchannel_logout_session_supported: bool,
}

/// Why discovery failed.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// The document could not be fetched.
    #[error("fetching provider metadata failed: {0}")]
    Fetch(String),
    /// The document is not valid metadata.
    #[error("provider metadata is malformed: {0}")]
    Malformed(String),
    /// The document names another issuer (OpenID Connect Discovery §4.3).
    #[error("provider metadata names issuer `{found}`, expected `{expected}`")]
    IssuerMismatch {
        /// Configured.
        expected: String,
        /// Found in the document.
        found: String,
    },
}

/// Fetches the metadata of `issuer` and checks it names that very issuer.
pub async fn discover(
    http: &reqwest::Client,
    issuer: &PublicUrl,
) -> Result<ProviderMetadata, DiscoveryError> {
    let url = issuer.join("/.well-known/openid-configuration");
    let res = http.get(&url).send().await.map_err(|e| DiscoveryError::Fetch(e.without_url().to_string()))?;
    if !res.status().is_success() {
        return Err(DiscoveryError::Fetch(format!("{url} answered {}", res.status())));
    }
    let meta: ProviderMetadata =
        res.json().await.map_err(|e| DiscoveryError::Malformed(e.without_url().to_string()))?;
    if meta.issuer.trim_end_matches('/') != issuer.as_str() {
        return Err(DiscoveryError::IssuerMismatch { expected: issuer.to_string(), found: meta.issuer });
    }
    Ok(meta)
}
