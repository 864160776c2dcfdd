//! The registry of confidential clients and client authentication at the token and
//! revocation endpoints (RFC 6749 §2.3.1: `client_secret_basic` or `client_secret_post`).

use super::errors::OAuthError;
use super::params::Params;
use crate::config::ClientConfig;
use crate::crypto::constant_time_eq;
use crate::startup::StartupError;
use actix_web::HttpRequest;
use base64::Engine;
use std::collections::HashMap;

/// Registered clients by `client_id`.
pub struct ClientRegistry {
    clients: HashMap<String, ClientConfig>,
}

impl ClientRegistry {
    /// Builds the registry; a duplicated `client_id` stops start-up.
    pub fn new(list: &[ClientConfig]) -> Result<Self, StartupError> {
        let mut clients = HashMap::new();
        for c in list {
            if clients.insert(c.client_id.clone(), c.clone()).is_some() {
                return Err(StartupError::Other(format!(
                    "configuration key `auth_server.clients`: client_id `{}` is registered twice",
                    c.client_id
                )));
            }
        }
        Ok(Self { clients })
    }

    /// The client with this id.
    pub fn get(&self, client_id: &str) -> Option<&ClientConfig> {
        self.clients.get(client_id)
    }

    /// Authenticates the calling client. Exactly one method may be used.
    pub fn authenticate(&self, req: &HttpRequest, params: &Params) -> Result<&ClientConfig, OAuthError> {
        let basic = basic_credentials(req)?;
        let post = params.get("client_secret");
        let (id, secret, is_basic) = match (basic, post) {
            (Some(_), Some(_)) => {
                return Err(OAuthError::InvalidRequest("use one client authentication method"));
            }
            (Some((id, secret)), None) => {
                if params.get("client_id").is_some_and(|p| p != id) {
                    return Err(OAuthError::InvalidClient { basic: true });
                }
                (id, secret, true)
            }
            (None, Some(secret)) => match params.get("client_id") {
                Some(id) => (id.to_string(), secret.to_string(), false),
                None => return Err(OAuthError::InvalidClient { basic: false }),
            },
            (None, None) => return Err(OAuthError::InvalidClient { basic: false }),
        };
        let client = self.clients.get(&id);
        // Compare against something even for an unknown client, so timing says little.
        let expected = client.map(|c| c.client_secret.expose()).unwrap_or("\u{0}unknown-client");
        let ok = constant_time_eq(expected.as_bytes(), secret.as_bytes());
        match client {
            Some(c) if ok => Ok(c),
            _ => Err(OAuthError::InvalidClient { basic: is_basic }),
        }
    }
}

/// `Authorization: Basic base64(urlencode(id) ":" urlencode(secret))`, decoded.
fn basic_credentials(req: &HttpRequest) -> Result<Option<(String, String)>, OAuthError> {
    let Some(value) = req.headers().get(actix_web::http::header::AUTHORIZATION) else {
        return Ok(None);
    };
    let bad = || OAuthError::InvalidClient { basic: true };
    let value = value.to_str().map_err(|_| bad())?;
    let Some((scheme, rest)) = value.split_once(' ') else { return Err(bad()) };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(bad());
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(rest.trim()).map_err(|_| bad())?;
    let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(bad)?;
    Ok(Some((form_decode(id).ok_or_else(bad)?, form_decode(secret).ok_or_else(bad)?)))
}

/// Decodes one `application/x-www-form-urlencoded` component (`+` is a space).
fn form_decode(s: &str) -> Option<String> {
    let spaced = s.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced).decode_utf8().ok().map(|c| c.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_decoded() {
        assert_eq!(form_decode("a%3Ab+c").as_deref(), Some("a:b c"));
        assert_eq!(form_decode("%FF"), None);
    }
}
