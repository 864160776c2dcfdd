//! DPoP-bound access tokens at the resource server (RFC 9449 §7): a token whose claims carry
//! `cnf.jkt` is usable only as `Authorization: DPoP <token>` with a `DPoP` proof that the
//! shared [`crate::jwt::dpop`] verifies (signature with the embedded key, `typ`, `alg`
//! allow-list, `htm`, `htu` = this server's public URL + the path, `ath`, `iat` window, the
//! nonce when required) and whose key is the token's (`cnf.jkt`); each proof's `jti` is
//! remembered in the store for the window, so a proof is used once.

use crate::config::PublicUrl;
use crate::crypto::KeyedHasher;
use crate::jwt::dpop::{self, DPOP_HEADER, DpopAlg, DpopError, ProofCheck};
use crate::store::Store;
use crate::web::{ApiError, ErrorCode};
use actix_web::HttpRequest;

/// How old a proof's `iat` may be.
pub const PROOF_MAX_AGE_SECS: i64 = 60;

/// A server nonce is valid for this window and the one before.
const NONCE_WINDOW_SECS: i64 = 30;

/// How this server checks DPoP proofs.
#[derive(Clone)]
pub struct DpopPolicy {
    store: Store,
    public_url: Option<PublicUrl>,
    nonces: Option<NonceIssuer>,
}

/// Stateless server nonces: a keyed hash of the current time window (a fresh random key per
/// process, so instances do not share nonces: a client meeting another one retries once).
#[derive(Clone)]
struct NonceIssuer(KeyedHasher);

impl NonceIssuer {
    fn at(&self, window: i64) -> String {
        self.0.hash(&window.to_be_bytes())
    }

    fn current(&self) -> String {
        self.at(crate::clock::now() / NONCE_WINDOW_SECS)
    }

    fn accepted(&self) -> [String; 2] {
        let window = crate::clock::now() / NONCE_WINDOW_SECS;
        [self.at(window), self.at(window - 1)]
    }
}

/// 401 `invalid_token` with a DPoP challenge carrying `error`.
pub fn challenge(error: &str, description: &str) -> ApiError {
    let algs = DpopAlg::ALL.map(|a| a.name()).join(" ");
    ApiError::new(ErrorCode::InvalidToken, description)
        .with_www_authenticate(format!(r#"DPoP algs="{algs}", error="{error}""#))
}

impl DpopPolicy {
    /// Proofs checked against `public_url` (else the request's `Host`), replays kept in
    /// `store`, nonces required when `require_nonce`.
    pub fn new(store: Store, public_url: Option<PublicUrl>, require_nonce: bool) -> Self {
        let nonces =
            require_nonce.then(|| NonceIssuer(KeyedHasher::new(&crate::crypto::random_bytes::<32>())));
        Self { store, public_url, nonces }
    }

    /// Checks the request's proof for `token`, bound to `jkt`.
    pub async fn check(&self, req: &HttpRequest, token: &str, jkt: &str) -> Result<(), ApiError> {
        let invalid = |d: &str| challenge("invalid_dpop_proof", d);
        let mut headers = req.headers().get_all(DPOP_HEADER);
        let proof = headers.next().ok_or_else(|| invalid("the DPoP proof is missing"))?;
        if headers.next().is_some() {
            return Err(invalid("more than one DPoP proof"));
        }
        let proof = proof.to_str().map_err(|_| invalid("malformed DPoP proof"))?;
        let htu = self.request_url(req).ok_or_else(|| invalid("the request has no host"))?;
        let accepted = self.nonces.as_ref().map(NonceIssuer::accepted);
        let check = ProofCheck {
            htm: req.method().as_str(),
            htu: &htu,
            access_token: Some(token),
            nonces: accepted.as_ref().map(|a| a.as_slice()).unwrap_or_default(),
            max_age_secs: PROOF_MAX_AGE_SECS,
        };
        let verified = dpop::verify_proof(proof, &check).map_err(|e| self.refusal(e))?;
        if !crate::crypto::constant_time_eq(verified.jkt.as_bytes(), jkt.as_bytes()) {
            return Err(self.refusal(DpopError::WrongKey));
        }
        match dpop::replay::first_use(&self.store, "rs:", &verified, PROOF_MAX_AGE_SECS).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(self.refusal(DpopError::Replayed)),
            Err(e) => Err(ApiError::store_unavailable(&e)),
        }
    }

    fn refusal(&self, e: DpopError) -> ApiError {
        tracing::info!(reason = %e, "DPoP proof refused");
        match (e, &self.nonces) {
            (DpopError::UseNonce, Some(nonces)) => {
                challenge("use_dpop_nonce", "the DPoP proof must carry the server's nonce")
                    .with_dpop_nonce(nonces.current())
            }
            _ => challenge("invalid_dpop_proof", "the DPoP proof is invalid"),
        }
    }

    /// The URL the request was sent to, as a proof's `htu` must name it.
    fn request_url(&self, req: &HttpRequest) -> Option<String> {
        let path = req.uri().path();
        match &self.public_url {
            Some(url) => Some(url.join(path)),
            None => {
                let host = req.headers().get(actix_web::http::header::HOST)?.to_str().ok()?;
                Some(format!("http://{host}{path}"))
            }
        }
    }
}
