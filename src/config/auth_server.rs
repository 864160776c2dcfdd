//! The `[auth_server]` section.

use super::bff_oidc::ClientAuthMethod;
use super::types::{ListenAddr, PublicUrl, Secret, StoreConfig};
use serde::Deserialize;
use std::path::PathBuf;

/// Configuration of the reference OpenID Connect provider.
#[derive(Debug, Clone, Deserialize)]
pub struct AuthServerConfig {
    /// Address to listen on.
    #[serde(default = "default_listen")]
    pub listen: ListenAddr,
    /// Where `/metrics` is served instead of `listen` (unset: on `listen`).
    #[serde(default)]
    pub metrics_listen: Option<ListenAddr>,
    /// On SIGTERM: stop accepting, then give in-flight requests this long to finish.
    #[serde(default = "super::types::default_shutdown_timeout_secs")]
    pub shutdown_timeout_secs: u64,
    /// Traces (OpenTelemetry): `auth_server.telemetry.otlp_endpoint`, `….trust_incoming_traceparent`.
    #[serde(default)]
    pub telemetry: super::TelemetryConfig,
    /// The issuer identifier, also the base of every endpoint URL.
    #[serde(default = "default_issuer")]
    pub issuer: PublicUrl,
    /// Where users, codes, grants and login sessions live.
    #[serde(flatten)]
    pub store: StoreConfig,
    /// Lifetime of access tokens (and ID tokens).
    #[serde(default = "default_access_ttl")]
    pub access_token_ttl_secs: u64,
    /// Absolute lifetime of a refresh-token family (a grant).
    #[serde(default = "default_refresh_ttl")]
    pub refresh_token_ttl_secs: u64,
    /// A refresh token unused this long dies.
    #[serde(default = "default_refresh_idle_ttl")]
    pub refresh_token_idle_ttl_secs: u64,
    /// Lifetime of an authorization code.
    #[serde(default = "default_code_ttl")]
    pub code_ttl_secs: u64,
    /// Lifetime of the provider's own login session (single sign-on cookie).
    #[serde(default = "default_login_ttl")]
    pub login_session_ttl_secs: u64,
    /// `aud` of issued access tokens (the resource server's identifier).
    #[serde(default = "default_audience")]
    pub access_token_audience: String,
    /// PKCS#8 PEM file with the P-256 signing key. Absent: a key is generated at start
    /// (fine for one instance; instances sharing a store need the same key file).
    #[serde(default)]
    pub signing_key_file: Option<PathBuf>,
    /// Further key files (same format) published in the JWKS and accepted for this server's own
    /// checks, but never used to sign: the next key before it is used, the previous one until
    /// its tokens have expired.
    #[serde(default)]
    pub published_key_files: Vec<PathBuf>,
    /// Failed logins allowed per user within the window before 429.
    #[serde(default = "default_user_failures")]
    pub login_max_failures_per_user: u32,
    /// Failed logins allowed per client IP within the window before 429.
    #[serde(default = "default_ip_failures")]
    pub login_max_failures_per_ip: u32,
    /// Window of the failed-login counters.
    #[serde(default = "default_failure_window")]
    pub login_failure_window_secs: u64,
    /// Whether `/signup` creates accounts.
    #[serde(default = "default_true")]
    pub allow_signup: bool,
    /// Sign-up attempts allowed per client IP within the window before 429.
    #[serde(default = "default_signup_max")]
    pub signup_max_per_ip: u32,
    /// Window of the sign-up counter.
    #[serde(default = "default_signup_window")]
    pub signup_window_secs: u64,
    /// Authorization requests one client address may make per window; more get 429. Each
    /// one may store a pending request (or a code) in the store.
    #[serde(default = "default_authorize_max")]
    pub authorize_max_per_ip: u32,
    /// Window of the authorization-request counter.
    #[serde(default = "default_authorize_window")]
    pub authorize_window_secs: u64,
    /// How long a pending authorization request (the login page) stays usable.
    #[serde(default = "default_request_ttl")]
    pub authorization_request_ttl_secs: u64,
    /// Timeout of one back-channel logout delivery attempt (three attempts are made).
    #[serde(default = "default_backchannel_timeout")]
    pub backchannel_logout_timeout_secs: u64,
    /// Registered clients.
    #[serde(default)]
    pub clients: Vec<ClientConfig>,
    /// Users created at start.
    #[serde(default)]
    pub users: Vec<UserSeed>,
}

/// `[[auth_server.clients]]`: a confidential client.
#[derive(Debug, Clone, Deserialize)]
pub struct ClientConfig {
    /// Client identifier.
    pub client_id: String,
    /// How the client authenticates: `client_secret_basic` (default) or `client_secret_post`
    /// (either secret method is then accepted), or `private_key_jwt` (only a signed assertion).
    #[serde(default)]
    pub token_endpoint_auth_method: ClientAuthMethod,
    /// Client secret, for the secret methods.
    #[serde(default)]
    pub client_secret: Option<Secret>,
    /// `private_key_jwt`: where the client publishes its public keys (fetched, cached,
    /// refetched on an unknown `kid`).
    #[serde(default)]
    pub jwks_uri: Option<PublicUrl>,
    /// `private_key_jwt`: the client's public keys inline (a JWK set).
    #[serde(default)]
    pub jwks: Option<serde_json::Value>,
    /// Exact redirect URIs (none for a client of the client-credentials grant only).
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// Exact post-logout redirect URIs.
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    /// Where back-channel logout tokens are posted.
    #[serde(default)]
    pub backchannel_logout_uri: Option<PublicUrl>,
    /// Resource indicators (RFC 8707: absolute `http`/`https` URLs without fragment, compared
    /// as written) this client may ask tokens for, besides `access_token_audience`, which it
    /// may always use. Empty: only that default audience.
    #[serde(default)]
    pub resources: Vec<String>,
    /// The grant types the client may use at `/token` (the code flow's `/authorize` needs
    /// `authorization_code`; a refresh token is issued only with `refresh_token`).
    #[serde(default = "default_grant_types")]
    pub grant_types: Vec<GrantType>,
}

/// `auth_server.clients.grant_types` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantType {
    /// The authorization code flow (RFC 6749 §4.1).
    AuthorizationCode,
    /// Refresh tokens (RFC 6749 §6).
    RefreshToken,
    /// The client acting as itself (RFC 6749 §4.4).
    ClientCredentials,
}

fn default_grant_types() -> Vec<GrantType> {
    vec![GrantType::AuthorizationCode, GrantType::RefreshToken]
}

/// `[[auth_server.users]]`: a user seeded at start.
#[derive(Debug, Clone, Deserialize)]
pub struct UserSeed {
    /// Login name.
    pub username: String,
    /// Password (hashed with argon2id before it is stored).
    pub password: Secret,
    /// The user's TOTP secret (RFC 6238: base32, at least 128 bits; SHA-1, 6 digits, 30 s),
    /// the second factor of `urn:cloakroom:mfa` logins. Unset: the user has no second factor.
    #[serde(default)]
    pub totp_secret: Option<Secret>,
}

fn default_listen() -> ListenAddr {
    ListenAddr(([127, 0, 0, 1], 8081).into())
}
fn default_issuer() -> PublicUrl {
    PublicUrl::parse("http://localhost:8081").unwrap_or_else(|_| unreachable!())
}
fn default_access_ttl() -> u64 {
    300
}
fn default_refresh_ttl() -> u64 {
    2_592_000
}
fn default_refresh_idle_ttl() -> u64 {
    1_209_600
}
fn default_code_ttl() -> u64 {
    60
}
fn default_login_ttl() -> u64 {
    28_800
}
fn default_audience() -> String {
    "http://localhost:8082".into()
}
fn default_authorize_max() -> u32 {
    60
}
fn default_authorize_window() -> u64 {
    60
}
fn default_signup_max() -> u32 {
    20
}
fn default_signup_window() -> u64 {
    3600
}
fn default_user_failures() -> u32 {
    5
}
fn default_ip_failures() -> u32 {
    50
}
fn default_failure_window() -> u64 {
    300
}
fn default_request_ttl() -> u64 {
    600
}
fn default_backchannel_timeout() -> u64 {
    5
}
fn default_true() -> bool {
    true
}
