//! User accounts: records in the store, argon2id password hashes computed off the async
//! runtime, and the seeding of configured users at start.

pub use super::passwords::{Password, hash_password};
use super::state::{AppState, keys};
use crate::config::{ConfigError, UserSeed};
use crate::startup::StartupError;
use crate::store::StoreError;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Users do not expire; the store wants a TTL, so this is "long".
const USER_TTL: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// A stored account.
#[derive(Clone, Serialize, Deserialize)]
pub struct UserRecord {
    /// Stable subject identifier (random, never reassigned).
    pub sub: String,
    /// Login name.
    pub username: String,
    /// argon2id PHC string.
    pub password_hash: String,
    /// Creation time (Unix seconds).
    pub created_at: i64,
    /// Base32 TOTP secret (the second factor), for seeded users that have one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub totp_secret: Option<String>,
}

impl std::fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRecord").field("sub", &self.sub).field("username", &self.username).finish()
    }
}

/// A login name in its canonical form: the typed name NFKC-normalised and lower-cased, then
/// 1–64 characters of `a-z 0-9 . _ - @`. Accounts, their lookups and their failed-login
/// counters all use this form, so `ALICE`, `Alice` and a full-width `ａｌｉｃｅ` are one account,
/// and a name can never be registered twice in two spellings. The ASCII-only set is the defence
/// against confusables: a Cyrillic `а` or any other look-alike is refused, not folded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    /// Longest input looked at: normalisation costs time in the length of what was typed.
    const MAX_INPUT: usize = 256;

    /// Parses a typed login name into its canonical form.
    pub fn parse(s: &str) -> Option<Self> {
        if s.len() > Self::MAX_INPUT {
            return None;
        }
        let canonical = canonical_name(s);
        let ok = (1..=64).contains(&canonical.len())
            && canonical
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-@".contains(&b));
        ok.then_some(Self(canonical))
    }
    /// The canonical name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// NFKC (compatibility forms such as full-width letters or the Kelvin sign become their plain
/// letters), then Unicode lower case.
fn canonical_name(s: &str) -> String {
    icu_normalizer::ComposingNormalizerBorrowed::new_nfkc().normalize(s).to_lowercase()
}

/// Hashing or verification could not run.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Hashing failed or a stored record is unreadable.
    #[error("user record: {0}")]
    Internal(String),
}

impl From<super::passwords::HashError> for UserError {
    fn from(e: super::passwords::HashError) -> Self {
        UserError::Internal(e.to_string())
    }
}

/// The user with this login name.
pub async fn find(state: &AppState, username: &Username) -> Result<Option<UserRecord>, UserError> {
    find_key(state, &keys::user(username.as_str())).await
}

async fn find_key(state: &AppState, key: &str) -> Result<Option<UserRecord>, UserError> {
    let Some(bytes) = state.store.get(key).await? else { return Ok(None) };
    serde_json::from_slice(&bytes).map(Some).map_err(|e| UserError::Internal(e.to_string()))
}

/// Creates a user; `None` when the name is taken.
pub async fn create(
    state: &AppState,
    username: &Username,
    password: Password,
) -> Result<Option<UserRecord>, UserError> {
    let record = UserRecord {
        sub: crate::crypto::random_token(16),
        username: username.as_str().to_string(),
        password_hash: hash_password(password).await?,
        created_at: crate::clock::now(),
        totp_secret: None,
    };
    let bytes = serde_json::to_vec(&record).map_err(|e| UserError::Internal(e.to_string()))?;
    if !state.store.set_nx(&keys::user(username.as_str()), &bytes, USER_TTL).await? {
        return Ok(None);
    }
    state.store.set(&keys::subject(&record.sub), record.username.as_bytes(), USER_TTL).await?;
    Ok(Some(record))
}

/// The login name of subject `sub`.
pub async fn username_of(state: &AppState, sub: &str) -> Result<Option<String>, StoreError> {
    Ok(state.store.get(&keys::subject(sub)).await?.and_then(|b| String::from_utf8(b).ok()))
}

/// Writes every configured user, replacing the password hash; an existing account keeps its
/// `sub`, so instances sharing a store (and restarts) agree on who is who. A seed written
/// before names were canonical (under `Alice`, say) moves to its canonical key with its `sub`.
pub async fn seed(state: &AppState) -> Result<(), StartupError> {
    let internal = |e: UserError| StartupError::Other(e.to_string());
    for ((name, password), seed) in parse_seeds(&state.config.users)?.into_iter().zip(&state.config.users) {
        let legacy = (seed.username != name.as_str()).then_some(seed.username.as_str());
        let existing = match find(state, &name).await.map_err(internal)? {
            Some(user) => Some(user),
            None => match legacy {
                Some(raw) => find_key(state, &keys::user(raw)).await.map_err(internal)?,
                None => None,
            },
        };
        let record = UserRecord {
            sub: existing.map(|u| u.sub).unwrap_or_else(|| crate::crypto::random_token(16)),
            username: name.as_str().to_string(),
            password_hash: hash_password(password).await.map_err(|e| internal(e.into()))?,
            created_at: crate::clock::now(),
            totp_secret: seed.totp_secret.as_ref().map(|s| s.expose().to_string()),
        };
        let bytes = serde_json::to_vec(&record).map_err(|e| StartupError::Other(e.to_string()))?;
        state.store.set(&keys::user(name.as_str()), &bytes, USER_TTL).await?;
        state.store.set(&keys::subject(&record.sub), record.username.as_bytes(), USER_TTL).await?;
        if let Some(raw) = legacy {
            state.store.del(&keys::user(raw)).await?;
        }
    }
    Ok(())
}

/// The configured users with canonical names; two seeds that are one account (`Bob`, `bob`)
/// refuse the start rather than overwrite each other.
fn parse_seeds(seeds: &[UserSeed]) -> Result<Vec<(Username, Password)>, StartupError> {
    let key_error = |message: String| StartupError::from(ConfigError::new("auth_server.users", message));
    let mut out: Vec<(Username, Password)> = Vec::with_capacity(seeds.len());
    for seed in seeds {
        let name = Username::parse(&seed.username).ok_or_else(|| {
            key_error(format!(
                "`{}` is not a valid username (1-64 of a-z 0-9 . _ - @ once lower-cased)",
                seed.username
            ))
        })?;
        let password = Password::parse(seed.password.expose())
            .ok_or_else(|| key_error(format!("the password of `{}` must be 1-1024 bytes", seed.username)))?;
        if let Some(secret) = &seed.totp_secret
            && super::second_factor::totp(secret.expose()).is_none()
        {
            return Err(key_error(format!(
                "the totp_secret of `{}` must be base32 of at least 128 bits",
                seed.username
            )));
        }
        if out.iter().any(|(n, _)| n == &name) {
            return Err(key_error(format!("`{}` is listed twice (names ignore case)", name.as_str())));
        }
        out.push((name, password));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canonical(s: &str) -> Option<String> {
        Username::parse(s).map(|u| u.as_str().to_string())
    }

    #[test]
    fn names_differing_in_case_or_compatibility_form_are_one_name() {
        for spelling in ["alice", "ALICE", "Alice", "ａｌｉｃｅ", "ＡＬＩＣＥ"] {
            assert_eq!(canonical(spelling).as_deref(), Some("alice"), "{spelling}");
        }
        // The Kelvin sign is a compatibility form of K.
        assert_eq!(canonical("\u{212A}im").as_deref(), Some("kim"));
        assert_eq!(canonical("Bob.Smith_1-x@Example").as_deref(), Some("bob.smith_1-x@example"));
    }

    #[test]
    fn look_alikes_outside_the_safe_set_are_refused_not_folded() {
        // Cyrillic а, Greek ο, dotted capital I (lower-cases to i + combining dot), a zero-width
        // space, a space: none may stand for a Latin name.
        for name in ["\u{430}lice", "b\u{3bf}b", "\u{130}van", "al\u{200b}ice", "al ice", "", "ß"] {
            assert_eq!(canonical(name), None, "{name:?}");
        }
        assert_eq!(canonical(&"a".repeat(65)), None);
        assert_eq!(canonical(&"a".repeat(64)).map(|n| n.len()), Some(64));
        assert_eq!(canonical(&"ａ".repeat(100)), None, "over the input bound");
    }

    #[test]
    fn two_seeds_that_are_one_account_refuse_the_start() {
        let seed = |n: &str| UserSeed {
            username: n.into(),
            password: crate::config::Secret::new("pw"),
            totp_secret: None,
        };
        let err = parse_seeds(&[seed("bob"), seed("BOB")]).expect_err("refused");
        assert!(err.to_string().contains("auth_server.users"), "{err}");
        assert_eq!(parse_seeds(&[seed("bob"), seed("alice")]).map(|v| v.len()).ok(), Some(2));
    }
}
