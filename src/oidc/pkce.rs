//! RFC 7636 Proof Key for Code Exchange, S256 only.

use crate::config::Secret;

/// A PKCE pair: the verifier stays with the client, the challenge goes to the authorization
/// endpoint.
#[derive(Debug, Clone)]
pub struct Pkce {
    /// 256 random bits, base64url (43 characters, within RFC 7636's 43..=128).
    pub verifier: Secret,
    /// `BASE64URL(SHA256(verifier))`.
    pub challenge: String,
}

impl Pkce {
    /// A fresh random pair.
    pub fn generate() -> Self {
        let verifier = crate::crypto::random_token(32);
        let challenge = challenge_for(&verifier);
        Self { verifier: Secret::new(verifier), challenge }
    }
}

/// The S256 challenge of `verifier`.
pub fn challenge_for(verifier: &str) -> String {
    crate::crypto::sha256_b64(verifier.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_challenge_matches_the_rfc_7636_example() {
        // RFC 7636 appendix B.
        assert_eq!(
            challenge_for("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn a_generated_verifier_has_256_bits_and_a_matching_challenge() {
        let p = Pkce::generate();
        assert_eq!(p.verifier.expose().len(), 43);
        assert_eq!(p.challenge, challenge_for(p.verifier.expose()));
    }
}
