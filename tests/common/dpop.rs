//! DPoP arrange steps: a stack with `bff.oidc.dpop = "on"`, tokens bound to a test's own key
//! straight from the reference auth server, and calls to the token endpoint and the resource
//! server with a chosen `Authorization` and proof.

use super::oidc_flow::{obtain_code, redirect_uri};
use super::{Browser, CLIENT_ID, Stack, StackConfig};
use cloakroom::jwt::dpop::DpopKey;
use serde_json::{Value, json};

/// `cfg` with the BFF's tokens DPoP-bound.
pub fn on(cfg: StackConfig) -> StackConfig {
    cfg.set("bff.oidc.dpop", json!("on"))
}

/// An answer: status, `WWW-Authenticate`, `DPoP-Nonce` and JSON body.
#[derive(Debug)]
pub struct Answer {
    /// Status.
    pub status: u16,
    /// `WWW-Authenticate`, empty when absent.
    pub challenge: String,
    /// `DPoP-Nonce`, when given.
    pub nonce: Option<String>,
    /// The JSON body (`Null` when not JSON).
    pub body: Value,
}

async fn answer(res: reqwest::Response) -> Answer {
    let header = |name: &str| res.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let (challenge, nonce) = (header("www-authenticate").unwrap_or_default(), header("dpop-nonce"));
    Answer { status: res.status().as_u16(), challenge, nonce, body: res.json().await.unwrap_or(Value::Null) }
}

/// POSTs `form` to the token endpoint as the BFF client with `proof` as the `DPoP` header.
pub async fn token_call(stack: &Stack, form: &[(&str, &str)], proof: Option<String>) -> Answer {
    let mut req = reqwest::Client::new()
        .post(format!("{}/token", stack.auth_url))
        .basic_auth(CLIENT_ID, Some(stack.client_secret()))
        .form(form);
    if let Some(proof) = proof {
        req = req.header("DPoP", proof);
    }
    answer(req.send().await.expect("token endpoint reachable")).await
}

/// A proof of `key` for the token endpoint.
pub fn token_proof(stack: &Stack, key: &DpopKey) -> String {
    key.proof("POST", &format!("{}/token", stack.auth_url), None, None)
}

/// Logs the user in straight at the auth server and redeems the code with a proof of `key`:
/// the token endpoint's answer.
pub async fn bound_tokens(stack: &Stack, key: &DpopKey) -> Answer {
    bound_tokens_with(stack, token_proof(stack, key)).await
}

/// Like [`bound_tokens`], with the token endpoint proof given.
pub async fn bound_tokens_with(stack: &Stack, proof: String) -> Answer {
    let issued = obtain_code(&Browser::new(), stack, "openid offline_access notes").await;
    let redirect = redirect_uri(stack);
    let form = [
        ("grant_type", "authorization_code"),
        ("code", issued.code.as_str()),
        ("redirect_uri", redirect.as_str()),
        ("code_verifier", issued.verifier.as_str()),
    ];
    token_call(stack, &form, Some(proof)).await
}

/// `GET` of the resource server's `path` with `authorization` and an optional `DPoP` proof.
pub async fn rs_get(stack: &Stack, path: &str, authorization: &str, proof: Option<&str>) -> Answer {
    let mut req =
        reqwest::Client::new().get(format!("{}{path}", stack.rs_url)).header("Authorization", authorization);
    if let Some(proof) = proof {
        req = req.header("DPoP", proof);
    }
    answer(req.send().await.expect("resource server reachable")).await
}

/// A proof of `key` for `GET` of the resource server's `path` with `token`.
pub fn rs_proof(stack: &Stack, key: &DpopKey, path: &str, token: &str) -> String {
    key.proof("GET", &format!("{}{path}", stack.rs_url), Some(token), None)
}

/// A proof with any `claims`, signed by the P-256 `key` with its public JWK in the header: what
/// a forger with a key of their own can make (old `iat`, any `htu`…).
pub fn forged_proof(key: &cloakroom::jwt::SigningKey, header: Value, claims: Value) -> String {
    let jwk = key.public_jwk();
    let mut head = json!({"typ": "dpop+jwt", "alg": "ES256",
        "jwk": {"kty": "EC", "crv": "P-256", "x": jwk["x"], "y": jwk["y"]}});
    for (k, v) in header.as_object().expect("header object") {
        head[k] = v.clone();
    }
    let signing_input = format!("{}.{}", super::forge::b64(&head), super::forge::b64(&claims));
    let encoding = jsonwebtoken::EncodingKey::from_ec_pem(key.to_pem().as_bytes()).expect("key");
    let sig = jsonwebtoken::crypto::sign(signing_input.as_bytes(), &encoding, jsonwebtoken::Algorithm::ES256)
        .expect("sign");
    format!("{signing_input}.{sig}")
}

/// Claims of a proof for `GET` of the resource server's `path` with `token`.
pub fn rs_claims(stack: &Stack, path: &str, token: &str) -> Value {
    json!({
        "jti": cloakroom::crypto::random_token(12),
        "htm": "GET",
        "htu": format!("{}{path}", stack.rs_url),
        "iat": cloakroom::clock::now(),
        "ath": cloakroom::jwt::dpop::access_token_hash(token),
    })
}
