//! This client's credentials at the provider, built once from `[bff.oidc]` (`client_auth`,
//! `client_secret`, `client_key_file`), and `GET /bff/jwks`: the public keys of
//! `private_key_jwt`, for providers that fetch a client's keys from its `jwks_uri`.

use super::state::BffState;
use crate::config::{ClientAuthMethod, ConfigError, OidcClientConfig};
use crate::jwt::SigningKey;
use crate::oidc::{ClientAuth, ClientCredentials, ClientKeys};
use actix_web::{HttpResponse, web};

/// The credentials `oidc` describes; a missing or unreadable secret or key is one line naming
/// its key (never its value).
pub fn client_credentials(oidc: &OidcClientConfig) -> Result<ClientCredentials, ConfigError> {
    let secret = || {
        oidc.client_secret.clone().ok_or_else(|| {
            ConfigError::new(
                "bff.oidc.client_secret",
                "is required with client_auth = \"client_secret_basic\" or \"client_secret_post\"",
            )
        })
    };
    let auth = match oidc.client_auth {
        ClientAuthMethod::ClientSecretBasic => ClientAuth::SecretBasic(secret()?),
        ClientAuthMethod::ClientSecretPost => ClientAuth::SecretPost(secret()?),
        ClientAuthMethod::PrivateKeyJwt => ClientAuth::PrivateKeyJwt(client_keys(oidc)?),
    };
    Ok(ClientCredentials { client_id: oidc.client_id.clone(), auth })
}

/// The keys of `client_key_file`, the signing one first, duplicates dropped.
fn client_keys(oidc: &OidcClientConfig) -> Result<ClientKeys, ConfigError> {
    const KEY: &str = "bff.oidc.client_key_file";
    let files = oidc
        .client_key_file
        .as_ref()
        .ok_or_else(|| ConfigError::new(KEY, "is required with client_auth = \"private_key_jwt\""))?;
    let mut keys: Vec<SigningKey> = Vec::with_capacity(files.0.len());
    for path in &files.0 {
        let pem = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::new(KEY, format!("cannot read {}: {e}", path.display())))?;
        let key = SigningKey::from_pem(&pem).map_err(|_| {
            ConfigError::new(KEY, format!("{} is not a PKCS#8 PEM P-256 private key", path.display()))
        })?;
        if keys.iter().all(|k| k.kid() != key.kid()) {
            keys.push(key);
        }
    }
    ClientKeys::new(keys).ok_or_else(|| ConfigError::new(KEY, "needs at least one key file"))
}

/// `GET /bff/jwks`: the client's public keys (an empty set unless `client_auth` is
/// `private_key_jwt`).
pub async fn jwks(state: web::Data<BffState>) -> HttpResponse {
    let doc = state.creds.jwks().unwrap_or_else(|| serde_json::json!({ "keys": [] }));
    HttpResponse::Ok().insert_header(("Cache-Control", "public, max-age=300")).json(doc)
}
