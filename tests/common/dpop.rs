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
    let issued = obtain_code(&Browser::new(), stack, "openid offline_access notes").await;
    let redirect = redirect_uri(stack);
    let form = [
        ("grant_type", "authorization_code"),
        ("code", issued.code.as_str()),
        ("redirect_uri", redirect.as_str()),
        ("code_verifier", issued.verifier.as_str()),
    ];
    token_call(stack, &form, Some(token_proof(stack, key))).await
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
