//! Configuration: a TOML file (`--config`) overlaid by `CLOAKROOM_…` environment variables,
//! turned into typed sections at start-up. Every error names the offending key in one line.

mod auth_server;
mod bff;
mod bff_frontend;
mod bff_login;
mod bff_oidc;
mod bff_route;
mod resource;
mod resource_server;
mod telemetry;
mod types;

pub use auth_server::{AuthServerConfig, ClientConfig, GrantType, UserSeed};
pub use bff::{
    BffConfig, ClientBinding, FrontendConfig, FrontendLogin, FrontendSource, LoginParameter,
    OidcClientConfig, RouteConfig, RouteCsrf, RouteMethod, RouteSession, RouteToken, SessionConfig,
};
pub use bff_oidc::{ClientAuthMethod, DpopMode, KeyFiles, ParMode};
pub use resource::{ResourceIndicator, ScopeToken};
pub use resource_server::ResourceServerConfig;
pub use telemetry::TelemetryConfig;
pub use types::{FrontendPath, ListenAddr, PublicUrl, RedisUrl, RoutePath, Secret, SessionKeys, StoreConfig};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::de::DeserializeOwned;
use std::path::Path;

/// A configuration key that is missing or malformed. Displays as one line naming the key.
#[derive(Debug, thiserror::Error)]
#[error("configuration key `{key}`: {message}")]
pub struct ConfigError {
    /// Dotted path of the key, e.g. `bff.oidc.issuer`.
    pub key: String,
    /// What is wrong with it.
    pub message: String,
}

impl ConfigError {
    /// An error about `key`.
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self { key: key.into(), message: message.into() }
    }
}

/// The layered configuration sources, before any section is extracted.
#[derive(Clone)]
pub struct ConfigSource {
    figment: Figment,
}

impl ConfigSource {
    /// Reads the optional TOML file, then the `CLOAKROOM_` environment on top of it.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::layered(Figment::new(), file)
    }

    /// Like [`ConfigSource::load`], with `defaults` underneath both (used by `demo`).
    pub fn load_with_defaults(defaults: serde_json::Value, file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::layered(Figment::from(Serialized::defaults(defaults)), file)
    }

    fn layered(base: Figment, file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = base;
        if let Some(path) = file {
            if !path.is_file() {
                return Err(ConfigError::new(
                    "--config",
                    format!("file {} does not exist or is not readable", path.display()),
                ));
            }
            // Parse now, so a broken file is reported as the file, not as whichever section
            // happens to be read first.
            let file = Toml::file(path);
            if let Err(e) = figment::Provider::data(&file) {
                return Err(ConfigError::new(
                    "--config",
                    format!("file {} is not valid TOML: {}", path.display(), one_line(&e.kind.to_string())),
                ));
            }
            figment = figment.merge(file);
        }
        figment = figment.merge(Env::prefixed("CLOAKROOM_").split("__"));
        Ok(Self { figment })
    }

    /// Sources from a TOML string only (tests and embedding).
    pub fn from_toml_str(toml: &str) -> Self {
        Self { figment: Figment::from(Toml::string(toml)) }
    }

    /// Adds a value on top of everything else (tests, demo wiring).
    pub fn set(self, key: &str, value: impl serde::Serialize) -> Self {
        Self { figment: self.figment.merge((key, value)) }
    }

    /// Extracts and type-checks one top-level section (`bff`, `auth_server`, `resource_server`).
    pub fn section<T: DeserializeOwned>(&self, name: &str) -> Result<T, ConfigError> {
        let figment = if self.figment.contains(name) {
            self.figment.clone()
        } else {
            // A section that is absent entirely is an empty table: its defaults apply.
            self.figment.clone().merge((name, serde_json::Map::new()))
        };
        let value = figment.extract_inner::<T>(name).map_err(|e| {
            let err = describe(name, e);
            if err.key != name {
                return err;
            }
            // The store keys are flattened into each section, and serde's flatten loses the
            // path of a bad value: read them alone to name the key.
            match figment.extract_inner::<StoreConfig>(name) {
                Err(e) => describe(name, e),
                Ok(_) => err,
            }
        })?;
        // Every section carries the store keys; their combination is checked here, once.
        if let Ok(store) = figment.extract_inner::<StoreConfig>(name)
            && let Err((key, message)) = store.check()
        {
            return Err(ConfigError::new(format!("{name}.{key}"), message));
        }
        Ok(value)
    }
}

fn describe(section: &str, err: figment::Error) -> ConfigError {
    use figment::error::Kind;
    let err =
        err.into_iter().next().unwrap_or_else(|| figment::Error::from("invalid configuration".to_string()));
    let mut path: Vec<String> = err.path.clone();
    // figment's `extract_inner` appends the section name to the path instead of prepending it.
    if path.len() > 1 && path.last().map(String::as_str) == Some(section) {
        path.pop();
    }
    if path.first().map(String::as_str) != Some(section) {
        path.insert(0, section.to_string());
    }
    let message = match &err.kind {
        Kind::MissingField(field) => {
            path.push(field.to_string());
            "is required but not set".to_string()
        }
        Kind::UnknownField(field, _) => {
            // A nested table's path already ends in the field; a section's does not.
            if path.last() != Some(field) {
                path.push(field.to_string());
            }
            "is not a known key".to_string()
        }
        Kind::Message(m) => m.clone(),
        other => other.to_string(),
    };
    ConfigError::new(path.join("."), one_line(&message))
}

/// Folds a multi-line message (TOML parse errors quote the source) into one line, dropping the
/// quoted source lines.
fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('|') && !l.starts_with('^'))
        .filter(|l| !l.split_once(" |").is_some_and(|(n, _)| n.trim().chars().all(|c| c.is_ascii_digit())))
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_malformed_value_is_reported_with_its_full_key() {
        let src = ConfigSource::from_toml_str("[bff.oidc]\nissuer = 'not a url'\n");
        let err = src.section::<BffConfig>("bff").unwrap_err();
        assert_eq!(err.key, "bff.oidc.issuer", "{err}");
        assert!(!err.to_string().contains('\n'));
    }

    #[test]
    fn a_missing_required_value_names_the_key() {
        let src = ConfigSource::from_toml_str("[bff.oidc]\nclient_id = 'x'\n");
        let err = src.section::<BffConfig>("bff").unwrap_err();
        assert!(err.key.starts_with("bff.oidc."), "{err}");
    }

    #[test]
    fn an_absent_section_takes_its_defaults() {
        let src = ConfigSource::from_toml_str("");
        let rs = src.section::<ResourceServerConfig>("resource_server").unwrap();
        assert_eq!(rs.listen.0.port(), 8082);
    }
}
