//! Drives the OpenID Connect flows the way a browser and a client would.

use super::{Browser, CLIENT_ID, Page, Stack, StackConfig, USER};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// Every scope the reference provider grants.
pub const ALL_SCOPES: &str = "openid profile offline_access notes";
/// A second confidential client, registered by [`with_other_client`].
pub const OTHER_CLIENT: &str = "other-client";
/// [`OTHER_CLIENT`]'s secret.
pub const OTHER_SECRET: &str = "other-client-secret-0123456789";

/// Registers [`OTHER_CLIENT`] at the auth server, with the BFF's redirect URI.
pub fn with_other_client(mut cfg: StackConfig) -> StackConfig {
    let redirect = format!("{}/bff/callback", cfg.doc["bff"]["public_url"].as_str().expect("public_url"));
    cfg.doc["auth_server"]["clients"].as_array_mut().expect("clients").push(serde_json::json!({
        "client_id": OTHER_CLIENT,
        "client_secret": OTHER_SECRET,
        "redirect_uris": [redirect],
    }));
    cfg
}

/// The BFF client's registered redirect URI.
pub fn redirect_uri(stack: &Stack) -> String {
    format!("{}/bff/callback", stack.bff_url)
}

/// The value of query parameter `name` in `url`.
pub fn query_param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url).ok()?.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

/// A code-flow authorization request of the BFF client for `scope` (`state=st`, `nonce=n`).
pub fn authorize_url(stack: &Stack, challenge: &str, scope: &str) -> String {
    format!(
        "{}/authorize?response_type=code&client_id={CLIENT_ID}&redirect_uri={}&scope={}&state=st&nonce=n&code_challenge={challenge}&code_challenge_method=S256",
        stack.auth_url,
        urlencode(&redirect_uri(stack)),
        urlencode(scope),
    )
}

/// An authorization code issued to the BFF client, not yet redeemed, with its PKCE pair.
pub struct IssuedCode {
    /// The code.
    pub code: String,
    /// The PKCE verifier that redeems it.
    pub verifier: String,
    /// The S256 challenge sent with the request.
    pub challenge: String,
}

/// Logs [`USER`] in through the provider's form in `browser` and returns the code from the
/// redirect (asserting its `state` and `iss`), without redeeming it.
pub async fn obtain_code(browser: &Browser, stack: &Stack, scope: &str) -> IssuedCode {
    let (verifier, challenge) = pkce_pair();
    let page = browser.get(&authorize_url(stack, &challenge, scope)).await;
    let after = submit_login(browser, &page, USER).await;
    assert_eq!(after.status, 302, "login: {}", after.body);
    let callback = after.location().expect("redirect to the client");
    assert!(callback.starts_with(&redirect_uri(stack)), "{callback}");
    assert_eq!(query_param(&callback, "state").as_deref(), Some("st"));
    assert_eq!(query_param(&callback, "iss").as_deref(), Some(stack.auth_url.as_str()));
    IssuedCode { code: query_param(&callback, "code").expect("code"), verifier, challenge }
}

/// Redeems `code` with `verifier` as the BFF client: (status, JSON).
pub async fn redeem(stack: &Stack, code: &str, verifier: &str) -> (u16, serde_json::Value) {
    let redirect = redirect_uri(stack);
    token_request(
        stack,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &redirect),
            ("code_verifier", verifier),
        ],
    )
    .await
}

/// Refreshes with `refresh_token` as the BFF client: (status, JSON).
pub async fn refresh(stack: &Stack, refresh_token: &str) -> (u16, serde_json::Value) {
    token_request(stack, &[("grant_type", "refresh_token"), ("refresh_token", refresh_token)]).await
}

/// A PKCE verifier and its S256 challenge.
pub fn pkce_pair() -> (String, String) {
    let verifier = cloakroom::crypto::random_token(32);
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

/// Fills the login form on `page` with `user` and submits it.
pub async fn submit_login(browser: &Browser, page: &Page, user: (&str, &str)) -> Page {
    assert_eq!(page.status, 200, "expected the login page, got {}: {}", page.status, page.body);
    let action = page.form_action().expect("login form has an action");
    let mut fields: Vec<(String, String)> =
        page.inputs().into_iter().filter(|(n, _)| n != "username" && n != "password").collect();
    fields.push(("username".into(), user.0.into()));
    fields.push(("password".into(), user.1.into()));
    browser.post_form(&action, &fields).await
}

/// Logs `user` in through the BFF: `/bff/login` → the provider's login form → the callback.
/// Returns the callback's answer (a redirect to `return_to` on success).
pub async fn bff_login(browser: &Browser, stack: &Stack, user: (&str, &str), return_to: &str) -> Page {
    let start = browser.get(&format!("{}/bff/login?returnTo={}", stack.bff_url, urlencode(return_to))).await;
    assert_eq!(start.status, 302, "login start: {}", start.body);
    let login_page = browser.follow(start).await;
    let after = submit_login(browser, &login_page, user).await;
    let callback = browser.follow_until(after, &format!("{}/bff/callback", stack.bff_url)).await;
    browser.get(&callback).await
}

/// Percent-encodes a query value.
pub fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Authorization-code flow straight against the auth server, as the BFF's client would do it:
/// returns the token endpoint's JSON.
pub async fn code_flow_tokens(
    browser: &Browser,
    stack: &Stack,
    user: (&str, &str),
    scope: &str,
) -> serde_json::Value {
    let (verifier, challenge) = pkce_pair();
    let page = browser.get(&authorize_url(stack, &challenge, scope)).await;
    let after = submit_login(browser, &page, user).await;
    let callback = browser.follow_until(after, &redirect_uri(stack)).await;
    let code = query_param(&callback, "code").expect("code in callback");
    let res = redeem(stack, &code, &verifier).await;
    assert_eq!(res.0, 200, "token response: {}", res.1);
    res.1
}

/// POSTs `form` to the token endpoint with the BFF client's credentials (client_secret_basic).
pub async fn token_request(stack: &Stack, form: &[(&str, &str)]) -> (u16, serde_json::Value) {
    let res = reqwest::Client::new()
        .post(format!("{}/token", stack.auth_url))
        .basic_auth(super::CLIENT_ID, Some(stack.client_secret()))
        .form(form)
        .send()
        .await
        .expect("token endpoint reachable");
    let status = res.status().as_u16();
    let body = res.json().await.unwrap_or(serde_json::Value::Null);
    (status, body)
}
