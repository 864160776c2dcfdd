//! What every handler shares: configuration, store, signing key, client registry, metrics.

use super::client_assertion::AssertionContext;
use super::clients::ClientRegistry;
use super::delivery::BackchannelSender;
use super::metrics::Metrics;
use super::passwords::PasswordCheck;
use crate::config::AuthServerConfig;
use crate::jwt::SigningKey;
use crate::startup::StartupError;
use crate::store::Store;
use std::time::Duration;

/// Scopes this provider grants.
pub const SUPPORTED_SCOPES: &[&str] = &["openid", "profile", "offline_access", "notes"];

/// Reads a PKCS#8 PEM key file; errors name the configuration key.
fn load_key(path: &std::path::Path, config_key: &str) -> Result<SigningKey, StartupError> {
    let pem = std::fs::read_to_string(path).map_err(|e| {
        StartupError::Other(format!("configuration key `{config_key}`: cannot read {}: {e}", path.display()))
    })?;
    SigningKey::from_pem(&pem)
        .map_err(|e| StartupError::Other(format!("configuration key `{config_key}`: {e}")))
}

/// Application state behind `web::Data`.
pub struct AppState {
    /// The configuration.
    pub config: AuthServerConfig,
    /// The issuer identifier, exactly as it appears in `iss`.
    pub issuer: String,
    /// Users, requests, codes, grants, login sessions and counters.
    pub store: Store,
    /// The key that signs every token.
    pub signing: SigningKey,
    /// Public keys by `kid` for verifying our own tokens (userinfo, `id_token_hint`): the
    /// signing key first, then the published ones.
    pub verifying: Vec<(String, jsonwebtoken::DecodingKey)>,
    /// The JWKS members: the signing key's and each published key's public JWK.
    pub jwks: Vec<serde_json::Value>,
    /// Registered clients.
    pub clients: ClientRegistry,
    /// Password verification, with a dummy hash for unknown users.
    pub passwords: PasswordCheck,
    /// Prometheus counters.
    pub metrics: Metrics,
    /// Back-channel logout delivery.
    pub backchannel: BackchannelSender,
}

impl AppState {
    /// Loads the key and connects the store, and touches nothing in it (the admin command,
    /// which must not rewrite the seeded users of the running servers).
    pub async fn connect(config: AuthServerConfig, metrics: Metrics) -> Result<Self, StartupError> {
        let signing = match &config.signing_key_file {
            Some(path) => load_key(path, "auth_server.signing_key_file")?,
            None => {
                tracing::warn!(
                    "no signing_key_file configured: generated a signing key; tokens die with this process and other instances cannot verify them"
                );
                SigningKey::generate().map_err(|e| StartupError::Other(e.to_string()))?
            }
        };
        let mut published = Vec::new();
        for path in &config.published_key_files {
            let key = load_key(path, "auth_server.published_key_files")?;
            if key.kid() != signing.kid() && published.iter().all(|k: &SigningKey| k.kid() != key.kid()) {
                published.push(key);
            }
        }
        let jwks = std::iter::once(&signing).chain(&published).map(|k| k.public_jwk().clone()).collect();
        let verifying = std::iter::once(&signing)
            .chain(&published)
            .map(|k| {
                let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(k.public_jwk().clone())
                    .map_err(|e| StartupError::Other(format!("public key: {e}")))?;
                let key = jsonwebtoken::DecodingKey::from_jwk(&jwk)
                    .map_err(|e| StartupError::Other(format!("public key: {e}")))?;
                Ok((k.kid().to_string(), key))
            })
            .collect::<Result<Vec<_>, StartupError>>()?;
        let store = Store::connect(&config.store, "auth_server").await?;
        let clients = ClientRegistry::new(&config.clients, &config.access_token_audience)?;
        let passwords = PasswordCheck::new().await.map_err(|e| StartupError::Other(e.to_string()))?;
        let backchannel = BackchannelSender::new(
            Duration::from_secs(config.backchannel_logout_timeout_secs),
            metrics.clone(),
        )
        .map_err(|e| StartupError::Other(format!("HTTP client: {e}")))?;
        let issuer = config.issuer.as_str().to_string();
        Ok(Self { config, issuer, store, signing, verifying, jwks, clients, passwords, metrics, backchannel })
    }

    /// `issuer` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.issuer, path)
    }

    /// What a client assertion sent to `endpoint_path` is checked against: the used `jti`s
    /// in the store; as audience the issuer, the token endpoint or that endpoint.
    pub fn assertion_context(&self, endpoint_path: &str) -> AssertionContext<'_> {
        let audiences = vec![self.issuer.clone(), self.url("/token"), self.url(endpoint_path)];
        AssertionContext { store: &self.store, audiences }
    }
}

/// Store keys, all under `as:` so the auth server can share a Redis namespace with others.
pub mod keys {
    /// A user record, by login name.
    pub fn user(username: &str) -> String {
        format!("as:user:{username}")
    }
    /// Login name by subject identifier.
    pub fn subject(sub: &str) -> String {
        format!("as:subject:{sub}")
    }
    /// A pushed authorization request (RFC 9126), by the hash of its `request_uri`.
    pub fn pushed(hash: &str) -> String {
        format!("as:par:{hash}")
    }
    /// A pending authorization request.
    pub fn pending(id: &str) -> String {
        format!("as:req:{id}")
    }
    /// An authorization code, by the hash of the code.
    pub fn code(hash: &str) -> String {
        format!("as:code:{hash}")
    }
    /// A grant (a refresh-token family).
    pub fn grant(gid: &str) -> String {
        format!("as:grant:{gid}")
    }
    /// Grant id by the hash of one of its refresh tokens (current or rotated).
    pub fn refresh(hash: &str) -> String {
        format!("as:rt:{hash}")
    }
    /// A provider login session, by the hash of its cookie value.
    pub fn login(hash: &str) -> String {
        format!("as:login:{hash}")
    }
    /// The login session's cookie hash by `sid`.
    pub fn sid_login(sid: &str) -> String {
        format!("as:sid:{sid}")
    }
    /// Index: grants of a `sid`.
    pub fn sid_grants(sid: &str) -> String {
        format!("as:sid-grants:{sid}")
    }
    /// Index: grants of a subject (over all clients and sessions).
    pub fn sub_grants(sub: &str) -> String {
        format!("as:sub-grants:{sub}")
    }
    /// Index: login sessions (sids) of a subject.
    pub fn sub_logins(sub: &str) -> String {
        format!("as:sub-logins:{sub}")
    }
    /// Failed-login counter.
    pub fn failures(kind: &str, who: &str) -> String {
        format!("as:fail:{kind}:{who}")
    }
    /// Sign-up counter of a client address (hashed).
    pub fn signups(who: &str) -> String {
        format!("as:signups:{who}")
    }
    /// Authorization-request counter of a client address (hashed).
    pub fn authorizations(who: &str) -> String {
        format!("as:authorize:{who}")
    }
    /// Failed-login lock-out marker.
    pub fn lockout(kind: &str, who: &str) -> String {
        format!("as:lock:{kind}:{who}")
    }
}
