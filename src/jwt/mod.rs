//! JSON Web Tokens: signing keys (the reference auth server), the issuer's key cache, and — in
//! one place, [`verify`] — how every token cloakroom receives is validated.

pub mod claims;
pub mod dpop;
pub mod jwks;
pub mod signing;
pub mod verify;

pub use claims::{AccessClaims, Audience, Confirmation, LogoutClaims};
pub use jwks::{JwksCache, VerifyingKey};
pub use signing::{SigningError, SigningKey};
pub use verify::{BACKCHANNEL_LOGOUT_EVENT, InvalidReason, TokenType, Verifier};

/// Why a token was refused. Displays never include the token.
#[derive(Debug, thiserror::Error)]
pub enum JwtError {
    /// Not a compact JWS, too long, or an unknown `alg` (including `none`).
    #[error("malformed token")]
    Malformed,
    /// The `typ` header does not fit the kind of token expected.
    #[error("wrong token type")]
    WrongType,
    /// No `kid`, or a `kid` not in the issuer's key set.
    #[error("unknown signing key")]
    UnknownKey,
    /// The header `alg` is not the algorithm bound to the key.
    #[error("algorithm does not match the key")]
    AlgorithmMismatch,
    /// The issuer's keys could not be loaded.
    #[error("issuer keys unavailable")]
    KeysUnavailable,
    /// Signature or claims invalid.
    #[error("invalid token: {0}")]
    Invalid(InvalidReason),
}
