//! DPoP (RFC 9449): proof-of-possession JWTs that bind tokens to a client's key.
//!
//! - [`DpopKey`] ([`key`]): a client's key (the BFF holds one per session), and the proofs it
//!   signs — `typ: dpop+jwt`, the public `jwk`, `jti`, `htm`, `htu`, `iat`, `ath`, `nonce`;
//! - [`verify_proof`] ([`check`]): how the reference auth server (token endpoint) and resource
//!   server check a proof — signature with the embedded key, `typ`, the `alg` allow-list (never
//!   `none` nor HS*), `htm`/`htu`, the `iat` window, `ath`, `nonce`. The `jti` replay cache is
//!   the caller's (it needs a store);
//! - [`NonceCache`] ([`nonce`]): the nonces servers asked for (`use_dpop_nonce`), per origin.
//!
//! Two algorithms: EdDSA (Ed25519, preferred: about eight times faster to sign than ES256, see README
//! "DPoP") and ES256 (P-256), the one every DPoP server supports.

pub mod check;
pub mod key;
pub mod nonce;
pub mod replay;

pub use check::{DpopError, ProofCheck, VerifiedProof, verify_proof};
pub use key::DpopKey;
pub use nonce::NonceCache;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// The `typ` of a DPoP proof.
pub const PROOF_TYP: &str = "dpop+jwt";

/// The header carrying a proof, and the one carrying a server's nonce.
pub const DPOP_HEADER: &str = "DPoP";
/// A server's nonce for the next proof (RFC 9449 §8, §9).
pub const NONCE_HEADER: &str = "DPoP-Nonce";

/// The signing algorithms of DPoP keys, in order of preference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DpopAlg {
    /// Ed25519 (RFC 8037).
    EdDsa,
    /// ECDSA P-256 with SHA-256.
    Es256,
}

impl DpopAlg {
    /// Every supported algorithm, the preferred first.
    pub const ALL: [DpopAlg; 2] = [DpopAlg::EdDsa, DpopAlg::Es256];

    /// The JOSE `alg` name.
    pub const fn name(self) -> &'static str {
        match self {
            DpopAlg::EdDsa => "EdDSA",
            DpopAlg::Es256 => "ES256",
        }
    }

    /// The algorithm named `alg`, if supported.
    pub fn from_name(alg: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == alg)
    }

    /// The preferred algorithm a server listing `supported` accepts.
    pub fn choose(supported: &[String]) -> Option<Self> {
        Self::ALL.into_iter().find(|a| supported.iter().any(|s| s == a.name()))
    }
}

/// `ath`: base64url(SHA-256(access token)) (RFC 9449 §4.2).
pub fn access_token_hash(access_token: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(access_token.as_bytes()))
}

/// `htu` as a proof carries it: the URL without query and fragment (RFC 9449 §4.2).
pub fn htu(url: &str) -> &str {
    let end = url.find(['?', '#']).unwrap_or(url.len());
    &url[..end]
}

/// RFC 7638 thumbprint of a public JWK with the required members of its type; `None` for a
/// key type or curve DPoP keys never have, or members that are not base64url.
pub fn thumbprint(jwk: &serde_json::Value) -> Option<String> {
    let member = |name: &str| {
        jwk.get(name).and_then(|v| v.as_str()).filter(|s| {
            !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
    };
    let input = match (jwk.get("kty").and_then(|v| v.as_str()), jwk.get("crv").and_then(|v| v.as_str())) {
        (Some("EC"), Some("P-256")) => {
            format!(r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#, member("x")?, member("y")?)
        }
        (Some("OKP"), Some("Ed25519")) => {
            format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, member("x")?)
        }
        _ => return None,
    };
    Some(URL_SAFE_NO_PAD.encode(Sha256::digest(input.as_bytes())))
}

#[cfg(test)]
mod tests;
