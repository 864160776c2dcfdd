//! Strictly typed claims: a claim of the wrong JSON type (a string `exp`, an object `aud`) fails
//! deserialisation, so the token is refused.

use serde::{Deserialize, Serialize};

/// `aud`: one string or an array of strings; nothing else.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    /// A single audience.
    One(String),
    /// Several audiences.
    Many(Vec<String>),
}

impl Audience {
    /// True when `aud` names `who`.
    pub fn contains(&self, who: &str) -> bool {
        match self {
            Audience::One(a) => a == who,
            Audience::Many(list) => list.iter().any(|a| a == who),
        }
    }
}

/// The claims of an RFC 9068 access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Issuer.
    pub iss: String,
    /// Subject.
    pub sub: String,
    /// Audience.
    pub aud: Audience,
    /// Expiry (Unix seconds).
    pub exp: i64,
    /// Issued at.
    pub iat: i64,
    /// Not before.
    #[serde(default)]
    pub nbf: Option<i64>,
    /// Token id (RFC 9068 §2.2: required).
    pub jti: String,
    /// Space-separated scopes.
    #[serde(default)]
    pub scope: Option<String>,
    /// The client the token was issued to.
    #[serde(default)]
    pub client_id: Option<String>,
    /// The provider session.
    #[serde(default)]
    pub sid: Option<String>,
    /// How the user authenticated (authentication context class).
    #[serde(default)]
    pub acr: Option<String>,
    /// When the user authenticated.
    #[serde(default)]
    pub auth_time: Option<i64>,
    /// The key the token is bound to (RFC 7800, RFC 9449 §6): such a token is usable only with
    /// a DPoP proof of that key.
    #[serde(default)]
    pub cnf: Option<Confirmation>,
}

/// `cnf` (RFC 7800): the key a token is bound to.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Confirmation {
    /// RFC 7638 thumbprint of the DPoP key (RFC 9449 §6.1).
    #[serde(default)]
    pub jkt: Option<String>,
}

/// The claims of an OpenID Connect back-channel logout token (Back-Channel Logout 1.0 §2.4).
/// [`Verifier::verify`](super::Verifier::verify) with [`TokenType::Logout`](super::TokenType)
/// has already checked the `events` member, the absence of `nonce`, and that `sub` or `sid`
/// is present; replay of `jti` is the receiver's to refuse.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogoutClaims {
    /// Issuer.
    pub iss: String,
    /// Audience (the client).
    pub aud: Audience,
    /// Issued at.
    pub iat: i64,
    /// Expiry.
    pub exp: i64,
    /// Token id, for replay detection.
    pub jti: String,
    /// Subject whose sessions end (when no `sid`: all of them).
    #[serde(default)]
    pub sub: Option<String>,
    /// The provider session that ended.
    #[serde(default)]
    pub sid: Option<String>,
}

impl AccessClaims {
    /// The thumbprint of the DPoP key the token is bound to, if it is bound.
    pub fn dpop_jkt(&self) -> Option<&str> {
        self.cnf.as_ref().and_then(|c| c.jkt.as_deref())
    }

    /// True when the token carries scope `s`.
    pub fn has_scope(&self, s: &str) -> bool {
        self.scope.as_deref().unwrap_or("").split(' ').any(|x| !x.is_empty() && x == s)
    }
}
