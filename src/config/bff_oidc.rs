//! `[bff.oidc]`: the OpenID provider and this client's registration there — how it
//! authenticates (`client_auth`, `client_secret`, `client_key_file`), whether it pushes its
//! authorization requests (`par`) and whether its tokens are DPoP-bound (`dpop`).

use super::resource::ResourceIndicator;
use super::types::{PublicUrl, Secret};
use serde::Deserialize;
use std::path::PathBuf;

/// `[bff.oidc]`.
#[derive(Debug, Clone, Deserialize)]
pub struct OidcClientConfig {
    /// The provider's issuer; discovery is at `issuer + "/.well-known/openid-configuration"`.
    pub issuer: PublicUrl,
    /// This client's id.
    pub client_id: String,
    /// This client's secret: required for the secret-based methods, unused with
    /// `private_key_jwt`.
    #[serde(default)]
    pub client_secret: Option<Secret>,
    /// How the client authenticates to the provider.
    #[serde(default)]
    pub client_auth: ClientAuthMethod,
    /// PKCS#8 PEM P-256 key file(s) for `private_key_jwt`: one path, or a list whose first
    /// signs and all of which are published at `/bff/jwks`.
    #[serde(default)]
    pub client_key_file: Option<KeyFiles>,
    /// Pushed authorization requests (RFC 9126).
    #[serde(default)]
    pub par: ParMode,
    /// DPoP-bound tokens (RFC 9449).
    #[serde(default)]
    pub dpop: DpopMode,
    /// Scopes requested at login.
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// The RFC 8707 resource of the login's own access token (the one routes without their
    /// own `resource` get): sent with the authorization request, the code exchange and its
    /// refreshes. Unset: the provider's default audience.
    #[serde(default)]
    pub resource: Option<ResourceIndicator>,
}

/// `bff.oidc.client_auth`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuthMethod {
    /// `Authorization: Basic` with id and secret (default).
    #[default]
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
    /// A signed JWT assertion (RFC 7523), keys from `client_key_file`.
    PrivateKeyJwt,
}

/// `bff.oidc.par`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParMode {
    /// Push when the provider offers it (default).
    #[default]
    Auto,
    /// Always push; a provider without a pushed-request endpoint is not ready.
    Required,
    /// Never push: the parameters travel in the browser's redirect.
    Off,
}

/// `bff.oidc.dpop`. Global, not per route: a session holds one token set, and a token bound
/// to a key is refused when sent as a bearer token, so every route gets what the session has.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DpopMode {
    /// Bearer tokens (default).
    #[default]
    Off,
    /// A DPoP key per session; tokens bound to it, a proof on every token and upstream call.
    On,
}

/// One key file or a list of them (the first signs; all are published).
#[derive(Debug, Clone)]
pub struct KeyFiles(pub Vec<PathBuf>);

impl<'de> Deserialize<'de> for KeyFiles {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum OneOrMany {
            One(PathBuf),
            Many(Vec<PathBuf>),
        }
        let list = match OneOrMany::deserialize(d)? {
            OneOrMany::One(p) => vec![p],
            OneOrMany::Many(v) => v,
        };
        if list.is_empty() {
            return Err(serde::de::Error::custom("needs at least one key file"));
        }
        Ok(Self(list))
    }
}

fn default_scopes() -> Vec<String> {
    ["openid", "profile", "offline_access", "notes"].map(String::from).to_vec()
}
