//! Authentication levels and the second factor. Two `acr` values: `urn:cloakroom:pwd` (a
//! password) and `urn:cloakroom:mfa` (a password and a TOTP code, RFC 6238, for users seeded
//! with a `totp_secret`); `amr` uses the RFC 8176 names (`pwd`, `otp`, `mfa`). No registered
//! `acr` value says "password" or "password and one-time code" exactly (OpenID EAP's `phr`
//! would claim phishing resistance, which a TOTP code lacks), hence the two URNs. A leaf: the
//! authorization endpoint, the password login and the code step all use it.

use super::pages::{self, TotpPage};
use super::state::AppState;
use crate::store::StoreError;
use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use std::time::Duration;
use totp_rs::{Algorithm, Secret, TOTP};

/// A password alone.
pub const ACR_PWD: &str = "urn:cloakroom:pwd";
/// A password and a TOTP code.
pub const ACR_MFA: &str = "urn:cloakroom:mfa";
/// What discovery advertises as `acr_values_supported`.
pub const ACR_VALUES_SUPPORTED: &[&str] = &[ACR_PWD, ACR_MFA];
/// The `amr` of a password login.
pub fn amr_pwd() -> Vec<String> {
    vec!["pwd".into()]
}
/// The `amr` of a password and TOTP login.
pub fn amr_mfa() -> Vec<String> {
    vec!["pwd".into(), "otp".into(), "mfa".into()]
}

/// Digits of a code, step in seconds, and steps of clock skew accepted either way.
const DIGITS: usize = 6;
const STEP: u64 = 30;
const SKEW: u8 = 1;

fn level(acr: &str) -> u8 {
    match acr {
        ACR_PWD => 1,
        ACR_MFA => 2,
        _ => 0,
    }
}

/// Whether an authorization request asks for the second factor: its `acr_values` name
/// `urn:cloakroom:mfa`.
pub fn asks_for_mfa(acr_values: &[String]) -> bool {
    acr_values.iter().any(|a| a == ACR_MFA)
}

/// The `acr` the tokens report: the strongest requested value the login satisfies (a
/// `urn:cloakroom:mfa` login satisfies a request for `urn:cloakroom:pwd`), else the login's own.
pub fn reported_acr(requested: &[String], login_acr: &str) -> String {
    requested
        .iter()
        .filter(|r| level(r) > 0 && level(r) <= level(login_acr))
        .max_by_key(|r| level(r))
        .cloned()
        .unwrap_or_else(|| login_acr.to_string())
}

/// The TOTP generator of a base32 secret; `None` when it is not base32 of at least 128 bits.
pub fn totp(secret_b32: &str) -> Option<TOTP> {
    let bytes = Secret::Encoded(secret_b32.to_string()).to_bytes().ok()?;
    TOTP::new(Algorithm::SHA1, DIGITS, SKEW, STEP, bytes).ok()
}

/// Whether `code` is a current code of `secret_b32` not accepted before for `sub`: a code
/// serves once (RFC 6238 §5.2), remembered for as long as it could be valid.
pub async fn accept(state: &AppState, sub: &str, secret_b32: &str, code: &str) -> Result<bool, StoreError> {
    let Some(totp) = totp(secret_b32) else { return Ok(false) };
    let now = crate::clock::now().max(0) as u64;
    if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) || !totp.check(code, now) {
        return Ok(false);
    }
    let key = format!("totp-used:{}", crate::crypto::sha256_b64(format!("{sub}:{code}").as_bytes()));
    let window = Duration::from_secs(STEP * (2 * SKEW as u64 + 1));
    state.store.set_nx(&key, b"1", window).await
}

/// The code form for the pending request `request_id`.
pub fn page(status: StatusCode, request_id: &str, username: &str, error: Option<&str>) -> HttpResponse {
    pages::render(status, &TotpPage { request_id, username, error })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reported_acr_is_the_strongest_requested_level_the_login_reaches() {
        let req = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(reported_acr(&req(&[ACR_PWD, ACR_MFA]), ACR_MFA), ACR_MFA);
        assert_eq!(reported_acr(&req(&[ACR_PWD]), ACR_MFA), ACR_PWD);
        assert_eq!(reported_acr(&req(&[ACR_MFA]), ACR_PWD), ACR_PWD);
        assert_eq!(reported_acr(&req(&["other"]), ACR_MFA), ACR_MFA);
        assert_eq!(reported_acr(&[], ACR_PWD), ACR_PWD);
    }

    #[test]
    fn a_short_or_non_base32_secret_is_refused() {
        assert!(totp("JBSWY3DPEHPK3PXP").is_none(), "80 bits");
        assert!(totp("not base32!").is_none());
        assert!(totp("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP").is_some());
    }
}
