//! JSON Web Tokens: signing keys (the reference auth server), and — in one place — how every
//! token cloakroom receives is validated.

pub mod signing;

pub use signing::{SigningError, SigningKey};
