//! Arrange steps for resource indicators (RFC 8707) and client credentials at the reference
//! auth server: two APIs as two resource servers with their own audiences, a client allowed to
//! ask tokens for both, and a service client with the client-credentials grant.

use super::apps::Stack;
use super::oidc_flow::{
    authorize_url, pkce_pair, query_param, redeem, redirect_uri, submit_login, urlencode,
};
use super::{Browser, StackConfig, USER};
use cloakroom::config::{ConfigSource, ResourceServerConfig};
use serde_json::{Value, json};

/// The first API's resource indicator (its resource server's `audience`).
pub const API_A: &str = "https://api-a.example";
/// The second API's.
pub const API_B: &str = "https://api-b.example";
/// A resource no client may use.
pub const API_C: &str = "https://api-c.example";
/// A client with the client-credentials grant, allowed [`API_A`].
pub const SERVICE_CLIENT: &str = "service-client";
/// [`SERVICE_CLIENT`]'s secret.
pub const SERVICE_SECRET: &str = "service-client-secret-0123456789";

/// `cfg` with the BFF's client allowed [`API_A`] and [`API_B`], and [`SERVICE_CLIENT`]
/// registered with `grant_types = ["client_credentials"]`.
pub fn with_two_apis(mut cfg: StackConfig) -> StackConfig {
    let clients = cfg.doc["auth_server"]["clients"].as_array_mut().expect("clients");
    clients[0]["resources"] = json!([API_A, API_B]);
    clients.push(json!({
        "client_id": SERVICE_CLIENT,
        "client_secret": SERVICE_SECRET,
        "grant_types": ["client_credentials"],
        "resources": [API_A],
    }));
    cfg
}

/// Starts a resource server of `stack` (its issuer and store) whose `audience` is `audience`,
/// on a fresh port; returns its base URL.
pub async fn start_api(stack: &Stack, audience: &str) -> String {
    super::apis::Api::new(audience).start(&stack.doc).await
}

/// `GET /whoami` at the resource server `api` with `token` as Bearer: (status, `error` of the
/// JSON body, if any).
pub async fn whoami(api: &str, token: &str) -> (u16, Option<String>) {
    let res = reqwest::Client::new()
        .get(format!("{api}/whoami"))
        .bearer_auth(token)
        .send()
        .await
        .expect("resource server reachable");
    let status = res.status().as_u16();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    (status, body["error"].as_str().map(str::to_string))
}

/// The claims of a JWT, unverified (the resource servers verify; tests read what was issued).
pub fn claims_of(token: &str) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

/// The authorization request of [`authorize_url`] naming `resources` too.
pub fn authorize_url_for(stack: &Stack, challenge: &str, scope: &str, resources: &[&str]) -> String {
    let mut url = authorize_url(stack, challenge, scope);
    for r in resources {
        url.push_str(&format!("&resource={}", urlencode(r)));
    }
    url
}

/// The code flow of [`USER`] for `scope` naming `resources` at `/authorize`, redeemed with
/// `token_resource` (if any): the token endpoint's (status, JSON).
pub async fn code_flow_for(
    stack: &Stack,
    scope: &str,
    resources: &[&str],
    token_resource: Option<&str>,
) -> (u16, Value) {
    let browser = Browser::new();
    let (verifier, challenge) = pkce_pair();
    let page = browser.get(&authorize_url_for(stack, &challenge, scope, resources)).await;
    let after = submit_login(&browser, &page, USER).await;
    let callback = browser.follow_until(after, &redirect_uri(stack)).await;
    let code = query_param(&callback, "code").expect("code in callback");
    match token_resource {
        None => redeem(stack, &code, &verifier).await,
        Some(r) => {
            let redirect = redirect_uri(stack);
            super::oidc_flow::token_request(
                stack,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", &redirect),
                    ("code_verifier", &verifier),
                    ("resource", r),
                ],
            )
            .await
        }
    }
}

/// A refresh as the BFF's client with extra form fields (`resource`, `scope`): (status, JSON).
pub async fn refresh_with(stack: &Stack, refresh_token: &str, extra: &[(&str, &str)]) -> (u16, Value) {
    let mut form = vec![("grant_type", "refresh_token"), ("refresh_token", refresh_token)];
    form.extend_from_slice(extra);
    super::oidc_flow::token_request(stack, &form).await
}

/// A client-credentials token request as `client_id` with `secret` (client_secret_basic),
/// extra form fields and an optional `DPoP` proof: (status, JSON).
pub async fn client_credentials(
    stack: &Stack,
    (client_id, secret): (&str, &str),
    extra: &[(&str, &str)],
    proof: Option<String>,
) -> (u16, Value) {
    let mut form = vec![("grant_type", "client_credentials")];
    form.extend_from_slice(extra);
    let mut req =
        reqwest::Client::new().post(format!("{}/token", stack.auth_url)).basic_auth(client_id, Some(secret));
    if let Some(proof) = proof {
        req = req.header("DPoP", proof);
    }
    let res = req.form(&form).send().await.expect("token endpoint reachable");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// [`SERVICE_CLIENT`]'s credentials.
pub const SERVICE: (&str, &str) = (SERVICE_CLIENT, SERVICE_SECRET);
