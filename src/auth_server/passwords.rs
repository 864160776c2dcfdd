//! Passwords: the typed value (never shown by `Debug`), argon2id hashing off the async runtime,
//! and verification that costs the same for an unknown user (a dummy hash), so response times
//! do not tell which usernames exist.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

/// Hashing could not run.
#[derive(Debug, thiserror::Error)]
#[error("password hashing: {0}")]
pub struct HashError(String);

/// A password as typed. `Debug` never shows it.
#[derive(Clone)]
pub struct Password(String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password([redacted])")
    }
}

impl Password {
    /// Upper bound, so nobody makes us hash a megabyte.
    pub const MAX_LEN: usize = 1024;
    /// A password offered at login (any non-empty value up to the bound).
    pub fn parse(s: &str) -> Option<Self> {
        (1..=Self::MAX_LEN).contains(&s.len()).then(|| Self(s.to_string()))
    }
    /// A new password at sign-up: at least 8 characters.
    pub fn parse_new(s: &str) -> Option<Self> {
        (s.chars().count() >= 8).then_some(())?;
        Self::parse(s)
    }
}

/// Password verification with a fixed dummy hash, so an unknown user costs as much time as a
/// known one (no user-enumeration timing oracle).
pub struct PasswordCheck {
    dummy_hash: String,
}

impl PasswordCheck {
    /// Computes the dummy hash.
    pub async fn new() -> Result<Self, HashError> {
        let dummy = Password(crate::crypto::random_token(16));
        Ok(Self { dummy_hash: hash_password(dummy).await? })
    }

    /// Whether `password` matches the user's stored hash; for `None` (no such user) a dummy
    /// verification runs and the answer is false.
    pub async fn verify(&self, stored_hash: Option<&str>, password: Password) -> bool {
        let hash = stored_hash.unwrap_or(&self.dummy_hash).to_owned();
        let ok = tokio::task::spawn_blocking(move || {
            PasswordHash::new(&hash)
                .map(|parsed| Argon2::default().verify_password(password.0.as_bytes(), &parsed).is_ok())
                .unwrap_or(false)
        })
        .await
        .unwrap_or(false);
        ok && stored_hash.is_some()
    }
}

/// argon2id (the crate's default parameters) with a random salt, off the async runtime.
pub async fn hash_password(password: Password) -> Result<String, HashError> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        Argon2::default()
            .hash_password(password.0.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| HashError(e.to_string()))
    })
    .await
    .map_err(|e| HashError(e.to_string()))?
}
